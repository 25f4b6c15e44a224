"""A periodic job's passes never overlap, and a stop ends the one running."""

from __future__ import annotations

import asyncio

import pytest

from streams.passes import OnePassAtATime


async def test_a_pass_still_running_is_not_started_again_and_the_next_tick_starts_one() -> None:
    passes = OnePassAtATime()
    release = asyncio.Event()
    started = 0

    async def job() -> None:
        nonlocal started
        started += 1
        await release.wait()

    assert passes.start("reconcile", job) is True
    await asyncio.sleep(0)
    assert passes.start("reconcile", job) is False  # still running: skipped
    assert passes.start("purge", job) is True  # another job runs beside it
    release.set()
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    assert not passes.running("reconcile")
    assert passes.start("reconcile", job) is True
    await asyncio.sleep(0)
    assert started == 3
    await passes.stop()


async def test_stop_cancels_the_running_pass_and_waits_for_it() -> None:
    passes = OnePassAtATime()
    cleaned_up = asyncio.Event()

    async def job() -> None:
        try:
            await asyncio.sleep(3600)
        finally:
            cleaned_up.set()

    passes.start("reconcile", job)
    await asyncio.sleep(0)
    await passes.stop()
    assert cleaned_up.is_set() and not passes.running("reconcile")


async def test_a_failed_pass_is_logged_by_type_and_does_not_stop_the_next_one(
    caplog: pytest.LogCaptureFixture,
) -> None:
    passes = OnePassAtATime()

    async def failing() -> None:
        raise RuntimeError("broker away")

    passes.start("reconcile", failing)
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    assert passes.start("reconcile", failing) is True
    await asyncio.sleep(0)
    await passes.stop()
    failures = [r for r in caplog.records if r.getMessage() == "periodic job failed"]
    assert [(r.job, r.error_type) for r in failures] == [("reconcile", "RuntimeError")] * 2  # type: ignore[attr-defined]
    assert "broker away" not in caplog.text
