"""`batchline keys`: API keys in the results store (only their hashes are kept)."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer
from aiokafka.errors import KafkaError
from sqlalchemy.engine import make_url

from api.security import hash_api_key, new_api_key
from batchline.broker import admin_tools, local_broker
from batchline.broker.auth import producer_principal
from batchline.devstack import AUTH_BROKER_DIR
from batchline.errors import BatchlineError
from schemas.settings import Settings
from store import ApiKeyRecord, ResultsStore, StoreError
from streams.errors import TopicCreationFailed
from streams.kafka_security import KafkaSecurity
from streams.owners import NAMESPACE_PATTERN, producer_namespace
from streams.topics import TopicNames, ensure_producer_topics

keys_app = typer.Typer(help="Create, list and revoke API keys.", no_args_is_help=True)


def existing_store_url() -> str:
    """The store the keys live in; an SQLite file that is not there is refused in one line, not
    created (run from another folder, the default ``data/results.db`` would be a new, empty
    store, and every command would seem to work on it)."""
    url = Settings().store_url
    if url.startswith("sqlite"):
        database = make_url(url).database or ""
        path = Path(database).resolve()
        if database in ("", ":memory:") or not path.exists():
            typer.echo(
                f"batchline: there is no results store at {path} (BATCHLINE_STORE_URL={url}). "
                "Run this from the folder where `make run` or `batchline api` runs, or set "
                "BATCHLINE_STORE_URL to its store.",
                err=True,
            )
            raise typer.Exit(1)
    return url


async def store_new_key(store_url: str, name: str) -> str:
    """Stores a new key's hash under ``name`` and returns the key itself (shown only once)."""
    store = await ResultsStore.connect(store_url)
    try:
        key = new_api_key()
        await store.create_api_key(name, hash_api_key(key))
        return key
    finally:
        await store.close()


@keys_app.command("create")
def create_key(name: Annotated[str, typer.Option(help="A name to know the key by.")]) -> None:
    """Create a key; it is printed once, alone on the last line, and never stored in clear."""
    try:
        key = asyncio.run(store_new_key(existing_store_url(), name))
    except StoreError as exc:
        typer.echo(f"batchline: {exc}", err=True)
        raise typer.Exit(1) from None
    typer.echo(f"Created API key {name!r}. Keep it now: it cannot be shown again.")
    typer.echo(key)


async def _list(store_url: str) -> list[tuple[str, str, str, str, str]]:
    store = await ResultsStore.connect(store_url)
    try:
        return [
            (
                record.key_id,
                record.name,
                record.created_at.isoformat(timespec="seconds"),
                "revoked" if record.revoked_at else "active",
                producer_namespace(record.key_hash),
            )
            for record in await store.list_api_keys()
        ]
    finally:
        await store.close()


@keys_app.command("list")
def list_keys() -> None:
    """List keys (id, name, created, state, producer namespace: the prefix of the batch IDs
    its producers write, see grant-producer); secrets are never shown."""
    for row in asyncio.run(_list(existing_store_url())):
        typer.echo("\t".join(row))


async def _revoke(store_url: str, name_or_id: str) -> bool:
    store = await ResultsStore.connect(store_url)
    try:
        return await store.revoke_api_key(name_or_id)
    finally:
        await store.close()


@keys_app.command("revoke")
def revoke_key(name_or_id: Annotated[str, typer.Argument(help="Key id or name.")]) -> None:
    """Revoke a key: requests with it get 401 from then on."""
    if not asyncio.run(_revoke(existing_store_url(), name_or_id)):
        typer.echo(f"batchline: no active key {name_or_id!r}", err=True)
        raise typer.Exit(1)
    typer.echo(f"Revoked {name_or_id}")


async def _active_key(store_url: str, name_or_id: str) -> ApiKeyRecord | None:
    store = await ResultsStore.connect(store_url)
    try:
        keys = await store.list_api_keys()
    finally:
        await store.close()
    return next(
        (k for k in keys if name_or_id in (k.name, k.key_id) and k.revoked_at is None), None
    )


@keys_app.command("grant-producer")
def grant_producer(
    name_or_id: Annotated[
        str | None, typer.Argument(help="Key id or name (or give --namespace).")
    ] = None,
    namespace: Annotated[
        str | None,
        typer.Option(
            help="The key's producer namespace (`batchline keys list`, last column) instead "
            "of the key: no store is read, as where the store cannot be reached."
        ),
    ] = None,
    broker_dir: Annotated[
        Path, typer.Option(help="The folder of the local broker started with --auth.")
    ] = Path("data") / AUTH_BROKER_DIR,
    credentials_dir: Annotated[
        Path | None,
        typer.Option(
            help="On a broker of your own instead of the local one: log in as the "
            "BATCHLINE_KAFKA_* settings say (SASL/SCRAM, a principal that may create users, "
            "ACLs and topics) and write the producer's login into this folder."
        ),
    ] = None,
) -> None:
    """Give the producer holding this key a Kafka principal of its own, which may write only
    its own ingest topic, <prefix>.ingest.<namespace>, where workers admit only batch IDs of
    the key's namespace (printed alone on the last line), and its own records topic,
    <prefix>.records.<namespace>, whose results workers mark with that namespace. Its client
    settings are written beside the broker's other credentials (or into --credentials-dir).
    Running it again changes nothing."""
    settings = Settings()
    namespace = _granted_namespace(name_or_id, namespace)
    topics = TopicNames(settings.topic_prefix)
    try:
        with _broker_admin(settings, broker_dir, credentials_dir) as admin:
            # The grant (which checks the admin may log in) comes first: the admin then
            # creates the topics the ACL names.
            grant = admin_tools.grant_producer(
                admin,
                producer_principal(namespace),
                (topics.ingest(namespace), topics.producer_records(namespace)),
            )
            asyncio.run(
                ensure_producer_topics(
                    settings.kafka_bootstrap,
                    topics,
                    namespace,
                    settings.partitions,
                    admin.security,
                )
            )
    except (BatchlineError, TopicCreationFailed, KafkaError, OSError, ValueError) as exc:
        typer.echo(f"batchline: {exc}", err=True)
        raise typer.Exit(1) from None
    typer.echo(f"Kafka principal {grant.principal} may write {' and '.join(grant.topics)} only.")
    typer.echo(f"  Batchline settings:  set -a; . {grant.env_file}; set +a")
    typer.echo(f"  Kafka's own tools:   --command-config {grant.properties_file}")
    typer.echo("  Batch IDs there start with the key's namespace, alone on the next line:")
    typer.echo(namespace)


def _granted_namespace(name_or_id: str | None, namespace: str | None) -> str:
    if (name_or_id is None) == (namespace is None):
        typer.echo("batchline: give a key's id or name, or --namespace, not both", err=True)
        raise typer.Exit(2)
    if namespace is not None:
        if not re.fullmatch(NAMESPACE_PATTERN, namespace):
            typer.echo(f"batchline: {namespace!r} is no producer namespace (p + 16 hex)", err=True)
            raise typer.Exit(2)
        return namespace
    assert name_or_id is not None  # noqa: S101 - one of the two, checked above
    key = asyncio.run(_active_key(existing_store_url(), name_or_id))
    if key is None:
        typer.echo(f"batchline: no active key {name_or_id!r}", err=True)
        raise typer.Exit(1)
    return producer_namespace(key.key_hash)


@contextmanager
def _broker_admin(
    settings: Settings, broker_dir: Path, credentials_dir: Path | None
) -> Iterator[admin_tools.AdminLogin]:
    if credentials_dir is None:
        yield local_broker.local_admin(broker_dir, settings.kafka_bootstrap)
        return
    security = KafkaSecurity.from_settings(settings)
    with admin_tools.admin_from_settings(
        security, settings.kafka_bootstrap, credentials_dir
    ) as admin:
        yield admin
