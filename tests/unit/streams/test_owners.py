"""Who owns a namespaced producer batch: the derivation, and the cached directory of keys."""

from __future__ import annotations

import re

import pytest

from api.security import hash_api_key
from streams import owners
from streams.owners import (
    StoredOwners,
    namespace_of,
    owners_by_namespace,
    producer_namespace,
    producer_secret,
)
from tests.unit.streams.builders import key_record
from tests.unit.streams.fakes import FakeStore


def test_a_namespace_is_p_and_16_hex_digits_and_differs_per_key() -> None:
    first = producer_namespace(hash_api_key("bl_one"))
    second = producer_namespace(hash_api_key("bl_two"))

    assert re.fullmatch(r"p[0-9a-f]{16}", first)
    assert first != second
    assert first == producer_namespace(hash_api_key("bl_one"))


def test_the_signing_secret_is_neither_the_hash_nor_the_namespace() -> None:
    key_hash = hash_api_key("bl_one")
    secret = producer_secret(key_hash)

    assert len(secret) == 32
    assert secret.hex() != key_hash
    assert producer_namespace(key_hash)[1:] not in secret.hex()
    assert secret != producer_secret(hash_api_key("bl_two"))


@pytest.mark.parametrize(
    ("batch_id", "namespace"),
    [("batch_0a1b", None), ("orders-1", None), ("pabc:orders-1", "pabc"), ("a:b:c", "a")],
)
def test_namespace_of_is_what_comes_before_the_first_colon(
    batch_id: str, namespace: str | None
) -> None:
    assert namespace_of(batch_id) == namespace


def test_only_active_keys_own_a_namespace() -> None:
    found = owners_by_namespace(
        [key_record("bl_live", "k1"), key_record("bl_gone", "k2", revoked=True)]
    )

    assert list(found) == [producer_namespace(hash_api_key("bl_live"))]
    owner = found[producer_namespace(hash_api_key("bl_live"))]
    assert (owner.key_id, owner.secret) == ("k1", producer_secret(hash_api_key("bl_live")))


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_keys_are_read_once_then_again_on_a_miss_and_when_old(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    clock = Clock()
    monkeypatch.setattr("streams.owners.time.monotonic", clock)
    store = FakeStore(api_keys=[key_record("bl_live", "k1")])
    directory = StoredOwners(store)
    live = producer_namespace(hash_api_key("bl_live"))
    late = producer_namespace(hash_api_key("bl_late"))

    assert (await directory.find(live)) is not None
    assert await directory.find(late) is None  # a miss right after a read reads nothing
    assert store.calls_to("list_api_keys") == 1

    store.api_keys.append(key_record("bl_late", "k2"))
    clock.now += owners.RELOAD_ON_MISS_INTERVAL_S
    found = await directory.find(late)
    assert found is not None and found.key_id == "k2"
    assert store.calls_to("list_api_keys") == 2

    store.api_keys = [key_record("bl_live", "k1", revoked=True)]
    clock.now += 1
    assert (await directory.find(live)) is not None  # a hit does not read again...
    clock.now += owners.MAX_AGE_S
    assert await directory.find(live) is None  # ...until the cache is old: revoked now
    assert store.calls_to("list_api_keys") == 3
