"""Crashes while batches run: workers killed with SIGKILL, and the API restarted under clients
that wait synchronously. Every batch must still end completed, counted and stored exactly once.
"""

from __future__ import annotations

import random
import signal
import threading
import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import httpx
import pytest

from api.limits import MAX_UNFINISHED_BATCHES
from tests.integration.api.client import (
    BATCH_PATH,
    BATCHES_PATH,
    FINISHED,
    RESPOND_ASYNC,
    amounts,
    api_client,
    exact_json,
    expected_amounts,
    numbered_items,
)
from tests.integration.stack import STOP_TIMEOUT_S, ManagedProcess, Stack, StackFactory, new_key
from tests.reliability.figures import report

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

# Polling goes through the batch list (one request for every batch), so the waits stay far
# below the 1,000 requests a minute that one API key may make.
POLL_INTERVAL_S = 0.5
# Two cores shared with other suites: a batch that outlasts a few worker restarts (each with a
# 10 s session timeout before its partitions move) needs minutes, not seconds.
FINISH_TIMEOUT_S = 420.0
RESULTS_PAGE = 1000
HTTP_TIMEOUT_S = 120.0

KILL_SEED = 20261130
KILLS = 5
KILLED_BATCHES = 5
# As large as a batch may be: at 2,000 items five batches finished in about a second, before
# the first kill; at 10,000 they run long enough for the kills to land inside them.
KILLED_BATCH_ITEMS = 10_000
# Small chunks make the run longer (many groups, each one transaction), so that several kills,
# each followed by a replacement's start of several seconds, land inside it (2 to 5 of the 5 in
# trial runs; the later ones may find the batches done, which kills_mid_batch reports).
KILLED_BATCH_SIZE = 10
# Kill points are drawn as fractions of the items processed (a point in time measured by the
# run's own progress, so the same seed kills at the same stage on a fast or a slow machine).
KILL_AT_FRACTIONS = (0.02, 0.8)
PROGRESS_POLL_S = 0.2

SYNC_CLIENTS = 6
SYNC_BATCH_ITEMS = 5_000
SYNC_BATCH_SIZE = 100
# Clients start one after another, so that the restart finds some waiting for their answer
# and some not yet connected.
CLIENT_STAGGER_S = 0.6
# The old API is stopped once this many batches are registered (or after the timeout).
REGISTERED_BEFORE_RESTART = 3
REGISTER_TIMEOUT_S = 60.0


def _items_from(start: int, count: int) -> list[dict[str, Any]]:
    """Rows start..start+count: each batch its own amounts, so a row in the wrong batch shows."""
    return numbered_items(start + count)[start:]


def _batch_statuses(client: httpx.Client) -> dict[str, dict[str, Any]]:
    response = client.get(BATCHES_PATH, params={"limit": 1000})
    assert response.status_code == 200, response.text
    return {batch["batch_id"]: batch for batch in response.json()["batches"]}


def _wait_all_finished(
    client: httpx.Client, batch_ids: list[str], stack: Stack
) -> dict[str, dict[str, Any]]:
    deadline = time.monotonic() + FINISH_TIMEOUT_S
    while True:
        statuses = _batch_statuses(client)
        pending = [b for b in batch_ids if statuses.get(b, {}).get("status") not in FINISHED]
        if not pending:
            return statuses
        assert time.monotonic() < deadline, (
            f"unfinished after {FINISH_TIMEOUT_S} s: "
            f"{[statuses.get(b) for b in pending]}\n{stack.logs()}"
        )
        time.sleep(POLL_INTERVAL_S)


def _wait_for_progress(client: httpx.Client, items: float) -> dict[str, dict[str, Any]]:
    """The key's batch statuses once they together have processed ``items``, or all finished."""
    deadline = time.monotonic() + FINISH_TIMEOUT_S
    while True:
        statuses = _batch_statuses(client)
        done = sum(s["processed"] + s["filtered"] for s in statuses.values())
        finished = all(s["status"] in FINISHED for s in statuses.values())
        if done >= items or (len(statuses) == KILLED_BATCHES and finished):
            return statuses
        assert time.monotonic() < deadline, f"stuck at {done} items: {statuses}"
        time.sleep(PROGRESS_POLL_S)


def _stored_amounts(client: httpx.Client, batch_id: str) -> list[str]:
    """Every stored row of the batch, read in pages; ``total`` counts what the store holds."""
    rows: list[str] = []
    offset, total = 0, 1
    while offset < total:
        response = client.get(
            f"{BATCH_PATH}/{batch_id}/results", params={"offset": offset, "limit": RESULTS_PAGE}
        )
        assert response.status_code == 200, response.text
        page = exact_json(response)
        total = page["total"]
        rows.extend(amounts(page["results"]))
        offset += RESULTS_PAGE
    assert len(rows) == total, (batch_id, len(rows), total)
    return rows


def _duplicates(rows: list[str]) -> int:
    return sum(count - 1 for count in Counter(rows).values())


def _completed_at(status: dict[str, Any]) -> float:
    return datetime.fromisoformat(status["completed_at"].replace("Z", "+00:00")).timestamp()


@pytest.mark.timeout(900)
@dataclass
class KillLog:
    """What the killer did: how many kills found a batch running, and what was done by then."""

    mid_batch: int = 0
    processed_at_kills: list[int] = field(default_factory=list)
    # recovered_s runs from the last kill that found a batch running: later kills hit idle workers.
    last_mid_batch_kill_wall: float = 0.0


def _kill_at_progress(
    stack: Stack, workers: list[ManagedProcess], url: str, points: list[float], rng: random.Random
) -> KillLog:
    """SIGKILLs a random worker as the run passes each fraction of all items, starting a
    replacement after each; it runs beside the submits, which take seconds of their own."""
    log = KillLog()
    all_items = KILLED_BATCHES * KILLED_BATCH_ITEMS
    with api_client(url, stack.api_key, timeout_s=HTTP_TIMEOUT_S) as client:
        for number, point in enumerate(points):
            statuses = _wait_for_progress(client, point * all_items)
            running = len(statuses) < KILLED_BATCHES or any(
                s["status"] not in FINISHED for s in statuses.values()
            )
            log.processed_at_kills.append(sum(s["processed"] for s in statuses.values()))
            slot = rng.randrange(len(workers))
            workers[slot].kill()
            if running:
                log.mid_batch += 1
                log.last_mid_batch_kill_wall = time.time()
            workers[slot] = stack.add_worker(f"replacement-{number}")
    return log


@pytest.mark.timeout(900)
def test_batches_complete_exactly_once_while_workers_are_killed_at_random(
    make_stack: StackFactory,
) -> None:
    stack = make_stack()
    workers = [stack.add_worker("worker-a"), stack.add_worker("worker-b")]
    url = stack.add_api("api")
    rng = random.Random(KILL_SEED)
    kill_points = sorted(rng.uniform(*KILL_AT_FRACTIONS) for _ in range(KILLS))
    assert KILLED_BATCHES <= MAX_UNFINISHED_BATCHES  # one key must be allowed all of them

    with (
        ThreadPoolExecutor(max_workers=1) as killer,
        api_client(url, stack.api_key, timeout_s=HTTP_TIMEOUT_S) as client,
    ):
        kills = killer.submit(_kill_at_progress, stack, workers, url, kill_points, rng)
        first_rows: dict[str, int] = {}
        for n in range(KILLED_BATCHES):
            first_row = n * KILLED_BATCH_ITEMS
            body = {
                "data": _items_from(first_row, KILLED_BATCH_ITEMS),
                "batch_size": KILLED_BATCH_SIZE,
                "parallel": True,
            }
            response = client.post(BATCH_PATH, json=body, headers=RESPOND_ASYNC)
            assert response.status_code == 202, response.text
            first_rows[response.json()["batch_id"]] = first_row
        batch_ids = list(first_rows)
        kill_log = kills.result(timeout=FINISH_TIMEOUT_S)
        statuses = _wait_all_finished(client, batch_ids, stack)
        stored = {batch_id: _stored_amounts(client, batch_id) for batch_id in batch_ids}

    expected = {
        batch_id: expected_amounts(first, first + KILLED_BATCH_ITEMS)
        for batch_id, first in first_rows.items()
    }
    last_completed = max(
        (_completed_at(statuses[b]) for b in batch_ids if statuses[b]["completed_at"]),
        default=kill_log.last_mid_batch_kill_wall,
    )
    report(
        "workers killed",
        batches=len(batch_ids),
        items_sent=KILLED_BATCHES * KILLED_BATCH_ITEMS,
        stored=sum(len(rows) for rows in stored.values()),
        duplicated=sum(_duplicates(rows) for rows in stored.values()),
        missing=sum(len(set(expected[b]) - set(stored[b])) for b in batch_ids),
        kills=KILLS,
        kills_mid_batch=kill_log.mid_batch,
        processed_at_kills="/".join(map(str, kill_log.processed_at_kills)),
        recovered_s=round(max(0.0, last_completed - kill_log.last_mid_batch_kill_wall), 1),
    )
    # A run in which every kill came after the batches ended would have tested nothing.
    assert kill_log.mid_batch >= 1, f"no kill landed while a batch ran: {kill_points}"
    for batch_id in batch_ids:
        status = statuses[batch_id]
        counts = (status["status"], status["processed"], status["filtered"], status["total"])
        assert counts == ("completed", KILLED_BATCH_ITEMS, 0, KILLED_BATCH_ITEMS), (
            f"{status}\n{stack.logs()}"
        )
        assert stored[batch_id] == expected[batch_id], (
            f"{batch_id}: {len(stored[batch_id])} rows stored, "
            f"{_duplicates(stored[batch_id])} duplicated"
        )


@dataclass
class SyncClient:
    """One client's synchronous submit across the restart, and what it was answered."""

    number: int
    api_key: str
    idempotency_key: str
    body: dict[str, Any]
    answer: str = "none"  # "200", "202", "connection_error", "error_<status>" of the first try
    first_status: int | None = None
    first_error: str = ""
    retry_status: int | None = None
    batch_id: str | None = None
    processed_in_answer: int | None = None
    results_in_answer: list[str] | None = None


def _submit_sync(target: SyncClient, url: str) -> httpx.Response:
    headers = {"X-API-Key": target.api_key, "Idempotency-Key": target.idempotency_key}
    with httpx.Client(base_url=url, headers=headers, timeout=HTTP_TIMEOUT_S) as client:
        return client.post(BATCH_PATH, json=target.body)


def _take_answer(target: SyncClient, response: httpx.Response) -> None:
    if response.status_code in (200, 202):
        body = exact_json(response)
        target.batch_id = body["batch_id"]
        if response.status_code == 200:
            target.processed_in_answer = body["processed"]
            target.results_in_answer = amounts(body["results"])


def _run_client(
    target: SyncClient, start_delay_s: float, old_url: str, new_api: dict[str, str]
) -> None:
    """The first try goes to the old API; a connection error or 503 is retried, with the same
    Idempotency-Key, at the new one (``new_api["url"]``, set once it is healthy)."""
    time.sleep(start_delay_s)
    try:
        response = _submit_sync(target, old_url)
    except httpx.TransportError as exc:
        target.answer, target.first_error = "connection_error", type(exc).__name__
    else:
        target.first_status = response.status_code
        target.answer = str(response.status_code)
        if response.status_code not in (200, 202):
            target.answer = f"error_{response.status_code}"
            target.first_error = response.text[:500]
        _take_answer(target, response)
    if target.answer in ("connection_error", "error_503"):
        deadline = time.monotonic() + REGISTER_TIMEOUT_S * 3
        while "url" not in new_api and time.monotonic() < deadline:
            time.sleep(0.2)
        retried = _submit_sync(target, new_api["url"])
        target.retry_status = retried.status_code
        _take_answer(target, retried)


@pytest.mark.timeout(900)
def test_api_restart_under_synchronous_clients_loses_and_doubles_no_batch(
    make_stack: StackFactory,
) -> None:
    stack = make_stack()
    stack.add_worker("worker-a")
    stack.add_worker("worker-b")
    old_url = stack.add_api("api-old")
    old_api = stack.processes[-1]
    # Two keys, because one key may hold only five unfinished batches.
    keys = [stack.api_key, new_key(stack.store_url, f"second-{uuid.uuid4().hex[:8]}")]
    clients = [
        SyncClient(
            number=n,
            api_key=keys[n % len(keys)],
            idempotency_key=f"restart-{n}-{uuid.uuid4().hex}",
            body={
                "data": _items_from(n * SYNC_BATCH_ITEMS, SYNC_BATCH_ITEMS),
                "batch_size": SYNC_BATCH_SIZE,
                "parallel": True,
            },
        )
        for n in range(SYNC_CLIENTS)
    ]
    new_api: dict[str, str] = {}
    threads = [
        threading.Thread(
            target=_run_client, args=(c, c.number * CLIENT_STAGGER_S, old_url, new_api)
        )
        for c in clients
    ]
    for thread in threads:
        thread.start()

    watchers = [api_client(old_url, key, timeout_s=HTTP_TIMEOUT_S) for key in keys]
    deadline = time.monotonic() + REGISTER_TIMEOUT_S
    registered_before = 0
    while registered_before < REGISTERED_BEFORE_RESTART and time.monotonic() < deadline:
        registered_before = sum(len(_batch_statuses(watcher)) for watcher in watchers)
        time.sleep(0.1)
    for watcher in watchers:
        watcher.close()

    old_api.process.send_signal(signal.SIGTERM)
    restarted_wall = time.time()
    new_api["url"] = stack.add_api("api-new")
    old_api.process.wait(STOP_TIMEOUT_S)
    for thread in threads:
        thread.join(HTTP_TIMEOUT_S * 3)
    assert not any(thread.is_alive() for thread in threads), "a client never got an answer"

    listed: dict[str, dict[str, Any]] = {}
    repeated: dict[int, str | None] = {}
    results: dict[str, list[str]] = {}
    with (
        api_client(new_api["url"], keys[0], timeout_s=HTTP_TIMEOUT_S) as first,
        api_client(new_api["url"], keys[1], timeout_s=HTTP_TIMEOUT_S) as second,
    ):
        by_key = {keys[0]: first, keys[1]: second}
        for client in by_key.values():
            listed.update(_batch_statuses(client))
        registered = list(listed)
        for client in by_key.values():
            mine = list(_batch_statuses(client))
            listed.update(_wait_all_finished(client, mine, stack))
            results.update({b: _stored_amounts(client, b) for b in mine})
        # Every Idempotency-Key, sent again, must name the batch it named before: no second one.
        for target in clients:
            again = by_key[target.api_key].post(
                BATCH_PATH,
                json=target.body,
                headers={**RESPOND_ASYNC, "Idempotency-Key": target.idempotency_key},
            )
            repeated[target.number] = (
                again.json().get("batch_id") if again.status_code in (200, 202) else None
            )
        final = {key: _batch_statuses(client) for key, client in by_key.items()}

    answers = Counter(c.answer for c in clients)
    last_completed = max(
        (_completed_at(s) for s in listed.values() if s.get("completed_at")),
        default=restarted_wall,
    )
    report(
        "API restarted under synchronous clients",
        clients=SYNC_CLIENTS,
        registered_before_restart=registered_before,
        answered_200=answers["200"],
        answered_202=answers["202"],
        connection_errors=answers["connection_error"],
        other_answers=sum(n for a, n in answers.items() if a.startswith("error_")),
        batches_registered=sum(len(batches) for batches in final.values()),
        items_sent=SYNC_CLIENTS * SYNC_BATCH_ITEMS,
        stored=sum(len(rows) for rows in results.values()),
        duplicated=sum(_duplicates(rows) for rows in results.values())
        + max(0, len(registered) - SYNC_CLIENTS),
        recovered_s=round(max(0.0, last_completed - restarted_wall), 1),
    )
    outcomes = "\n".join(repr(c) for c in clients)

    # uvicorn (0.29 on) raises the captured SIGTERM again once it has shut down cleanly, so a
    # clean exit reads -15; the lifespan's closing line shows the drain really finished.
    assert old_api.process.returncode in (0, -signal.SIGTERM), old_api.output()
    assert "Application shutdown complete" in old_api.output(), old_api.output()
    # A clean answer (200, 202), a refused connection, or a clean 503: never a 500.
    for target in clients:
        assert target.answer in ("200", "202", "connection_error", "error_503"), (
            f"client {target.number}: {target.answer} {target.first_error}\n{stack.logs()}"
        )
        assert target.batch_id is not None, f"client {target.number} has no batch:\n{outcomes}"
        assert repeated[target.number] == target.batch_id, (
            f"client {target.number}: its Idempotency-Key now names {repeated[target.number]}, "
            f"before {target.batch_id}\n{outcomes}"
        )
    client_batches = {c.batch_id for c in clients}
    all_listed = {b for batches in final.values() for b in batches}
    assert all_listed == client_batches, f"listed {sorted(all_listed)}\n{outcomes}"
    assert len(client_batches) == SYNC_CLIENTS, outcomes

    for target in clients:
        assert target.batch_id is not None
        first_row = target.number * SYNC_BATCH_ITEMS
        expected = expected_amounts(first_row, first_row + SYNC_BATCH_ITEMS)
        status = listed[target.batch_id]
        counts = (status["status"], status["processed"], status["filtered"], status["total"])
        assert counts == ("completed", SYNC_BATCH_ITEMS, 0, SYNC_BATCH_ITEMS), (
            f"{status}\n{stack.logs()}"
        )
        assert results[target.batch_id] == expected, (
            f"{target.batch_id}: {len(results[target.batch_id])} rows stored, "
            f"{_duplicates(results[target.batch_id])} duplicated"
        )
        if target.results_in_answer is not None:
            assert target.processed_in_answer == SYNC_BATCH_ITEMS
            assert target.results_in_answer == expected, f"client {target.number}'s 200 body"
