"""The Azure Functions entry point: the HTTP API, the blob trigger and the timer trigger.

Wiring only: each function is one call into the ``kalimera`` package. Settings default to
production here, so a missing secret stops the worker with a message naming it.
"""

import azure.functions as func

from kalimera.app import create_app

app = func.AsgiFunctionApp(app=create_app(), http_auth_level=func.AuthLevel.ANONYMOUS)
