"""``kalimera ingest``: see the rejected recordings, re-run one."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

ingest_cli = typer.Typer(
    help="Voice ingestion: rejected recordings and replays.", no_args_is_help=True
)


@ingest_cli.command("failures")
def failures(
    limit: Annotated[int, typer.Option(help="At most this many, newest first.")] = 100,
) -> None:
    """List rejected recordings: blob name (within the container), reason, when."""
    from kalimera.cli import with_services
    from kalimera.conversations import repository
    from kalimera.db import transaction

    async def work(services):  # type: ignore[no-untyped-def]
        async with transaction(await services.db(), system=True) as conn:
            return await repository.list_rejections(conn=conn, limit=limit)

    rows = with_services(work)
    table = Table("blob", "reason", "rejected at", "etag")
    for row in rows:
        table.add_row(
            row["blob_name"], row["reason"], f"{row['rejected_at']:%Y-%m-%d %H:%M:%S}", row["etag"]
        )
    Console(width=250).print(table)
    if not rows:
        typer.echo("no rejected recordings")


@ingest_cli.command("replay")
def replay(
    blob: Annotated[
        str,
        typer.Argument(
            help="The blob's name within the container (a leading kalimera-voice/ is accepted)."
        ),
    ],
) -> None:
    """Run the ingestion again for one blob (what the trigger does), and print the outcome."""
    from kalimera.cli import with_services
    from kalimera.conversations.ingest import Outcome, ingest_blob

    result = with_services(lambda services: ingest_blob(services, blob))
    message = f"{result.outcome.value}: {result.blob_name}"
    if result.reason:
        message += f" ({result.reason})"
    typer.echo(message)
    if result.outcome is Outcome.REJECTED:
        raise typer.Exit(1)
