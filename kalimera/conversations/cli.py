"""``kalimera ingest``: see the rejected recordings, re-run one, index the calls' words."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Annotated

import typer

from kalimera.cli_support import with_services

ingest_cli = typer.Typer(
    help="Voice ingestion: rejected recordings and replays.", no_args_is_help=True
)
retention_cli = typer.Typer(
    help="Retention and erasure (docs/retention.md): erase calls past each tenant's retention.",
    no_args_is_help=True,
)


@ingest_cli.command("failures")
def failures(
    limit: Annotated[int, typer.Option(help="At most this many, newest first.")] = 100,
    tenant: Annotated[uuid.UUID | None, typer.Option(help="Only this tenant's.")] = None,
    since: Annotated[
        datetime | None,
        typer.Option(
            help="Only those rejected at or after this time (UTC unless it says otherwise).",
            formats=["%Y-%m-%d", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M:%S%z"],
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="A JSON array of objects.")] = False,
) -> None:
    """List rejected recordings: blob (the whole name within the container, as ``ingest
    replay`` takes it), reason, rejected at, etag, tenant. Into a pipe: tab-separated lines."""
    from kalimera.conversations import repository
    from kalimera.db import transaction
    from kalimera.listing import show

    if since is not None and since.tzinfo is None:
        since = since.replace(tzinfo=UTC)

    async def work(services):  # type: ignore[no-untyped-def]
        async with transaction(await services.db(), system=True) as conn:
            return await repository.list_rejections(
                conn=conn, limit=limit, tenant_id=tenant, since=since
            )

    columns = {
        "blob_name": "blob",
        "reason": "reason",
        "rejected_at": "rejected at",
        "etag": "etag",
        "tenant_id": "tenant",
    }
    show(with_services(work), columns, as_json=as_json, empty="no rejected recordings")


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
    from kalimera.conversations.ingest import Outcome, ingest_blob

    result = with_services(lambda services: ingest_blob(services=services, blob_name=blob))
    message = f"{result.outcome.value}: {result.blob_name}"
    if result.reason:
        message += f" ({result.reason})"
    typer.echo(message)
    if result.outcome is Outcome.REJECTED:
        raise typer.Exit(1)


@ingest_cli.command("reindex-words")
def reindex_words(
    batch: Annotated[int, typer.Option(min=1, max=10_000, help="Calls a transaction.")] = 1000,
) -> None:
    """Build the words and data index that ``GET /kalimera/conversations?q=`` and ``data.*``
    search (docs/conversations.md, "Finding calls") for every call, a batch a transaction: after
    migration 0019 on a database that held more calls than it indexes itself. Safe to run while
    the app runs, and again."""
    from kalimera.conversations import repository
    from kalimera.db import transaction

    async def work(services):  # type: ignore[no-untyped-def]
        after, total = None, 0
        while True:
            async with transaction(await services.db(), system=True) as conn:
                after, done = await repository.reindex_words(conn=conn, after=after, limit=batch)
            total += done
            if after is None:
                return total

    typer.echo(f"indexed the words of {with_services(work)} calls")


@retention_cli.command("enforce")
def enforce(
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Only count what would be erased; erase nothing.")
    ] = False,
    tenant: Annotated[uuid.UUID | None, typer.Option(help="Only this tenant.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="A JSON array of objects.")] = False,
) -> None:
    """Erase the calls older than each tenant's retention, as the timer does (bounded batches:
    run it again for the rest), then delete the recordings and history they left. With
    ``--dry-run``, say per tenant how many would go."""
    from dataclasses import asdict

    from kalimera.conversations import erasure
    from kalimera.listing import show

    async def work(services):  # type: ignore[no-untyped-def]
        runs = await erasure.enforce_retention(services=services, dry_run=dry_run, tenant_id=tenant)
        if not dry_run:
            await erasure.sweep(services=services)
        return runs

    columns = {"tenant_id": "tenant", "days": "days", "conversations": "conversations"}
    if not dry_run:
        columns["recordings"] = "recordings"
    rows = [asdict(run) for run in with_services(work)]
    show(rows, columns, as_json=as_json, empty="no tenant has a retention")


@retention_cli.command("sweep")
def sweep_leftovers() -> None:
    """Delete the recordings and history that erasures left (a storage outage), now."""
    from kalimera.conversations import erasure

    typer.echo(f"cleaned {with_services(lambda s: erasure.sweep(services=s))} erased calls")
