"""Which driver errors mean "the database is away, retry" (StoreUnavailable) and which do not."""

from __future__ import annotations

import pytest
from sqlalchemy import exc

from store.results_store import _unreachable


class _DriverError(Exception):
    def __init__(self, sqlstate: str | None) -> None:
        super().__init__("driver says no")
        self.sqlstate = sqlstate


@pytest.mark.parametrize(
    "sqlstate",
    ["57P01", "57P02", "57P03", "08006", "08001", "08003"],  # shutting down, cannot connect now...
)
def test_a_server_away_is_unreachable(sqlstate: str) -> None:
    assert _unreachable(exc.DBAPIError("SELECT 1", {}, _DriverError(sqlstate)))


@pytest.mark.parametrize("sqlstate", ["42P01", "22003", "40001", None])
def test_a_wrong_statement_or_value_is_not(sqlstate: str | None) -> None:
    assert not _unreachable(exc.DBAPIError("SELECT 1", {}, _DriverError(sqlstate)))


def test_operational_and_invalidated_connections_are_unreachable() -> None:
    assert _unreachable(exc.OperationalError("SELECT 1", {}, _DriverError(None)))
    assert _unreachable(exc.InterfaceError("SELECT 1", {}, _DriverError(None)))
    invalidated = exc.DBAPIError("SELECT 1", {}, _DriverError(None), connection_invalidated=True)
    assert _unreachable(invalidated)
