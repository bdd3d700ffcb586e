"""``kalimera run``: the local stack, the API under uvicorn, and the trigger drivers.

On Azure the Functions host runs the blob, queue and timer triggers; here the same functions are
driven by background jobs: the poller over Azurite (``kalimera.dev.poller``) for the blob trigger,
its consumers of the analysis and webhooks queues for the queue triggers, the two relays'
sweepers every few seconds, the statistics rollup and the recordings sweep every five minutes
for the nightly timer, and today's rollup every minute for the quarter-hourly one. A job is an
async callable in ``BACKGROUND_JOBS`` that runs until cancelled.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import signal
import uuid
from collections.abc import Awaitable, Callable

import uvicorn
import uvloop
from rich.console import Console

from kalimera import console as operator_console
from kalimera import settings as settings_module
from kalimera.app import create_app
from kalimera.auth import DEFAULT_SCOPES, create_token, revoke_tokens_named
from kalimera.conversations.erasure import retention_timer
from kalimera.conversations.sweep import sweep
from kalimera.db import transaction
from kalimera.dev.localstack import LocalStack, port_answers
from kalimera.dev.poller import WEBHOOKS, run_consumer, run_poller
from kalimera.dev.running import dev_tenant, recorded
from kalimera.migrate import migrate
from kalimera.outbox import ensure_queues
from kalimera.outbox import sweep as relay_analysis
from kalimera.services import Services
from kalimera.settings import DEV_DATABASE_URL, DEV_REDIS_URL, LOCAL_DIR, load_settings
from kalimera.statistics.rollup import rollup_statistics, rollup_today
from kalimera.storage import ensure_containers
from kalimera.webhooks.delivery import sweep as relay_webhooks

logger = logging.getLogger(__name__)

BackgroundJob = Callable[[Services], Awaitable[None]]

TIMER_SECONDS = 300  # the nightly timer's work, every five minutes under `kalimera run`
TODAY_SECONDS = 60  # the intraday rollup (every quarter hour on Azure): today's closed quarters
RELAY_SECONDS = 5  # the analysis relay's sweeper (every minute on Azure)
# The retention timer and the erasure sweeper (kalimera.conversations.erasure): every minute, as
# on Azure.
ERASURE_SECONDS = 60


def every(seconds: float, work: Callable[..., Awaitable[object]]) -> BackgroundJob:
    """A stand-in for the timer: ``work`` at start, then every ``seconds``; a failed run (Postgres
    or storage down) is logged and tried again next time."""

    async def job(services: Services) -> None:
        while True:
            try:
                await work(services=services)
            except Exception as exc:  # noqa: BLE001 - retried on the next round
                logger.warning("%s failed; retrying in %ds: %r", work.__name__, seconds, exc)
            await asyncio.sleep(seconds)

    return job


BACKGROUND_JOBS: list[BackgroundJob] = [
    run_poller,
    run_consumer,
    functools.partial(run_consumer, job=WEBHOOKS),
    every(RELAY_SECONDS, relay_analysis),
    every(RELAY_SECONDS, relay_webhooks),
    every(TIMER_SECONDS, rollup_statistics),
    every(TODAY_SECONDS, rollup_today),
    every(TIMER_SECONDS, sweep),
    every(ERASURE_SECONDS, retention_timer),
]

DEV_TOKEN_NAME = "kalimera run"  # noqa: S105 - a label, not a secret


def run(*, host: str, port: int, access_log: bool = False) -> None:
    """Start (or reuse) the services, migrate, print a token, serve until Ctrl-C or SIGTERM."""
    console = Console(stderr=True)
    # Before serving, Ctrl-C or SIGTERM exits (unwinding the stack's cleanup). While serving,
    # uvicorn handles both, shuts down, then re-raises the signal: by then it must be a no-op, so
    # the clients close and the local stack stops in order.
    signal.signal(signal.SIGTERM, _on_stop_signal)
    signal.signal(signal.SIGINT, _on_stop_signal)
    if port_answers(host, port):
        msg = f"{host}:{port} is already in use; stop what serves it or pass --port"
        raise SystemExit(msg)
    os.environ.setdefault("KALIMERA_ENV", "development")
    with LocalStack(LOCAL_DIR) as stack:
        settings = prepare(stack, console)
        # uvloop: the event loop uvicorn's own command line picks (uvicorn's fastest stack, with
        # httptools, which uvicorn picks itself when installed).
        with recorded(LOCAL_DIR, os.environ):
            uvloop.run(_serve(settings, host=host, port=port, access_log=access_log))


def prepare(stack: LocalStack, console: Console) -> settings_module.Settings:
    """Postgres and Redis where they answer (else private ones), Azurite, migrations: the stack
    of ``kalimera run``, also started by ``kalimera demo seed`` when no run serves. The
    connection settings go into this process's environment."""
    with console.status("starting Postgres, Redis and Azurite…"):
        os.environ["DATABASE_URL"] = stack.postgres(
            os.environ.get("DATABASE_URL", DEV_DATABASE_URL)
        )
        os.environ["REDIS_URL"] = stack.redis(os.environ.get("REDIS_URL", DEV_REDIS_URL))
        if "KALIMERA_STORAGE" not in os.environ:
            os.environ["KALIMERA_STORAGE"] = stack.azurite()
    settings_module.get_settings.cache_clear()
    settings = load_settings()
    assert settings.database_url is not None
    applied = migrate(settings.database_url.get_secret_value())
    if applied:
        console.print(f"applied migrations: {', '.join(applied)}")
    return settings


_serving = {"started": False}


def _on_stop_signal(signum: int, _frame: object) -> None:
    if not _serving["started"]:
        raise SystemExit(128 + signum)


async def _serve(
    settings: settings_module.Settings, *, host: str, port: int, access_log: bool
) -> None:
    services = Services(settings)
    jobs: list[asyncio.Task[None]] = []
    try:
        await ensure_storage(services)
        tenant_id, token = await _dev_token(services)
        server = uvicorn.Server(
            uvicorn.Config(
                create_app(settings, services),
                host=host,
                port=port,
                # httptools by name: uvicorn's "auto" would fall back to h11 (about half the
                # speed) without a word if it were missing.
                http="httptools",
                log_level="info",
                # Off, uvicorn decides it once per connection and never calls the access logger
                # (on, each request formats and writes a line).
                access_log=access_log,
                lifespan="on",
                server_header=False,
            )
        )
        jobs = [asyncio.create_task(job(services)) for job in BACKGROUND_JOBS]  # type: ignore[arg-type]
        _serving["started"] = True
        serving = asyncio.create_task(server.serve())
        while not server.started and not serving.done():  # noqa: ASYNC110 - uvicorn offers no event
            await asyncio.sleep(0.05)
        if server.started:
            _print_banner(host=host, port=port, tenant_id=tenant_id, token=token)
        await serving
    finally:
        for task in jobs:
            task.cancel()
        await asyncio.gather(*jobs, return_exceptions=True)
        await services.aclose()


async def ensure_storage(services: Services) -> None:
    """The container, table and queues the deployment (``infra/``) creates on Azure."""
    await ensure_containers(services.blobs, services.tables, services.settings)
    await ensure_queues(
        services.analysis_queue,
        services.analysis_poison_queue,
        services.webhooks_queue,
        services.webhooks_poison_queue,
    )


async def _dev_token(services: Services) -> tuple[uuid.UUID, str]:
    """The development tenant (kept in ``.local/dev-tenant``) and a fresh token for it; the
    previous run's token is revoked so tokens do not pile up."""
    tenant_id = dev_tenant(LOCAL_DIR)
    async with transaction(await services.db(), tenant_id=tenant_id) as conn:
        await revoke_tokens_named(conn=conn, tenant_id=tenant_id, name=DEV_TOKEN_NAME)
        _, token = await create_token(
            conn=conn, tenant_id=tenant_id, name=DEV_TOKEN_NAME, scopes=DEFAULT_SCOPES
        )
    return tenant_id, token


def _print_banner(*, host: str, port: int, tenant_id: uuid.UUID, token: str) -> None:
    base = f"http://{host}:{port}"
    out = Console(highlight=False, soft_wrap=True)
    out.print(f"\nKalimera is serving on {base}  (Ctrl-C stops it and everything it started)")
    out.print(f"  docs:    {base}/kalimera/docs")
    built = (operator_console.DIST / "index.html").is_file()
    note = "" if built else "  (not built: `make run` builds it)"
    out.print(f"  console: {base}{operator_console.PREFIX}/{note}  (sign in with the token below)")
    out.print(f"  tenant:  {tenant_id}")
    out.print(f"  token:   {token}")
    out.print(f'  try:     curl -H "Authorization: Bearer {token}" {base}/kalimera/ai-agent\n')
