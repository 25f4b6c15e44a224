"""Replay (issue H point 3): a past batch's input, read back from the requests topic, runs again
as a new batch, through its own pipeline or another; aged-out input answers 410."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import RecordsToDelete

from streams.topics import TopicNames, admin_client
from tests.integration.api.client import (
    BATCH_PATH,
    DEFAULT_V2,
    api_client,
    assert_error,
    exact_json,
    numbered_items,
    submit_async,
    wait_finished,
)
from tests.integration.stack import Stack, StackFactory, new_key

pytestmark = [pytest.mark.kafka, pytest.mark.slow]
ITEMS = 250


def _stack(make_stack: StackFactory, tmp_path: Path) -> tuple[Stack, str]:
    folder = tmp_path / "pipelines"
    folder.mkdir()
    (folder / "default-v2.yaml").write_text(DEFAULT_V2)
    stack = make_stack(BATCHLINE_PIPELINES_DIR=str(folder))
    stack.add_worker()
    return stack, stack.add_api()


def _results(client: httpx.Client, batch_id: str) -> list[Any]:
    response = client.get(f"{BATCH_PATH}/{batch_id}/results", params={"limit": 10_000})
    assert response.status_code == 200, response.text
    results: list[Any] = exact_json(response)["results"]
    return results


def _replay(client: httpx.Client, batch_id: str, body: dict[str, Any] | None = None) -> str:
    response = client.post(f"{BATCH_PATH}/{batch_id}/replay", json=body)
    assert response.status_code == 202, response.text
    accepted = response.json()
    assert set(accepted) == {"batch_id", "status"} and accepted["batch_id"] != batch_id
    return str(accepted["batch_id"])


def test_a_replay_runs_the_same_input_again_through_its_own_or_another_pipeline(
    make_stack: StackFactory, tmp_path: Path
) -> None:
    stack, url = _stack(make_stack, tmp_path)
    body = {"data": numbered_items(ITEMS), "batch_size": 100, "pipeline": "default@1"}
    with api_client(url, stack.api_key) as client:
        original = submit_async(client, body)
        wait_finished(client, original, stack.logs())
        before = _results(client, original)

        same = _replay(client, original)
        same_status = wait_finished(client, same, stack.logs())
        v2 = _replay(client, original, {"pipeline": "default@2"})
        v2_status = wait_finished(client, v2, stack.logs())

        assert (same_status["status"], same_status["processed"]) == ("completed", ITEMS)
        assert (same_status["replay_of"], same_status["pipeline"]) == (original, "default@1")
        assert _results(client, same) == before
        assert (v2_status["status"], v2_status["replay_of"]) == ("completed", original)
        assert v2_status["pipeline"] == "default@2"
        replayed = _results(client, v2)
        assert [row["total"] for row in replayed] == [row["amount"] for row in before]
        assert all("amount" not in row for row in replayed)
        assert _results(client, original) == before  # the original never changes
        assert client.get(f"{BATCH_PATH}/{original}").json()["replay_of"] is None

        assert_error(
            client.post(f"{BATCH_PATH}/{original}/replay", json={"pipeline": "nope@9"}),
            400,
            "unknown_pipeline",
        )
    with api_client(url, new_key(stack.store_url, "stranger")) as stranger:
        assert_error(stranger.post(f"{BATCH_PATH}/{original}/replay"), 404, "not_found")


async def _delete_everything(bootstrap: str, topic: str, partition_count: int) -> None:
    partitions = [TopicPartition(topic, p) for p in range(partition_count)]
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        consumer.assign(partitions)
        ends = await consumer.end_offsets(partitions)
    finally:
        await consumer.stop()
    async with admin_client(bootstrap) as admin:
        await admin.delete_records({tp: RecordsToDelete(end) for tp, end in ends.items()})


async def test_input_that_aged_out_of_the_topic_answers_410(
    make_stack: StackFactory, tmp_path: Path, kafka_bootstrap: str
) -> None:
    stack, url = _stack(make_stack, tmp_path)
    with api_client(url, stack.api_key) as client:
        original = submit_async(client, {"data": numbered_items(10)})
        await asyncio.to_thread(wait_finished, client, original, stack.logs())
        # What retention does to old records: the log now starts past the batch's input.
        topic = TopicNames(stack.env["BATCHLINE_TOPIC_PREFIX"]).requests
        await _delete_everything(kafka_bootstrap, topic, int(stack.env["BATCHLINE_PARTITIONS"]))

        body = assert_error(client.post(f"{BATCH_PATH}/{original}/replay"), 410, "input_expired")
        assert body["details"] == {"batch_id": original}
        listed = client.get(f"{BATCH_PATH}es").json()
    assert [batch["batch_id"] for batch in listed["batches"]] == [original]  # no batch made


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    # The server is chosen by flags only: a BATCHLINE_URL/KEY in the caller's shell must not leak.
    env = {k: v for k, v in os.environ.items() if k not in ("BATCHLINE_URL", "BATCHLINE_API_KEY")}
    return subprocess.run(  # noqa: S603 - our own interpreter and CLI
        [sys.executable, "-m", "batchline.cli", "replay", *args],
        capture_output=True,
        text=True,
        timeout=180,
        env=env,
        check=False,
    )


def test_the_cli_replays_one_batch_or_exactly_those_created_in_a_time_range(
    make_stack: StackFactory, tmp_path: Path
) -> None:
    stack, url = _stack(make_stack, tmp_path)
    auth = ["--url", url, "--api-key", stack.api_key]
    with api_client(url, stack.api_key) as client:
        created = {}
        for name in ("before", "inside", "boundary"):
            batch_id = submit_async(client, {"data": numbered_items(5)})
            created[name] = (batch_id, wait_finished(client, batch_id)["created_at"])
            time.sleep(0.05)  # distinct creation times

        one = _cli(created["before"][0], "--pipeline", "default@1", "--wait", *auth)
        assert one.returncode == 0, one.stderr
        [new_one] = one.stdout.split()
        ranged = _cli("--from", created["inside"][1], "--to", created["boundary"][1], *auth)
        assert ranged.returncode == 0, ranged.stderr
        [new_ranged] = ranged.stdout.split()
        ranged_status = wait_finished(client, new_ranged)
        one_status = client.get(f"{BATCH_PATH}/{new_one}").json()

    # Submitted as "default", the originals ran default@2 (the newest): the first replay was
    # told default@1, the ranged one keeps its original's.
    assert (one_status["replay_of"], one_status["pipeline"]) == (created["before"][0], "default@1")
    assert one_status["status"] == "completed"
    assert ranged_status["replay_of"] == created["inside"][0]
    assert ranged_status["pipeline"] == "default@2"
    assert "1 batches created in that range" in ranged.stderr
    usage = _cli(created["before"][0], "--from", created["inside"][1], *auth)
    assert usage.returncode == 2 and "batchline: give a BATCH_ID" in usage.stderr
