"""What the authenticated local broker is made of: credentials, listener config, ACLs."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from batchline.broker.admin_tools import BrokerError, admin_from_settings
from batchline.broker.auth import (
    ADMIN_USER,
    PRODUCER_USER,
    READER_USER,
    SERVICE_USER,
    USERS,
    BrokerCredentials,
    Transport,
    acl_arguments,
    granted_prefixes,
    listener_properties,
    new_password,
    record_granted,
)
from schemas.settings import Settings
from streams.kafka_security import KafkaSecurity, SaslMechanism, SecurityProtocol


@pytest.fixture
def credentials(tmp_path: Path) -> BrokerCredentials:
    made = BrokerCredentials.of(tmp_path)
    made.create()
    return made


def test_every_principal_gets_its_own_random_password(credentials: BrokerCredentials) -> None:
    passwords = {credentials.password(user) for user in USERS}
    assert len(passwords) == len(USERS)
    assert all(len(password) >= 32 for password in passwords)
    assert credentials.exist


def test_credential_files_are_readable_by_their_owner_only(credentials: BrokerCredentials) -> None:
    assert stat.S_IMODE(credentials.folder.stat().st_mode) == 0o700
    for user in USERS:
        for path in (credentials.env_file(user), credentials.properties_file(user)):
            assert stat.S_IMODE(path.stat().st_mode) == 0o600, path


def test_a_principals_env_file_is_settings_that_log_in_as_it(
    credentials: BrokerCredentials, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in credentials.env(SERVICE_USER).items():
        monkeypatch.setenv(name, value)
    settings = Settings()
    assert settings.kafka_security_protocol is SecurityProtocol.SASL_PLAINTEXT
    assert settings.kafka_sasl_mechanism is SaslMechanism.SCRAM_SHA_512
    assert settings.kafka_username == SERVICE_USER
    assert settings.kafka_password is not None
    assert settings.kafka_password.get_secret_value() == credentials.password(SERVICE_USER)


def test_kafka_tools_config_carries_a_scram_login(credentials: BrokerCredentials) -> None:
    text = credentials.properties_file(ADMIN_USER).read_text()
    assert "security.protocol=SASL_PLAINTEXT" in text
    assert "sasl.mechanism=SCRAM-SHA-512" in text
    assert f'username="{ADMIN_USER}" password="{credentials.password(ADMIN_USER)}";' in text


def test_format_arguments_create_a_scram_user_per_principal(
    credentials: BrokerCredentials,
) -> None:
    arguments = credentials.format_arguments()
    assert arguments[0::2] == ["--add-scram"] * len(USERS)
    assert arguments[1::2] == [
        f"SCRAM-SHA-512=[name={user},password={credentials.password(user)}]" for user in USERS
    ]


def test_listeners_refuse_anyone_without_an_acl(credentials: BrokerCredentials) -> None:
    lines = listener_properties(9092, 9093, credentials)
    assert "listeners=SASL_PLAINTEXT://127.0.0.1:9092,CONTROLLER://127.0.0.1:9093" in lines
    assert not any("PLAINTEXT:PLAINTEXT" in line for line in lines)
    assert "sasl.enabled.mechanisms=SCRAM-SHA-512" in lines
    assert "allow.everyone.if.no.acl.found=false" in lines
    assert f"super.users=User:{ADMIN_USER}" in lines
    assert "authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer" in lines


def test_the_service_owns_its_prefix_the_reader_reads_results_and_producers_write_chunks() -> None:
    service, reader_topic, reader_groups, producer = acl_arguments("acme")
    assert service[:4] == ["--allow-principal", f"User:{SERVICE_USER}", "--operation", "All"]
    assert _values(service, "--topic") == ["acme.", "acme-"]
    assert _values(service, "--group") == ["acme-"]
    assert _values(service, "--resource-pattern-type") == ["prefixed"]
    assert _values(reader_topic, "--allow-principal") == [f"User:{READER_USER}"]
    assert _values(reader_topic, "--operation") == ["Read", "Describe"]
    assert _values(reader_topic, "--topic") == ["acme.results", "acme.record-results"]
    assert "--resource-pattern-type" not in reader_topic  # literal: that one topic only
    assert _values(reader_groups, "--operation") == ["Read"]
    assert _values(reader_groups, "--group") == ["acme.results."]
    assert _values(producer, "--allow-principal") == [f"User:{PRODUCER_USER}"]
    assert _values(producer, "--operation") == ["Write", "Describe"]
    assert _values(producer, "--topic") == ["acme.requests", "acme.records"]
    assert "--resource-pattern-type" not in producer


def test_granted_prefixes_are_remembered(tmp_path: Path) -> None:
    assert granted_prefixes(tmp_path) == set()
    record_granted(tmp_path, "acme")
    record_granted(tmp_path, "other")
    assert granted_prefixes(tmp_path) == {"acme", "other"}


def test_usage_names_the_files_not_the_passwords(credentials: BrokerCredentials) -> None:
    text = credentials.usage("acme")
    assert str(credentials.env_file(SERVICE_USER)) in text
    assert str(credentials.env_file(READER_USER)) in text
    assert str(credentials.env_file(PRODUCER_USER)) in text
    assert all(credentials.password(user) not in text for user in USERS)


def _values(arguments: list[str], option: str) -> list[str]:
    return [value for name, value in zip(arguments, arguments[1:], strict=False) if name == option]


def test_a_producer_on_a_broker_of_your_own_connects_as_its_admin_does(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ca_file = tmp_path / "ca.pem"
    ca_file.write_text("not read here")
    admin = KafkaSecurity(
        SecurityProtocol.SASL_SSL, SaslMechanism.SCRAM_SHA_256, "ops", "ops-pw", ca_file
    )
    credentials = BrokerCredentials(tmp_path / "producers", Transport.of(admin))

    password = credentials.create_user("producer-p0123456789abcdef")

    assert stat.S_IMODE(credentials.folder.stat().st_mode) == 0o700
    for name, value in credentials.env("producer-p0123456789abcdef").items():
        monkeypatch.setenv(name, value)
    settings = Settings()
    assert settings.kafka_security_protocol is SecurityProtocol.SASL_SSL
    assert settings.kafka_sasl_mechanism is SaslMechanism.SCRAM_SHA_256
    assert settings.kafka_ca_file == ca_file
    assert settings.kafka_username == "producer-p0123456789abcdef"
    tool_config = credentials.properties_file("producer-p0123456789abcdef").read_text()
    assert tool_config.splitlines() == [
        "security.protocol=SASL_SSL",
        "sasl.mechanism=SCRAM-SHA-256",
        "sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required "
        f'username="producer-p0123456789abcdef" password="{password}";',
        "ssl.truststore.type=PEM",
        f"ssl.truststore.location={ca_file}",
    ]


@pytest.mark.parametrize(
    "admin",
    [
        KafkaSecurity(),
        KafkaSecurity(SecurityProtocol.SASL_PLAINTEXT, SaslMechanism.PLAIN, "ops", "ops-pw"),
    ],
)
def test_granting_on_a_broker_of_your_own_needs_a_scram_login(
    admin: KafkaSecurity, tmp_path: Path
) -> None:
    with (
        pytest.raises(BrokerError, match="makes a SCRAM user"),
        admin_from_settings(admin, "127.0.0.1:9092", tmp_path),
    ):
        pass


def test_the_admin_s_tool_config_lives_only_while_in_use(tmp_path: Path) -> None:
    admin = KafkaSecurity.scram("ops", "ops-pw")
    with admin_from_settings(admin, "127.0.0.1:9092", tmp_path / "producers") as login:
        config = login.tools.command_config
        assert stat.S_IMODE(config.stat().st_mode) == 0o600
        assert 'username="ops" password="ops-pw";' in config.read_text()
    assert not config.exists()


def test_a_password_s_quotes_and_backslashes_are_escaped_for_jaas_and_properties() -> None:
    # Checked once against Kafka 4's own reader (java.util.Properties, then JaasConfig):
    # this line gives back the password a"b\c d=e.
    text = Transport().tool_properties("ops", 'a"b\\c d=e')
    assert 'username="ops" password="a\\\\"b\\\\\\\\c d=e";' in text


def test_a_password_with_a_line_break_is_refused() -> None:
    with pytest.raises(ValueError, match="line break"):
        Transport().tool_properties("ops", "a\nsasl.mechanism=PLAIN")


def test_no_password_starts_like_an_option() -> None:
    passwords = [new_password() for _ in range(2000)]  # about 31 would, 1 in 64
    assert not [password for password in passwords if password.startswith("-")]
    assert len(set(passwords)) == len(passwords)
    assert all(len(password) == 32 for password in passwords)
