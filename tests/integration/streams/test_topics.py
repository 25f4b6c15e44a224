"""Topics are created with the declared partitions and limits; smaller ones made elsewhere are
reported with the command that fixes them."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

from streams.app import TABLES
from streams.errors import TopicCreationFailed
from streams.topics import (
    MAX_MESSAGE_BYTES,
    TopicNames,
    admin_client,
    changelog_topic,
    ensure_topics,
    ensure_worker_topics,
    read_topic_config,
    topic_partitions,
)
from tests.integration.streams.kafka_io import KAFKA_STOCK_MESSAGE_BYTES, create_topic

pytestmark = pytest.mark.kafka


async def test_ensure_topics_creates_every_topic_with_the_partitions_asked_for(
    kafka_bootstrap: str, topic_prefix: str, caplog: pytest.LogCaptureFixture
) -> None:
    names = TopicNames(topic_prefix)
    with caplog.at_level(logging.WARNING, logger="streams.topics"):
        await ensure_topics(kafka_bootstrap, names, 3)
        await ensure_topics(kafka_bootstrap, names, 3)  # a second process starting: no change
    # Ready when ensure_topics returns: every partition already has a leader.
    described = await _describe(kafka_bootstrap, names.all())
    assert described == {topic: [True, True, True] for topic in names.all()}
    assert caplog.records == []


async def test_the_worker_groups_changelog_and_leader_topics_exist_before_faust_starts(
    kafka_bootstrap: str, topic_prefix: str
) -> None:
    # Left to Faust, a fresh worker could subscribe to a changelog it had created a moment
    # before, find no partitions, and fail every event of the table's agent.
    group_id = f"{topic_prefix}-worker"
    await ensure_worker_topics(kafka_bootstrap, group_id, TABLES, 4)
    changelogs = [changelog_topic(group_id, table) for table in TABLES]
    leader_topic = f"{group_id}-__assignor-__leader"
    described = await _describe(kafka_bootstrap, [*changelogs, leader_topic])
    assert described == {
        **{topic: [True] * 4 for topic in changelogs},
        leader_topic: [True],
    }
    assert changelogs == [f"{group_id}-progress-changelog"]
    policies = await _config(kafka_bootstrap, changelogs, "cleanup.policy")
    assert policies == dict.fromkeys(changelogs, "compact")


async def test_a_requests_topic_made_elsewhere_with_kafkas_stock_limit_is_reported(
    kafka_bootstrap: str, topic_prefix: str, caplog: pytest.LogCaptureFixture
) -> None:
    names = TopicNames(topic_prefix)
    stock_limit = {"max.message.bytes": KAFKA_STOCK_MESSAGE_BYTES}
    await create_topic(kafka_bootstrap, names.requests, 2, stock_limit)
    with caplog.at_level(logging.WARNING, logger="streams.topics"):
        await ensure_topics(kafka_bootstrap, names, 2)
    warnings = [record for record in caplog.records if record.levelno == logging.WARNING]
    assert [getattr(record, "topic", None) for record in warnings] == [names.requests]
    message = warnings[0].getMessage()
    assert f"--entity-name {names.requests}" in message
    assert f"max.message.bytes={MAX_MESSAGE_BYTES}" in message
    assert await topic_partitions(kafka_bootstrap, names.results) == [0, 1]


async def test_the_requests_topic_keeps_records_as_long_as_the_setting_says(
    kafka_bootstrap: str, topic_prefix: str, caplog: pytest.LogCaptureFixture
) -> None:
    names = TopicNames(topic_prefix)
    hour_ms = 3_600_000
    await ensure_topics(kafka_bootstrap, names, 1, requests_retention_ms=hour_ms)
    retention = await _config(kafka_bootstrap, [names.requests, names.results], "retention.ms")
    assert retention == {names.requests: str(hour_ms), names.results: str(7 * 24 * hour_ms)}

    # A later start with another setting leaves the topic as it is, and says how to change it.
    with caplog.at_level(logging.WARNING, logger="streams.topics"):
        await ensure_topics(kafka_bootstrap, names, 1, requests_retention_ms=2 * hour_ms)
    [warning] = [record for record in caplog.records if record.levelno == logging.WARNING]
    assert f"--entity-name {names.requests} --add-config retention.ms={2 * hour_ms}" in (
        warning.getMessage()
    )
    assert (await _config(kafka_bootstrap, [names.requests], "retention.ms")) == {
        names.requests: str(hour_ms)
    }


async def test_topics_the_broker_refuses_raise_with_its_reason(kafka_bootstrap: str) -> None:
    # Kafka refuses names with spaces (InvalidTopicException); the answer carries an error code
    # per topic instead of raising, which used to pass unnoticed.
    with pytest.raises(TopicCreationFailed, match=r"bad prefix\.requests: InvalidTopicError"):
        await ensure_topics(kafka_bootstrap, TopicNames("bad prefix"), 1)


def test_a_worker_whose_topics_are_refused_stops_with_one_line_naming_the_reason(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    env = {
        **os.environ,
        "BATCHLINE_KAFKA_BOOTSTRAP": kafka_bootstrap,
        "BATCHLINE_TOPIC_PREFIX": "bad prefix",
        "BATCHLINE_DATA_DIR": str(tmp_path),
        "BATCHLINE_WORKER_METRICS_PORT": "0",
    }
    worker = subprocess.run(
        [sys.executable, "-m", "batchline.cli", "worker"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert worker.returncode != 0
    last = worker.stderr.strip().splitlines()[-1]
    assert "Kafka refused to create topics: bad prefix.requests: InvalidTopicError" in last
    assert "Traceback" not in worker.stderr


async def _describe(bootstrap: str, topics: list[str]) -> dict[str, list[bool]]:
    """Per topic, whether each partition (in order) has a leader."""
    async with admin_client(bootstrap) as admin:
        described = await admin.describe_topics(topics)
    return {
        entry["topic"]: [
            p["leader"] >= 0 for p in sorted(entry["partitions"], key=lambda p: p["partition"])
        ]
        for entry in described
    }


async def _config(bootstrap: str, topics: list[str], name: str) -> dict[str, str]:
    async with admin_client(bootstrap) as admin:
        return await read_topic_config(admin, topics, name)
