"""The service image's contents, checked without a Docker engine (none runs here).

The build stage's files are laid out as compose/Dockerfile's COPY lines lay them out (from the
context its dockerignore leaves), installed as its ``pip install .`` installs them into a fresh
virtual environment, and run as the compose services run them (``batchline worker``,
``batchline api``, ``batchline keys create``) from a folder outside the checkout, so nothing is
imported from the checkout itself. What this cannot check is the base image and the containers'
network, which only a Docker engine runs.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

import httpx
import pytest

from tests.integration.api.client import post_seed
from tests.integration.stack import Launcher, StackFactory
from tests.unit.compose.build_context import assemble_source_tree

pytestmark = [pytest.mark.kafka, pytest.mark.slow]
INSTALL_TIMEOUT_S = 600
COMMAND_TIMEOUT_S = 60
# Settings that would make the installed interpreter import from somewhere else.
_NOT_IN_THE_IMAGE = ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME")


def image_env(env: Mapping[str, str], venv: Path) -> dict[str, str]:
    clean = {name: value for name, value in env.items() if name not in _NOT_IN_THE_IMAGE}
    clean["PATH"] = f"{venv / 'bin'}:/usr/bin:/bin"
    return clean


@pytest.fixture(scope="module")
def image_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("image")
    source = root / "src"
    assemble_source_tree(source)
    venv = root / "opt-batchline"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)  # noqa: S603
    # As the Dockerfile's `RUN /opt/batchline/bin/pip install .` (with pip's cache, for time).
    installed = subprocess.run(  # noqa: S603
        [str(venv / "bin" / "pip"), "install", "-q", "--disable-pip-version-check", "."],
        cwd=source,
        env=image_env({}, venv),
        capture_output=True,
        text=True,
        timeout=INSTALL_TIMEOUT_S,
        check=False,
    )
    assert installed.returncode == 0, installed.stdout + installed.stderr
    return venv


def run(venv: Path, args: list[str], env: Mapping[str, str], cwd: Path) -> str:
    result = subprocess.run(  # noqa: S603
        args,
        cwd=cwd,
        env=image_env(env, venv),
        capture_output=True,
        text=True,
        timeout=COMMAND_TIMEOUT_S,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def test_the_installed_image_contents_run_the_service(
    make_stack: StackFactory, image_venv: Path, tmp_path: Path
) -> None:
    workdir = tmp_path / "var-lib-batchline"  # the image's WORKDIR
    workdir.mkdir()
    batchline = str(image_venv / "bin" / "batchline")
    stack = make_stack()
    stack.env = image_env(stack.env, image_venv)
    stack.launcher = Launcher((batchline,), workdir)

    # Every package comes from the installed environment, package data included.
    python = str(image_venv / "bin" / "python")
    where = run(
        image_venv,
        [
            python,
            "-c",
            "import api, batchline, schemas, store, streams, telemetry, transforms; "
            "print(api.__file__)",
        ],
        stack.env,
        workdir,
    )
    assert where.startswith(str(image_venv))
    assert "Usage: batchline" in run(image_venv, [batchline, "--help"], stack.env, workdir)
    # compose/README.md: `docker compose ... exec api batchline keys create --name me`.
    api_key = run(image_venv, [batchline, "keys", "create", "--name", "me"], stack.env, workdir)
    api_key = api_key.splitlines()[-1]

    stack.add_worker()
    url = stack.add_api()
    body = post_seed(url, api_key).json()
    assert body["results"] == [
        {
            "timestamp": "2024-01-01T00:00:00Z",
            "amount": 100.50,
            "email": "u***r@example.com",
            "phone": "***-0123",
        }
    ]
    console = httpx.get(f"{url}/", timeout=10)
    assert console.status_code == 200 and "console.js" in console.text
    assert httpx.get(f"{url}/console/console.js", timeout=10).status_code == 200
