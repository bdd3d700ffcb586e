"""The Azure Functions entry point: the HTTP API, the blob, queue and timer triggers.

Wiring only: each function is one call into the ``kalimera`` package. Settings default to
production here, so a missing secret stops the worker with a message naming it.
"""

import azure.functions as func

from kalimera import telemetry
from kalimera.asgi import LazyApp
from kalimera.settings import get_settings

telemetry.configure(get_settings())  # Application Insights when its connection string is set
# The FastAPI app is built on the first HTTP request: a trigger-only cold start never pays it.
app = func.AsgiFunctionApp(app=LazyApp(get_settings()), http_auth_level=func.AuthLevel.ANONYMOUS)


@app.blob_trigger(
    arg_name="blob",
    path="kalimera-voice/{name}",
    connection="KALIMERA_STORAGE",
    source=func.BlobSource.EVENT_GRID,
)
async def ingest_recording(blob: func.InputStream) -> None:
    """A recording landed in Blob Storage: make it a turn of its conversation (exactly once)."""
    from kalimera.conversations.ingest import ingest_blob
    from kalimera.services import shared

    with telemetry.operation("ingest_recording", blob=blob.name or ""):
        await ingest_blob(services=shared(), blob_name=blob.name or "")


@app.timer_trigger(
    schedule="%KALIMERA_TIMER_SCHEDULE%", arg_name="timer", run_on_startup=False, use_monitor=True
)
async def rollup_statistics(timer: func.TimerRequest) -> None:
    """Nightly (``0 5 0 * * *`` UTC): finalise idle calls, roll up closed dirty days; then sweep
    for recordings whose trigger event never came (``kalimera.conversations.sweep``)."""
    from kalimera.conversations.sweep import sweep
    from kalimera.services import shared
    from kalimera.statistics.rollup import rollup_statistics as run

    try:
        with telemetry.operation("rollup_statistics", past_due=timer.past_due):
            await run(services=shared())
    finally:  # a failed rollup does not keep lost recordings waiting another night
        with telemetry.operation("sweep_recordings"):
            await sweep(services=shared())


# Every quarter hour, two minutes after the quarter closes, not a setting: it bounds how much of
# today the statistics reads compute from raw conversations (docs/statistics.md, "Today").
@app.timer_trigger(
    schedule="0 2,17,32,47 * * * *", arg_name="timer", run_on_startup=False, use_monitor=True
)
async def rollup_today(timer: func.TimerRequest) -> None:
    """Roll up today's dirty days up to the last closed quarter, so that reads take today's
    closed quarters from the rollups (``kalimera.statistics.rollup.rollup_today``)."""
    from kalimera.services import shared
    from kalimera.statistics.rollup import rollup_today as run

    with telemetry.operation("rollup_today", past_due=timer.past_due):
        await run(services=shared())


@app.queue_trigger(arg_name="msg", queue_name="kalimera-analysis", connection="KALIMERA_STORAGE")
async def analyse_conversation(msg: func.QueueMessage) -> None:
    """An analysis request from the outbox: analyse the conversation (once per plan and
    transcript version), or feed a re-run's next batch. Raising leaves the message to the
    queue's retries (``host.json``), then to ``kalimera-analysis-poison``."""
    from kalimera.analysis.pipeline import handle
    from kalimera.services import shared

    with telemetry.operation("analyse_conversation", dequeue_count=msg.dequeue_count or 0):
        await handle(services=shared(), body=msg.get_body(), dequeue_count=msg.dequeue_count or 1)


# Every minute, not a setting: it is the outbox's guarantee (a request left behind is sent within
# a minute of its lease ending), not a knob to tune per environment.
@app.timer_trigger(schedule="0 * * * * *", arg_name="timer", run_on_startup=True, use_monitor=False)
async def relay_analysis(timer: func.TimerRequest) -> None:
    """Send the analysis requests that the code which wrote them could not send right after
    its commit (a crash, a queue outage): see ``kalimera.outbox``."""
    from kalimera.outbox import sweep
    from kalimera.services import shared

    with telemetry.operation("relay_analysis", past_due=timer.past_due):
        await sweep(services=shared())


@app.queue_trigger(arg_name="msg", queue_name="kalimera-webhooks", connection="KALIMERA_STORAGE")
async def deliver_webhook(msg: func.QueueMessage) -> None:
    """One attempt of one webhook delivery (a retry is a new message, delayed by the queue):
    see ``kalimera.webhooks.delivery``. Raising leaves the message to the queue's retries."""
    from kalimera.services import shared
    from kalimera.webhooks.delivery import handle

    with telemetry.operation("deliver_webhook", dequeue_count=msg.dequeue_count or 0):
        await handle(services=shared(), body=msg.get_body())


# Every minute, not a setting: the webhooks' outbox guarantee, as relay_analysis's.
@app.timer_trigger(schedule="0 * * * * *", arg_name="timer", run_on_startup=True, use_monitor=False)
async def relay_webhooks(timer: func.TimerRequest) -> None:
    """Queue the deliveries that the code which made them could not queue right after its
    commit, and those whose message was lost: see ``kalimera.webhooks.delivery.sweep``."""
    from kalimera.services import shared
    from kalimera.webhooks.delivery import sweep

    with telemetry.operation("relay_webhooks", past_due=timer.past_due):
        await sweep(services=shared())


# Every minute, not a setting: it is the erasure's guarantee (storage an erasure left is deleted,
# or tried again, within a minute; a contact's erased calls rely on it), and each run is bounded.
@app.timer_trigger(schedule="0 * * * * *", arg_name="timer", run_on_startup=False, use_monitor=True)
async def enforce_retention(timer: func.TimerRequest) -> None:
    """Erase the conversations past each tenant's retention (in bounded batches), then delete
    the recordings and history that erasures left: see ``kalimera.conversations.erasure``."""
    from kalimera.conversations.erasure import retention_timer
    from kalimera.services import shared

    with telemetry.operation("enforce_retention", past_due=timer.past_due):
        await retention_timer(services=shared())
