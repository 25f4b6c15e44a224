"""Idempotent schema creation at start-up, safe when several processes start at once."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import Connection, select, text

from store.errors import StoreError
from store.tables import SCHEMA_VERSION, insert_ignoring_conflicts, metadata, schema_version

# Any constant works; it only has to be the same in every process that creates the schema.
_PG_SCHEMA_LOCK_KEY = 0x6261_7463_686C_696E  # "batchlin"


def ensure_schema(conn: Connection, pg_schema: str | None = None) -> None:
    """Create missing tables and check the recorded schema version, inside ``conn``'s transaction.

    On SQLite the caller's BEGIN IMMEDIATE already serialises competing processes; PostgreSQL
    needs an advisory lock, as two concurrent CREATE TABLE IF NOT EXISTS can both fail.
    """
    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_SCHEMA_LOCK_KEY})
        if pg_schema is not None:
            quoted = conn.dialect.identifier_preparer.quote_identifier(pg_schema)
            conn.execute(text(f"CREATE SCHEMA IF NOT EXISTS {quoted}"))
    metadata.create_all(conn)
    values = {"id": 1, "version": SCHEMA_VERSION, "applied_at": datetime.now(UTC)}
    conn.execute(insert_ignoring_conflicts(schema_version, conn.dialect.name, values))
    found = conn.execute(select(schema_version.c.version)).scalar_one()
    if found != SCHEMA_VERSION:
        raise StoreError(
            f"The results store holds schema version {found} but this Batchline expects "
            f"{SCHEMA_VERSION}; run the matching Batchline version or migrate the database first."
        )
