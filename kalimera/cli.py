"""``kalimera``: run the local stack, migrate, and manage API tokens.

The CLI defaults to ``KALIMERA_ENV=development`` (local defaults, a generated key under
``.local/``); set ``KALIMERA_ENV=production`` and the real settings to act on a deployment.
"""

import asyncio
import logging
import os
import uuid
from collections.abc import Awaitable, Callable
from typing import Annotated, TypeVar

import typer
from rich.console import Console

from kalimera.agents.cli import secrets_cli
from kalimera.conversations.cli import ingest_cli
from kalimera.deploy.cli import deploy_cli
from kalimera.settings import Settings, SettingsError, get_settings
from kalimera.statistics.cli import demo_cli, stats_cli

T = TypeVar("T")

cli = typer.Typer(
    help="Kalimera backend: AI voice agents, contacts, voice ingestion and statistics.",
    no_args_is_help=True,
    add_completion=False,
)
token_cli = typer.Typer(help="Create, list and revoke API tokens.", no_args_is_help=True)
cli.add_typer(token_cli, name="token")
cli.add_typer(deploy_cli)  # `kalimera openapi`
cli.add_typer(ingest_cli, name="ingest")
cli.add_typer(secrets_cli, name="secrets")
cli.add_typer(stats_cli, name="stats")
cli.add_typer(demo_cli, name="demo")

console = Console(stderr=True)


def settings() -> Settings:
    try:
        return get_settings()
    except SettingsError as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from None


def with_services(work: Callable[..., Awaitable[T]]) -> T:
    """Run ``work(services)`` on a fresh event loop and close the clients after."""
    from kalimera.services import Services

    async def main() -> T:
        services = Services(settings())
        try:
            return await work(services)
        finally:
            await services.aclose()

    return asyncio.run(main())


@cli.callback()
def _setup(
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log at DEBUG level.")] = False,
) -> None:
    os.environ.setdefault("KALIMERA_ENV", "development")
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    logging.getLogger("azure").setLevel(logging.WARNING)


@cli.command()
def run(
    port: Annotated[int, typer.Option(help="Port to serve the API on.")] = 7071,
    host: Annotated[str, typer.Option(help="Address to bind.")] = "127.0.0.1",
) -> None:
    """Serve the API and the triggers on the local stack until Ctrl-C.

    Uses Postgres and Redis where DATABASE_URL / REDIS_URL (or the 127.0.0.1 defaults) answer,
    else starts private ones under .local/; starts its own Azurite; migrates; prints a token.
    """
    from kalimera.devrunner import run as serve
    from kalimera.localstack import LocalStackError

    try:
        serve(host=host, port=port)
    except LocalStackError as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(1) from None


@cli.command()
def migrate() -> None:
    """Apply pending database migrations (safe to run from several instances at once)."""
    from kalimera.migrate import migrate as apply

    url = settings().database_url
    assert url is not None
    applied = apply(url.get_secret_value())
    console.print(f"applied: {', '.join(applied)}" if applied else "the schema is up to date")


@token_cli.command("create")
def token_create(
    tenant: Annotated[uuid.UUID, typer.Option(help="The tenant the token belongs to.")],
    name: Annotated[str, typer.Option(help="A label to recognise the token by.")] = "api",
    scopes: Annotated[
        str, typer.Option(help="Comma-separated scopes; default: all but agents:runtime.")
    ] = "",
) -> None:
    """Create a token. Prints its id, then the token alone on the last line (shown only once)."""
    from kalimera.auth import issue_token, parse_scopes

    try:
        wanted = parse_scopes(scopes)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--scopes") from None
    token_id, token = issue_token(settings(), tenant_id=tenant, name=name, scopes=wanted)
    typer.echo(f"id: {token_id}")
    typer.echo(f"scopes: {','.join(s.value for s in wanted)}")
    typer.echo(token)


@token_cli.command("list")
def token_list(
    tenant: Annotated[uuid.UUID | None, typer.Option(help="Only this tenant's tokens.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="A JSON array of objects.")] = False,
) -> None:
    """List tokens (never the token values). Into a pipe: tab-separated lines."""
    from dataclasses import asdict

    from kalimera.auth import list_tokens
    from kalimera.db import transaction
    from kalimera.listing import show

    async def work(services):  # type: ignore[no-untyped-def]
        async with transaction(await services.db(), system=True) as conn:
            return await list_tokens(conn=conn, tenant_id=tenant)

    columns = {
        "id": "id",
        "tenant_id": "tenant",
        "name": "name",
        "scopes": "scopes",
        "created_at": "created",
        "last_used_at": "last used",
        "revoked_at": "revoked",
    }
    show([asdict(t) for t in with_services(work)], columns, as_json=as_json, empty="no tokens")


@token_cli.command("revoke")
def token_revoke(token_id: Annotated[uuid.UUID, typer.Argument(help="The token's id.")]) -> None:
    """Revoke a token; it answers 401 everywhere within 60 s."""
    from kalimera.auth import revoke_token
    from kalimera.db import transaction

    async def work(services):  # type: ignore[no-untyped-def]
        async with transaction(await services.db(), system=True) as conn:
            return await revoke_token(conn=conn, token_id=token_id)

    if not with_services(work):
        console.print(f"[red]no live token with id {token_id}[/red]")
        raise typer.Exit(1)
    console.print(f"revoked {token_id}")


def main() -> None:
    cli()
