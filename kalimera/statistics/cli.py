"""``kalimera stats rollup`` and ``kalimera demo seed``."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

stats_cli = typer.Typer(help="Conversation statistics.", no_args_is_help=True)
demo_cli = typer.Typer(help="Demo data for a local stack.", no_args_is_help=True)


def _bar() -> Progress:
    from kalimera.cli import console

    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=False,
    )


@stats_cli.command("rollup")
def rollup(
    since: Annotated[
        datetime | None,
        typer.Option(formats=["%Y-%m-%d"], help="Also recompute every day from this date on."),
    ] = None,
    workers: Annotated[int, typer.Option(min=1, max=8, help="Batches run at once.")] = 2,
) -> None:
    """Finalise idle conversations and roll up every closed day that is missing or dirty."""
    from kalimera.cli import console, with_services
    from kalimera.statistics.rollup import rollup_statistics

    since_day: date | None = since.date() if since else None

    async def work(services):  # type: ignore[no-untyped-def]
        with _bar() as bar:
            task = bar.add_task("rolling up days", total=None)

            def progress(done: int, total: int) -> None:
                bar.update(task, completed=done, total=total)

            return await rollup_statistics(
                services, since=since_day, workers=workers, progress=progress
            )

    report = with_services(work)
    console.print(
        f"rolled up {report.days} tenant-days of {len(report.tenants)} tenants "
        f"({report.conversations} conversations in {report.batches} batches); "
        f"finalised {report.finalised} idle conversations"
    )


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
    import uuid

    from kalimera.cli import console, with_services
    from kalimera.statistics.seed import seed_conversations
    from kalimera.statistics.seed import settings_tenant as dev_tenant

    fixed = [uuid.UUID(t) for t in tenant or []] or dev_tenant()

    async def work(services):  # type: ignore[no-untyped-def]
        with _bar() as bar:
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
