"""Every Kafka topic Batchline uses, declared once.

This is the contract shared by the API's publisher, the Faust agents and producers or consumers
outside this repo. Names are ``<BATCHLINE_TOPIC_PREFIX>.<role>``; payloads are in schemas.events.

| role         | key                    | payload          | notes                              |
|--------------|------------------------|------------------|------------------------------------|
| requests     | batch ID or ID/chunk   | ChunkEvent       | input chunks                       |
| results      | batch ID               | ResultChunkEvent | output chunks (may repeat a chunk) |
| progress     | batch ID               | ChunksDoneEvent  | internal: chunk counts re-keyed    |
| control      | batch ID               | CancelCommand    | cancel requests                    |
| status       | batch ID               | BatchStatusEvent | compacted: latest state of a batch |
| dead-letters | batch ID when known    | DeadLetterEvent  | undecodable or failed chunks       |

Beside them, a producer granted a principal of its own (``batchline keys grant-producer``)
writes its chunks to ``<prefix>.ingest.<namespace>`` and its single records to
``<prefix>.records.<namespace>``, topics only it may write; workers read every ingest topic with
the requests topic, and every producer's records topic with the shared records topic.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import AsyncIterator, Iterable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.errors import KafkaError, TopicAlreadyExistsError, for_code

from schemas.settings import Settings
from streams.errors import TopicCreationFailed
from streams.kafka_security import PLAINTEXT, KafkaSecurity
from streams.owners import NAMESPACE_PATTERN

log = logging.getLogger(__name__)

WEEK_MS = 7 * 24 * 3600 * 1000
# A chunk of up to 10,000 items, or its results, can be several MB: far above Kafka's 1 MB
# default. Producers (API and workers) and consumers are sized to match.
MAX_MESSAGE_BYTES = 32 * 1024 * 1024
# The most a producer packs for one partition into one request. aiokafka's default (16 KiB)
# holds a single chunk of 100 items, and a producer keeps one request in flight per broker, so
# every further chunk for that partition waited a round trip (with chunks of 100, the worker
# spent a third of its time waiting so). Sends are not held back for it (linger 0): a batch is
# only as large as what is waiting when it goes out.
PRODUCER_BATCH_BYTES = 1024 * 1024
_LARGE = {"max.message.bytes": str(MAX_MESSAGE_BYTES)}
INGEST_ROLE = "ingest"
RECORDS_ROLE = "records"
# Below the API's own limit on creating topics (api.submission.TOPICS_TIMEOUT_S).
READY_TIMEOUT_S = 8.0


@dataclass(frozen=True, slots=True)
class TopicSpec:
    role: str
    compacted: bool = False
    config: Mapping[str, str] = field(default_factory=dict)


TOPIC_SPECS: tuple[TopicSpec, ...] = (
    TopicSpec("requests", config={"retention.ms": str(WEEK_MS), **_LARGE}),
    TopicSpec("results", config={"retention.ms": str(WEEK_MS), **_LARGE}),
    TopicSpec("progress", config={"retention.ms": str(WEEK_MS)}),
    TopicSpec("control", config={"retention.ms": str(WEEK_MS)}),
    TopicSpec("status", compacted=True, config={"cleanup.policy": "compact"}),
    TopicSpec("dead-letters", config={"retention.ms": str(4 * WEEK_MS)}),
    # The record stream (streams.record_stream): single records in, one out for each.
    TopicSpec(RECORDS_ROLE, config={"retention.ms": str(WEEK_MS)}),
    TopicSpec("record-results", config={"retention.ms": str(WEEK_MS)}),
)


@dataclass(frozen=True, slots=True)
class TopicNames:
    """The concrete names for one prefix."""

    prefix: str

    def _name(self, role: str) -> str:
        return f"{self.prefix}.{role}"

    @property
    def requests(self) -> str:
        return self._name("requests")

    @property
    def results(self) -> str:
        return self._name("results")

    @property
    def progress(self) -> str:
        return self._name("progress")

    @property
    def control(self) -> str:
        return self._name("control")

    @property
    def status(self) -> str:
        return self._name("status")

    @property
    def dead_letters(self) -> str:
        return self._name("dead-letters")

    @property
    def records(self) -> str:
        return self._name(RECORDS_ROLE)

    @property
    def record_results(self) -> str:
        return self._name("record-results")

    def ingest(self, namespace: str) -> str:
        """The ingest topic of the producer whose batch IDs carry ``namespace``."""
        return self._name(f"{INGEST_ROLE}.{namespace}")

    def producer_records(self, namespace: str) -> str:
        """The records topic of the producer ``namespace``: its single records, and only its."""
        return self._name(f"{RECORDS_ROLE}.{namespace}")

    @property
    def chunk_inputs(self) -> str:
        """A pattern (regex) of every topic chunks are read from: requests and each ingest."""
        prefix = re.escape(self.prefix)
        return rf"^{prefix}\.(requests|{INGEST_ROLE}\.{NAMESPACE_PATTERN})$"

    @property
    def record_inputs(self) -> str:
        """A pattern (regex) of every topic single records are read from: the shared records
        topic and each producer's own."""
        prefix = re.escape(self.prefix)
        return rf"^{prefix}\.{RECORDS_ROLE}(\.{NAMESPACE_PATTERN})?$"

    def ingest_namespace(self, topic: str) -> str | None:
        """The producer namespace an ingest topic belongs to; None for any other topic."""
        return self._namespace_of(INGEST_ROLE, topic)

    def records_namespace(self, topic: str) -> str | None:
        """The producer namespace a producer's records topic belongs to; None for the shared
        records topic and any other."""
        return self._namespace_of(RECORDS_ROLE, topic)

    def _namespace_of(self, role: str, topic: str) -> str | None:
        head = self._name(f"{role}.")
        if not topic.startswith(head):
            return None
        namespace = topic[len(head) :]
        return namespace if re.fullmatch(NAMESPACE_PATTERN, namespace) else None

    def all(self) -> list[str]:
        return [self._name(spec.role) for spec in TOPIC_SPECS]


@asynccontextmanager
async def admin_client(
    bootstrap: str, security: KafkaSecurity = PLAINTEXT
) -> AsyncIterator[AIOKafkaAdminClient]:
    """A started admin client, closed on the way out whatever happens inside."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, **security.client_options())
    await admin.start()
    try:
        yield admin
    finally:
        await admin.close()


async def ensure_topics(
    bootstrap: str,
    names: TopicNames,
    partitions: int,
    security: KafkaSecurity = PLAINTEXT,
    requests_retention_ms: int = WEEK_MS,
) -> None:
    """Creates the topics that do not exist yet, all with ``partitions`` partitions, and the
    requests topic keeping its records ``requests_retention_ms`` (how long a replay can go back).

    Progress and control must have the same partition count: the progress agent reads both and
    keeps one table partitioned by batch ID, which Faust can only do for co-partitioned topics.
    """
    retention = {"retention.ms": str(requests_retention_ms)}
    wanted = [
        NewTopic(
            name=f"{names.prefix}.{spec.role}",
            num_partitions=partitions,
            replication_factor=1,
            topic_configs={**spec.config, **(retention if spec.role == "requests" else {})},
        )
        for spec in TOPIC_SPECS
    ]
    async with admin_client(bootstrap, security) as admin:
        existing = set(await admin.list_topics())
        await _create_missing(admin, wanted, existing)
        await _warn_about_small_message_limits(admin, names, existing)
        if names.requests in existing:
            await _warn_about_other_retention(admin, names.requests, requests_retention_ms)


async def ensure_producer_topics(
    bootstrap: str,
    names: TopicNames,
    namespace: str,
    partitions: int,
    security: KafkaSecurity = PLAINTEXT,
) -> tuple[str, str]:
    """Creates the ingest topic (configured as the requests topic) and the records topic
    (configured as the shared one) of the producer ``namespace`` unless they exist; returns
    their names."""
    specs = {spec.role: spec for spec in TOPIC_SPECS}
    ingest, records = names.ingest(namespace), names.producer_records(namespace)
    wanted = [
        NewTopic(
            name=name,
            num_partitions=partitions,
            replication_factor=1,
            topic_configs=dict(specs[role].config),
        )
        for name, role in ((ingest, "requests"), (records, RECORDS_ROLE))
    ]
    async with admin_client(bootstrap, security) as admin:
        await _create_missing(admin, wanted, set(await admin.list_topics()))
    return ingest, records


async def ensure_configured_topics(settings: Settings) -> None:
    """ensure_topics with what the settings say (prefix, partitions, login, retention)."""
    await ensure_topics(
        settings.kafka_bootstrap,
        TopicNames(settings.topic_prefix),
        settings.partitions,
        KafkaSecurity.from_settings(settings),
        settings.requests_retention_s * 1000,
    )


def changelog_topic(group_id: str, table: str) -> str:
    """The name Faust gives a table's changelog topic."""
    return f"{group_id}-{table}-changelog"


async def ensure_worker_topics(
    bootstrap: str,
    group_id: str,
    tables: Iterable[str],
    partitions: int,
    security: KafkaSecurity = PLAINTEXT,
) -> None:
    """Creates Faust's own topics for the worker group before any worker starts.

    Left to Faust, a fresh worker creates each table's changelog and subscribes to it at once;
    when the broker has not yet published the new topic's partitions, the assignor skips the
    topic ("Ignoring missing topic") and the table's agent then fails on every event with
    PartitionsMismatch (its source topic has N partitions, the changelog "0"). Created here
    and waited for, the topics are complete when Faust first looks.
    """
    compacted = {"cleanup.policy": "compact"}  # what Faust asks for a non-windowed table
    wanted = [
        NewTopic(changelog_topic(group_id, table), partitions, 1, topic_configs=compacted)
        for table in tables
    ]
    wanted.append(NewTopic(f"{group_id}-__assignor-__leader", 1, 1))
    async with admin_client(bootstrap, security) as admin:
        await _create_missing(admin, wanted, set(await admin.list_topics()))


async def _create_missing(
    admin: AIOKafkaAdminClient, wanted: list[NewTopic], existing: set[str]
) -> None:
    missing = [topic for topic in wanted if topic.name not in existing]
    if missing:
        response = await admin.create_topics(missing)
        # The answer carries an error code per topic instead of raising.
        refused = [
            f"{name}: {for_code(code).__name__}" + (f" ({rest[0]})" if rest and rest[0] else "")
            for name, code, *rest in response.topic_errors
            if code not in (0, TopicAlreadyExistsError.errno)  # already made by another process
        ]
        if refused:
            raise TopicCreationFailed("Kafka refused to create topics: " + "; ".join(refused))
    # A topic another process made a moment ago may not be ready either; one made by someone
    # else may have another partition count, which is theirs to choose.
    least = {topic.name: topic.num_partitions for topic in missing}
    await _wait_ready(admin, {topic.name: least.get(topic.name, 1) for topic in wanted})


async def read_topic_config(
    admin: AIOKafkaAdminClient, topics: Iterable[str], name: str
) -> dict[str, str]:
    """The value of config ``name`` of each topic, as the broker reports it."""
    resources = [ConfigResource(ConfigResourceType.TOPIC, topic, {name: None}) for topic in topics]
    if not resources:
        return {}
    values: dict[str, str] = {}
    for response in await admin.describe_configs(resources):
        # resources: (error_code, error_message, type, name, [(name, value, ...), ...])
        for _error, _message, _type, topic, entries in (r[:5] for r in response.resources):
            for entry in entries:
                if entry[0] == name:
                    values[topic] = entry[1]
    return values


async def _small_message_limits(
    admin: AIOKafkaAdminClient, names: TopicNames, existing: set[str]
) -> dict[str, int]:
    large = [
        f"{names.prefix}.{spec.role}"
        for spec in TOPIC_SPECS
        if "max.message.bytes" in spec.config and f"{names.prefix}.{spec.role}" in existing
    ]
    limits = await read_topic_config(admin, large, "max.message.bytes")
    return {topic: int(limit) for topic, limit in limits.items() if int(limit) < MAX_MESSAGE_BYTES}


async def _warn_about_small_message_limits(
    admin: AIOKafkaAdminClient, names: TopicNames, existing: set[str]
) -> None:
    # Topics made elsewhere (by hand, by a platform's tooling) are left as they are; a chunk
    # larger than their limit is refused (413 at the API), so say once how to raise it.
    for topic, limit in (await _small_message_limits(admin, names, existing)).items():
        log.warning(
            "topic accepts messages up to %d bytes; large chunks will be refused. Raise it with "
            "kafka-configs.sh --alter --entity-type topics --entity-name %s --add-config "
            "max.message.bytes=%d",
            limit,
            topic,
            MAX_MESSAGE_BYTES,
            extra={"topic": topic},
        )


async def _warn_about_other_retention(
    admin: AIOKafkaAdminClient, topic: str, wanted_ms: int
) -> None:
    # As above: an existing topic keeps its config; say once how to give it the setting's.
    found = (await read_topic_config(admin, [topic], "retention.ms")).get(topic)
    if found is not None and int(found) != wanted_ms:
        log.warning(
            "topic keeps records %s ms, not BATCHLINE_REQUESTS_RETENTION_S; replays reach back "
            "that long. Change it with kafka-configs.sh --alter --entity-type topics "
            "--entity-name %s --add-config retention.ms=%d",
            found,
            topic,
            wanted_ms,
            extra={"topic": topic},
        )


async def topic_partitions(
    bootstrap: str, topic: str, security: KafkaSecurity = PLAINTEXT
) -> list[int]:
    """The partition numbers of ``topic`` (empty if it does not exist)."""
    async with admin_client(bootstrap, security) as admin:
        described = await admin.describe_topics([topic])
    return sorted(
        partition["partition"]
        for entry in described
        if entry["topic"] == topic and not entry["error_code"]
        for partition in entry["partitions"]
    )


async def wait_for_group_coordinator(
    bootstrap: str,
    group_id: str,
    timeout_s: float = 60.0,
    security: KafkaSecurity = PLAINTEXT,
) -> None:
    """Waits until the broker names a coordinator for ``group_id``.

    On a fresh broker the coordinator appears only once the internal offsets topic exists. A
    Faust worker that joins before that sees GroupCoordinatorNotAvailable, and faust-streaming
    can then keep its partitions without ever fetching from them (faust-streaming issue #175),
    so the worker asks first and joins only when the answer is there.
    """
    async with admin_client(bootstrap, security) as admin:
        deadline = asyncio.get_running_loop().time() + timeout_s
        while True:
            try:
                await admin.find_coordinator(group_id)
                return
            except KafkaError:
                if asyncio.get_running_loop().time() > deadline:
                    raise
                await asyncio.sleep(0.2)


async def _wait_ready(admin: AIOKafkaAdminClient, partitions: Mapping[str, int]) -> None:
    """Waits until every topic has at least the given number of partitions, each with a
    leader: a topic that was just created is listed before its partitions can be used."""
    deadline = asyncio.get_running_loop().time() + READY_TIMEOUT_S
    while True:
        # Metadata of all topics, as list_topics() reads it: asking for named topics instead
        # (describe_topics) would let a broker with auto-create on create a missing one with
        # its defaults.
        cluster = await admin._client.fetch_all_metadata()
        ready = {
            topic
            for topic, least in partitions.items()
            if len(cluster.partitions_for_topic(topic) or ()) >= least
            and cluster.available_partitions_for_topic(topic) == cluster.partitions_for_topic(topic)
        }
        if ready >= set(partitions):
            return
        if asyncio.get_running_loop().time() > deadline:
            log.warning(
                "topics not ready yet; going on",
                extra={"topics": sorted(set(partitions) - ready)},
            )
            return
        await asyncio.sleep(0.1)
