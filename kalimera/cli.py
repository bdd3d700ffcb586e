"""``kalimera``: the command line, for operators and for development.

The operator commands act on a deployment (migrations, tokens, the OpenAPI document, ingestion
rejections and replays, secret rotation, statistics rollups); ``run`` and ``demo`` work on the
local stack (``kalimera.dev``). This module only gathers them: the plumbing they share is
``kalimera.cli_support``. Runs from a checkout, never on Azure, so ``.funcignore`` leaves it out.

The CLI defaults to ``KALIMERA_ENV=development`` (local defaults, a generated key under
``.local/``); set ``KALIMERA_ENV=production`` and the real settings to act on a deployment.
"""

import logging
import os
import uuid
from typing import Annotated

import typer

from kalimera.agents.cli import secrets_cli
from kalimera.analysis.cli import analysis_cli
from kalimera.cli_support import console, settings, with_services
from kalimera.conversations.cli import ingest_cli, retention_cli
from kalimera.deploy.cli import deploy_cli
from kalimera.dev.cli import dev_cli
from kalimera.statistics.cli import stats_cli

cli = typer.Typer(
    help="Kalimera backend: AI voice agents, contacts, voice ingestion and statistics.",
    no_args_is_help=True,
    add_completion=False,
)
token_cli = typer.Typer(help="Create, list and revoke API tokens.", no_args_is_help=True)
cli.add_typer(dev_cli)  # `kalimera run`, `kalimera demo`
cli.add_typer(token_cli, name="token")
cli.add_typer(deploy_cli)  # `kalimera openapi`
cli.add_typer(ingest_cli, name="ingest")
cli.add_typer(secrets_cli, name="secrets")
cli.add_typer(stats_cli, name="stats")
cli.add_typer(analysis_cli, name="analysis")
cli.add_typer(retention_cli, name="retention")


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
        "expires_at": "expires",
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
