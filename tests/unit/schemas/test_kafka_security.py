"""Kafka security settings, and what they become for aiokafka and Faust."""

from __future__ import annotations

import ssl
from pathlib import Path

import faust
import pytest
from pydantic import ValidationError

from schemas.settings import Settings
from streams.kafka_security import PLAINTEXT, KafkaSecurity, SaslMechanism, SecurityProtocol

SECRET = "pw-that-must-not-show"  # noqa: S105 - a test value


def test_plaintext_is_the_default_and_carries_no_credentials() -> None:
    assert KafkaSecurity.from_settings(Settings()) == PLAINTEXT
    assert PLAINTEXT.client_options() == {"security_protocol": "PLAINTEXT"}
    assert PLAINTEXT.faust_credentials() is None


def test_sasl_without_a_user_and_password_is_refused_without_echoing_input() -> None:
    with pytest.raises(ValidationError) as refused:
        Settings(kafka_security_protocol=SecurityProtocol.SASL_SSL, kafka_password=SECRET)
    assert "needs BATCHLINE_KAFKA_USERNAME and BATCHLINE_KAFKA_PASSWORD" in str(refused.value)
    assert SECRET not in str(refused.value)


def test_a_ca_file_without_tls_is_refused(tmp_path: Path) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_text("")
    with pytest.raises(ValidationError, match="uses no TLS"):
        Settings(kafka_ca_file=ca)


def test_a_missing_ca_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="is not a file"):
        Settings(kafka_security_protocol=SecurityProtocol.SSL, kafka_ca_file=tmp_path / "no.pem")


def test_scram_settings_become_aiokafka_options() -> None:
    settings = Settings(
        kafka_security_protocol=SecurityProtocol.SASL_PLAINTEXT,
        kafka_sasl_mechanism=SaslMechanism.SCRAM_SHA_256,
        kafka_username="svc",
        kafka_password=SECRET,
    )
    assert KafkaSecurity.from_settings(settings).client_options() == {
        "security_protocol": "SASL_PLAINTEXT",
        "sasl_mechanism": "SCRAM-SHA-256",
        "sasl_plain_username": "svc",
        "sasl_plain_password": SECRET,
    }


def test_sasl_ssl_adds_a_verifying_tls_context() -> None:
    options = KafkaSecurity(SecurityProtocol.SASL_SSL, username="svc", password=SECRET)
    context = options.client_options()["ssl_context"]
    assert isinstance(context, ssl.SSLContext)
    assert context.verify_mode is ssl.CERT_REQUIRED
    assert context.check_hostname


def test_faust_gets_the_same_login() -> None:
    credentials = KafkaSecurity.scram("svc", SECRET).faust_credentials()
    assert isinstance(credentials, faust.SASLCredentials)
    assert (credentials.username, credentials.password) == ("svc", SECRET)
    assert credentials.mechanism.value == "SCRAM-SHA-512"
    assert credentials.protocol.value == "SASL_PLAINTEXT"
    tls = KafkaSecurity(SecurityProtocol.SSL).faust_credentials()
    assert isinstance(tls, faust.SSLCredentials)


def test_the_password_never_shows_in_a_repr() -> None:
    assert SECRET not in repr(KafkaSecurity.scram("svc", SECRET))
    assert SECRET not in repr(KafkaSecurity.scram("svc", SECRET).faust_credentials())
