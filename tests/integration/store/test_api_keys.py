"""API keys: create, look up by hash, list, revoke."""

from __future__ import annotations

import hashlib
from datetime import UTC, timedelta

import pytest

from store import ResultsStore, StoreError


def sha256(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


async def test_api_key_lifecycle_from_creation_to_revocation(store: ResultsStore) -> None:
    created = await store.create_api_key("ci", sha256("s3cret"))

    assert created.name == "ci" and created.key_hash == sha256("s3cret")
    assert created.revoked_at is None and created.active
    assert created.created_at.tzinfo == UTC
    assert await store.find_api_key(sha256("s3cret")) == created
    assert await store.find_api_key(sha256("other")) is None

    assert await store.revoke_api_key("ci") is True
    assert await store.revoke_api_key("ci") is False
    assert await store.find_api_key(sha256("s3cret")) is None
    [listed] = await store.list_api_keys()
    assert listed.key_id == created.key_id
    assert listed.revoked_at is not None and listed.revoked_at.utcoffset() == timedelta(0)


async def test_revoke_api_key_accepts_the_key_id(store: ResultsStore) -> None:
    created = await store.create_api_key("worker", sha256("w"))

    assert await store.revoke_api_key(created.key_id) is True
    assert await store.find_api_key(sha256("w")) is None


async def test_revoking_an_unknown_key_returns_false(store: ResultsStore) -> None:
    assert await store.revoke_api_key("nobody") is False


async def test_api_key_names_are_unique_even_after_revocation(store: ResultsStore) -> None:
    await store.create_api_key("ci", sha256("one"))
    await store.revoke_api_key("ci")

    with pytest.raises(StoreError, match="already exists"):
        await store.create_api_key("ci", sha256("two"))


async def test_a_secret_cannot_be_registered_twice(store: ResultsStore) -> None:
    await store.create_api_key("a", sha256("same"))

    with pytest.raises(StoreError, match="secret is already registered"):
        await store.create_api_key("b", sha256("same"))


async def test_list_api_keys_returns_every_key_with_distinct_short_ids(
    store: ResultsStore,
) -> None:
    for name in ("a", "b", "c"):
        await store.create_api_key(name, sha256(name))
    await store.revoke_api_key("b")

    keys = await store.list_api_keys()

    assert sorted(key.name for key in keys) == ["a", "b", "c"]
    assert [key.name for key in keys if not key.active] == ["b"]
    assert len({key.key_id for key in keys}) == 3
    assert all(len(key.key_id) <= 16 for key in keys)
