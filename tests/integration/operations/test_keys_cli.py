"""`batchline keys`: a key printed once, listed without its secret, refused after revoking."""

from __future__ import annotations

import os
import subprocess
import sys

import httpx
import pytest

from tests.integration.stack import StackFactory

pytestmark = [pytest.mark.kafka, pytest.mark.slow]


def _keys(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "batchline.cli", "keys", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_created_key_works_is_listed_without_secret_and_is_refused_once_revoked(
    make_stack: StackFactory,
) -> None:
    stack = make_stack()
    url = stack.add_api()
    env = {**os.environ, "BATCHLINE_STORE_URL": stack.store_url}

    created = _keys(env, "create", "--name", "analytics")
    assert created.returncode == 0, created.stderr
    key = created.stdout.strip().splitlines()[-1]
    assert key.startswith("bl_") and len(key) > 40
    batches = f"{url}/api/v1/transform/batches"
    assert httpx.get(batches, headers={"X-API-Key": key}, timeout=10).status_code == 200

    listed = _keys(env, "list")
    assert listed.returncode == 0
    assert "analytics" in listed.stdout and "active" in listed.stdout
    assert key not in listed.stdout

    assert _keys(env, "create", "--name", "analytics").returncode == 1  # names are unique
    revoked = _keys(env, "revoke", "analytics")
    assert revoked.returncode == 0, revoked.stderr
    refused = httpx.get(batches, headers={"X-API-Key": key}, timeout=10)
    assert refused.status_code == 401
    assert refused.json()["error"] == "unauthorized"
    assert "revoked" in _keys(env, "list").stdout
    assert _keys(env, "revoke", "analytics").returncode == 1
