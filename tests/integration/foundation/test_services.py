"""The PostgreSQL and Redis servers the suite relies on answer over real connections, and the
script that provides them can be eval'd."""

from __future__ import annotations

import os
import subprocess
import uuid
from pathlib import Path

import asyncpg
import pytest
import redis.asyncio as aioredis
from sqlalchemy.engine import make_url

from batchline.broker import free_port


@pytest.mark.postgres
async def test_postgresql_answers_a_query(postgres_url: str) -> None:
    url = make_url(postgres_url)
    connection = await asyncpg.connect(
        host=url.host,
        port=url.port,
        user=url.username,
        password=url.password,
        database=url.database,
    )
    try:
        assert await connection.fetchval("SELECT 40 + 2") == 42
    finally:
        await connection.close()


@pytest.mark.redis
async def test_redis_stores_and_returns_a_value(redis_url: str) -> None:
    client = aioredis.from_url(redis_url)
    try:
        await client.set("batchline:test:ping", "pong", ex=10)
        assert await client.get("batchline:test:ping") == b"pong"
    finally:
        await client.aclose()


SERVICES_SCRIPT = Path(__file__).resolve().parents[3] / "scripts" / "services.sh"


@pytest.mark.postgres
@pytest.mark.redis
@pytest.mark.slow
def test_services_script_starts_its_servers_and_prints_only_assignments(tmp_path: Path) -> None:
    # A PostgreSQL cluster and a Redis of the test's own, on free ports. Started twice: the second
    # time after an unclean stop left a stale pid file, which makes pg_ctlcluster print "Removed
    # stale pid file." (CI once eval'd that line and failed). Stdout is a pipe, as under
    # `eval "$(bash scripts/services.sh)"`, so a server that inherited it would hang the call.
    cluster = f"bltest{uuid.uuid4().hex[:8]}"
    env = {
        **os.environ,
        "BATCHLINE_PG_PORT": str(free_port()),
        "BATCHLINE_PG_CLUSTER": cluster,
        "BATCHLINE_REDIS_PORT": str(free_port()),
        "BATCHLINE_SERVICES_STATE": str(tmp_path / "started"),
    }
    try:
        for round_ in ("first start", "start after an unclean stop"):
            started = _services(env)
            try:
                assert started.returncode == 0, (round_, started.stderr)
                assert [line.split("=", 1)[0] for line in started.stdout.splitlines()] == [
                    "BATCHLINE_TEST_POSTGRES_URL",
                    "BATCHLINE_TEST_REDIS_URL",
                ], round_
                assert _postgres_answers(env), round_
                assert _redis_answers(env), round_
            finally:
                assert _services(env, "stop").returncode == 0
            assert not _postgres_answers(env)
            assert not _redis_answers(env)
            pid_file = _cluster_data_dir(cluster) / "postmaster.pid"
            stale = f"999999\n{pid_file.parent}\n"
            subprocess.run(
                _as_root("tee", str(pid_file)),
                input=stale,
                text=True,
                stdout=subprocess.DEVNULL,
                check=True,
            )
            subprocess.run(_as_root("chown", "postgres", str(pid_file)), check=True)
    finally:
        dropped = subprocess.run(
            _as_root("pg_dropcluster", "--stop", _newest_postgresql(), cluster),
            capture_output=True,
            check=False,
        )
    assert dropped.returncode == 0, dropped.stderr


def _as_root(*command: str) -> list[str]:
    # As the script does: the clusters belong to root and postgres.
    return list(command) if os.geteuid() == 0 else ["sudo", *command]


def _services(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(SERVICES_SCRIPT), *args],
        env=env,
        capture_output=True,  # stdout a pipe, as under eval "$(...)"
        text=True,
        timeout=120,
        check=False,
    )


def _newest_postgresql() -> str:
    versions = [path.name for path in Path("/usr/lib/postgresql").iterdir()]
    return max(versions, key=lambda version: [int(part) for part in version.split(".")])


def _cluster_data_dir(cluster: str) -> Path:
    return Path("/var/lib/postgresql") / _newest_postgresql() / cluster


def _postgres_answers(env: dict[str, str]) -> bool:
    ready = subprocess.run(
        ["pg_isready", "-q", "-h", "127.0.0.1", "-p", env["BATCHLINE_PG_PORT"]], check=False
    )
    return ready.returncode == 0


def _redis_answers(env: dict[str, str]) -> bool:
    ping = subprocess.run(
        ["redis-cli", "-h", "127.0.0.1", "-p", env["BATCHLINE_REDIS_PORT"], "ping"],
        capture_output=True,
        text=True,
        timeout=10,
        check=False,
    )
    return ping.stdout.strip() == "PONG"
