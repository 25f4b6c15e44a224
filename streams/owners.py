"""Event-driven batches owned by an API key: who may write them, proven by the message.

A producer that holds an API key publishes chunks straight onto the requests topic and names its
batch ``<namespace>:<its own ID>``. Both parts of the proof come from the key's SHA-256 (what
the store keeps; the producer computes it from the key), so the producer needs nothing but its
key, and the workers nothing but the store:

- the namespace is ``p`` + the first 16 hex digits of HMAC-SHA256(key_hash, "batchline producer
  namespace"): it names the owner without revealing anything of the key;
- each chunk carries, in its ``batchline-signature`` header, the HMAC-SHA256 (streams.signing)
  keyed by HMAC-SHA256(key_hash, "batchline producer signature").

A worker admits a chunk of a namespaced batch only if the namespace is an active key's and the
signature is that key's; the batch is registered to that key, which alone sees it over HTTP.
Two keys' namespaces differ, the API's batch IDs (``batch_<hex>``) have no colon, and a chunk
without a namespace can create only a keyless batch: no producer can write into another's batch
or into one the API registered. The derivation is documented in the README for producers
written in other languages; examples/producer.py follows it.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from store import ApiKeyRecord

NAMESPACE_SEPARATOR = ":"
NAMESPACE_HEX_DIGITS = 16
# Every namespace producer_namespace makes, as a regex (it names producers' ingest topics).
NAMESPACE_PATTERN = f"p[0-9a-f]{{{NAMESPACE_HEX_DIGITS}}}"
_NAMESPACE_LABEL = b"batchline producer namespace"
_SECRET_LABEL = b"batchline producer signature"
# Keys are read again at most this often when a chunk names a namespace not seen yet...
RELOAD_ON_MISS_INTERVAL_S = 2.0
# ...and at least this often, so that a revoked key stops being accepted within that long.
MAX_AGE_S = 30.0


def _derive(key_hash: str, label: bytes) -> bytes:
    return hmac.new(key_hash.encode(), label, hashlib.sha256).digest()


def producer_namespace(key_hash: str) -> str:
    return "p" + _derive(key_hash, _NAMESPACE_LABEL).hex()[:NAMESPACE_HEX_DIGITS]


def producer_secret(key_hash: str) -> bytes:
    return _derive(key_hash, _SECRET_LABEL)


def namespace_of(batch_id: str) -> str | None:
    """The owner namespace a batch ID claims, or None for an unclaimed (keyless or API) ID."""
    namespace, separator, _ = batch_id.partition(NAMESPACE_SEPARATOR)
    return namespace if separator else None


@dataclass(frozen=True, slots=True)
class ProducerOwner:
    key_id: str
    secret: bytes


class KeyLister(Protocol):
    async def list_api_keys(self) -> list[ApiKeyRecord]: ...


class OwnerDirectory(Protocol):
    async def find(self, namespace: str) -> ProducerOwner | None:
        """The active key whose namespace this is, or None."""


class StoredOwners:
    """The active API keys by producer namespace, read from the store and cached."""

    def __init__(self, keys: KeyLister) -> None:
        self._keys = keys
        self._owners: dict[str, ProducerOwner] = {}
        self._loaded_at: float | None = None
        self._lock = asyncio.Lock()

    async def find(self, namespace: str) -> ProducerOwner | None:
        now = time.monotonic()
        if self._loaded_at is None or now - self._loaded_at >= MAX_AGE_S:
            await self._reload()
        elif namespace not in self._owners and now - self._loaded_at >= RELOAD_ON_MISS_INTERVAL_S:
            await self._reload()
        return self._owners.get(namespace)

    async def _reload(self) -> None:
        async with self._lock:
            self._owners = owners_by_namespace(await self._keys.list_api_keys())
            self._loaded_at = time.monotonic()


def owners_by_namespace(keys: Sequence[ApiKeyRecord]) -> dict[str, ProducerOwner]:
    return {
        producer_namespace(key.key_hash): ProducerOwner(key.key_id, producer_secret(key.key_hash))
        for key in keys
        if key.active
    }
