"""The fault suite (`make test-reliability`): the integration fixtures, and every scenario's
figures printed at the end of the run."""

from __future__ import annotations

import pytest

from tests.integration.conftest import make_stack, pg_store_url
from tests.reliability.figures import FIGURES

__all__ = ["make_stack", "pg_store_url"]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        item.add_marker(pytest.mark.reliability)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if FIGURES:
        terminalreporter.section("reliability figures, one line per scenario")
        for line in FIGURES:
            terminalreporter.write_line(line)
