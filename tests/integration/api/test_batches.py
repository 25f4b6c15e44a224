"""The seed's happy path over HTTP: submit, status, result pages, NDJSON and the batch list."""

from __future__ import annotations

import csv
import io
from decimal import Decimal

import pytest

from schemas import jsonio
from tests.integration.api.client import (
    BATCH_PATH,
    BATCHES_PATH,
    NDJSON,
    UTC_Z,
    amounts,
    api_client,
    exact_json,
    expected_amounts,
    numbered_items,
    read_status,
    seed_body,
    submit_async,
    wait_finished,
)
from tests.integration.stack import StackFactory, new_key

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

SEED_RESULT = {
    "timestamp": "2024-01-01T00:00:00Z",
    "amount": Decimal("100.50"),
    "email": "u***r@example.com",
    "phone": "***-0123",
}


@pytest.mark.postgres
def test_seed_request_returns_the_seed_response_and_status(
    make_stack: StackFactory, pg_store_url: str
) -> None:
    stack = make_stack(store_url=pg_store_url)
    stack.add_worker()
    url = stack.add_api()
    with api_client(url, stack.api_key) as client:
        response = client.post(BATCH_PATH, json=seed_body())
        assert response.status_code == 200, f"{response.text}\n{stack.logs()}"
        assert b'"amount":100.50' in response.content
        body = exact_json(response)
        assert set(body) == {"status", "processed", "filtered", "duration", "results", "batch_id"}
        assert (body["status"], body["processed"], body["filtered"]) == ("success", 1, 0)
        assert body["results"] == [SEED_RESULT]
        assert isinstance(body["duration"], Decimal | float) and body["duration"] >= 0
        assert body["batch_id"].startswith("batch_")

        status = read_status(client, body["batch_id"])
        assert {
            key: status[key]
            for key in ("batch_id", "status", "progress", "processed", "filtered", "total")
        } == {
            "batch_id": body["batch_id"],
            "status": "completed",
            "progress": 100,
            "processed": 1,
            "filtered": 0,
            "total": 1,
        }
        assert isinstance(status["duration"], float) and status["duration"] >= 0
        assert UTC_Z.match(status["started_at"]), status
        assert UTC_Z.match(status["completed_at"]), status
        assert status["started_at"] <= status["completed_at"]
        assert status["metadata"] == {}


@pytest.mark.postgres
def test_metadata_given_at_submission_comes_back_with_the_status(
    make_stack: StackFactory, pg_store_url: str
) -> None:
    stack = make_stack(store_url=pg_store_url)
    stack.add_worker()
    url = stack.add_api()
    metadata = {"source": "nightly-export", "ticket": "OPS-42", "note": "ünïcode ok"}
    with api_client(url, stack.api_key) as client:
        response = client.post(BATCH_PATH, json=seed_body(metadata=metadata))
        assert response.status_code == 200, f"{response.text}\n{stack.logs()}"
        status = read_status(client, response.json()["batch_id"])
        assert status["metadata"] == metadata
        assert status["status"] == "completed"


@pytest.mark.postgres
def test_results_come_in_item_order_as_pages_and_as_ndjson(
    make_stack: StackFactory, pg_store_url: str
) -> None:
    stack = make_stack(store_url=pg_store_url)
    stack.add_worker()
    url = stack.add_api()
    with api_client(url, stack.api_key) as client:
        batch_id = submit_async(client, {"data": numbered_items(250), "batch_size": 100})
        status = wait_finished(client, batch_id, stack.logs())
        assert (status["status"], status["processed"], status["total"]) == ("completed", 250, 250)
        assert status["progress"] == 100

        results_url = f"{BATCH_PATH}/{batch_id}/results"
        windows = [(0, 100), (95, 10), (199, 2), (240, 100), (250, 5), (0, 1000)]
        for offset, limit in windows:
            response = client.get(results_url, params={"offset": offset, "limit": limit})
            assert response.status_code == 200, response.text
            page = exact_json(response)
            assert (page["batch_id"], page["offset"], page["limit"], page["total"]) == (
                batch_id,
                offset,
                limit,
                250,
            )
            stop = min(offset + limit, 250)
            assert amounts(page["results"]) == expected_amounts(offset, stop), (offset, limit)

        everything = client.get(results_url)
        assert everything.status_code == 200
        assert amounts(exact_json(everything)["results"]) == expected_amounts(0, 250)

        waited = client.post(BATCH_PATH, json={"data": numbered_items(250), "batch_size": 100})
        assert waited.status_code == 200, waited.text
        assert amounts(exact_json(waited)["results"]) == expected_amounts(0, 250)

        streamed = client.get(results_url, headers={"Accept": NDJSON})
        assert streamed.status_code == 200, streamed.text
        assert streamed.headers["content-type"].startswith(NDJSON)
        lines = streamed.content.splitlines()
        assert len(lines) == 250
        assert lines[0].startswith(b"{") and b'"amount":0.50' in lines[0]
        assert amounts([jsonio.loads(line) for line in lines]) == expected_amounts(0, 250)

        tail = client.get(results_url, params={"offset": 240}, headers={"Accept": NDJSON})
        assert tail.status_code == 200, tail.text
        tail_lines = tail.content.splitlines()
        assert amounts([jsonio.loads(line) for line in tail_lines]) == expected_amounts(240, 250)

        # Opt-in strings, for clients whose JSON parser makes numbers floats.
        as_strings = client.get(results_url, params={"decimals": "string", "limit": 2})
        assert [r["amount"] for r in as_strings.json()["results"]] == ["0.50", "1.50"]
        streamed_strings = client.get(
            results_url, params={"decimals": "string"}, headers={"Accept": NDJSON}
        )
        assert b'"amount":"0.50"' in streamed_strings.content.splitlines()[0]
        waited_strings = client.post(
            BATCH_PATH, params={"decimals": "string"}, json={"data": numbered_items(3)}
        )
        assert [r["amount"] for r in waited_strings.json()["results"]] == ["0.50", "1.50", "2.50"]
        refused = client.get(results_url, params={"decimals": "float"})
        assert (refused.status_code, refused.json()["error"]) == (400, "bad_request")

        as_csv = client.get(results_url, headers={"Accept": "text/csv"})
        assert as_csv.status_code == 200, as_csv.text
        assert as_csv.headers["content-type"] == "text/csv; charset=utf-8"
        assert as_csv.headers["batchline-partial"] == "false"
        rows = list(csv.DictReader(io.StringIO(as_csv.text)))
        assert list(rows[0]) == ["timestamp", "amount", "email", "phone"]
        # Each amount keeps its scale ("0.50"), as in the JSON.
        assert [row["amount"] for row in rows] == expected_amounts(0, 250)
        assert rows[0]["amount"] == "0.50" and rows[0]["timestamp"] == "2024-01-01T00:00:00Z"


def test_empty_batch_completes_at_once_with_no_results(make_stack: StackFactory) -> None:
    stack = make_stack()
    stack.add_worker()
    url = stack.add_api()
    with api_client(url, stack.api_key) as client:
        response = client.post(BATCH_PATH, json={"data": []})
        assert response.status_code == 200, f"{response.text}\n{stack.logs()}"
        body = response.json()
        assert (body["status"], body["processed"], body["filtered"], body["results"]) == (
            "success",
            0,
            0,
            [],
        )
        status = read_status(client, body["batch_id"])
        assert (status["status"], status["total"], status["progress"]) == ("completed", 0, 100)


@pytest.mark.postgres
def test_batch_list_shows_the_callers_batches_newest_first_in_pages(
    make_stack: StackFactory, pg_store_url: str
) -> None:
    stack = make_stack(store_url=pg_store_url)
    url = stack.add_api()  # no worker: listing needs none, batches stay queued
    with api_client(url, stack.api_key) as client:
        assert client.get(BATCHES_PATH).json()["total"] == 0
        submitted = [submit_async(client, {"data": numbered_items(count)}) for count in (1, 2, 3)]
        newest_first = list(reversed(submitted))

        whole = client.get(BATCHES_PATH)
        assert whole.status_code == 200, whole.text
        body = whole.json()
        assert (body["total"], body["offset"], body["limit"]) == (3, 0, 50)
        assert [batch["batch_id"] for batch in body["batches"]] == newest_first
        assert [batch["total"] for batch in body["batches"]] == [3, 2, 1]
        assert {batch["status"] for batch in body["batches"]} == {"queued"}

        pages = [
            client.get(BATCHES_PATH, params={"offset": offset, "limit": 2}).json()
            for offset in (0, 2, 4)
        ]
        assert [[b["batch_id"] for b in page["batches"]] for page in pages] == [
            newest_first[:2],
            newest_first[2:],
            [],
        ]
        assert {page["total"] for page in pages} == {3}

        queued = client.get(BATCHES_PATH, params={"status": "queued"}).json()
        assert [batch["batch_id"] for batch in queued["batches"]] == newest_first
        completed = client.get(BATCHES_PATH, params={"status": "completed"}).json()
        assert (completed["total"], completed["batches"]) == (0, [])
        assert client.get(BATCHES_PATH, params={"status": "done"}).status_code == 400

    other_key = new_key(stack.store_url, "other-caller")
    with api_client(url, other_key) as other:
        empty = other.get(BATCHES_PATH).json()
        assert (empty["total"], empty["batches"]) == (0, [])


@pytest.mark.postgres
@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_any_offset_past_the_end_is_an_empty_page_and_a_larger_one_is_400(
    make_stack: StackFactory, request: pytest.FixtureRequest, backend: str
) -> None:
    # schemathesis once sent offset=211036627255828447162793984 and got a 500 from the store.
    store_url = request.getfixturevalue("pg_store_url") if backend == "postgresql" else None
    stack = make_stack(store_url=store_url)
    stack.add_worker()
    url = stack.add_api()
    largest = 2**63 - 1
    with api_client(url, stack.api_key) as client:
        body = {"data": numbered_items(3), "on_invalid": "skip"}
        batch_id = submit_async(client, body)
        assert wait_finished(client, batch_id, stack.logs())["status"] == "completed"
        pages = {
            f"{BATCH_PATH}/{batch_id}/results": "results",
            f"{BATCH_PATH}/{batch_id}/errors": "errors",
            BATCHES_PATH: "batches",
        }
        for path, key in pages.items():
            beyond = client.get(path, params={"offset": largest})
            assert beyond.status_code == 200, (path, beyond.text)
            assert beyond.json()[key] == [], path
            streamed = client.get(path, params={"offset": largest}, headers={"Accept": NDJSON})
            assert streamed.status_code == 200, (path, streamed.text)
            if key == "results":
                assert streamed.content == b""
            too_far = client.get(path, params={"offset": largest + 1})
            assert too_far.status_code == 400, (path, too_far.text)
            assert too_far.json()["error"] == "bad_request", path
