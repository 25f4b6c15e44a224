"""Settings read from BATCHLINE_* variables: durations in the forms operators write them."""

from __future__ import annotations

from datetime import timedelta

import pytest
from pydantic import ValidationError

from schemas.settings import Settings


@pytest.mark.parametrize(
    ("written", "meant"),
    [
        ("604800", timedelta(days=7)),
        ("7d", timedelta(days=7)),
        ("12h", timedelta(hours=12)),
        ("30m", timedelta(minutes=30)),
        ("90s", timedelta(seconds=90)),
        ("P7D", timedelta(days=7)),
        ("PT1H30M", timedelta(hours=1, minutes=30)),
    ],
)
def test_results_ttl_reads_seconds_units_and_iso_8601(
    monkeypatch: pytest.MonkeyPatch, written: str, meant: timedelta
) -> None:
    monkeypatch.setenv("BATCHLINE_RESULTS_TTL", written)
    assert Settings().results_ttl == meant


def test_results_ttl_defaults_to_seven_days(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("BATCHLINE_RESULTS_TTL", raising=False)
    assert Settings().results_ttl == timedelta(days=7)


@pytest.mark.parametrize(
    "written", ["30s", "0", "seven days", "-5", "7w", "36501d", "99999999999d", "9" * 30]
)
def test_results_ttl_under_a_minute_over_a_century_or_unreadable_is_refused_by_name(
    monkeypatch: pytest.MonkeyPatch, written: str
) -> None:
    monkeypatch.setenv("BATCHLINE_RESULTS_TTL", written)
    with pytest.raises(ValidationError, match="results_ttl"):
        Settings()
