"""``genai-factory keys ...``: create, list and revoke API keys in the configured key store.

``keys create --name N`` prints the new key on stdout, once (details go to stderr, so
``KEY=$(genai-factory keys create --name ci)`` captures just the key); ``--json`` prints one JSON
object with the key and its record instead. ``--rpm 0`` / ``--tpm 0`` mean no limit. Errors print
one ``error: ...`` line to stderr and exit 1 (2 for bad arguments or an unknown key).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, TypeVar

import typer

from genai_factory.config import Settings, load_settings
from genai_factory.exceptions import GenAIFactoryError, InvalidRequestError, NotFoundError
from genai_factory.gateway.keys import KeyInfo, key_id_of, new_key

if TYPE_CHECKING:
    from genai_factory.gateway.sql_store import SqlKeyStore

T = TypeVar("T")

keys_app = typer.Typer(
    name="keys",
    help="Create, list and revoke API keys (stored hashed; a key is shown once).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

ConfigOption = Annotated[
    Path | None,
    typer.Option(
        "--config", "-c", help="YAML settings file (also GENAI_CONFIG).", show_default=False
    ),
]
JsonFlag = Annotated[bool, typer.Option("--json", help="Print JSON instead of text.")]


def _fail(message: str, code: int) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code)


def _settings(config: Path | None) -> Settings:
    try:
        return load_settings(config)
    except GenAIFactoryError as exc:
        raise _fail(exc.message, 2) from None


def _with_store(settings: Settings, work: Callable[[SqlKeyStore], Awaitable[T]]) -> T:
    from genai_factory.gateway.sql_store import SqlKeyStore, open_engine

    async def run() -> T:
        engine = await asyncio.to_thread(open_engine, settings.gateway_database_url())
        try:
            return await work(SqlKeyStore(engine))
        finally:
            await asyncio.to_thread(engine.dispose)

    try:
        return asyncio.run(run())
    except GenAIFactoryError as exc:
        raise _fail(exc.message, 2 if isinstance(exc, InvalidRequestError) else 1) from None


def _limit(value: int | None, default: int) -> int | None:
    if value is None:
        return default
    return value or None


def _describe(key: KeyInfo) -> str:
    rpm = f"{key.rpm} req/min" if key.rpm else "no request limit"
    tpm = f"{key.tpm} tokens/min" if key.tpm else "no token limit"
    budget = (
        f"${key.budget_usd:.2f}/{key.budget_period}" if key.budget_usd is not None else "no budget"
    )
    role = "admin" if key.admin else "user"
    return f"{key.id}  {key.name!r}  {role}  {rpm}, {tpm}, {budget}"


@keys_app.command("create")
def create(
    name: Annotated[str, typer.Option("--name", help="Who or what the key is for.")],
    config: ConfigOption = None,
    rpm: Annotated[
        int | None,
        typer.Option(min=0, help="Requests per minute (default gateway.default_rpm; 0: none)."),
    ] = None,
    tpm: Annotated[
        int | None,
        typer.Option(min=0, help="Tokens per minute (default gateway.default_tpm; 0: none)."),
    ] = None,
    budget_usd: Annotated[
        float | None, typer.Option("--budget-usd", min=0, help="USD per budget period.")
    ] = None,
    budget_period: Annotated[
        str, typer.Option("--budget-period", help="day | month (UTC).")
    ] = "month",
    admin: Annotated[bool, typer.Option("--admin", help="May call the admin endpoints.")] = False,
    as_json: JsonFlag = False,
) -> None:
    """Create a key and print it once (only its hash is stored)."""
    if budget_period not in ("day", "month"):
        raise _fail("--budget-period must be day or month", 2)
    if not name.strip():
        raise _fail("--name must not be empty", 2)
    settings = _settings(config)
    record, plaintext = new_key(
        name.strip(),
        admin=admin,
        rpm=_limit(rpm, settings.gateway.default_rpm),
        tpm=_limit(tpm, settings.gateway.default_tpm),
        budget_usd=budget_usd,
        budget_period="day" if budget_period == "day" else "month",
    )
    _with_store(settings, lambda store: store.add(record))
    if as_json:
        info = record.info().model_dump(mode="json")
        typer.echo(json.dumps({"key": plaintext, "record": info}))
        return
    typer.echo(f"created {_describe(record)}", err=True)
    typer.echo(plaintext)
    typer.echo(
        "Store the key now: it is not shown again. A service running with auth.enabled=auto "
        "and no keys turns auth on at its next start.",
        err=True,
    )


@keys_app.command("list")
def list_keys(
    config: ConfigOption = None,
    include_revoked: Annotated[bool, typer.Option("--all", help="Include revoked keys.")] = False,
    as_json: JsonFlag = False,
) -> None:
    """List keys (never their secrets)."""
    settings = _settings(config)
    keys = _with_store(settings, lambda store: store.list_keys(include_revoked=include_revoked))
    infos = [key.info() for key in keys]
    if as_json:
        typer.echo(json.dumps([info.model_dump(mode="json") for info in infos]))
        return
    if not infos:
        typer.echo("no keys", err=True)
    for info in infos:
        revoked = f"  revoked {info.revoked_at:%Y-%m-%d %H:%M}" if info.revoked_at else ""
        typer.echo(f"{_describe(info)}  created {info.created_at:%Y-%m-%d %H:%M}{revoked}")


@keys_app.command("revoke")
def revoke(
    key_id: Annotated[str, typer.Argument(help="The key's id (the 12 hex after gf_), or the key.")],
    config: ConfigOption = None,
) -> None:
    """Revoke a key: requests with it get 401 (within auth.key_cache_s on running services)."""
    key_id = key_id_of(key_id) or key_id
    settings = _settings(config)
    if not _with_store(settings, lambda store: store.revoke(key_id)):
        raise _fail(str(NotFoundError(f"no active API key with id {key_id}")), 2)
    typer.echo(f"revoked {key_id}")
