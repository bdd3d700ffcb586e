"""``kalimera run`` and ``kalimera demo seed``: the commands that work on the local stack only.

``kalimera/cli.py`` adds them beside the operator commands; like the rest of ``kalimera.dev``
they are not deployed.
"""

from __future__ import annotations

import contextlib
import functools
import os
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated

import typer

from kalimera.cli_support import console, progress_bar, settings, with_services

if TYPE_CHECKING:
    from kalimera.dev.calls import CallsReport
    from kalimera.dev.seed import SeedReport
    from kalimera.services import Services

dev_cli = typer.Typer()
demo_cli = typer.Typer(help="Demo data for a local stack.", no_args_is_help=True)
dev_cli.add_typer(demo_cli, name="demo")


@dataclass(frozen=True)
class Filled:
    """What ``demo seed`` wrote: the statistics rows and the recorded calls."""

    statistics: SeedReport
    calls: CallsReport


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
    calls: Annotated[
        int,
        typer.Option(
            min=0,
            help="Recorded calls per tenant (real audio, transcripts, analyses, webhook "
            "deliveries); 0 writes the statistics rows only.",
        ),
    ] = 3,
    seed_value: Annotated[int, typer.Option("--seed", help="Random seed.")] = 1,
) -> None:
    """Fill a development stack: synthetic conversations with COPY (skewed tenants, daily
    curves) and, for each tenant, a few recent recorded calls through ingestion and analysis.

    Writes to the stack of the `kalimera run` serving from .local/ when one is; else to the
    settings' stack, starting the local one as `kalimera run` does when no storage is set."""
    from kalimera.dev.running import dev_tenant, running_settings
    from kalimera.settings import LOCAL_DIR

    os.environ.setdefault("KALIMERA_ENV", "development")
    live = running_settings(LOCAL_DIR)
    for name, value in (live or {}).items():
        os.environ.setdefault(name, value)
    fixed = [uuid.UUID(t) for t in tenant or []] or [dev_tenant(LOCAL_DIR)]
    with contextlib.ExitStack() as local:
        if calls and live is None and "KALIMERA_STORAGE" not in os.environ:
            from kalimera.dev.localstack import LocalStack
            from kalimera.dev.runner import prepare

            prepare(local.enter_context(LocalStack(LOCAL_DIR)), console)
        if calls:
            from kalimera.dev.calls import NotReady, preflight

            try:
                preflight(settings())
            except NotReady as exc:
                console.print(f"[red]{exc}[/red] (or --calls 0)")
                raise typer.Exit(1) from None
        made = with_services(
            functools.partial(
                _fill,
                tenants=tenants,
                conversations=conversations,
                days=days,
                largest=largest,
                fixed=fixed,
                calls=calls,
                seed_value=seed_value,
            )
        )
    rows = made.statistics
    console.print(
        f"wrote {rows.conversations} conversations for {rows.tenants} tenants "
        f"(largest: {rows.largest_tenant}, {rows.largest_count} conversations)"
    )
    if calls:
        console.print(
            f"and {made.calls.calls} recorded calls ({made.calls.turns} turns, analysed), "
            f"{made.calls.deliveries} webhook deliveries"
        )


async def _fill(
    services: Services,
    *,
    tenants: int,
    conversations: int,
    days: int,
    largest: float,
    fixed: list[uuid.UUID],
    calls: int,
    seed_value: int,
) -> Filled:
    from kalimera.dev.calls import CallsReport, seed_calls
    from kalimera.dev.runner import ensure_storage
    from kalimera.dev.seed import seed_conversations
    from kalimera.settings import LOCAL_DIR

    with progress_bar() as bar:
        task = bar.add_task("writing conversations", total=conversations)
        made = await seed_conversations(
            await services.db(),
            tenants=tenants,
            conversations=conversations,
            days=days,
            largest_share=largest,
            fixed_tenants=fixed,
            seed=seed_value,
            progress=lambda n: bar.update(task, completed=n),
        )
        recorded = CallsReport()
        if calls:
            await ensure_storage(services)
            task = bar.add_task("recording calls", total=calls * len(made.agents))
            recorded = await seed_calls(
                services,
                agents=made.agents,
                per_agent=calls,
                audio=LOCAL_DIR / "demo-audio",
                progress=lambda n: bar.update(task, completed=n),
            )
    return Filled(made, recorded)
