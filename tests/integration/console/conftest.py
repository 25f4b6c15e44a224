"""A real Chromium (Debian's `chromium` package) driven by Playwright, for the console's tests.

`make test` installs the browser (scripts/browser.sh). A test that fails leaves a screenshot of
the page it was on in test-artifacts/console/.

Playwright's sync API marks an event loop as running in its thread while it is open, so the
browser is opened after the stack (whose fixtures run asyncio) and closed before it stops.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Generator, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, Page, Request, ViewportSize, sync_playwright

from tests.integration.api.client import DEFAULT_V2, api_client
from tests.integration.stack import ManagedProcess, Stack, StackFactory

ARTIFACTS = Path(__file__).resolve().parents[3] / "test-artifacts" / "console"
WIDE: ViewportSize = {"width": 1280, "height": 900}
NARROW: ViewportSize = {"width": 390, "height": 844}


def chromium_executable() -> str:
    found = os.environ.get("BATCHLINE_CHROMIUM") or shutil.which("chromium")
    if found is None:
        pytest.fail("Chromium is missing: `make test` installs it (scripts/browser.sh)")
    return found


@dataclass
class Console:
    """A running API and worker, with a key, and a second version of the default pipeline."""

    url: str
    key: str
    stack: Stack
    worker: ManagedProcess

    def client(self) -> httpx.Client:
        return api_client(self.url, self.key)


@pytest.fixture
def console(make_stack: StackFactory, tmp_path: Path) -> Console:
    pipelines = tmp_path / "pipelines"
    pipelines.mkdir()
    (pipelines / "default-v2.yaml").write_text(DEFAULT_V2)
    stack = make_stack(BATCHLINE_PIPELINES_DIR=str(pipelines))
    worker = stack.add_worker()
    url = stack.add_api()
    return Console(url, stack.api_key, stack, worker)


@pytest.fixture
def browser(console: Console) -> Iterator[Browser]:
    with sync_playwright() as driver:
        # --no-sandbox: CI runs as root, where Chromium's sandbox cannot start.
        launched = driver.chromium.launch(
            executable_path=chromium_executable(), args=["--no-sandbox"]
        )
        yield launched
        launched.close()


@dataclass
class Traffic:
    """Every request the page made, and every error it logged or threw."""

    urls: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def record(self, request: Request) -> None:
        self.urls.append(request.url)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    if report.when == "call":
        item.stash[FAILED] = report.failed
    return report


FAILED = pytest.StashKey[bool]()


@pytest.fixture
def traffic() -> Traffic:
    return Traffic()


@pytest.fixture
def page(browser: Browser, traffic: Traffic, request: pytest.FixtureRequest) -> Iterator[Page]:
    context = browser.new_context(viewport=WIDE, accept_downloads=True)
    opened = context.new_page()
    opened.set_default_timeout(30_000)
    opened.on("request", traffic.record)
    opened.on("pageerror", lambda error: traffic.problems.append(f"page error: {error}"))
    yield opened
    if request.node.stash.get(FAILED, False):
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        name = re.sub(r"[^\w.-]", "_", request.node.name)
        opened.screenshot(path=ARTIFACTS / f"{name}.png", full_page=True)
    context.close()
