"""A client generated from the running API's /openapi.json by openapi-python-client (what a user
would do) submits the seed's example and reads back the seed's answer (issue J, point 4)."""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

from schemas.http import SEED_RESULT
from tests.integration.api.client import seed_body
from tests.integration.stack import StackFactory

pytestmark = [pytest.mark.kafka, pytest.mark.slow]
PACKAGE = "batchline_generated_client"


def generate(url: str, folder: Path) -> Any:
    spec = folder / "openapi.json"
    spec.write_bytes(httpx.get(f"{url}/openapi.json", timeout=10).content)
    tool = Path(sys.executable).parent / "openapi-python-client"
    env = {**os.environ, "PATH": f"{tool.parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    made = subprocess.run(
        [str(tool), "generate", "--path", str(spec), "--output-path", str(folder / PACKAGE)]
        + ["--meta", "none"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert made.returncode == 0, made.stdout + made.stderr
    sys.path.insert(0, str(folder))
    try:
        return importlib.import_module(PACKAGE)
    finally:
        sys.path.remove(str(folder))


def test_a_generated_client_round_trips_the_seed_example(
    make_stack: StackFactory, tmp_path: Path
) -> None:
    stack = make_stack()
    stack.add_worker()
    url = stack.add_api()
    generate(url, tmp_path)
    create_batch = importlib.import_module(f"{PACKAGE}.api.batches.create_batch")
    models = importlib.import_module(f"{PACKAGE}.models")
    client_module = importlib.import_module(f"{PACKAGE}.client")
    client = client_module.AuthenticatedClient(
        base_url=url, token=stack.api_key, prefix="", auth_header_name="X-API-Key"
    )
    body = models.CreateBatchBatchCreate.from_dict(seed_body())
    with client:
        answer = create_batch.sync_detailed(client=client, body=body)
        exact = create_batch.sync_detailed(
            client=client, body=body, decimals=models.CreateBatchDecimals.STRING
        )
    assert answer.status_code == 200, answer.content
    result = answer.parsed
    assert isinstance(result, models.BatchResult)
    assert (result.status, result.processed, result.filtered) == ("success", 1, 0)
    # The bytes are the seed's: the amount an exact 100.50, which a float parser would not keep.
    assert b'"amount":100.50' in answer.content

    assert exact.status_code == 200, exact.content
    first = exact.parsed.results[0].to_dict()
    assert first == {**SEED_RESULT, "amount": "100.50"}
