"""A dependency goes away for ten seconds while a batch runs: Kafka, then PostgreSQL.

During the outage every request that needs the missing service must get a prompt 503
`service_unavailable` (never a 500, never a hang); once it is back, the batch in flight must
complete with exact counts and every result stored exactly once.
"""

from __future__ import annotations

import shutil
import subprocess
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from batchline.broker import local_broker
from streams.publisher import OUTAGE_NOTICED_WITHIN_S
from tests.integration.api.client import (
    BATCH_PATH,
    RESPOND_ASYNC,
    amounts,
    api_client,
    assert_error,
    exact_json,
    expected_amounts,
    numbered_items,
    read_status,
    submit_async,
    wait_finished,
)
from tests.integration.stack import Stack, StackFactory, new_key, stack_env
from tests.reliability.figures import report

pytestmark = [pytest.mark.kafka, pytest.mark.slow, pytest.mark.timeout(900)]

OUTAGE_S = 10.0
# The API gives up on an unreachable broker after its publisher's send timeout; anything much
# slower than that is a hang, not an answer.
# The API notices a broker that stopped answering within OUTAGE_NOTICED_WITHIN_S (3 s), and
# answers at once after that; the margin is for a machine busy restarting things.
ANSWER_BOUND_S = OUTAGE_NOTICED_WITHIN_S + 3.0
# Two cores shared with other suites: recovery is judged on correctness, not speed.
RECOVERY_TIMEOUT_S = 600.0
BROKER_READY_TIMEOUT_S = 180.0
# Large enough (100 chunks) that the batch is usually still being worked when the outage begins.
ITEMS = 5_000
BATCH_SIZE = 50
RESULTS_PAGE = 1_000
PROBE_PAUSE_S = 0.5

PG_PORT = 5432
PG_CLUSTER = "main"
PG_READY_TIMEOUT_S = 120.0


@dataclass
class OutageAnswers:
    """What the API answered while the service was away: status codes with the time each took."""

    answers: list[tuple[str, int, float, str]] = field(default_factory=list)

    def ask(self, what: str, send: Callable[[], httpx.Response]) -> None:
        started = time.monotonic()
        try:
            response = send()
        except httpx.TimeoutException:
            self.answers.append((what, 0, time.monotonic() - started, "no answer (timeout)"))
            return
        elapsed = time.monotonic() - started
        self.answers.append((what, response.status_code, elapsed, response.text[:300]))
        if response.status_code == 503:
            # One error shape; its code is the stable one clients retry on.
            assert_error(response, 503, "service_unavailable")
            assert response.headers.get("Retry-After"), response.headers

    def count(self, what: str, status_code: int) -> int:
        return sum(1 for w, code, _, _ in self.answers if w == what and code == status_code)

    def not_503(self) -> list[tuple[str, int, float, str]]:
        return [answer for answer in self.answers if answer[1] != 503]

    def slowest_s(self) -> float:
        return max((elapsed for _, _, elapsed, _ in self.answers), default=0.0)


def _probe_client(url: str, key: str) -> httpx.Client:
    # Bounded well above ANSWER_BOUND_S so that a slow answer is measured, a hang is cut off.
    return api_client(url, key, timeout_s=ANSWER_BOUND_S + 5.0)


def _small_submit(client: httpx.Client) -> httpx.Response:
    body = {"data": numbered_items(3), "batch_size": 10}
    return client.post(BATCH_PATH, json=body, headers=RESPOND_ASYNC)


def _all_results(client: httpx.Client, batch_id: str) -> list[str]:
    """Every stored result's amount, page by page, until a page comes back short."""
    found: list[str] = []
    offset = 0
    while True:
        response = client.get(
            f"{BATCH_PATH}/{batch_id}/results", params={"offset": offset, "limit": RESULTS_PAGE}
        )
        assert response.status_code == 200, response.text
        page = exact_json(response)["results"]
        found.extend(amounts(page))
        if len(page) < RESULTS_PAGE:
            return found
        offset += RESULTS_PAGE


def _duplicated(stored: list[str]) -> int:
    return sum(copies - 1 for copies in Counter(stored).values() if copies > 1)


def _assert_exactly_once(status: dict[str, Any], stored: list[str], logs: str) -> None:
    assert (status["status"], status["processed"], status["total"]) == (
        "completed",
        ITEMS,
        ITEMS,
    ), f"{status}\n{logs}"
    assert _duplicated(stored) == 0, f"duplicated rows: {_duplicated(stored)}\n{logs}"
    missing = sorted(set(expected_amounts(0, ITEMS)) - set(stored))
    assert not missing, f"{len(missing)} rows lost, first {missing[:10]}\n{logs}"
    assert stored == expected_amounts(0, ITEMS), "results out of item order"


@dataclass(frozen=True, slots=True)
class Recovery:
    """What one outage scenario saw."""

    processed_at_outage: int
    outage_s: float
    recovered_s: float
    answers: OutageAnswers
    status: dict[str, Any]
    stored: list[str]


def _report_and_check(scenario: str, stack: Stack, seen: Recovery, **more: int) -> None:
    """Reports the figures first (so a failing run still prints them), then asserts."""
    report(
        scenario,
        items_sent=ITEMS,
        processed_at_outage=seen.processed_at_outage,
        outage_s=round(seen.outage_s, 1),
        stored=len(seen.stored),
        duplicated=_duplicated(seen.stored),
        **more,
        submits_503=seen.answers.count("submit", 503),
        other_answers=len(seen.answers.not_503()),
        slowest_answer_s=round(seen.answers.slowest_s(), 1),
        recovered_s=round(seen.recovered_s, 1),
    )
    logs = stack.logs()
    # A crashed Faust agent counts nothing more until the worker restarts.
    assert "Crashed reason=" not in logs, logs[-4000:]
    _assert_prompt_503s(seen.answers, logs)
    _assert_exactly_once(seen.status, seen.stored, logs)


def _assert_prompt_503s(answers: OutageAnswers, logs: str) -> None:
    assert answers.answers, "nothing was asked during the outage"
    assert not answers.not_503(), f"answers other than 503: {answers.not_503()}\n{logs}"
    assert answers.slowest_s() <= ANSWER_BOUND_S, (
        f"slowest answer {answers.slowest_s():.1f} s > {ANSWER_BOUND_S} s: {answers.answers}"
    )


# --- Kafka ---------------------------------------------------------------------------------


def test_batch_completes_exactly_once_after_kafka_is_down_for_ten_seconds(
    tmp_path: Path, topic_prefix: str
) -> None:
    broker_dir = tmp_path / "kafka"
    port = local_broker.free_port()
    broker = local_broker.start(broker_dir, port)
    bootstrap = f"127.0.0.1:{port}"
    store_url = f"sqlite+aiosqlite:///{tmp_path / 'results.db'}"
    stack = Stack(
        env=stack_env(
            kafka=bootstrap, prefix=topic_prefix, store_url=store_url, data_dir=tmp_path / "data"
        ),
        store_url=store_url,
        log_dir=tmp_path,
    )
    try:
        local_broker.wait_ready(bootstrap, broker, BROKER_READY_TIMEOUT_S)
        stack.api_key = new_key(store_url, f"test-{uuid.uuid4().hex[:8]}")
        stack.add_worker()
        url = stack.add_api()
        with api_client(url, stack.api_key) as client, _probe_client(url, stack.api_key) as probe:
            batch_id = submit_async(
                client, {"data": numbered_items(ITEMS), "batch_size": BATCH_SIZE}
            )
            processed_at_outage = read_status(client, batch_id)["processed"]
            local_broker.stop(broker)
            outage_started = time.monotonic()
            answers = OutageAnswers()
            while time.monotonic() - outage_started < OUTAGE_S:
                answers.ask("submit", lambda: _small_submit(probe))
                time.sleep(PROBE_PAUSE_S)
            outage_s = time.monotonic() - outage_started

            # Same data dir and port: the topics, offsets and the batch's chunks are all kept.
            restarted = time.monotonic()
            broker = local_broker.start(broker_dir, port)
            local_broker.wait_ready(bootstrap, broker, BROKER_READY_TIMEOUT_S)
            status = wait_finished(client, batch_id, timeout_s=RECOVERY_TIMEOUT_S)
            recovered_s = time.monotonic() - restarted
            stored = _all_results(client, batch_id)

        _report_and_check(
            "kafka down 10 s during a batch",
            stack,
            Recovery(processed_at_outage, outage_s, recovered_s, answers, status, stored),
        )
    except BaseException:
        print(stack.logs())  # pytest shows it with the failure
        raise
    finally:
        stack.stop()
        local_broker.stop(broker)


# --- PostgreSQL ----------------------------------------------------------------------------


def _pg_version() -> str:
    return sorted(Path("/usr/lib/postgresql").iterdir(), key=lambda p: float(p.name))[-1].name


def _pg_ctl(action: str) -> None:
    pg_ctlcluster = shutil.which("pg_ctlcluster")
    assert pg_ctlcluster, "pg_ctlcluster not found: run scripts/services.sh"
    subprocess.run(  # noqa: S603 - fixed arguments, no shell
        [pg_ctlcluster, _pg_version(), PG_CLUSTER, action], check=True, capture_output=True
    )


def _pg_ready() -> bool:
    pg_isready = shutil.which("pg_isready")
    assert pg_isready, "pg_isready not found: run scripts/services.sh"
    result = subprocess.run(  # noqa: S603 - fixed arguments, no shell
        [pg_isready, "-q", "-h", "127.0.0.1", "-p", str(PG_PORT)], check=False
    )
    return result.returncode == 0


def _start_postgres() -> None:
    """Idempotent: others' tests share this server, so it must come back whatever happened."""
    if not _pg_ready():
        subprocess.run(  # noqa: S603 - fixed arguments, no shell
            [shutil.which("pg_ctlcluster") or "pg_ctlcluster", _pg_version(), PG_CLUSTER, "start"],
            check=False,
            capture_output=True,
        )
    deadline = time.monotonic() + PG_READY_TIMEOUT_S
    while not _pg_ready():
        assert time.monotonic() < deadline, f"PostgreSQL not ready in {PG_READY_TIMEOUT_S} s"
        time.sleep(0.2)


@pytest.mark.postgres
def test_batch_completes_exactly_once_after_postgres_is_down_for_ten_seconds(
    make_stack: StackFactory, pg_store_url: str
) -> None:
    stack = make_stack(store_url=pg_store_url)
    try:
        _run_postgres_outage(stack)
    except BaseException:
        print(stack.logs())  # pytest shows it with the failure
        raise


def _run_postgres_outage(stack: Stack) -> None:
    stack.add_worker()
    url = stack.add_api()
    with api_client(url, stack.api_key) as client, _probe_client(url, stack.api_key) as probe:
        batch_id = submit_async(client, {"data": numbered_items(ITEMS), "batch_size": BATCH_SIZE})
        processed_at_outage = read_status(client, batch_id)["processed"]
        answers = OutageAnswers()
        try:
            _pg_ctl("stop")
            outage_started = time.monotonic()
            while time.monotonic() - outage_started < OUTAGE_S:
                answers.ask("status", lambda: probe.get(f"{BATCH_PATH}/{batch_id}"))
                answers.ask("submit", lambda: _small_submit(probe))
                time.sleep(PROBE_PAUSE_S)
            outage_s = time.monotonic() - outage_started
        finally:
            restarted = time.monotonic()
            _start_postgres()
        status = wait_finished(client, batch_id, timeout_s=RECOVERY_TIMEOUT_S)
        recovered_s = time.monotonic() - restarted
        stored = _all_results(client, batch_id)

    _report_and_check(
        "postgres down 10 s during a batch",
        stack,
        Recovery(processed_at_outage, outage_s, recovered_s, answers, status, stored),
        status_503=answers.count("status", 503),
    )
