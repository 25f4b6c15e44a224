"""Table definitions of the results store (SQLAlchemy Core), shared by SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Collection, Iterator
from datetime import UTC, datetime
from typing import Any, TypeVar

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    DateTime,
    Dialect,
    Float,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    Table,
    Text,
    TypeDecorator,
    func,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.sql.dml import Insert

from schemas.statuses import BatchStatus

IdT = TypeVar("IdT", str, int)
# SQLite builds before 3.32 allow 999 bound parameters per statement; stay well under.
IDS_PER_STATEMENT = 500


def id_slices(ids: Collection[IdT]) -> Iterator[list[IdT]]:
    """``ids`` sorted, in slices small enough for one ``IN (...)`` each."""
    ordered = sorted(ids)
    for start in range(0, len(ordered), IDS_PER_STATEMENT):
        yield ordered[start : start + IDS_PER_STATEMENT]


# Bump when a table changes shape; a migration reads the old number from ``schema_version``.
SCHEMA_VERSION = 1


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes in and out on both backends.

    PostgreSQL keeps ``timestamptz``; SQLite has no time zones, so the value is stored as naive
    UTC (its fixed-width text sorts in time order) and marked UTC again when read back.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError("naive datetime given to the results store; pass datetime.now(UTC)")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


metadata = MetaData()

_STATUSES = ", ".join(f"'{status.value}'" for status in BatchStatus)

batches = Table(
    "batches",
    metadata,
    Column("batch_id", Text, primary_key=True),
    Column("owner_key_id", Text, nullable=True),
    Column("status", Text, nullable=False),
    Column("pipeline_ref", Text, nullable=False),
    Column("on_invalid", Text, nullable=False),
    Column("total", Integer, nullable=False),
    Column("chunk_count", Integer, nullable=False),
    Column("batch_size", Integer, nullable=False),
    Column("parallel", Boolean, nullable=False),
    Column("processed", Integer, nullable=False, server_default="0"),
    Column("filtered", Integer, nullable=False, server_default="0"),
    Column("invalid", Integer, nullable=False, server_default="0"),
    Column("created_at", UTCDateTime, nullable=False),
    Column("started_at", UTCDateTime, nullable=True),
    Column("completed_at", UTCDateTime, nullable=True),
    Column("duration", Float, nullable=True),
    Column("reason", Text, nullable=True),
    Column("idempotency_key", Text, nullable=True),
    Column("request_digest", Text, nullable=True),
    Column("metadata", JSON, nullable=False),
    CheckConstraint(f"status IN ({_STATUSES})", name="ck_batches_status"),
)

# A plain UNIQUE (owner_key_id, idempotency_key) lets any number of rows share a key when the
# owner is NULL (NULLs are distinct on both backends), so anonymous clients would get no
# idempotency at all; the expression index treats a NULL owner as one owner.
Index(
    "uq_batches_owner_idempotency_key",
    func.coalesce(batches.c.owner_key_id, ""),
    batches.c.idempotency_key,
    unique=True,
)
Index("ix_batches_owner_created", batches.c.owner_key_id, batches.c.created_at)
# purge_older_than scans finished batches by age.
Index("ix_batches_status_completed", batches.c.status, batches.c.completed_at)

# No foreign key to batches: a worker may still write a chunk of a batch that the API has just
# deleted after a failed publish; that write must not fail, and purge removes such orphans.
result_chunks = Table(
    "result_chunks",
    metadata,
    Column("batch_id", Text, nullable=False),
    Column("chunk_index", Integer, nullable=False),
    Column("first_row", Integer, nullable=False),
    Column("result_count", Integer, nullable=False),
    Column("results", Text, nullable=False),
    Column("errors", Text, nullable=False),
    Column("error_count", Integer, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    PrimaryKeyConstraint("batch_id", "chunk_index", name="pk_result_chunks"),
)
Index("ix_result_chunks_created", result_chunks.c.created_at)

# Where each chunk of a batch the API published sits on the requests topic, so that a chunk a
# consumer never delivered can be read again by (partition, offset). A table of its own rather
# than a column: create_all adds it to a store made by an earlier version.
chunk_locations = Table(
    "chunk_locations",
    metadata,
    Column("batch_id", Text, nullable=False),
    Column("chunk_index", Integer, nullable=False),
    Column("partition", Integer, nullable=False),
    Column("offset", BigInteger, nullable=False),
    PrimaryKeyConstraint("batch_id", "chunk_index", name="pk_chunk_locations"),
)

# Which batch a replayed batch re-ran (POST .../replay). A table of its own, as above.
batch_replays = Table(
    "batch_replays",
    metadata,
    Column("batch_id", Text, primary_key=True),
    Column("replay_of", Text, nullable=False),
)

api_keys = Table(
    "api_keys",
    metadata,
    Column("key_id", Text, primary_key=True),
    Column("name", Text, nullable=False, unique=True),
    Column("key_hash", Text, nullable=False, unique=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("revoked_at", UTCDateTime, nullable=True),
)

schema_version = Table(
    "schema_version",
    metadata,
    # The CHECK keeps the table at one row: the version of the whole schema.
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("version", Integer, nullable=False),
    Column("applied_at", UTCDateTime, nullable=False),
    CheckConstraint("id = 1", name="ck_schema_version_single_row"),
)


# The backends' SQLAlchemy dialects (SQLite and PostgreSQL), for statements built once per dialect.
DIALECTS = ("sqlite", "postgresql")


def insert_ignoring_conflicts(
    table: Table, dialect_name: str, values: dict[str, Any] | list[dict[str, Any]] | None = None
) -> Insert:
    """``INSERT ... ON CONFLICT DO NOTHING`` in the dialect's own spelling.

    Safe when two processes race on the same key: the loser changes nothing and gets no row
    from RETURNING, instead of an IntegrityError that would abort a PostgreSQL transaction.
    Without ``values``, the statement takes its rows at execution (an executemany, compiled
    once and cached).
    """
    if dialect_name == "postgresql":
        pg_stmt = postgresql.insert(table)
        return (pg_stmt if values is None else pg_stmt.values(values)).on_conflict_do_nothing()
    if dialect_name == "sqlite":
        lite_stmt = sqlite.insert(table)
        return (lite_stmt if values is None else lite_stmt.values(values)).on_conflict_do_nothing()
    raise ValueError(f"unsupported dialect {dialect_name!r}")
