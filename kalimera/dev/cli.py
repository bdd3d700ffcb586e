"""``kalimera run`` and ``kalimera demo seed``: the commands that work on the local stack only.

``kalimera/cli.py`` adds them beside the operator commands; like the rest of ``kalimera.dev``
they are not deployed.
"""

from __future__ import annotations

import uuid
from typing import Annotated

import typer

from kalimera.cli_support import console, progress_bar, with_services

dev_cli = typer.Typer()
demo_cli = typer.Typer(help="Demo data for a local stack.", no_args_is_help=True)
dev_cli.add_typer(demo_cli, name="demo")


@dev_cli.command()
def run(
    port: Annotated[int, typer.Option(help="Port to serve the API on.")] = 7071,
    host: Annotated[str, typer.Option(help="Address to bind.")] = "127.0.0.1",
    access_log: Annotated[
        bool, typer.Option(help="Log a line per request (off: no cost per request).")
    ] = False,
) -> None:
    """Serve the API and the triggers on the local stack until Ctrl-C.

    Uses Postgres and Redis where DATABASE_URL / REDIS_URL (or the 127.0.0.1 defaults) answer,
    else starts private ones under .local/; starts its own Azurite; migrates; prints a token.
    """
    from kalimera.dev.localstack import LocalStackError
    from kalimera.dev.runner import run as serve

    try:
        serve(host=host, port=port, access_log=access_log)
    except LocalStackError as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(1) from None


@demo_cli.command("seed")
def seed(
    tenants: Annotated[int, typer.Option(min=1, help="How many tenants.")] = 10,
    conversations: Annotated[int, typer.Option(min=1, help="How many conversations in all.")] = (
        10_000
    ),
    days: Annotated[int, typer.Option(min=1, help="Spread over this many days to today.")] = 90,
    largest: Annotated[
        float, typer.Option(min=0, max=1, help="Share of the conversations of the largest tenant.")
    ] = 0.2,
    tenant: Annotated[
        list[str] | None,
        typer.Option(help="Use this tenant id for the largest tenant (repeat for the next ones)."),
    ] = None,
    seed_value: Annotated[int, typer.Option("--seed", help="Random seed.")] = 1,
) -> None:
    """Write realistic synthetic conversations with COPY (skewed tenants, daily curves)."""
    from kalimera.dev.seed import seed_conversations
    from kalimera.dev.seed import settings_tenant as dev_tenant

    fixed = [uuid.UUID(t) for t in tenant or []] or dev_tenant()

    async def work(services):  # type: ignore[no-untyped-def]
        with progress_bar() as bar:
            task = bar.add_task("writing conversations", total=conversations)
            return await seed_conversations(
                await services.db(),
                tenants=tenants,
                conversations=conversations,
                days=days,
                largest_share=largest,
                fixed_tenants=fixed,
                seed=seed_value,
                progress=lambda n: bar.update(task, completed=n),
            )

    made = with_services(work)
    console.print(
        f"wrote {made.conversations} conversations for {made.tenants} tenants "
        f"(largest: {made.largest_tenant}, {made.largest_count} conversations)"
    )
