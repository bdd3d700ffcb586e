"""``kalimera stats rollup``: what the nightly timer does, on demand (``--since`` recomputes,
``--today`` does what the quarter-hourly timer does)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated

import typer

from kalimera.cli_support import console, progress_bar, with_services

stats_cli = typer.Typer(help="Conversation statistics.", no_args_is_help=True)


@stats_cli.command("rollup")
def rollup(
    since: Annotated[
        datetime | None,
        typer.Option(formats=["%Y-%m-%d"], help="Also recompute every day from this date on."),
    ] = None,
    today: Annotated[
        bool,
        typer.Option(
            "--today",
            help="Roll up today's dirty days up to the last closed quarter instead (what the"
            " quarter-hourly timer does), so that reads take them from the rollups.",
        ),
    ] = False,
    workers: Annotated[int, typer.Option(min=1, max=8, help="Batches run at once.")] = 2,
    profile: Annotated[
        bool, typer.Option(help="Print the time each kind of statement took, over all batches.")
    ] = False,
) -> None:
    """Finalise idle conversations and roll up every closed day that is missing or dirty."""
    from kalimera.statistics.rollup import rollup_statistics, rollup_today

    if today and since:
        raise typer.BadParameter("--today rolls up today only; it takes no --since")
    since_day: date | None = since.date() if since else None

    async def work(services):  # type: ignore[no-untyped-def]
        with progress_bar() as bar:
            task = bar.add_task("rolling up days", total=None)

            def progress(done: int, total: int) -> None:
                bar.update(task, completed=done, total=total)

            if today:
                return await rollup_today(services=services, workers=workers, progress=progress)
            return await rollup_statistics(
                services=services, since=since_day, workers=workers, progress=progress
            )

    report = with_services(work)
    console.print(
        f"rolled up {report.days} tenant-days of {len(report.tenants)} tenants "
        f"({report.conversations} conversations in {report.batches} batches); "
        f"finalised {report.finalised} idle conversations"
    )
    if profile:
        for name, seconds in sorted(report.seconds.items(), key=lambda kv: -kv[1]):
            console.print(f"  {name:<24} {seconds:8.2f} s")
