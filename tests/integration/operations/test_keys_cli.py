"""`batchline keys`: a key printed once, listed without its secret, refused after revoking."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from api.security import hash_api_key
from streams.owners import producer_namespace
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
    # The last column: the namespace its producers' batch IDs carry (grant-producer --namespace).
    [row] = [line.split("\t") for line in listed.stdout.splitlines() if "analytics" in line]
    assert row[-1] == producer_namespace(hash_api_key(key))

    assert _keys(env, "create", "--name", "analytics").returncode == 1  # names are unique
    revoked = _keys(env, "revoke", "analytics")
    assert revoked.returncode == 0, revoked.stderr
    refused = httpx.get(batches, headers={"X-API-Key": key}, timeout=10)
    assert refused.status_code == 401
    assert refused.json()["error"] == "unauthorized"
    assert "revoked" in _keys(env, "list").stdout
    assert _keys(env, "revoke", "analytics").returncode == 1


def test_keys_outside_the_project_folder_say_where_the_store_is_and_create_nothing(
    tmp_path: Path,
) -> None:
    env = {k: v for k, v in os.environ.items() if k != "BATCHLINE_STORE_URL"}
    for args in (["list"], ["create", "--name", "x"], ["revoke", "x"]):
        answer = subprocess.run(
            [sys.executable, "-m", "batchline.cli", "keys", *args],
            env=env,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert answer.returncode == 1, answer.stdout
        assert f"there is no results store at {tmp_path / 'data' / 'results.db'}" in answer.stderr
        assert "BATCHLINE_STORE_URL" in answer.stderr
    assert list(tmp_path.iterdir()) == []  # no data/results.db made by surprise
