"""Pipelines you can see: list, show and check them over the API and the CLI; new spec files
served without a restart; a bad one stops start-up in one line."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.integration.api.client import BATCH_PATH, api_client, assert_error, exact_json
from tests.integration.stack import Stack, StackFactory

pytestmark = [pytest.mark.kafka, pytest.mark.slow]
PIPELINES_PATH = "/api/v1/pipelines"
RELOAD_WITHIN_S = 10.0
ORDERS_V1 = """\
name: orders
version: 1
description: Order totals
fields:
  - source: amt
    target: total
    parse: decimal
passthrough: [sku]
"""
ORDERS_V2 = ORDERS_V1.replace("version: 1", "version: 2").replace("target: total", "target: due")
BAD_SPEC = ORDERS_V1.replace("parse: decimal", "transform: [rounds]")


def _pipelines_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "pipelines"
    folder.mkdir()
    (folder / "orders.yaml").write_text(ORDERS_V1)
    return folder


def _api_stack(make_stack: StackFactory, tmp_path: Path) -> tuple[Stack, str, Path]:
    folder = _pipelines_dir(tmp_path)
    stack = make_stack(BATCHLINE_PIPELINES_DIR=str(folder))
    return stack, stack.add_api(), folder


def test_pipelines_are_listed_shown_and_checked(make_stack: StackFactory, tmp_path: Path) -> None:
    stack, url, _ = _api_stack(make_stack, tmp_path)
    with api_client(url, stack.api_key) as client:
        listed = client.get(PIPELINES_PATH)
        assert listed.status_code == 200, listed.text
        by_name = {p["name"]: p for p in listed.json()["pipelines"]}
        assert by_name["orders"]["newest"] == "orders@1"
        (default,) = by_name["default"]["versions"]
        assert default["ref"] == "default@1"
        assert default["output_fields"] == ["timestamp", "amount", "email", "phone"]
        assert len(default["digest"]) == 64
        assert by_name["orders"]["versions"][0]["output_fields"] == ["total", "sku"]

        shown = client.get(f"{PIPELINES_PATH}/orders").json()
        assert (shown["ref"], shown["description"]) == ("orders@1", "Order totals")
        assert shown["spec"]["fields"][0]["source"] == "amt"
        assert_error(client.get(f"{PIPELINES_PATH}/nope@3"), 404, "not_found")
        assert_error(httpx.get(f"{url}{PIPELINES_PATH}", timeout=10), 401, "unauthorized")

        bad = client.post(f"{PIPELINES_PATH}/validate", json={"spec": BAD_SPEC})
        assert bad.status_code == 200, bad.text
        assert bad.json()["valid"] is False
        (line,) = bad.json()["errors"]
        assert line.startswith("spec: invalid pipeline spec: fields[0].transform[0]: unknown step")

        sample = [{"amt": "100.50", "sku": "A-1"}, {"amt": "abc", "sku": "B-2"}]
        checked = client.post(
            f"{PIPELINES_PATH}/validate",
            json={"spec": ORDERS_V2.replace("version: 2", "version: 7"), "sample": sample},
        )
        body = exact_json(checked)
        assert (body["valid"], body["ref"], body["output_fields"]) == (
            True,
            "orders@7",
            ["due", "sku"],
        )
        assert b'"due":100.50' in checked.content  # the amount's scale kept, as in a batch
        assert body["dry_run"]["errors"] == [
            {"row": 1, "field": "due", "reason": "Invalid number format"}
        ]
        # A dry run registers nothing.
        assert client.get("/api/v1/transform/batches").json()["batches"] == []


def test_the_cli_lists_shows_and_validates(make_stack: StackFactory, tmp_path: Path) -> None:
    stack, url, folder = _api_stack(make_stack, tmp_path)
    env = {**os.environ, "BATCHLINE_URL": url, "BATCHLINE_API_KEY": stack.api_key}

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(  # noqa: S603
            [sys.executable, "-m", "batchline.cli", "pipelines", *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    listed = cli("list")
    assert listed.returncode == 0, listed.stderr
    assert "orders@1" in listed.stdout and "default@1" in listed.stdout
    shown = cli("show", "default@1")
    assert shown.returncode == 0 and '"ref":"default@1"' in shown.stdout.replace(" ", "")

    bad = tmp_path / "bad.yaml"
    bad.write_text(BAD_SPEC)
    refused = cli("validate", str(bad))
    assert refused.returncode == 1
    assert refused.stderr.strip().startswith(f"{bad}: invalid pipeline spec: fields[0]")
    assert len(refused.stderr.strip().splitlines()) == 1

    sample = tmp_path / "sample.ndjson"
    sample.write_text('{"amt": "2.50", "sku": "X"}\n')
    good = cli("validate", str(folder / "orders.yaml"), "--sample", str(sample))
    assert good.returncode == 0, good.stderr
    assert "orders@1 is valid" in good.stderr
    assert '"total":2.50' in good.stdout.replace(" ", "")


def test_a_new_spec_file_is_served_after_sighup_and_a_changed_one_is_refused(
    make_stack: StackFactory, tmp_path: Path
) -> None:
    stack, url, folder = _api_stack(make_stack, tmp_path)
    (api,) = stack.processes
    with api_client(url, stack.api_key) as client:
        (folder / "orders-2.yaml").write_text(ORDERS_V2)
        api.process.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + RELOAD_WITHIN_S
        while client.get(f"{PIPELINES_PATH}/orders").json().get("ref") != "orders@2":
            assert time.monotonic() < deadline, api.output()
            time.sleep(0.2)
        assert api.alive()

        (folder / "orders.yaml").write_text(ORDERS_V1.replace("Order totals", "Changed"))
        api.process.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + RELOAD_WITHIN_S
        while "pipelines not reloaded" not in api.output():
            assert time.monotonic() < deadline, api.output()
            time.sleep(0.2)
        assert "orders@1 changed since it was loaded" in api.output()
        shown = client.get(f"{PIPELINES_PATH}/orders@1").json()
        assert shown["description"] == "Order totals"


def test_a_worker_runs_a_version_deployed_after_it_started(
    make_stack: StackFactory, tmp_path: Path
) -> None:
    stack, url, folder = _api_stack(make_stack, tmp_path)
    stack.add_worker()
    (folder / "orders-2.yaml").write_text(ORDERS_V2)
    stack.processes[0].process.send_signal(signal.SIGHUP)  # the API; the worker is not told
    with api_client(url, stack.api_key) as client:
        deadline = time.monotonic() + RELOAD_WITHIN_S
        while client.get(f"{PIPELINES_PATH}/orders").json().get("ref") != "orders@2":
            assert time.monotonic() < deadline
            time.sleep(0.2)
        answered = client.post(
            BATCH_PATH, json={"data": [{"amt": "7.00", "sku": "Z"}], "pipeline": "orders@2"}
        )
    assert answered.status_code == 200, f"{answered.text}\n{stack.logs()}"
    (result,) = exact_json(answered)["results"]
    assert (str(result["due"]), result["sku"]) == ("7.00", "Z")
    assert "pipelines reloaded" in stack.processes[1].output()  # the worker, on the miss
    worker = stack.processes[1]
    worker.process.send_signal(signal.SIGHUP)  # told, it reads the files again and runs on
    deadline = time.monotonic() + RELOAD_WITHIN_S
    while worker.output().count("pipelines reloaded") < 2:
        assert time.monotonic() < deadline, worker.output()
        time.sleep(0.2)
    assert worker.alive()


@pytest.mark.parametrize("command", ["api", "worker"])
def test_a_bad_spec_file_stops_start_up_in_one_line(
    command: str, make_stack: StackFactory, tmp_path: Path
) -> None:
    folder = _pipelines_dir(tmp_path)
    (folder / "orders.yaml").write_text(BAD_SPEC)
    stack = make_stack(BATCHLINE_PIPELINES_DIR=str(folder))
    started = subprocess.run(  # noqa: S603
        [sys.executable, "-m", "batchline.cli", command],
        env=stack.env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert started.returncode == 1
    assert "Traceback" not in started.stderr + started.stdout
    lines = started.stderr.strip().splitlines()
    assert lines == [
        f"batchline: {folder / 'orders.yaml'}: invalid pipeline spec: fields[0].transform[0]: "
        "unknown step 'rounds'; known: 'mask_email', 'mask_phone', 'mask', 'redact', "
        "'replace', 'hash', 'truncate_timestamp', 'round', 'trim', 'lowercase', 'uppercase'"
    ]
