"""Kafka's own admin tools, run from the provisioned Maven Central jars, and what Batchline grants
with them: the principals' ACLs on the local broker, and a producer's own principal on the local
broker or on a broker of your own (``batchline keys grant-producer``)."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from batchline.broker.auth import (
    BrokerCredentials,
    Transport,
    java_quoted,
    producer_acl_arguments,
    scram_user_arguments,
    write_private,
)
from batchline.broker.provision import LOG4J_CONFIG_PATH, ensure_kafka_jars
from batchline.errors import BatchlineError
from streams.kafka_security import KafkaSecurity, SaslMechanism

TOOL_TIMEOUT_S = 60.0
_SCRAM = (SaslMechanism.SCRAM_SHA_512, SaslMechanism.SCRAM_SHA_256)


class BrokerError(BatchlineError):
    """The broker could not be started, did not answer, or refused an admin tool."""


def java() -> str:
    java_home = os.environ.get("JAVA_HOME")
    candidate = Path(java_home) / "bin" / "java" if java_home else None
    if candidate is not None and candidate.exists():
        return str(candidate)
    found = shutil.which("java")
    if found is None:
        raise BrokerError("Java 17 or newer is needed to run Kafka: apt-get install openjdk-17-jre")
    return found


def log_properties(log_dir: Path) -> list[str]:
    """JVM options that send a Kafka process's log4j output into ``log_dir``."""
    return [
        f"-Dlog4j2.configurationFile={LOG4J_CONFIG_PATH}",
        f"-Dbatchline.broker.logdir={log_dir}",
        # Kafka stops itself on SIGTERM; log4j's own hook would only race it and complain.
        "-Dlog4j.shutdownHookEnabled=false",
    ]


@dataclass(frozen=True, slots=True)
class AdminTools:
    """Kafka's admin tools (org.apache.kafka.tools.<tool>), logging in with the client config
    ``command_config`` and logging into ``log_dir``. ``secrets`` (the admin's password) never
    appear in what a failure says."""

    bootstrap: str
    command_config: Path
    log_dir: Path
    secrets: tuple[str, ...] = field(default=(), repr=False)

    def run(self, tool: str, arguments: list[str], what: str, secrets: Sequence[str] = ()) -> None:
        tool_line = [
            f"org.apache.kafka.tools.{tool}",
            *("--bootstrap-server", self.bootstrap),
            *("--command-config", str(self.command_config)),
            *arguments,
        ]
        with tempfile.TemporaryDirectory(prefix="batchline-tool-") as scratch:
            # The tool and its arguments (a new user's password among them) go in a java
            # @argfile: on the command line they would show in the process list. (The launcher
            # expands an @argfile only before the main class, so the class is in it too.)
            argfile = write_private(
                Path(scratch) / "arguments", "".join(f"{java_quoted(a)}\n" for a in tool_line)
            )
            result = self._java(argfile, f"{what} failed: Kafka's {tool}")
        if result.returncode != 0:
            output = result.stdout + result.stderr
            for secret in (*self.secrets, *secrets):  # a tool may repeat what it was given
                output = output.replace(secret, "***")
            raise BrokerError(f"{what} failed:\n{output}")

    def _java(self, argfile: Path, failure: str) -> subprocess.CompletedProcess[str]:
        command = [
            java(),
            "-XX:TieredStopAtLevel=1",
            *log_properties(self.log_dir),
            *("-cp", f"{ensure_kafka_jars()}/*"),
            f"@{argfile}",
        ]
        try:
            return subprocess.run(  # noqa: S603
                command, capture_output=True, text=True, check=False, timeout=TOOL_TIMEOUT_S
            )
        except subprocess.TimeoutExpired:
            # Not the exception itself: its text repeats the whole command.
            raise BrokerError(
                f"{failure} did not finish within {TOOL_TIMEOUT_S:.0f} s (does a broker answer "
                f"at {self.bootstrap}, and accept the admin's login?)"
            ) from None


@dataclass(frozen=True, slots=True)
class AdminLogin:
    """What granting a producer needs: the admin's tools and client login, and where the
    producer's own login is written (and how it will connect)."""

    tools: AdminTools
    security: KafkaSecurity
    credentials: BrokerCredentials


@contextmanager
def admin_from_settings(
    security: KafkaSecurity, bootstrap: str, folder: Path
) -> Iterator[AdminLogin]:
    """The admin of a broker of your own, logged in as ``security`` (the BATCHLINE_KAFKA_*
    settings) over SASL/SCRAM; producers' logins go into ``folder`` and connect the same way.
    The tools' client config, which holds the admin's password, lives only while in use."""
    if not security.protocol.uses_sasl or security.mechanism not in _SCRAM:
        raise BrokerError(
            "Granting a producer makes a SCRAM user: log in as an admin with "
            "BATCHLINE_KAFKA_SECURITY_PROTOCOL=SASL_PLAINTEXT or SASL_SSL and "
            "BATCHLINE_KAFKA_SASL_MECHANISM=SCRAM-SHA-512 or SCRAM-SHA-256"
        )
    transport = Transport.of(security)
    password = security.password or ""
    with tempfile.TemporaryDirectory(prefix="batchline-admin-") as scratch:
        config = write_private(
            Path(scratch) / "admin.properties",
            transport.tool_properties(security.username or "", password),
        )
        tools = AdminTools(bootstrap, config, Path(scratch), secrets=(password,))
        yield AdminLogin(tools, security, BrokerCredentials(folder, transport))


@dataclass(frozen=True, slots=True)
class ProducerGrant:
    principal: str
    topics: tuple[str, ...]
    env_file: Path
    properties_file: Path


def grant_producer(admin: AdminLogin, principal: str, topics: Sequence[str]) -> ProducerGrant:
    """Gives a producer a principal of its own: SCRAM credentials (kept in the admin's
    credentials folder), and the one ACL that lets it write its ``topics`` (an ACL names a
    topic, which need not exist yet). Running it again changes nothing."""
    credentials = admin.credentials
    password = credentials.create_user(principal)
    what = f"Granting {principal}"
    scram = scram_user_arguments(principal, password, credentials.transport.mechanism)
    admin.tools.run("ConfigCommand", scram, what, secrets=(password,))
    admin.tools.run("AclCommand", ["--add", *producer_acl_arguments(topics, principal)], what)
    return ProducerGrant(
        principal,
        tuple(topics),
        credentials.env_file(principal),
        credentials.properties_file(principal),
    )
