"""batchline.client, sync and async, against a running stack (issue J, point 2)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from batchline.client import ApiResponseError, AsyncBatchlineClient, BatchlineClient
from tests.integration.api.client import numbered_items
from tests.integration.stack import StackFactory

pytestmark = [pytest.mark.kafka, pytest.mark.slow]


def with_a_bad_amount(count: int, bad_row: int) -> list[dict[str, Any]]:
    items = numbered_items(count)
    items[bad_row]["amt"] = "not-money"
    return items


def test_the_sync_client_submits_waits_reads_and_refuses_like_the_cli(
    make_stack: StackFactory,
) -> None:
    stack = make_stack()
    stack.add_worker()
    url = stack.add_api()
    seen: list[dict[str, Any]] = []
    with BatchlineClient(url, stack.api_key) as client:
        final = client.submit(
            numbered_items(500), batch_size=50, wait=True, on_progress=seen.append
        )
        assert (final["status"], final["processed"]) == ("completed", 500)
        assert seen and seen[-1] == final
        results = list(client.iter_results(final["batch_id"]))
        assert [r["amount"] for r in results] == [Decimal(f"{row}.50") for row in range(500)]
        assert all(isinstance(r["amount"], Decimal) for r in results)

        skipped = client.submit(with_a_bad_amount(10, 5), on_invalid="skip", wait=True)
        assert list(client.iter_errors(skipped["batch_id"])) == [
            {"row": 5, "field": "amount", "reason": "Invalid number format"}
        ]
        listed = client.batches(status="completed")
        assert {final["batch_id"], skipped["batch_id"]} <= {
            b["batch_id"] for b in listed["batches"]
        }
        assert "default" in {p["name"] for p in client.pipelines()["pipelines"]}

        replayed = client.replay(final["batch_id"])
        assert client.wait(replayed["batch_id"])["status"] == "completed"
        with pytest.raises(ApiResponseError) as finished:
            client.cancel(final["batch_id"])
        assert (finished.value.status_code, finished.value.error) == (409, "batch_finished")
        assert str(finished.value).startswith("409 batch_finished: Batch is already completed")


async def test_the_async_client_does_the_same(make_stack: StackFactory) -> None:
    stack = make_stack()
    stack.add_worker()
    url = stack.add_api()
    async with AsyncBatchlineClient(url, stack.api_key) as client:
        final = await client.submit(numbered_items(300), batch_size=100, wait=True)
        assert (final["status"], final["processed"]) == ("completed", 300)
        amounts = [r["amount"] async for r in client.iter_results(final["batch_id"])]
        assert amounts == [Decimal(f"{row}.50") for row in range(300)]
        skipped = await client.submit(with_a_bad_amount(10, 5), on_invalid="skip", wait=True)
        errors = [e async for e in client.iter_errors(skipped["batch_id"])]
        assert [(e["row"], e["field"]) for e in errors] == [(5, "amount")]
        with pytest.raises(ApiResponseError) as unknown:
            await client.status("batch_nope")
        assert unknown.value.status_code == 404
    async with AsyncBatchlineClient(url, "wrong-key") as stranger:
        with pytest.raises(ApiResponseError) as refused:
            await stranger.batches()
        assert refused.value.status_code == 401
