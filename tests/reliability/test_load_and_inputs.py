"""Load at the limits, the hostile corpus and generated requests, against running API
processes."""

from __future__ import annotations

import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

from api.limits import MAX_UNFINISHED_BATCHES
from tests.integration.api.client import BATCH_PATH, BATCHES_PATH, RESPOND_ASYNC, seed_body
from tests.integration.api.test_hostile_input import HOSTILE, JSON
from tests.integration.api.test_openapi_fuzz import run_schemathesis
from tests.integration.stack import StackFactory, new_key
from tests.reliability.figures import report

KEYS = 10
PER_MINUTE = 60
REQUESTS_PER_KEY = 80
SUBMITS_PER_KEY = 8
LOAD_BOUND_S = 120.0
# Examples per operation and phase: enough for at least 2,000 generated requests in all.
FUZZ_EXAMPLES = 150


def _one_key(urls: list[str], key: str) -> list[tuple[str, int, str]]:
    """The key's requests, alternating between the API processes: (kind, status, error)."""
    answers = []
    with httpx.Client(headers={"X-API-Key": key}, timeout=60) as client:
        for n in range(REQUESTS_PER_KEY):
            url = urls[n % len(urls)]
            if n % (REQUESTS_PER_KEY // SUBMITS_PER_KEY) == 0:
                kind = "submit"
                response = client.post(
                    f"{url}{BATCH_PATH}", json=seed_body(), headers=RESPOND_ASYNC
                )
            else:
                kind = "list"
                response = client.get(f"{url}{BATCHES_PATH}")
            error = response.json().get("error", "") if response.status_code >= 400 else ""
            answers.append((kind, response.status_code, error))
    return answers


def test_two_api_processes_ten_keys_every_answer_is_2xx_or_429_as_the_limits_say(
    make_stack: StackFactory, redis_url: str
) -> None:
    """No worker runs, so every accepted batch stays unfinished: per key, exactly
    MAX_UNFINISHED_BATCHES submits are accepted, and exactly PER_MINUTE requests pass the
    request-rate limit, shared by both processes through Redis."""
    stack = make_stack(BATCHLINE_REDIS_URL=redis_url, BATCHLINE_REQUESTS_PER_MINUTE=str(PER_MINUTE))
    urls = [stack.add_api("api-a"), stack.add_api("api-b")]
    keys = [new_key(stack.store_url, f"load-{n}") for n in range(KEYS)]

    started = time.monotonic()
    with ThreadPoolExecutor(KEYS) as pool:
        per_key = list(pool.map(lambda key: _one_key(urls, key), keys))
    elapsed = time.monotonic() - started
    assert elapsed < LOAD_BOUND_S, elapsed
    # Exact counts need every request inside one minute of the moving window.
    assert elapsed < 60, f"the load took {elapsed:.0f} s, longer than the rate window"

    statuses: Counter[int] = Counter()
    for answers in per_key:
        statuses.update(status for _, status, _ in answers)
        assert all(200 <= status < 300 or status == 429 for _, status, _ in answers), answers
        rate_limited = [a for a in answers if a[2] == "rate_limit_exceeded"]
        assert len(rate_limited) == REQUESTS_PER_KEY - PER_MINUTE, Counter(answers)
        # The first PER_MINUTE requests of a key pass the rate limit; the rest do not.
        assert all(error != "rate_limit_exceeded" for _, _, error in answers[:PER_MINUTE])
        passed_submits = [a for a in answers[:PER_MINUTE] if a[0] == "submit"]
        accepted = [a for a in passed_submits if a[1] == 202]
        assert len(accepted) == MAX_UNFINISHED_BATCHES, passed_submits
        assert all(
            error == "too_many_concurrent_batches"
            for _, status, error in passed_submits
            if status != 202
        )
    report(
        "load at the limits (2 API processes, 10 keys, shared Redis)",
        requests=KEYS * REQUESTS_PER_KEY,
        answered_2xx=sum(c for s, c in statuses.items() if 200 <= s < 300),
        answered_429=statuses[429],
        other=sum(c for s, c in statuses.items() if not (200 <= s < 300 or s == 429)),
        seconds=round(elapsed, 1),
    )


def test_hostile_corpus_each_class_answered_4xx_within_a_second(make_stack: StackFactory) -> None:
    stack = make_stack()
    url = stack.add_api()
    slowest = 0.0
    with httpx.Client(base_url=url, headers={"X-API-Key": stack.api_key}, timeout=30) as client:
        for what, body, headers, status_code, error in HOSTILE:
            started = time.monotonic()
            response = client.post(BATCH_PATH, content=body, headers={**JSON, **headers})
            took = time.monotonic() - started
            assert (response.status_code, response.json()["error"]) == (status_code, error), what
            assert took < 1.0, (what, took)
            slowest = max(slowest, took)
        assert client.get(BATCHES_PATH).json()["batches"] == []
    report(
        "hostile corpus",
        classes=len(HOSTILE),
        answered_4xx=len(HOSTILE),
        slowest_ms=round(slowest * 1000, 1),
        registered=0,
    )


def test_generated_requests_at_least_2000_cases_no_5xx(
    make_stack: StackFactory, tmp_path: Path
) -> None:
    started = time.monotonic()
    cases = run_schemathesis(make_stack, tmp_path, FUZZ_EXAMPLES)
    assert cases >= 2000, cases
    report(
        "generated requests (schemathesis)",
        cases=cases,
        server_errors=0,
        seconds=round(time.monotonic() - started, 1),
    )
