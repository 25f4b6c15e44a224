"""A real Apache Kafka broker in KRaft combined mode, run as a local JVM process.

The log directory is formatted once; its ``server.properties`` keeps the controller port chosen
then, because a standalone KRaft quorum records its voter's address at format time.
"""

from __future__ import annotations

import asyncio
import logging
import random
import socket
import subprocess
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from batchline.broker.admin_tools import (
    AdminLogin,
    AdminTools,
    BrokerError,
    java,
    log_properties,
)
from batchline.broker.auth import (
    ADMIN_USER,
    CREDENTIALS_DIR,
    BrokerCredentials,
    acl_arguments,
    granted_prefixes,
    listener_properties,
    record_granted,
)
from batchline.broker.provision import ensure_kafka_jars
from streams.kafka_security import PLAINTEXT, KafkaSecurity

HEAP_MB = 512
READY_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 30.0
SERVER_PROPERTIES = "server.properties"
# free_port looks this far below the ephemeral range, this many times.
FREE_PORT_SPAN = 12_000
FREE_PORT_TRIES = 50


def free_port() -> int:
    """A loopback port nothing listens on now, from just below the kernel's ephemeral range.
    A port from that range (what binding port 0 gives) is also where this machine's outgoing
    connections take their local ports: one of them could hold it by the time the server it
    was chosen for listens (seen: a test's API, "address already in use")."""
    low = _ephemeral_ports()[0]
    candidates = range(max(1024, low - FREE_PORT_SPAN), low)
    for port in random.sample(candidates, min(FREE_PORT_TRIES, len(candidates))):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        chosen: int = sock.getsockname()[1]
        return chosen


def _ephemeral_ports() -> tuple[int, int]:
    """The kernel's range of local ports for outgoing connections (Linux; its default else)."""
    try:
        low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return int(low), int(high)
    except (OSError, ValueError):
        return 32768, 60999


def _port_in_use(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _plaintext_listeners(port: int, controller_port: int) -> list[str]:
    return [
        f"listeners=PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller_port}",
        f"advertised.listeners=PLAINTEXT://127.0.0.1:{port}",
        "inter.broker.listener.name=PLAINTEXT",
        "listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
    ]


def _properties(
    port: int, controller_port: int, log_dir: Path, credentials: BrokerCredentials | None
) -> str:
    listeners = (
        listener_properties(port, controller_port, credentials)
        if credentials is not None
        else _plaintext_listeners(port, controller_port)
    )
    return "\n".join(
        [
            "process.roles=broker,controller",
            "node.id=1",
            f"controller.quorum.bootstrap.servers=127.0.0.1:{controller_port}",
            "controller.listener.names=CONTROLLER",
            *listeners,
            f"log.dirs={log_dir}",
            "num.partitions=8",
            "auto.create.topics.enable=true",
            "message.max.bytes=33554432",  # streams.topics.MAX_MESSAGE_BYTES
            "offsets.topic.replication.factor=1",
            "offsets.topic.num.partitions=8",
            "transaction.state.log.replication.factor=1",
            "transaction.state.log.min.isr=1",
            "share.coordinator.state.topic.replication.factor=1",
            "share.coordinator.state.topic.min.isr=1",
            # A single-node development broker: no reason to make the first consumer group wait.
            "group.initial.rebalance.delay.ms=0",
            "log.retention.hours=168",
            "",
        ]
    )


def _read_controller_port(config: Path) -> int:
    for line in config.read_text().splitlines():
        if line.startswith("controller.quorum.bootstrap.servers="):
            return int(line.rsplit(":", 1)[1])
    raise BrokerError(f"{config} names no controller; delete its folder to start afresh")


@dataclass(frozen=True, slots=True)
class BrokerLayout:
    data_dir: Path

    @property
    def log_dir(self) -> Path:
        return self.data_dir / "log"

    @property
    def config(self) -> Path:
        return self.data_dir / SERVER_PROPERTIES

    @property
    def formatted(self) -> bool:
        return (self.log_dir / "meta.properties").exists() and self.config.exists()

    @property
    def credentials(self) -> BrokerCredentials:
        return BrokerCredentials(self.data_dir / CREDENTIALS_DIR)

    def admin_tools(self, bootstrap: str) -> AdminTools:
        """Kafka's admin tools logged in as this broker's admin."""
        credentials = self.credentials
        return AdminTools(
            bootstrap,
            credentials.properties_file(ADMIN_USER),
            self.data_dir,
            secrets=(credentials.password(ADMIN_USER),),
        )

    def write_config(self, port: int, controller_port: int, auth: bool) -> None:
        credentials = self.credentials if auth else None
        # With authentication the file holds the admin's password: its owner's alone.
        self.config.touch(mode=0o600, exist_ok=True)
        self.config.write_text(_properties(port, controller_port, self.log_dir, credentials))


def prepare(data_dir: Path, port: int, libs: Path, *, auth: bool = False) -> BrokerLayout:
    """Writes the broker's config and formats its log directory the first time."""
    layout = BrokerLayout(data_dir.resolve())
    layout.data_dir.mkdir(parents=True, exist_ok=True)
    if layout.formatted:
        if layout.credentials.exist != auth:
            made, asked = ("with", "without") if layout.credentials.exist else ("without", "with")
            raise BrokerError(
                f"{layout.data_dir} holds a broker formatted {made} authentication; start it "
                f"{made} --auth, or give --data-dir another folder to start one {asked} it"
            )
        layout.write_config(port, _read_controller_port(layout.config), auth)
        return layout
    controller_port = free_port()
    while controller_port == port:
        controller_port = free_port()
    if auth and not layout.credentials.exist:
        layout.credentials.create()
    layout.write_config(port, controller_port, auth)
    command = [
        java(),
        "-cp",
        f"{libs}/*",
        *log_properties(layout.data_dir),
        "kafka.tools.StorageTool",
        "format",
        "--standalone",
        "--cluster-id",
        uuid.uuid4().hex[:22],
        "--config",
        str(layout.config),
        *(layout.credentials.format_arguments() if auth else []),
    ]
    result = subprocess.run(command, capture_output=True, text=True, check=False)  # noqa: S603
    if result.returncode != 0:
        # Its standard output lists the bootstrap records, SCRAM keys among them: not shown.
        raise BrokerError(f"Formatting {layout.log_dir} failed:\n{result.stderr}")
    return layout


def start(data_dir: Path, port: int, *, auth: bool = False) -> subprocess.Popen[bytes]:
    """Starts the broker process (not yet ready: see :func:`wait_ready`); with ``auth``, clients
    must log in with SCRAM-SHA-512 (see batchline.broker.auth)."""
    if _port_in_use(port):
        raise BrokerError(
            f"Port {port} is already taken: stop what runs there, pick another with --port, "
            "or use that broker with --kafka 127.0.0.1:{port}."
        )
    libs = ensure_kafka_jars()
    layout = prepare(data_dir, port, libs, auth=auth)
    command = [
        java(),
        f"-Xmx{HEAP_MB}m",
        f"-Xms{HEAP_MB // 2}m",
        "-XX:+UseG1GC",
        "-XX:TieredStopAtLevel=1",
        "-Djava.awt.headless=true",
        *log_properties(layout.data_dir),
        "-cp",
        f"{libs}/*",
        "kafka.Kafka",
        str(layout.config),
    ]
    # A session of its own: Ctrl-C reaches the supervisor, which stops the broker in its turn.
    return subprocess.Popen(command, stdin=subprocess.DEVNULL, start_new_session=True)  # noqa: S603


LAST_RESORT_FACTOR = 5


def admin_security(data_dir: Path) -> KafkaSecurity:
    """How the broker's own tools connect to the broker kept in ``data_dir``."""
    credentials = BrokerLayout(data_dir.resolve()).credentials
    return credentials.security(ADMIN_USER) if credentials.exist else PLAINTEXT


async def broker_answers(
    bootstrap: str, timeout_s: float = 2.0, security: KafkaSecurity = PLAINTEXT
) -> bool:
    """True when a broker at ``bootstrap`` serves metadata."""
    from aiokafka.admin import AIOKafkaAdminClient

    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)  # refusals are expected while starting
    admin = AIOKafkaAdminClient(
        bootstrap_servers=bootstrap,
        request_timeout_ms=int(timeout_s * 1000),
        **security.client_options(),
    )
    # aiokafka's own request timeout bounds each step and closes what it opened. Cancelling a
    # step from outside (as asyncio.wait_for(..., timeout_s) did) can land while a connection
    # is half open, and aiokafka never closes that one; the outer bound is a last resort only.
    try:
        await asyncio.wait_for(admin.start(), LAST_RESORT_FACTOR * timeout_s)
        await asyncio.wait_for(admin.describe_cluster(), LAST_RESORT_FACTOR * timeout_s)
        return True
    except Exception:  # noqa: BLE001 - any failure means "not ready yet"
        return False
    finally:
        await admin.close()


def wait_ready(
    bootstrap: str,
    process: subprocess.Popen[bytes] | None = None,
    timeout_s: float = READY_TIMEOUT_S,
    security: KafkaSecurity = PLAINTEXT,
) -> float:
    """Blocks until the broker answers; returns the seconds it took."""
    started = time.monotonic()
    while time.monotonic() - started < timeout_s:
        if process is not None and process.poll() is not None:
            raise BrokerError(
                f"The Kafka broker exited with code {process.returncode}; see its log"
            )
        if asyncio.run(broker_answers(bootstrap, security=security)):
            return time.monotonic() - started
        time.sleep(0.2)
    raise BrokerError(f"No Kafka broker answered at {bootstrap} within {timeout_s:.0f} s")


def grant_acls(data_dir: Path, bootstrap: str, topic_prefix: str) -> None:
    """Grants the principals' ACLs for ``topic_prefix`` on the running authenticated broker
    kept in ``data_dir``, once per prefix (kafka-acls adds what exists already as a no-op)."""
    layout = BrokerLayout(data_dir.resolve())
    credentials = layout.credentials
    if topic_prefix in granted_prefixes(credentials.folder):
        return
    tools = layout.admin_tools(bootstrap)
    for arguments in acl_arguments(topic_prefix):
        tools.run("AclCommand", ["--add", *arguments], "Granting ACLs")
    record_granted(credentials.folder, topic_prefix)


def local_admin(data_dir: Path, bootstrap: str) -> AdminLogin:
    """The admin of the running authenticated broker kept in ``data_dir``; producers' logins
    go beside its other principals'."""
    layout = BrokerLayout(data_dir.resolve())
    credentials = layout.credentials
    if not credentials.exist:
        raise BrokerError(
            f"{data_dir} holds no authenticated broker: start it with `batchline broker --auth`"
        )
    return AdminLogin(layout.admin_tools(bootstrap), credentials.security(ADMIN_USER), credentials)


def stop(process: subprocess.Popen[bytes], timeout_s: float = STOP_TIMEOUT_S) -> int:
    """SIGTERM (Kafka's controlled shutdown), then SIGKILL if it does not exit in time."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    return process.returncode
