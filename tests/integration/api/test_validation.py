"""Invalid items: the seed's validation_error body, or dropped and listed with on_invalid=skip."""

from __future__ import annotations

from typing import Any

import pytest

from tests.integration.api.client import (
    BATCH_PATH,
    amounts,
    api_client,
    exact_json,
    expected_amounts,
    listed_ids,
    numbered_items,
    read_status,
)
from tests.integration.stack import StackFactory

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

SEED_ERROR = {
    "error": "validation_error",
    "message": "Invalid data format in batch",
    "details": {"row": 5, "field": "amount", "reason": "Invalid number format"},
}


def eight_items_with_a_bad_amount_in_row_5() -> list[dict[str, Any]]:
    items = numbered_items(8)
    items[5]["amt"] = "abc"  # rows are 0-based, as in docs/pipelines.md
    return items


def test_invalid_amount_is_rejected_with_the_seed_error_and_creates_no_batch(
    make_stack: StackFactory,
) -> None:
    stack = make_stack()
    stack.add_worker()
    url = stack.add_api()
    with api_client(url, stack.api_key) as client:
        before = listed_ids(client)
        response = client.post(BATCH_PATH, json={"data": eight_items_with_a_bad_amount_in_row_5()})
        assert response.status_code == 400, f"{response.text}\n{stack.logs()}"
        assert response.json() == SEED_ERROR
        assert listed_ids(client) == before

        explicit = client.post(
            BATCH_PATH,
            json={"data": eight_items_with_a_bad_amount_in_row_5(), "on_invalid": "reject"},
        )
        assert (explicit.status_code, explicit.json()) == (400, SEED_ERROR)
        assert listed_ids(client) == before


def test_skip_drops_the_invalid_row_and_lists_it_among_the_batch_errors(
    make_stack: StackFactory,
) -> None:
    stack = make_stack()
    stack.add_worker()
    url = stack.add_api()
    body = {"data": eight_items_with_a_bad_amount_in_row_5(), "on_invalid": "skip"}
    with api_client(url, stack.api_key) as client:
        response = client.post(BATCH_PATH, json=body)
        assert response.status_code == 200, f"{response.text}\n{stack.logs()}"
        result = exact_json(response)
        assert (result["status"], result["processed"], result["filtered"]) == ("success", 7, 1)
        kept = expected_amounts(0, 5) + expected_amounts(6, 8)
        assert amounts(result["results"]) == kept

        status = read_status(client, result["batch_id"])
        assert (status["status"], status["processed"], status["filtered"], status["total"]) == (
            "completed",
            7,
            1,
            8,
        )

        errors = client.get(f"{BATCH_PATH}/{result['batch_id']}/errors")
        assert errors.status_code == 200, errors.text
        page = errors.json()
        assert page["total"] == 1
        assert page["errors"] == [{"row": 5, "field": "amount", "reason": "Invalid number format"}]
