"""Telemetry: OpenTelemetry to Application Insights when it is configured, request ids always.

``configure(settings)`` sets up ``azure-monitor-opentelemetry`` once per process when
``APPLICATIONINSIGHTS_CONNECTION_STRING`` is set (on Azure, by ``infra/``), and does nothing when
it is not: no import, no exporter, no thread. What it records: every HTTP request (FastAPI), the
dependencies (Postgres through psycopg, Redis, Storage through the Azure SDK's own tracing), the
trigger runs as operations (``operation(...)``) and the ``kalimera`` loggers' records. Local auth
is off on the Application Insights resource, so export authenticates with the app's identity.

Request ids: ``RequestIdMiddleware`` gives every HTTP request an id (the caller's
``X-Request-ID`` when it is a sane token, else a new one), answers it in ``X-Request-ID``, and
every log record made while serving it carries it as ``request_id``. Nothing here logs a header,
a query or a connection string, so no secret reaches a log line or a span through this module;
Redis command arguments are replaced by ``?`` by its instrumentation, SQL is logged with its
placeholders, never its parameter values.
"""

from __future__ import annotations

import contextvars
import logging
import os
import re
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from fastapi import FastAPI
    from starlette.types import ASGIApp, Message, Receive, Scope, Send

    from kalimera.settings import Settings

logger = logging.getLogger(__name__)

REQUEST_ID_HEADER = "x-request-id"
_HEADER = REQUEST_ID_HEADER.encode()  # as ASGI carries it (encoded once, not per header)
_SAFE_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")
request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")

_configured = False
# The distro's instrumentations (azure-monitor-opentelemetry 1.8.11), by its names.
UNUSED_OR_USED = (
    "azure_sdk", "django", "fastapi", "flask", "httpx", "httpx2", "psycopg2", "requests",
    "urllib", "urllib3",
)  # fmt: skip


def configure(settings: Settings, *, span_processors: Sequence[Any] = ()) -> bool:
    """Send telemetry to Application Insights when a connection string is set; once per process.

    Returns whether telemetry is on. ``span_processors`` lets tests look at the spans too."""
    global _configured
    install_log_record_factory()
    if _configured or settings.appinsights_connection_string is None:
        return _configured
    from azure.monitor.opentelemetry import configure_azure_monitor
    from opentelemetry.instrumentation.psycopg import PsycopgInstrumentor
    from opentelemetry.instrumentation.redis import RedisInstrumentor

    configure_azure_monitor(
        connection_string=settings.appinsights_connection_string.get_secret_value(),
        credential=_credential(settings),
        logger_name="kalimera",
        # Live metrics keep a connection open per instance; sampling is the host's business.
        enable_live_metrics=False,
        span_processors=list(span_processors),
        # Only what this app uses: the Azure SDK (Storage dependencies) here, FastAPI (requests)
        # per app in ``install`` when the app is built: the distro's FastAPI instrumentation
        # would import FastAPI on every cold start, a trigger's too (a quarter of the import).
        instrumentation_options={name: {"enabled": name == "azure_sdk"} for name in UNUSED_OR_USED},
    )
    PsycopgInstrumentor().instrument(enable_commenter=False)
    RedisInstrumentor().instrument()
    _configured = True
    logger.info("telemetry goes to Application Insights")
    return True


def _credential(settings: Settings) -> Any:
    """The identity that exports (Monitoring Metrics Publisher on the component). The exporter
    imports azure-identity anyway, so building it here costs nothing extra."""
    from azure.identity import DefaultAzureCredential

    client_id = settings.managed_identity_client_id or settings.storage_client_id
    return DefaultAzureCredential(managed_identity_client_id=client_id)


@contextmanager
def operation(name: str, **attributes: str | int | float | bool) -> Iterator[None]:
    """Run a trigger body as one operation: a server span when telemetry is on, and a request
    id for its log records either way (``with telemetry.operation("ingest_recording"): ...``)."""
    token = request_id.set(uuid.uuid4().hex)
    try:
        if not _configured:
            yield
            return
        from opentelemetry import trace

        tracer = trace.get_tracer("kalimera")
        with tracer.start_as_current_span(
            name, kind=trace.SpanKind.SERVER, attributes=attributes
        ) as span:
            span.set_attribute("kalimera.request_id", request_id.get())
            yield
    finally:
        request_id.reset(token)


class RequestIdMiddleware:
    """Pure ASGI: one id per HTTP request, in the response header and every log record."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = ""
        for key, value in scope.get("headers", ()):
            if key == _HEADER:
                incoming = value.decode("latin-1")
                break
        # 128 random bits in hex, as uuid4().hex but without building a UUID on every request.
        rid = incoming if _SAFE_ID.fullmatch(incoming) else os.urandom(16).hex()
        token = request_id.set(rid)

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [(k, v) for k, v in message.get("headers", []) if k != _HEADER]
                headers.append((_HEADER, rid.encode()))
                message = {**message, "headers": headers}
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            request_id.reset(token)


def traces_requests() -> bool:
    """Whether ``install`` traces the app's requests (telemetry is configured)."""
    return _configured


def install(app: FastAPI) -> None:
    """Add the request-id middleware to the app and, when telemetry is on, trace its requests
    (the OpenTelemetry FastAPI instrumentation, with the providers ``configure`` set)."""
    install_log_record_factory()
    app.add_middleware(RequestIdMiddleware)  # type: ignore[arg-type]
    if _configured:
        from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

        FastAPIInstrumentor.instrument_app(app)


_factory_installed = False


def install_log_record_factory() -> None:
    """Every log record gets ``request_id`` (``-`` outside a request), so a format string or the
    Application Insights exporter (as a custom dimension) can use it."""
    global _factory_installed
    if _factory_installed:
        return
    previous = logging.getLogRecordFactory()

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        record.request_id = request_id.get()
        return record

    logging.setLogRecordFactory(factory)
    _factory_installed = True
