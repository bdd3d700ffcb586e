"""The Azure Functions entry point: the HTTP API, the blob trigger and the timer trigger.

Wiring only: each function is one call into the ``kalimera`` package. Settings default to
production here, so a missing secret stops the worker with a message naming it.
"""

import azure.functions as func

from kalimera import telemetry
from kalimera.app import create_app
from kalimera.settings import get_settings

telemetry.configure(get_settings())  # Application Insights when its connection string is set
app = func.AsgiFunctionApp(app=create_app(), http_auth_level=func.AuthLevel.ANONYMOUS)


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

    await ingest_blob(shared(), blob.name or "")
