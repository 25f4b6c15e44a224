"""How every Kafka client of Batchline proves who it is: one value, given to aiokafka and Faust.

PLAINTEXT (no authentication) suits a broker on loopback, as `make run` starts. A shared broker
wants SASL (SCRAM-SHA-512 by default), over TLS when the network is not trusted: see the
README's "Kafka authentication". The password never appears in a repr, a log or an error.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from schemas.settings import SaslMechanism, SecurityProtocol, Settings

if TYPE_CHECKING:
    from faust.types.auth import CredentialsT

__all__ = ["PLAINTEXT", "KafkaSecurity", "SaslMechanism", "SecurityProtocol"]


@dataclass(frozen=True, slots=True)
class KafkaSecurity:
    """The security settings of one Kafka client; the default is no security (PLAINTEXT)."""

    protocol: SecurityProtocol = SecurityProtocol.PLAINTEXT
    mechanism: SaslMechanism = SaslMechanism.SCRAM_SHA_512
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    ca_file: Path | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> KafkaSecurity:
        password = settings.kafka_password
        return cls(
            protocol=settings.kafka_security_protocol,
            mechanism=settings.kafka_sasl_mechanism,
            username=settings.kafka_username,
            password=password.get_secret_value() if password is not None else None,
            ca_file=settings.kafka_ca_file,
        )

    @classmethod
    def scram(cls, username: str, password: str) -> KafkaSecurity:
        """SASL/SCRAM-SHA-512 without TLS, as the local authenticated broker serves it."""
        return cls(SecurityProtocol.SASL_PLAINTEXT, SaslMechanism.SCRAM_SHA_512, username, password)

    def ssl_context(self) -> ssl.SSLContext | None:
        """The TLS context (the CA file's certificates, else the system's), or None without TLS."""
        if not self.protocol.uses_tls:
            return None
        return ssl.create_default_context(cafile=str(self.ca_file) if self.ca_file else None)

    def client_options(self) -> dict[str, Any]:
        """Keyword arguments for any aiokafka client (producer, consumer, admin)."""
        options: dict[str, Any] = {"security_protocol": self.protocol.value}
        if self.protocol.uses_sasl:
            options |= {
                "sasl_mechanism": self.mechanism.value,
                "sasl_plain_username": self.username,
                "sasl_plain_password": self.password,
            }
        if (context := self.ssl_context()) is not None:
            options["ssl_context"] = context
        return options

    def faust_credentials(self) -> CredentialsT | None:
        """What faust.App(broker_credentials=...) takes; None for PLAINTEXT."""
        import faust

        context = self.ssl_context()
        if self.protocol.uses_sasl:
            return faust.SASLCredentials(
                username=self.username,
                password=self.password,
                mechanism=self.mechanism.value,
                ssl_context=context,
            )
        if context is not None:
            return faust.SSLCredentials(context)
        return None


PLAINTEXT = KafkaSecurity()
