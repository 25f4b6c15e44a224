"""examples/producer.py against a running stack: a batch written straight to Kafka, owned by
the key that signed it, served to that key alone (streams.owners)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from api.security import hash_api_key
from schemas import jsonio
from schemas.events import ChunkEvent, DeadLetterEvent, decode
from streams.owners import producer_secret
from streams.signing import signed
from streams.topics import TopicNames
from tests.integration.api.client import BATCH_PATH, api_client, wait_finished
from tests.integration.stack import StackFactory, new_key
from tests.integration.streams.kafka_io import produce, read_topic

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[3]
EXAMPLE = ROOT / "examples" / "producer.py"
COUNT = 250


def run_example(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603 - our own interpreter and example
        [sys.executable, str(EXAMPLE), *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
        check=True,
    )


def batchline_cli(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("BATCHLINE_URL", "BATCHLINE_API_KEY")}
    return subprocess.run(  # noqa: S603 - our own interpreter and CLI
        [sys.executable, "-m", "batchline.cli", *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
        env=env,
        check=False,
    )


async def test_the_example_producers_batch_is_its_keys_alone_and_cannot_be_written_by_another(
    make_stack: StackFactory, kafka_bootstrap: str
) -> None:
    stack = make_stack()
    stack.add_worker()
    url = stack.add_api()
    topics = TopicNames(stack.env["BATCHLINE_TOPIC_PREFIX"])
    other_key = new_key(stack.store_url, "another-tenant")

    published = run_example(
        "--bootstrap",
        kafka_bootstrap,
        "--api-key",
        stack.api_key,
        "--count",
        str(COUNT),
        "--topic",
        topics.requests,
    )
    batch_id = published.stdout.splitlines()[-1]
    assert batch_id.startswith("p") and ":" in batch_id, published.stdout
    assert stack.api_key not in published.stdout + published.stderr

    with api_client(url, stack.api_key) as owner, api_client(url, other_key) as stranger:
        status = wait_finished(owner, batch_id, stack.logs())
        assert (status["status"], status["processed"], status["filtered"]) == (
            "completed",
            COUNT,
            0,
        )
        page = jsonio.loads(owner.get(f"{BATCH_PATH}/{batch_id}/results").content)
        listed = owner.get(f"{BATCH_PATH}es").json()
        for path in ("", "/results", "/errors"):
            assert stranger.get(f"{BATCH_PATH}/{batch_id}{path}").status_code == 404, path
        assert batch_id not in stranger.get(f"{BATCH_PATH}es").text

        # Another tenant signs a chunk naming this batch with its own key: refused, no effect.
        victim_chunk = ChunkEvent(
            batch_id=batch_id,
            chunk_index=0,
            chunk_count=3,
            first_row=0,
            total=COUNT,
            items=[
                {
                    "ts": "2024-01-01T00:00:00Z",
                    "amt": "666.66",
                    "email": "x@evil.example",
                    "phone": "555-6666",
                }
            ]
            * 100,
        ).to_bytes()
        forged = signed(
            producer_secret(hash_api_key(other_key)), f"{batch_id}/0".encode(), victim_chunk
        )
        await produce(kafka_bootstrap, topics.requests, [forged])
        letters = await read_topic(
            kafka_bootstrap, topics.dead_letters, lambda found: len(found) >= 1, 60
        )
        after = jsonio.loads(owner.get(f"{BATCH_PATH}/{batch_id}/results").content)
        # Its input's place on the topic is not recorded (no API published it): not replayable.
        not_replayable = owner.post(f"{BATCH_PATH}/{batch_id}/replay")

    assert len(page["results"]) == COUNT
    first = page["results"][0]
    assert first["timestamp"] == "2023-12-31T22:00:00Z"  # 2024-01-01T00:00:00+02:00 in UTC
    assert first["email"].endswith("@example.com") and first["email"] != "user0@example.com"
    assert batch_id in [batch["batch_id"] for batch in listed["batches"]]
    assert [decode(DeadLetterEvent, value).code for _, value in letters] == ["bad_signature"]
    assert after == page
    assert (not_replayable.status_code, not_replayable.json()["error"]) == (409, "not_replayable")

    shown = batchline_cli("status", batch_id, "--url", url, "--api-key", stack.api_key)
    assert shown.returncode == 0 and "completed" in shown.stdout, shown
    # A time-range replay passes over it, saying why, and exits 1.
    created = status["created_at"]
    ranged = batchline_cli(
        "replay", "--from", created, "--to", "2999-01-01", "--url", url, "--api-key", stack.api_key
    )
    assert ranged.returncode == 1, ranged
    assert f"batchline: skipped {batch_id}: 409 not_replayable" in ranged.stderr
    assert ranged.stdout == ""
