"""`batchline keys`: API keys in the results store (only their hashes are kept)."""

from __future__ import annotations

import asyncio
from typing import Annotated

import typer

from api.security import hash_api_key, new_api_key
from schemas.settings import Settings
from store import ResultsStore, StoreError

keys_app = typer.Typer(help="Create, list and revoke API keys.", no_args_is_help=True)


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
        key = asyncio.run(store_new_key(Settings().store_url, name))
    except StoreError as exc:
        typer.echo(f"batchline: {exc}", err=True)
        raise typer.Exit(1) from None
    typer.echo(f"Created API key {name!r}. Keep it now: it cannot be shown again.")
    typer.echo(key)


async def _list() -> list[tuple[str, str, str, str]]:
    store = await ResultsStore.connect(Settings().store_url)
    try:
        return [
            (
                record.key_id,
                record.name,
                record.created_at.isoformat(timespec="seconds"),
                "revoked" if record.revoked_at else "active",
            )
            for record in await store.list_api_keys()
        ]
    finally:
        await store.close()


@keys_app.command("list")
def list_keys() -> None:
    """List keys (id, name, created, state); secrets are never shown."""
    for row in asyncio.run(_list()):
        typer.echo("\t".join(row))


async def _revoke(name_or_id: str) -> bool:
    store = await ResultsStore.connect(Settings().store_url)
    try:
        return await store.revoke_api_key(name_or_id)
    finally:
        await store.close()


@keys_app.command("revoke")
def revoke_key(name_or_id: Annotated[str, typer.Argument(help="Key id or name.")]) -> None:
    """Revoke a key: requests with it get 401 from then on."""
    if not asyncio.run(_revoke(name_or_id)):
        typer.echo(f"batchline: no active key {name_or_id!r}", err=True)
        raise typer.Exit(1)
    typer.echo(f"Revoked {name_or_id}")
