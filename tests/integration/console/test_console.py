"""The web console (issue I) in a real Chromium, against a running API, worker and broker."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path
from typing import Any

import pytest
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import Page, ViewportSize, expect

from tests.integration.api.client import (
    BATCH_PATH,
    numbered_items,
    read_status,
    seed_body,
    submit_async,
)
from tests.integration.console.conftest import NARROW, WIDE, Console, Traffic

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

README_IMAGES = Path(__file__).resolve().parents[3] / "docs" / "images"
# Many small chunks, so that a cancel lands long before the last one is transformed.
LONG_BATCH = {"data": numbered_items(10_000), "batch_size": 5}
SERIOUS = frozenset({"serious", "critical"})


def sign_in(page: Page, console: Console) -> None:
    page.goto(f"{console.url}/")
    page.fill("#api-key", console.key)
    page.keyboard.press("Enter")
    expect(page.locator("h1")).to_have_text("Batches")


def ndjson_file(tmp_path: Path, items: list[dict[str, Any]]) -> Path:
    path = tmp_path / "records.ndjson"
    path.write_text("".join(json.dumps(item) + "\n" for item in items))
    return path


def upload(page: Page, path: Path, batch_size: int = 100) -> None:
    page.click("nav >> text=Submit")
    page.set_input_files("#records-file", str(path))
    # The built-in version: the console's stack also has default@2, which names `amount` `total`.
    page.select_option("#pipeline", "default@1")
    page.fill("#batch-size", str(batch_size))
    page.click("#submit-button")


def opened_batch_id(page: Page) -> str:
    page.wait_for_url("**/#/batch/*")
    return page.url.rsplit("/", 1)[-1]


def results_as(console: Console, batch_id: str, accept: str) -> bytes:
    with console.client() as client:
        response = client.get(f"{BATCH_PATH}/{batch_id}/results", headers={"Accept": accept})
    assert response.status_code == 200, response.text
    return response.content


def assert_key_kept_out_of_sight(console: Console, page: Page, traffic: Traffic) -> None:
    assert traffic.urls, "the page made no requests"
    for url in traffic.urls:
        assert console.key not in url
        assert url.startswith((f"{console.url}/", "blob:", "data:")), f"loaded from outside: {url}"
    assert page.evaluate("document.cookie") == ""
    assert console.key not in console.stack.logs()
    assert traffic.problems == []


def test_signing_in_and_a_wrong_key(page: Page, console: Console, traffic: Traffic) -> None:
    page.goto(f"{console.url}/")
    page.fill("#api-key", "not-a-key")
    page.click("#sign-in button")
    expect(page.get_by_role("alert")).to_have_text(
        "That API key was not accepted. Check it and try again."
    )
    expect(page.locator("#nav")).to_be_hidden()

    sign_in(page, console)
    expect(page.locator("#nav")).to_be_visible()
    assert page.evaluate("sessionStorage.getItem('batchline.apiKey')") == console.key
    page.click("#sign-out")
    expect(page.locator("h1")).to_have_text("Sign in")
    assert page.evaluate("sessionStorage.length") == 0
    assert_key_kept_out_of_sight(console, page, traffic)


def test_a_batch_from_upload_to_download(
    page: Page, console: Console, traffic: Traffic, tmp_path: Path
) -> None:
    sign_in(page, console)
    upload(page, ndjson_file(tmp_path, numbered_items(1_000)), batch_size=100)
    batch_id = opened_batch_id(page)

    expect(page.locator("#fact-progress progress")).to_have_attribute("value", "100")
    expect(page.locator("#fact-status")).to_have_text("completed")
    expect(page.locator("#fact-processed")).to_have_text("1000 of 1000")
    results = page.locator("#results")
    expect(results.locator("caption")).to_have_text("Rows 0–49 of 1000")
    expect(results.locator("tbody tr")).to_have_count(50)
    # The amount keeps its scale: "0.50", as the API wrote it, not the float 0.5.
    expect(results.locator("tbody tr").first).to_contain_text("0.50")
    expect(page.locator("#partial-notice")).to_have_count(0)
    page.click("text=Next rows")
    expect(results.locator("caption")).to_have_text("Rows 50–99 of 1000")

    for kind, accept in (("ndjson", "application/x-ndjson"), ("csv", "text/csv")):
        with page.expect_download() as started:
            page.click(f"#download-{kind}")
        download = started.value
        assert download.suggested_filename == f"{batch_id}.{kind}"
        saved = Path(download.path()).read_bytes()
        assert saved == results_as(console, batch_id, accept)
    assert len(saved.splitlines()) == 1 + 1_000  # the CSV: a header and a line per result

    README_IMAGES.mkdir(parents=True, exist_ok=True)
    page.evaluate("window.scrollTo(0, 0)")
    page.screenshot(path=README_IMAGES / "console-batch.png")
    page.click("nav >> text=Batches")
    expect(page.locator(f"#batches tr[data-batch='{batch_id}']")).to_contain_text("completed")
    page.screenshot(path=README_IMAGES / "console-batches.png")
    assert_key_kept_out_of_sight(console, page, traffic)


def test_a_csv_file_with_quoted_cells_is_submitted_as_strings(
    page: Page, console: Console, tmp_path: Path
) -> None:
    path = tmp_path / "records.csv"
    path.write_text(
        "ts,amt,email,phone\r\n"
        '2024-01-01T00:00:00Z,100.50,"first.last@example.com",555-0123\r\n'
        '2024-01-01T10:00:00+02:00,"1,000.25",b@example.com,555-0199\r\n'
    )
    sign_in(page, console)
    upload(page, path)
    opened_batch_id(page)
    expect(page.locator("#fact-status")).to_have_text("completed")
    rows = page.locator("#results tbody tr")
    expect(rows).to_have_count(2)
    expect(rows.nth(0)).to_contain_text("100.50")
    # The quoted cell kept its comma: "1,000.25" parsed as 1000.25, and the time is in UTC.
    expect(rows.nth(1)).to_contain_text("1000.25")
    expect(rows.nth(1)).to_contain_text("2024-01-01T08:00:00Z")


def test_a_bad_amount_shows_its_row_field_and_reason_but_never_its_value(
    page: Page, console: Console, tmp_path: Path
) -> None:
    items = numbered_items(10)
    items[5]["amt"] = "twelve-and-a-bit"
    sign_in(page, console)
    upload(page, ndjson_file(tmp_path, items))
    alert = page.locator("#submit-problem [role=alert]")
    expect(alert).to_contain_text("Row 5, field amount: Invalid number format")
    assert "twelve-and-a-bit" not in alert.inner_text()
    assert page.url.endswith("#/submit")


def paused_mid_batch(console: Console) -> str:
    """A batch the worker has begun, with the worker then stopped (SIGSTOP) until resumed."""
    with console.client() as client:
        for _ in range(5):
            batch_id = submit_async(client, LONG_BATCH)
            status = read_status(client, batch_id)["status"]
            while status == "queued":
                status = read_status(client, batch_id)["status"]
            if status == "processing":
                os.kill(console.worker.process.pid, signal.SIGSTOP)
                if read_status(client, batch_id)["status"] == "processing":
                    return batch_id
                os.kill(console.worker.process.pid, signal.SIGCONT)
    raise AssertionError("every batch finished before the worker could be paused")


def test_cancel_a_running_batch_and_replay_a_finished_one(page: Page, console: Console) -> None:
    with console.client() as client:
        finished = client.post(BATCH_PATH, json=seed_body())
        assert finished.status_code == 200, finished.text
    running = paused_mid_batch(console)
    try:
        sign_in(page, console)
        page.goto(f"{console.url}/#/batch/{running}")
        expect(page.locator("#fact-status")).to_have_text("processing")
        page.click("#cancel")
        # The worker confirms the cancel: resume it once the request is on its way.
        time.sleep(1)
    finally:
        os.kill(console.worker.process.pid, signal.SIGCONT)
    expect(page.locator("#fact-status")).to_have_text("cancelled")
    processed = page.locator("#fact-processed").inner_text()
    assert processed != "10000 of 10000", processed
    expect(page.locator("#partial-notice")).to_contain_text("Partial results")

    original = finished.json()["batch_id"]
    page.goto(f"{console.url}/#/batch/{original}")
    page.select_option("#replay-pipeline", "default@2")
    page.click("#replay")
    page.wait_for_url(lambda url: not url.endswith(f"/#/batch/{original}"))
    expect(page.locator("#replay-of")).to_have_text(original)
    expect(page.locator("#fact-status")).to_have_text("completed")
    expect(page.locator("#results thead")).to_contain_text("total")  # default@2's field
    page.click("#replay-of")
    expect(page.locator("h1")).to_have_text(f"Batch {original}")


def test_pipelines_and_the_validate_page(page: Page, console: Console) -> None:
    sign_in(page, console)
    page.click("nav >> text=Pipelines")
    page.get_by_role("link", name="default@2").click()
    expect(page.locator("#pipeline-spec")).to_contain_text('"target": "total"')

    page.click("nav >> text=Pipelines")
    page.click("text=Validate a spec")
    page.click("#validate-form button")  # the example spec and sample
    expect(page.locator("#after")).to_contain_text("100.50")
    expect(page.locator("#dry-run-errors")).to_contain_text("Invalid number format")

    page.fill("#spec", "name: broken\nversion: 1\nfields:\n  - source: amt\n    parse: nonsense\n")
    page.click("#validate-form button")
    expect(page.locator("#spec-errors")).to_contain_text("The spec is not valid")
    expect(page.locator("#spec-errors li")).not_to_have_count(0)


def test_the_keyboard_alone_signs_in_submits_and_opens_a_batch(
    page: Page, console: Console
) -> None:
    page.goto(f"{console.url}/")
    page.keyboard.type(console.key)  # the key field has the focus on arrival
    page.keyboard.press("Enter")
    expect(page.locator("h1")).to_have_text("Batches")
    tab_to(page, "nav a[href='#/submit']")
    page.keyboard.press("Enter")
    tab_to(page, "#records-text")
    page.keyboard.type(json.dumps(seed_body()["data"]))
    tab_to(page, "#submit-button")
    page.keyboard.press("Enter")
    opened_batch_id(page)
    expect(page.locator("#fact-status")).to_have_text("completed")


def tab_to(page: Page, selector: str, presses: int = 60) -> None:
    for _ in range(presses):
        page.keyboard.press("Tab")
        if page.evaluate("(s) => document.activeElement.matches(s)", selector):
            return
    raise AssertionError(f"Tab never reached {selector}")


def test_every_page_passes_axe_and_fits_at_1280_and_390_px(page: Page, console: Console) -> None:
    with console.client() as client:
        answer = client.post(BATCH_PATH, json=seed_body())
        assert answer.status_code == 200, answer.text
    batch_id = answer.json()["batch_id"]
    pages = {
        "batches": ("#/batches", "#batches"),
        "submit": ("#/submit", "#submit-form"),
        "batch": (f"#/batch/{batch_id}", "#results"),
        "pipelines": ("#/pipelines", "#pipelines"),
        "pipeline": ("#/pipelines/default@2", "#pipeline-spec"),
        "validate": ("#/validate", "#validate-form"),
        "operations": ("#/operations", "#operations-charts"),
    }
    axe = Axe()
    found: dict[str, list[str]] = {}
    for viewport in (WIDE, NARROW):
        page.set_viewport_size(viewport)
        page.goto(f"{console.url}/")
        page.evaluate("sessionStorage.clear()")
        page.reload()
        checked = {"sign-in": "#sign-in"}
        check_page(page, axe, viewport, "sign-in", checked["sign-in"], found)
        sign_in(page, console)
        for name, (fragment, ready) in pages.items():
            page.goto(f"{console.url}/{fragment}")
            if name == "validate":
                page.click("#validate-form button")
                ready = "#after"
            check_page(page, axe, viewport, name, ready, found)
    assert found == {}, json.dumps(found, indent=1)


def check_page(
    page: Page,
    axe: Axe,
    viewport: ViewportSize,
    name: str,
    ready: str,
    found: dict[str, list[str]],
) -> None:
    page.wait_for_selector(ready)
    where = f"{name} at {viewport['width']} px"
    violations = axe.run(page).response["violations"]
    serious = [f"{v['id']}: {v['help']}" for v in violations if v["impact"] in SERIOUS]
    if serious:
        found[where] = serious
    overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    if overflow > 0:
        found.setdefault(where, []).append(f"{overflow} px wider than the window")
