"""The start-up freeze of the garbage collector (telemetry.collector)."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from telemetry import collector


@pytest.fixture
def fresh_process(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setattr(collector, "_frozen", False)
    gc.unfreeze()
    yield
    gc.unfreeze()


def test_what_lives_at_start_is_frozen_once_and_later_objects_are_collected(
    fresh_process: None,
) -> None:
    collector.freeze_startup_objects()
    frozen = gc.get_freeze_count()
    assert frozen > 0

    # A second start in the same process...
    started_again: list[list[int]] = [[] for _ in range(100)]
    collector.freeze_startup_objects()
    assert gc.get_freeze_count() == frozen  # ...freezes nothing more
    assert len(started_again) == 100
