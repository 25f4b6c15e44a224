"""Retry (issue H point 4): the dead-lettered chunks of a batch that failed for a reason outside
its data run again under the same batch ID; a batch that failed on its data answers 409."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.integration.api.client import (
    BATCH_PATH,
    api_client,
    assert_error,
    exact_json,
    numbered_items,
    submit_async,
    wait_finished,
)
from tests.integration.stack import StackFactory

pytestmark = [pytest.mark.kafka, pytest.mark.slow]
RELOAD_WITHIN_S = 10.0
ORDERS = """\
name: orders
version: 1
fields:
  - source: amt
    target: total
    parse: decimal
passthrough: [sku]
"""
# Every record is invalid under this one: an e-mail address is no amount.
STRICT = """\
name: strict
version: 1
on_invalid: reject
fields:
  - source: email
    target: amount
    parse: decimal
"""
ITEMS = 25


def test_a_batch_whose_pipeline_the_workers_lacked_completes_when_retried(
    make_stack: StackFactory, tmp_path: Path
) -> None:
    api_specs, worker_specs = tmp_path / "api", tmp_path / "worker"
    for folder in (api_specs, worker_specs):
        folder.mkdir()
        (folder / "strict.yaml").write_text(STRICT)
    (api_specs / "orders.yaml").write_text(ORDERS)  # a deploy that forgot the workers
    stack = make_stack(BATCHLINE_PIPELINES_DIR=str(api_specs))
    worker = stack.add_worker(BATCHLINE_PIPELINES_DIR=str(worker_specs))
    url = stack.add_api()
    records = [{"amt": f"{row}.25", "sku": f"S{row}"} for row in range(ITEMS)]
    with api_client(url, stack.api_key) as client:
        body = {"data": records, "batch_size": 10, "pipeline": "orders@1"}
        batch_id = submit_async(client, body)
        failed = wait_finished(client, batch_id, stack.logs())
        assert failed["status"] == "failed", failed
        assert "(unknown_pipeline)" in failed["reason"], failed

        (worker_specs / "orders.yaml").write_text(ORDERS)
        worker.process.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + RELOAD_WITHIN_S
        while "pipelines reloaded" not in worker.output():
            assert time.monotonic() < deadline, worker.output()
            time.sleep(0.2)

        retried = subprocess.run(  # noqa: S603 - our own interpreter and CLI
            [sys.executable, "-m", "batchline.cli", "retry", batch_id, "--wait"]
            + ["--url", url, "--api-key", stack.api_key],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert retried.returncode == 0, retried.stderr
        assert retried.stdout.split() == [batch_id]
        done = wait_finished(client, batch_id, stack.logs())
        results = exact_json(client.get(f"{BATCH_PATH}/{batch_id}/results", params={"limit": 100}))[
            "results"
        ]
        again = client.post(f"{BATCH_PATH}/{batch_id}/retry")

    assert (done["status"], done["processed"], done["filtered"]) == ("completed", ITEMS, 0), done
    assert done["reason"] is None
    assert [(str(row["total"]), row["sku"]) for row in results] == [
        (f"{row}.25", f"S{row}") for row in range(ITEMS)
    ]
    assert_error(again, 409, "batch_not_failed")


def test_a_batch_that_failed_on_its_data_is_not_retried(
    make_stack: StackFactory, tmp_path: Path
) -> None:
    specs = tmp_path / "pipelines"
    specs.mkdir()
    (specs / "strict.yaml").write_text(STRICT)
    stack = make_stack(BATCHLINE_PIPELINES_DIR=str(specs))
    stack.add_worker()
    url = stack.add_api()
    with api_client(url, stack.api_key) as client:
        original = submit_async(client, {"data": numbered_items(3), "pipeline": "default@1"})
        wait_finished(client, original, stack.logs())
        # Run again through a pipeline its records fail: the replay fails on its data.
        replayed = client.post(f"{BATCH_PATH}/{original}/replay", json={"pipeline": "strict@1"})
        assert replayed.status_code == 202, replayed.text
        replay_id = replayed.json()["batch_id"]
        failed = wait_finished(client, replay_id, stack.logs())
        refused = client.post(f"{BATCH_PATH}/{replay_id}/retry")

    assert failed["status"] == "failed", failed
    assert_error(refused, 409, "not_retryable")
