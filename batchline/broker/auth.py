"""What makes the local broker authenticated: SASL/SCRAM-SHA-512 users and the ACLs they get.

`batchline broker --auth` (and `batchline dev --auth`) make four principals when the log folder
is formatted (``kafka-storage format --add-scram``), each with a random password kept in
``<data-dir>/credentials/`` (files readable by their owner only):

| principal      | may                                                                      |
|----------------|--------------------------------------------------------------------------|
| admin          | everything (super user): the broker itself and the tool granting ACLs    |
| batchline      | the API and the workers: every topic, group and transactional ID named   |
|                | ``<prefix>.*`` or ``<prefix>-*`` (requests, control, progress, status...) |
| results-reader | read ``<prefix>.results`` and ``<prefix>.record-results``, in consumer     |
|                | groups named ``<prefix>.results.*``                                       |
| producer       | write ``<prefix>.requests`` and ``<prefix>.records`` only: event-driven   |
|                | producers. Which batches a chunk may touch is proven by its API key's     |
|                | signature (streams.owners)                                                |

and, for each producer granted one (``batchline keys grant-producer KEY``):

| producer-<ns>  | write ``<prefix>.ingest.<ns>`` and ``<prefix>.records.<ns>`` only: its own |
|                | ingest topic, where workers admit only batch IDs of its namespace ``<ns>`` |
|                | (the API key's), and its own records topic, whose results workers mark    |
|                | ``batchline-producer: <ns>``                                              |

Everyone else, and any client without credentials, is refused: KRaft's StandardAuthorizer with
``allow.everyone.if.no.acl.found=false``. This module only says what to write and run;
batchline.broker.local_broker runs it.
"""

from __future__ import annotations

import secrets
import shlex
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from streams.kafka_security import KafkaSecurity, SaslMechanism, SecurityProtocol

ADMIN_USER = "admin"
SERVICE_USER = "batchline"
READER_USER = "results-reader"
PRODUCER_USER = "producer"
USERS = (ADMIN_USER, SERVICE_USER, READER_USER, PRODUCER_USER)
MECHANISM = SaslMechanism.SCRAM_SHA_512
_LOGIN_MODULES = {
    SaslMechanism.SCRAM_SHA_512: "scram.ScramLoginModule",
    SaslMechanism.SCRAM_SHA_256: "scram.ScramLoginModule",
    SaslMechanism.PLAIN: "plain.PlainLoginModule",
}
CREDENTIALS_DIR = "credentials"
# Topic prefixes whose ACLs were granted, one a line: granting is done once per prefix.
GRANTED_FILE = "acls-granted"
_ENV = {
    "protocol": "BATCHLINE_KAFKA_SECURITY_PROTOCOL",
    "mechanism": "BATCHLINE_KAFKA_SASL_MECHANISM",
    "username": "BATCHLINE_KAFKA_USERNAME",
    "password": "BATCHLINE_KAFKA_PASSWORD",
    "ca_file": "BATCHLINE_KAFKA_CA_FILE",
}


@dataclass(frozen=True, slots=True)
class Transport:
    """How a broker's clients reach it and log in, whoever they are. The local broker's is
    SASL/SCRAM-SHA-512 without TLS; a broker of your own says its own (the settings' of its
    admin, for `batchline keys grant-producer --credentials-dir`)."""

    protocol: SecurityProtocol = SecurityProtocol.SASL_PLAINTEXT
    mechanism: SaslMechanism = MECHANISM
    ca_file: Path | None = None

    @classmethod
    def of(cls, security: KafkaSecurity) -> Transport:
        # Absolute: the producer's files are used from other folders than the admin's.
        ca_file = security.ca_file.resolve() if security.ca_file is not None else None
        return cls(security.protocol, security.mechanism, ca_file)

    def security(self, user: str, password: str) -> KafkaSecurity:
        return KafkaSecurity(self.protocol, self.mechanism, user, password, self.ca_file)

    def settings(self, user: str, password: str) -> dict[str, str]:
        """The BATCHLINE_KAFKA_* settings that make a process connect as ``user``."""
        found = {
            _ENV["protocol"]: self.protocol.value,
            _ENV["mechanism"]: self.mechanism.value,
            _ENV["username"]: user,
            _ENV["password"]: password,
        }
        if self.ca_file is not None:
            found[_ENV["ca_file"]] = str(self.ca_file)
        return found

    def tool_properties(self, user: str, password: str) -> str:
        """A client config for Kafka's own tools (``--command-config``) logging in as ``user``."""
        lines = [
            f"security.protocol={self.protocol.value}",
            f"sasl.mechanism={self.mechanism.value}",
            f"sasl.jaas.config={_jaas(_LOGIN_MODULES[self.mechanism], user, password)}",
        ]
        if self.ca_file is not None:
            lines += ["ssl.truststore.type=PEM", f"ssl.truststore.location={self.ca_file}"]
        # A .properties reader takes a backslash as an escape: each one is doubled.
        return "".join(f"{line}\n".replace("\\", "\\\\") for line in lines)


@dataclass(frozen=True, slots=True)
class BrokerCredentials:
    """The passwords of the broker's principals, kept in ``folder``."""

    folder: Path
    transport: Transport = Transport()

    @classmethod
    def of(cls, broker_data_dir: Path) -> BrokerCredentials:
        """The credentials of the broker whose log folder is ``broker_data_dir``."""
        return cls(broker_data_dir / CREDENTIALS_DIR)

    def usage(self, topic_prefix: str) -> str:
        """How clients log in, said once when the broker is ready."""
        return (
            f"Kafka: SASL/SCRAM-SHA-512 only; ACLs granted for topic prefix {topic_prefix!r}.\n"
            f"  API and workers:   set -a; . {self.env_file(SERVICE_USER)}; set +a\n"
            f"  results readers:   {self.env_file(READER_USER)} or "
            f"{self.properties_file(READER_USER).name} (groups named {topic_prefix}.results.*)\n"
            f"  producers:         {self.env_file(PRODUCER_USER)} "
            f"(writes {topic_prefix}.requests and {topic_prefix}.records only)\n"
            f"  Kafka's own tools: --command-config {self.properties_file(ADMIN_USER)}"
        )

    def env_file(self, user: str) -> Path:
        """Settings for Batchline processes: ``set -a; . <file>; set +a``."""
        return self.folder / f"{user}.env"

    def properties_file(self, user: str) -> Path:
        """Client config for Kafka's own tools: ``--command-config``."""
        return self.folder / f"{user}.properties"

    def password(self, user: str) -> str:
        for line in self.env_file(user).read_text().splitlines():
            name, _, value = line.partition("=")
            if name == _ENV["password"]:
                return value
        raise ValueError(f"{self.env_file(user)} holds no password; delete the broker's folder")

    def security(self, user: str) -> KafkaSecurity:
        return self.transport.security(user, self.password(user))

    def env(self, user: str) -> dict[str, str]:
        """The BATCHLINE_KAFKA_* settings that make a process connect as ``user``."""
        return self.transport.settings(user, self.password(user))

    @property
    def exist(self) -> bool:
        # The service's file marks a folder formatted with authentication (one formatted before
        # the producer principal existed has no producer.env, and no such principal).
        return self.env_file(SERVICE_USER).exists()

    def create(self) -> None:
        """New random passwords for every principal; the files are readable by their owner."""
        self.folder.mkdir(parents=True, exist_ok=True)
        self.folder.chmod(0o700)
        for user in USERS:
            # URL-safe characters only: the password goes into JAAS and --add-scram unquoted.
            self._write(user, new_password())

    def create_user(self, user: str) -> str:
        """The password of ``user``, created (with its files) unless it exists."""
        if self.env_file(user).exists():
            return self.password(user)
        if not self.folder.exists():  # a folder given that exists keeps its mode; files are 0600
            self.folder.mkdir(parents=True, mode=0o700)
        password = new_password()
        self._write(user, password)
        return password

    def _write(self, user: str, password: str) -> None:
        settings = self.transport.settings(user, password)
        # Quoted for `set -a; . file` (a CA file's path may hold spaces); passwords made here
        # are URL-safe, so they stay as they are and password() reads them back.
        text = "".join(f"{name}={shlex.quote(value)}\n" for name, value in settings.items())
        write_private(self.env_file(user), text)
        write_private(self.properties_file(user), self.transport.tool_properties(user, password))

    def format_arguments(self) -> list[str]:
        """``kafka-storage format`` arguments that create every principal's SCRAM credentials."""
        return [
            argument
            for user in USERS
            for argument in (
                "--add-scram",
                f"{MECHANISM.value}=[name={user},password={self.password(user)}]",
            )
        ]


def new_password() -> str:
    """A random password of URL-safe characters that does not start with "-": given as
    ``--password "$PASSWORD"`` (examples/producer.py, grep, Kafka's tools), one that did would
    be read as an option (1 in 64 of them did)."""
    while (password := secrets.token_urlsafe(24)).startswith("-"):
        pass
    return password


def write_private(path: Path, text: str) -> Path:
    """``path`` holding ``text``, readable by its owner only before anything is written."""
    path.touch(mode=0o600, exist_ok=True)
    path.chmod(0o600)
    path.write_text(text)
    return path


def _jaas(module: str, user: str, password: str, *extra: str) -> str:
    options = " ".join(
        [f"username={java_quoted(user)}", f"password={java_quoted(password)}", *extra]
    )
    return f"org.apache.kafka.common.security.{module} required {options};"


def java_quoted(value: str) -> str:
    """``value`` in double quotes as Java's readers take it (a JAAS option, an @argfile's
    argument): backslashes and quotes escaped inside."""
    if "\n" in value or "\r" in value:
        raise ValueError("a Kafka user name or password cannot hold a line break")
    escaped = value.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'


def listener_properties(
    port: int, controller_port: int, credentials: BrokerCredentials
) -> list[str]:
    """server.properties lines: SASL/SCRAM for clients, and the authorizer.

    The controller listener uses PLAIN: a KRaft controller cannot check SCRAM, whose credentials
    live in the metadata it serves. Its one user is the admin, defined in the JAAS line itself.
    """
    admin_password = credentials.password(ADMIN_USER)
    scram_admin = _jaas("scram.ScramLoginModule", ADMIN_USER, admin_password)
    plain_admin = _jaas(
        "plain.PlainLoginModule",
        ADMIN_USER,
        admin_password,
        f'user_{ADMIN_USER}="{admin_password}"',
    )
    return [
        f"listeners=SASL_PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller_port}",
        f"advertised.listeners=SASL_PLAINTEXT://127.0.0.1:{port}",
        "inter.broker.listener.name=SASL_PLAINTEXT",
        "listener.security.protocol.map=CONTROLLER:SASL_PLAINTEXT,SASL_PLAINTEXT:SASL_PLAINTEXT",
        f"sasl.enabled.mechanisms={MECHANISM.value}",
        f"sasl.mechanism.inter.broker.protocol={MECHANISM.value}",
        f"listener.name.sasl_plaintext.{MECHANISM.value.lower()}.sasl.jaas.config={scram_admin}",
        "sasl.mechanism.controller.protocol=PLAIN",
        "listener.name.controller.sasl.enabled.mechanisms=PLAIN",
        f"listener.name.controller.plain.sasl.jaas.config={plain_admin}",
        "authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer",
        f"super.users=User:{ADMIN_USER}",
        "allow.everyone.if.no.acl.found=false",
    ]


def acl_arguments(topic_prefix: str) -> list[list[str]]:
    """kafka-acls (AclCommand) ``--add`` arguments, one list a run, for one topic prefix."""
    service, reader = f"User:{SERVICE_USER}", f"User:{READER_USER}"
    producer = f"User:{PRODUCER_USER}"
    return [
        # The API and the workers own everything of theirs: Batchline's topics (<prefix>.role),
        # Faust's changelog and assignor topics and the consumer groups (<prefix>-...).
        [
            *("--allow-principal", service, "--operation", "All"),
            *("--topic", f"{topic_prefix}.", "--topic", f"{topic_prefix}-"),
            *("--group", f"{topic_prefix}-", "--transactional-id", f"{topic_prefix}-"),
            *("--resource-pattern-type", "prefixed"),
        ],
        [
            *("--allow-principal", reader, "--operation", "Read", "--operation", "Describe"),
            *("--topic", f"{topic_prefix}.results", "--topic", f"{topic_prefix}.record-results"),
        ],
        [
            *("--allow-principal", reader, "--operation", "Read"),
            *("--group", f"{topic_prefix}.results.", "--resource-pattern-type", "prefixed"),
        ],
        # Producers write chunks and stream records and nothing else: not even read them back
        # (other tenants' records are there), nor forge control, progress or status messages.
        [
            *("--allow-principal", producer, "--operation", "Write", "--operation", "Describe"),
            *("--topic", f"{topic_prefix}.requests", "--topic", f"{topic_prefix}.records"),
        ],
    ]


def producer_principal(namespace: str) -> str:
    """The principal of the producer whose batch IDs carry ``namespace``."""
    return f"{PRODUCER_USER}-{namespace}"


def producer_acl_arguments(topics: Sequence[str], principal: str) -> list[str]:
    """kafka-acls ``--add`` arguments: ``principal`` writes its own ``topics`` (its ingest and
    records topics), and nothing else."""
    return [
        *("--allow-principal", f"User:{principal}"),
        *("--operation", "Write", "--operation", "Describe"),
        *(argument for topic in topics for argument in ("--topic", topic)),
    ]


def scram_user_arguments(
    user: str, password: str, mechanism: SaslMechanism = MECHANISM
) -> list[str]:
    """kafka-configs (ConfigCommand) arguments that create or update ``user``'s credentials."""
    return [
        *("--alter", "--entity-type", "users", "--entity-name", user),
        *("--add-config", f"{mechanism.value}=[password={password}]"),
    ]


def granted_prefixes(folder: Path) -> set[str]:
    path = folder / GRANTED_FILE
    return set(path.read_text().split()) if path.exists() else set()


def record_granted(folder: Path, topic_prefix: str) -> None:
    with (folder / GRANTED_FILE).open("a") as out:
        out.write(f"{topic_prefix}\n")
