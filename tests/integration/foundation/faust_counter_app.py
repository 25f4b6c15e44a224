"""A small Faust app the tests run as a real worker process: it counts words into a table.

Run as ``python -m tests.integration.foundation.faust_counter_app`` with COUNTER_BOOTSTRAP,
COUNTER_PREFIX and COUNTER_DATADIR set.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from typing import Any

import faust

PREFIX = os.environ.get("COUNTER_PREFIX", "counter")
app = faust.App(
    f"{PREFIX}-app",
    broker=f"kafka://{os.environ.get('COUNTER_BOOTSTRAP', '127.0.0.1:9092')}",
    store="rocksdb://",
    datadir=os.environ.get("COUNTER_DATADIR", "data/counter"),
    web_enabled=False,
    topic_partitions=2,
    topic_replication_factor=1,
    consumer_auto_offset_reset="earliest",
    autodiscover=False,
)
words = app.topic(f"{PREFIX}.words", key_type=str, value_type=str, partitions=2)
counts = app.Table("counts", default=int, partitions=2, key_type=str, value_type=int)


@app.agent(words)
async def count_words(stream: Any) -> AsyncIterator[None]:
    async for word in stream.group_by(lambda w: w, name="by-word"):
        counts[word] += 1
        yield None


if __name__ == "__main__":
    faust.Worker(app, loglevel="WARNING", redirect_stdouts=False).execute_from_commandline()
