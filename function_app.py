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
