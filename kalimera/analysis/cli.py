"""``kalimera analysis rerun``: a bulk re-run of an agent's analyses, with a progress bar.

It makes the run as ``POST /kalimera/ai-agent/{id}/analysis-runs`` does (the same service) and
follows it as ``GET /kalimera/analysis-runs/{id}`` does; the queue's consumers do the work (the
``analyse_conversation`` function on Azure, ``kalimera run`` locally). Ctrl-C cancels what has
not started.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime
from typing import Annotated

import typer

from kalimera.cli_support import console, progress_bar, with_services

analysis_cli = typer.Typer(help="Post-call analysis: re-runs.", no_args_is_help=True)

POLL_SECONDS = 1.0
DAY = ["%Y-%m-%d"]


@analysis_cli.command("rerun")
def rerun(
    tenant: Annotated[uuid.UUID, typer.Option(help="The tenant the agent belongs to.")],
    agent: Annotated[uuid.UUID, typer.Option(help="The agent whose calls to analyse again.")],
    since: Annotated[datetime, typer.Option(formats=DAY, help="Calls that ended on or after.")],
    until: Annotated[
        datetime | None,
        typer.Option(formats=DAY, help="Calls that ended on or before (default: today, UTC)."),
    ] = None,
    plan_version: Annotated[
        int | None, typer.Option(min=0, help="A plan version (default: the current plan).")
    ] = None,
    wait: Annotated[bool, typer.Option(help="Follow the run with a progress bar.")] = True,
) -> None:
    """Analyse again the agent's calls that ended in the range and have no result for the plan
    version; prints the run's id, then follows it until it is done."""
    from kalimera.analysis import runs
    from kalimera.errors import DomainError

    last = (until or datetime.now(UTC)).date()

    async def work(services):  # type: ignore[no-untyped-def]
        created = await runs.start_run(
            services=services,
            tenant_id=tenant,
            agent_id=agent,
            since=since.date(),
            until=last,
            plan_version=plan_version,
        )
        console.print(f"run {created.id}: {created.total} calls")
        if not wait or not created.total:
            return created.id, None
        with progress_bar() as bar:
            task = bar.add_task("analysing", total=created.total)
            try:
                while True:
                    run = await runs.get_run(services=services, tenant_id=tenant, run_id=created.id)
                    finished = run.done + run.failed + run.skipped + run.cancelled
                    bar.update(task, completed=finished)
                    if run.status != "running":
                        return created.id, run
                    await asyncio.sleep(POLL_SECONDS)
            except (KeyboardInterrupt, asyncio.CancelledError):
                run = await runs.cancel_run(services=services, tenant_id=tenant, run_id=created.id)
                return created.id, run

    try:
        run_id, run = with_services(work)
    except DomainError as exc:
        faults = "; ".join(str(e["msg"]) for e in exc.errors or ())
        console.print(f"[red]{exc.detail}{': ' + faults if faults else ''}[/red]")
        raise typer.Exit(1) from None
    typer.echo(str(run_id))
    if run is not None:
        console.print(
            f"{run.status}: {run.done} done, {run.failed} failed, {run.skipped} skipped,"
            f" {run.cancelled} cancelled of {run.total}"
        )
