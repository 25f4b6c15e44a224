"""The broker stops while the API runs: submits get a prompt 503, and work again once it is back.

(The fault suite, tests/reliability/test_outages.py, also checks that a batch in flight then
completes exactly once.)
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from batchline import broker
from streams.publisher import OUTAGE_NOTICED_WITHIN_S, SEND_TIMEOUT_S
from tests.integration.api.client import (
    BATCH_PATH,
    RESPOND_ASYNC,
    api_client,
    assert_error,
    seed_body,
)
from tests.integration.stack import StackFactory

pytestmark = [pytest.mark.kafka, pytest.mark.slow]
# Answers within this, not after SEND_TIMEOUT_S; the margin is for a busy machine.
PROMPT_S = OUTAGE_NOTICED_WITHIN_S + 2.0
BACK_WITHIN_S = 60.0


def test_submits_get_a_prompt_503_while_the_broker_is_down_and_succeed_after(
    make_stack: StackFactory, tmp_path: Path
) -> None:
    assert PROMPT_S < SEND_TIMEOUT_S
    broker_dir, port = tmp_path / "kafka", broker.free_port()
    process = broker.start(broker_dir, port)
    try:
        broker.wait_ready(f"127.0.0.1:{port}", process)
        stack = make_stack(BATCHLINE_KAFKA_BOOTSTRAP=f"127.0.0.1:{port}")
        url = stack.add_api()
        with api_client(url, stack.api_key) as client:
            assert (
                client.post(BATCH_PATH, json=seed_body(), headers=RESPOND_ASYNC).status_code == 202
            )
            broker.stop(process)
            waits = []
            for _ in range(3):
                started = time.monotonic()
                response = client.post(BATCH_PATH, json=seed_body(), headers=RESPOND_ASYNC)
                waits.append(time.monotonic() - started)
                assert_error(response, 503, "service_unavailable")
                assert int(response.headers["Retry-After"]) > 0
            assert max(waits) < PROMPT_S, waits

            process = broker.start(broker_dir, port)
            broker.wait_ready(f"127.0.0.1:{port}", process)
            deadline = time.monotonic() + BACK_WITHIN_S
            while True:
                response = client.post(BATCH_PATH, json=seed_body(), headers=RESPOND_ASYNC)
                if response.status_code == 202 or time.monotonic() > deadline:
                    break
                assert_error(response, 503, "service_unavailable")
                time.sleep(0.5)
            assert response.status_code == 202, response.text
    finally:
        broker.stop(process)
