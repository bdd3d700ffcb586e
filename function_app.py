"""The Azure Functions entry point: the HTTP API, the blob trigger and the timer trigger.

Wiring only: each function is one call into the ``kalimera`` package. Settings default to
production here, so a missing secret stops the worker with a message naming it.
"""

import azure.functions as func

from kalimera.app import create_app

app = func.AsgiFunctionApp(app=create_app(), http_auth_level=func.AuthLevel.ANONYMOUS)


@app.timer_trigger(
    schedule="%KALIMERA_TIMER_SCHEDULE%", arg_name="timer", run_on_startup=False, use_monitor=True
)
async def rollup_statistics(timer: func.TimerRequest) -> None:
    """Nightly (``0 5 0 * * *`` UTC): finalise idle calls, roll up closed dirty days."""
    from kalimera.services import shared
    from kalimera.statistics.rollup import rollup_statistics as run

    await run(shared())
