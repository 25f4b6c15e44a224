"""The web console: one page and its own scripts and styles, served by the API at `/`.

Everything it loads comes from this server (no CDN), so it works offline. The API key lives in
the browser's session storage and travels only as the X-API-Key header of the console's own
requests to /api/v1: never in a URL or a cookie, so it never reaches an access log.
"""

from __future__ import annotations

from importlib import resources
from typing import Final

from fastapi import APIRouter
from fastapi.responses import Response

from api.errors import ApiError
from schemas.http import ErrorCode

router = APIRouter(include_in_schema=False)

ASSETS = resources.files("api") / "console_assets"
# The files the console is made of, with their media types: nothing else is served.
FILES: Final = {
    "index.html": "text/html; charset=utf-8",
    "console.js": "text/javascript; charset=utf-8",
    "console.css": "text/css; charset=utf-8",
    "favicon.svg": "image/svg+xml",
}
# Scripts, styles and requests from this server only; no inline script, no frames, no forms
# posted elsewhere. Downloads are made from blobs the console built itself.
CONTENT_SECURITY_POLICY: Final = "; ".join(
    [
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "connect-src 'self'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)
HEADERS: Final = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cache-Control": "no-cache",
}


def _asset(name: str) -> Response:
    media_type = FILES.get(name)
    if media_type is None:
        raise ApiError(404, ErrorCode.NOT_FOUND, "No such console file")
    return Response((ASSETS / name).read_bytes(), media_type=media_type, headers=HEADERS)


@router.api_route("/", methods=["GET", "HEAD"])
async def console_page() -> Response:
    return _asset("index.html")


@router.api_route("/console/{name}", methods=["GET", "HEAD"])
async def console_asset(name: str) -> Response:
    return _asset(name)
