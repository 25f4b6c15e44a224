"""The one settings class that every Batchline process reads (environment prefix ``BATCHLINE_``)."""

from __future__ import annotations

import re
from datetime import timedelta
from enum import StrEnum
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BeforeValidator, Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

LogFormat = Literal["auto", "json", "text"]

_SUFFIXED = re.compile(r"^\s*(\d+)\s*([smhd])\s*$")
_UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86400}
MIN_RESULTS_TTL = timedelta(minutes=1)


MAX_RESULTS_TTL = timedelta(days=36_500)


def _duration(value: Any) -> Any:
    """Seconds ("604800"), a number with a unit ("7d", "12h", "30m", "45s"); anything else
    goes on to pydantic's own parsing (ISO 8601 such as "P7D")."""
    if not isinstance(value, str):
        return value
    if value.strip().isdigit():
        seconds = int(value)
    elif match := _SUFFIXED.match(value):
        seconds = int(match[1]) * _UNIT_S[match[2]]
    else:
        return value
    try:
        return timedelta(seconds=seconds)
    except OverflowError:
        raise ValueError("is far too long") from None


def _a_minute_to_a_century(value: timedelta) -> timedelta:
    if value < MIN_RESULTS_TTL:
        raise ValueError("must be at least 60 seconds")
    if value > MAX_RESULTS_TTL:
        raise ValueError("must be at most 36500 days")
    return value


Duration = Annotated[timedelta, BeforeValidator(_duration)]


class SecurityProtocol(StrEnum):
    PLAINTEXT = "PLAINTEXT"
    SASL_PLAINTEXT = "SASL_PLAINTEXT"
    SASL_SSL = "SASL_SSL"
    SSL = "SSL"

    @property
    def uses_sasl(self) -> bool:
        return self in (SecurityProtocol.SASL_PLAINTEXT, SecurityProtocol.SASL_SSL)

    @property
    def uses_tls(self) -> bool:
        return self in (SecurityProtocol.SASL_SSL, SecurityProtocol.SSL)


class SaslMechanism(StrEnum):
    SCRAM_SHA_512 = "SCRAM-SHA-512"
    SCRAM_SHA_256 = "SCRAM-SHA-256"
    PLAIN = "PLAIN"


class Settings(BaseSettings):
    # hide_input_in_errors: a validation error would otherwise print every setting's raw value,
    # secrets and the Kafka password among them.
    model_config = SettingsConfigDict(
        env_prefix="BATCHLINE_", env_file=None, extra="ignore", hide_input_in_errors=True
    )

    kafka_bootstrap: str = Field(
        "127.0.0.1:9092", description="Kafka bootstrap servers, comma-separated host:port."
    )
    kafka_security_protocol: SecurityProtocol = Field(
        SecurityProtocol.PLAINTEXT,
        description="PLAINTEXT (no authentication: loopback only), SASL_PLAINTEXT, SASL_SSL, SSL.",
    )
    kafka_sasl_mechanism: SaslMechanism = Field(
        SaslMechanism.SCRAM_SHA_512, description="SCRAM-SHA-512, SCRAM-SHA-256 or PLAIN."
    )
    kafka_username: str | None = Field(None, description="SASL user (principal User:<name>).")
    kafka_password: SecretStr | None = Field(None, description="SASL password.")
    kafka_ca_file: Path | None = Field(
        None,
        description="PEM file of the CAs the broker's TLS certificate is checked against "
        "(SSL and SASL_SSL; unset = the system's CAs).",
    )
    store_url: str = Field(
        "sqlite+aiosqlite:///data/results.db",
        description="SQLAlchemy URL of the results store (sqlite+aiosqlite or postgresql+asyncpg).",
    )
    redis_url: str | None = Field(
        None, description="Redis URL for limits shared across API processes; unset = in-process."
    )
    forwarded_allow_ips: str = Field(
        "",
        description="Proxies (comma-separated IPs, or *) whose X-Forwarded-For names the client; "
        "unset = the socket's peer is the client (limits per address cannot be dodged).",
    )
    topic_prefix: str = Field("batchline", description="Prefix of every Kafka topic name.")
    partitions: int = Field(
        8, ge=1, le=1024, description="Partitions of the topics Batchline creates."
    )
    requests_retention_s: int = Field(
        7 * 24 * 3600,
        ge=60,
        description="How long <prefix>.requests keeps each batch's input (its retention.ms, "
        "set when the topic is created): a batch can be replayed for that long.",
    )
    data_dir: Path = Field(
        Path("data"), description="Where workers keep table state and the broker its log."
    )
    pipelines_dir: Path | None = Field(
        None, description="Directory of pipeline spec files (YAML or JSON) beside the built-ins."
    )
    hash_secret: SecretStr = Field(
        SecretStr("batchline-dev-secret-change-me"),
        description="Server secret of the keyed-hash (HMAC-SHA256) transform step.",
    )
    chunk_secret: SecretStr = Field(
        SecretStr("batchline-dev-chunk-secret-change-me"),
        description="Secret the API signs its chunks with and the workers check them with "
        "(HMAC-SHA256); the same long random value on every API and worker in production.",
    )
    worker_metrics_port: int = Field(
        9108, ge=0, le=65535, description="Port of a worker's /metrics (0 = pick a free one)."
    )
    worker_metrics_host: str = Field(
        "127.0.0.1", description="Address a worker's /metrics listens on (0.0.0.0 in containers)."
    )
    worker_metrics_urls: str = Field(
        "",
        description="Comma-separated /metrics URLs of the workers, which the API gathers at "
        "/metrics/workers for the console's Operations page (batchline dev sets its worker's).",
    )
    worker_table_store: str = Field(
        "rocksdb://", description="Faust table store: rocksdb:// (durable) or memory://."
    )
    sync_wait_s: float = Field(
        30.0, ge=0, description="How long a submit waits before it answers 202."
    )
    max_body_bytes: int = Field(20_000_000, ge=1, description="Largest request body accepted.")
    requests_per_minute: int = Field(
        1000, ge=1, description="Requests a minute per API key (the seed's limit is 1,000)."
    )
    results_ttl: Annotated[Duration, AfterValidator(_a_minute_to_a_century)] = Field(
        timedelta(days=7),
        description="Age after which finished batches and their results are purged: seconds "
        "(604800), 7d / 12h / 30m, or ISO 8601 (P7D).",
    )
    purge_interval_s: float = Field(
        3600.0, gt=0, description="How often one worker purges batches older than RESULTS_TTL."
    )
    reconcile_after_s: float = Field(
        30.0,
        gt=0,
        description="A batch without progress this long is finished or repaired by a worker.",
    )
    missing_chunks_after_s: float = Field(
        600.0,
        gt=0,
        description="A batch still missing chunks this long after its last progress fails, "
        "its reason naming them.",
    )
    log_level: str = Field("INFO", description="Log level of every process.")
    log_format: LogFormat = Field(
        "auto",
        description="auto: readable one-line logs on a terminal, JSON lines otherwise; or "
        "always json, or always text.",
    )

    @model_validator(mode="after")
    def _kafka_security_is_complete(self) -> Settings:
        protocol = self.kafka_security_protocol
        if protocol.uses_sasl and not (self.kafka_username and self.kafka_password):
            raise ValueError(
                f"BATCHLINE_KAFKA_SECURITY_PROTOCOL={protocol} needs BATCHLINE_KAFKA_USERNAME "
                "and BATCHLINE_KAFKA_PASSWORD"
            )
        if self.kafka_ca_file is not None:
            if not protocol.uses_tls:
                raise ValueError(
                    f"BATCHLINE_KAFKA_CA_FILE is set but {protocol} uses no TLS: set "
                    "BATCHLINE_KAFKA_SECURITY_PROTOCOL to SASL_SSL or SSL, or unset the CA file"
                )
            if not self.kafka_ca_file.is_file():
                raise ValueError(f"BATCHLINE_KAFKA_CA_FILE {self.kafka_ca_file} is not a file")
        return self


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
