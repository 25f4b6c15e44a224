"""SQL for the ``api_keys`` table; each function runs inside a connection the caller manages."""

from __future__ import annotations

import secrets
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Row, bindparam, select, update

from store.records import ApiKeyRecord
from store.tables import api_keys, insert_ignoring_conflicts

# 8 random bytes: short enough to read out in logs, and a clash is practically impossible.
KEY_ID_BYTES = 8


def record_from_row(row: Row[Any]) -> ApiKeyRecord:
    m = row._mapping
    return ApiKeyRecord(
        key_id=m["key_id"],
        name=m["name"],
        key_hash=m["key_hash"],
        created_at=m["created_at"],
        revoked_at=m["revoked_at"],
    )


def insert(conn: Connection, name: str, key_hash: str, now: datetime) -> ApiKeyRecord | None:
    """A new key, or ``None`` if the name or the hash is already stored."""
    values = {
        "key_id": secrets.token_hex(KEY_ID_BYTES),
        "name": name,
        "key_hash": key_hash,
        "created_at": now,
        "revoked_at": None,
    }
    stmt = insert_ignoring_conflicts(api_keys, conn.dialect.name, values).returning(*api_keys.c)
    row = conn.execute(stmt).first()
    return None if row is None else record_from_row(row)


def name_exists(conn: Connection, name: str) -> bool:
    stmt = select(api_keys.c.key_id).where(api_keys.c.name == name)
    return conn.execute(stmt).first() is not None


# Built once: every request runs it (see store.batches).
_FIND_ACTIVE = select(api_keys).where(
    api_keys.c.key_hash == bindparam("key_hash"), api_keys.c.revoked_at.is_(None)
)


def find_active(conn: Connection, key_hash: str) -> ApiKeyRecord | None:
    row = conn.execute(_FIND_ACTIVE, {"key_hash": key_hash}).first()
    return None if row is None else record_from_row(row)


def all_keys(conn: Connection) -> list[ApiKeyRecord]:
    stmt = select(api_keys).order_by(api_keys.c.created_at, api_keys.c.name)
    return [record_from_row(row) for row in conn.execute(stmt).all()]


def revoke(conn: Connection, name_or_id: str, now: datetime) -> bool:
    """Revoke the key with this id or, failing that, this name; False if none is active."""
    for column in (api_keys.c.key_id, api_keys.c.name):
        # Id first, so a key whose *name* happens to equal another key's id cannot revoke both.
        found = conn.execute(select(api_keys.c.key_id).where(column == name_or_id)).first()
        if found is not None:
            stmt = (
                update(api_keys)
                .where(api_keys.c.key_id == found.key_id, api_keys.c.revoked_at.is_(None))
                .values(revoked_at=now)
                .returning(api_keys.c.key_id)
            )
            return conn.execute(stmt).first() is not None
    return False
