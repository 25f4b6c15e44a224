"""Registers the agents on the Faust app: small named functions around the handlers."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from streams.progress_agent import handle_progress
from streams.transform_agent import SourceMessage, handle_chunk

if TYPE_CHECKING:
    from streams.app import StreamsApp


def register_agents(sa: StreamsApp) -> None:
    app = sa.app

    @app.agent(sa.requests, name="transform-chunks")
    async def transform_chunks(stream: Any) -> AsyncIterator[str]:
        async for event in stream.events():
            message = event.message
            yield await handle_chunk(
                sa,
                SourceMessage(
                    topic=message.topic,
                    partition=message.partition,
                    offset=message.offset,
                    key=event.key,
                    value=event.value,
                ),
            )

    @app.agent(sa.progress_in, name="track-progress")
    async def track_progress(stream: Any) -> AsyncIterator[str]:
        async for event in stream.events():
            yield await handle_progress(sa, event.value)
