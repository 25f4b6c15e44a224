"""The console's files come from the API itself, with a strict Content-Security-Policy."""

from __future__ import annotations

import re

import httpx
import pytest

from api.console import FILES
from tests.integration.stack import StackFactory

pytestmark = [pytest.mark.kafka]
SVG_NAMESPACE = "http://www.w3.org/2000/svg"


def test_the_console_and_its_files_are_served_with_a_strict_policy(
    make_stack: StackFactory,
) -> None:
    url = make_stack().add_api()
    page = httpx.get(f"{url}/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    policy = page.headers["content-security-policy"]
    assert "default-src 'none'" in policy and "script-src 'self'" in policy
    assert "unsafe-inline" not in policy and "frame-ancestors 'none'" in policy
    assert page.headers["x-content-type-options"] == "nosniff"
    # Nothing inline for the policy to allow, and nothing from another host.
    assert "<script>" not in page.text and " style=" not in page.text
    assert not re.search(r"(src|href)=\"(https?:)?//", page.text)
    for name, media_type in FILES.items():
        asset = httpx.get(f"{url}/console/{name}")
        assert (asset.status_code, asset.headers["content-type"]) == (200, media_type)
        assert "content-security-policy" in asset.headers
        # The SVG namespace is a name, not an address that is loaded.
        text = asset.text.replace(SVG_NAMESPACE, "")
        assert "http://" not in text and "https://" not in text, name
    assert httpx.head(f"{url}/").status_code == 200
    for missing in ("nope.js", "..%2Fconsole.py", "%2e%2e%2fmain.py"):
        answer = httpx.get(f"{url}/console/{missing}")
        assert answer.status_code == 404
        assert answer.json()["error"] == "not_found"
