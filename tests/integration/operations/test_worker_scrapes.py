"""/metrics/workers needs no key, so the API asks each worker at most once a second however
many callers ask it: here against a real HTTP server on loopback that counts its scrapes."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from api.metrics import WorkerScrapes


class _CountingServer(ThreadingHTTPServer):
    scrapes = 0


class _Handler(BaseHTTPRequestHandler):
    server: _CountingServer

    def do_GET(self) -> None:  # noqa: N802 - the name http.server calls
        self.server.scrapes += 1
        body = f"batch_processed_total {self.server.scrapes}\n".encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - its signature
        return


@pytest.fixture
def worker_url() -> Iterator[tuple[str, _CountingServer]]:
    server = _CountingServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/metrics", server
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


async def test_callers_within_the_max_age_share_one_scrape_of_each_worker(
    worker_url: tuple[str, _CountingServer],
) -> None:
    url, server = worker_url
    scrapes = WorkerScrapes(f"{url}, http://127.0.0.1:1/metrics", max_age_s=0.5)
    texts = await asyncio.gather(*(scrapes.text() for _ in range(20)))
    assert server.scrapes == 1
    assert set(texts) == {"batch_processed_total 1\n# worker 1 did not answer\n"}
    await asyncio.sleep(0.6)
    assert (await scrapes.text()).startswith("batch_processed_total 2\n")
    assert server.scrapes == 2
