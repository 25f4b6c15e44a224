"""No planted personal value reaches a log line, an error body, a metric or a dead letter."""

from __future__ import annotations

import asyncio
import signal
import uuid

import httpx
import pytest

from schemas import jsonio
from streams.topics import TopicNames
from tests.integration.operations.scrape import scrape, worker_metrics_url
from tests.integration.stack import StackFactory
from tests.integration.streams.kafka_io import produce, read_topic

pytestmark = [pytest.mark.kafka, pytest.mark.slow]


def _planted() -> dict[str, str]:
    tag = uuid.uuid4().hex[:10]
    digits = str(int(tag, 16) % 10**7).rjust(7, "7")
    return {
        "email": f"leak.{tag}@planted-{tag}.example.org",
        "local": f"leak.{tag}",
        "phone": f"+1 (555) {digits[:3]}-{digits[3:]}",
        "phone_digits": f"555{digits}",
        "phone_tail": f"{digits[:3]}-{digits[3:]}",
        "amount": f"{int(tag[:6], 16)}.37",
        "bad_amount": f"x{tag}y",
        "bad_email": f"nobody-{tag}-at-nowhere",
    }


def _record(planted: dict[str, str], **overrides: str) -> dict[str, str]:
    record = {
        "ts": "2024-01-01T00:00:00Z",
        "amt": planted["amount"],
        "email": planted["email"],
        "phone": planted["phone"],
    }
    record.update(overrides)
    return record


async def test_planted_values_appear_in_no_log_error_body_metric_or_dead_letter(
    make_stack: StackFactory, kafka_bootstrap: str
) -> None:
    planted = _planted()
    # DEBUG: the per-chunk lines too, and every library's, are searched for the planted values.
    stack = make_stack(BATCHLINE_LOG_LEVEL="DEBUG")
    worker = stack.add_worker()
    url = stack.add_api()
    topics = TopicNames(stack.env["BATCHLINE_TOPIC_PREFIX"])
    bodies: list[str] = []
    good = _record(planted)
    bad_amount = _record(planted, amt=planted["bad_amount"])
    bad_email = _record(planted, email=planted["bad_email"])
    async with httpx.AsyncClient(
        base_url=url, headers={"X-API-Key": stack.api_key}, timeout=60
    ) as client:
        valid = await client.post("/api/v1/transform/batch", json={"data": [good, good]})
        assert valid.status_code == 200, valid.text
        for data in ([good, bad_amount], [bad_email], [good, {"nested": [planted["email"]]}]):
            rejected = await client.post("/api/v1/transform/batch", json={"data": data})
            assert rejected.status_code == 400
            bodies.append(rejected.text)
        skipped = await client.post(
            "/api/v1/transform/batch", json={"data": [good, bad_amount], "on_invalid": "skip"}
        )
        assert skipped.status_code == 200, skipped.text
        batch_id = skipped.json()["batch_id"]
        errors = await client.get(f"/api/v1/transform/batch/{batch_id}/errors")
        bodies.append(errors.text)
        malformed = await client.post(
            "/api/v1/transform/batch",
            content=b'{"data": [{"email": "' + planted["email"].encode() + b'"}',
        )
        bodies.append(malformed.text)
        wrong_type = await client.post(
            "/api/v1/transform/batch", json={"data": [good], "batch_size": planted["email"]}
        )
        bodies.append(wrong_type.text)

    # Poison messages straight onto the requests topic, carrying the planted values.
    poison_key = f"poison-{uuid.uuid4().hex[:8]}"
    undecodable = b'{"items": [' + jsonio.dumps(good) + b"], oops"
    wrong_shape = jsonio.dumps(
        {
            "schema_version": 1,
            "batch_id": poison_key,
            "chunk_index": 0,
            "chunk_count": 1,
            "first_row": 0,
            "total": 1,
            "items": good,
        }
    )
    unknown_pipeline = jsonio.dumps(
        {
            "schema_version": 1,
            "batch_id": poison_key + "-p",
            "chunk_index": 0,
            "chunk_count": 1,
            "first_row": 0,
            "total": 1,
            "pipeline": planted["email"],
            "items": [good],
        }
    )
    await produce(
        kafka_bootstrap,
        topics.requests,
        [
            (poison_key.encode(), undecodable),
            (poison_key.encode(), wrong_shape),
            ((poison_key + "-p").encode(), unknown_pipeline),
        ],
    )
    letters = await read_topic(kafka_bootstrap, topics.dead_letters, lambda m: len(m) >= 3)
    assert len(letters) == 3, stack.logs()

    metrics = scrape(f"{url}/metrics") + scrape(worker_metrics_url(worker))
    haystacks = {
        "logs": stack.logs(),
        "error bodies": "\n".join(bodies),
        "metrics": metrics,
        "dead letters": "\n".join(value.decode() for _, value in letters),
    }
    leaks = [
        f"{needle_name} in {where}"
        for where, text in haystacks.items()
        for needle_name, needle in planted.items()
        if needle in text
    ]
    assert leaks == []
    # The checks looked at real material: logs of both processes, bodies of every refusal.
    assert "chunk group transformed" in haystacks["logs"]
    assert "message dead-lettered" in haystacks["logs"]
    assert haystacks["error bodies"].count("validation_error") == 3


async def test_a_worker_asked_for_a_stack_dump_shows_no_record_and_keeps_working(
    make_stack: StackFactory,
) -> None:
    # mode's own SIGUSR1 handler prints every frame's local variables, records included, and
    # its SIGUSR2 handler opens pdb on the event loop. Both signals arrive here while a worker
    # transforms records full of planted values.
    planted = _planted()
    stack = make_stack()
    worker = stack.add_worker()
    url = stack.add_api()
    records = [_record(planted) for _ in range(10_000)]
    async with httpx.AsyncClient(
        base_url=url, headers={"X-API-Key": stack.api_key}, timeout=60
    ) as client:
        accepted = await client.post(
            "/api/v1/transform/batch",
            json={"data": records, "batch_size": 50},
            headers={"Prefer": "respond-async"},
        )
        assert accepted.status_code == 202, accepted.text
        status_url = f"/api/v1/transform/batch/{accepted.json()['batch_id']}"
        dumps_while_running = 0
        for _ in range(600):
            status = (await client.get(status_url)).json()["status"]
            if status not in ("queued", "processing"):
                break
            worker.process.send_signal(signal.SIGUSR1)
            dumps_while_running += 1
            await asyncio.sleep(0.05)
        assert status == "completed", stack.logs()
        assert dumps_while_running > 0
        worker.process.send_signal(signal.SIGUSR2)
        after = await client.post("/api/v1/transform/batch", json={"data": [records[0]]})
        assert after.status_code == 200, after.text

    await asyncio.sleep(1)  # the last dump's lines
    assert worker.alive(), worker.output()
    logs = worker.output()
    assert "stack dump (SIGUSR1)" in logs
    assert "SIGUSR2 ignored" in logs
    assert "LOCAL VARIABLES" not in logs
    assert [name for name, needle in planted.items() if needle in logs] == []
