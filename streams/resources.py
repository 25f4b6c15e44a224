"""What the agents use besides Kafka: the results store and the compiled pipelines.

Both are opened on first use (nothing touches the network at import or build time) and closed
when the worker stops: the worker runs this as one of its mode services.
"""

from __future__ import annotations

import asyncio
import logging
import time

import mode

from schemas.settings import Settings
from store import ResultsStore
from transforms import PipelineRegistry

log = logging.getLogger(__name__)
STATUS_TTL_S = 0.5
STATUS_CACHE_SIZE = 10_000


class WorkerResources(mode.Service):
    def __init__(self, settings: Settings, registry: PipelineRegistry | None = None) -> None:
        super().__init__()
        self.settings = settings
        self._registry = registry
        self._store: ResultsStore | None = None
        self._store_lock = asyncio.Lock()
        self._processing: dict[str, float] = {}

    @property
    def registry(self) -> PipelineRegistry:
        if self._registry is None:
            self._registry = PipelineRegistry.load(
                self.settings.pipelines_dir,
                hash_secret=self.settings.hash_secret.get_secret_value().encode(),
            )
        return self._registry

    def recently_processing(self, batch_id: str) -> bool:
        """True if this worker saw the batch processing less than STATUS_TTL_S ago.

        Spares a store read for each chunk of a running batch; a cancel is then noticed by
        this worker's skip check at most STATUS_TTL_S late (the batch is final at once).
        """
        seen = self._processing.get(batch_id)
        return seen is not None and time.monotonic() - seen < STATUS_TTL_S

    def remember_processing(self, batch_id: str) -> None:
        if len(self._processing) >= STATUS_CACHE_SIZE:
            self._processing.clear()
        self._processing[batch_id] = time.monotonic()

    async def store(self) -> ResultsStore:
        if self._store is None:
            async with self._store_lock:
                if self._store is None:
                    self._store = await ResultsStore.connect(self.settings.store_url)
        return self._store

    async def on_stop(self) -> None:
        if self._store is not None:
            await self._store.close()
            self._store = None
