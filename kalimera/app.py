"""The FastAPI app: routers, problem+json errors, and the clients' lifecycle.

The same app runs under uvicorn (``kalimera run``, tests) and inside the Functions host
(``function_app.py``). Each domain registers its router in ``ROUTERS`` and nothing else here.
"""

import gc
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import APIRouter, FastAPI
from fastapi.routing import APIRoute
from starlette.middleware import Middleware
from starlette.types import ASGIApp, Receive, Scope, Send

from kalimera import (
    __version__,
    apidoc,
    console,
    cors,
    gateway,
    health,
    limits,
    problems,
    telemetry,
)
from kalimera.agents.routes import CachedAgentReads
from kalimera.agents.routes import router as agents_router
from kalimera.analysis.routes import router as analysis_router
from kalimera.analysis.routes import runs_router as analysis_runs_router
from kalimera.auth import TokenCache
from kalimera.contacts.csv_upload import csv_limit
from kalimera.contacts.routes import router as contacts_router
from kalimera.conversations import upload
from kalimera.conversations.erasure_routes import router as erasure_router
from kalimera.conversations.erasure_routes import settings_router
from kalimera.conversations.routes import router as conversations_router
from kalimera.deps import principal_for
from kalimera.services import Services
from kalimera.settings import Settings, get_settings
from kalimera.statistics.routes import router as statistics_router
from kalimera.tokens.routes import router as tokens_router
from kalimera.webhooks.routes import router as webhooks_router

ROUTERS: list[APIRouter] = [
    health.router,
    analysis_router,  # before agents: their PUT /{agent_id}/{section} would take its path
    analysis_runs_router,
    agents_router,
    contacts_router,
    conversations_router,
    erasure_router,
    settings_router,
    statistics_router,
    tokens_router,
    console.router,
    webhooks_router,
]

DESCRIPTION = (
    "Kalimera runs AI voice agents that take and make phone calls. Every endpoint but health "
    "needs `Authorization: Bearer <token>`; errors are `application/problem+json` (RFC 9457)."
)


class Api(FastAPI):
    """FastAPI, with the outermost of its middleware served in front of it (``serve_in_front``).

    Starlette runs the middleware added with ``add_middleware`` inside its own layers
    (``FastAPI.__call__``, ``ServerErrorMiddleware``, FastAPI's exception telemetry), which every
    request crosses before the first of ours runs, a cached agent read too, which needs nothing
    of FastAPI. The middleware lifted in front are the same classes with the same arguments in
    the same order, each run once a request, so what they add to an answer (the request id, the
    gateway refusal, the CORS headers) is decided by the same code for a request answered in
    front and for one that goes on into FastAPI. One difference, for the better: a 500 from
    ``ServerErrorMiddleware`` now passes through them (it carries a request id and CORS).
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.front_middleware: list[Middleware] = []
        self._front: ASGIApp = super().__call__

    def serve_in_front(self, *, through: type) -> None:
        """Lift the middleware from the outermost down to ``through`` (added with
        ``add_middleware``) out of Starlette's stack and call them before FastAPI."""
        at = next(i for i, m in enumerate(self.user_middleware) if m.cls is through) + 1
        self.front_middleware, self.user_middleware = (
            self.user_middleware[:at],
            self.user_middleware[at:],
        )
        app: ASGIApp = super().__call__
        for cls, args, kwargs in reversed(self.front_middleware):
            app = cls(app, *args, **kwargs)
        self._front = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        scope["app"] = self  # as Starlette sets it, for the middleware in front too
        await self._front(scope, receive, send)


def create_app(settings: Settings | None = None, services: Services | None = None) -> Api:
    """Build the app; ``services`` lets tests share one registry, else the lifespan makes one."""
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        own = services is None
        app.state.services = services or Services(settings)
        await app.state.services.db()
        app.state.services.warm()
        # Everything built so far (modules, the app, the clients) lives as long as the process:
        # keep it out of the collector's full passes, which otherwise pause every request in
        # flight for tens of milliseconds under load.
        gc.freeze()
        try:
            yield
        finally:
            if own:
                await app.state.services.aclose()

    app = Api(
        title="Kalimera API",
        version=__version__,
        description=DESCRIPTION,
        openapi_url="/kalimera/openapi.json",
        docs_url="/kalimera/docs",
        swagger_ui_oauth2_redirect_url="/kalimera/docs/oauth2-redirect",
        redoc_url=None,
        lifespan=lifespan,
        generate_unique_id_function=operation_id,
        # Requests are traced by the Azure Monitor distro's FastAPI instrumentation when
        # telemetry is on (kalimera.telemetry); FastAPI's own would look the global providers up
        # on every request (a twentieth of a cached read) to find out it has nothing to do.
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    app.state.settings = settings
    app.state.token_cache = TokenCache(settings.auth_cache_seconds)
    app.state.readiness = health.Readiness()
    problems.install(app)
    # Added before the request-id middleware, so that one wraps it: a refusal carries an id too.
    app.add_middleware(
        limits.BodyGuard,  # type: ignore[arg-type]
        files=file_routes(settings),
        authenticate=principal_for,
    )
    # Inside the request ids, the gateway check and CORS, so its answers carry what theirs do.
    app.add_middleware(CachedAgentReads)  # type: ignore[arg-type]
    telemetry.install(app)
    if settings.gateway_secret is not None:
        # Outermost: a request that skipped API Management is refused before anything else runs.
        secret = settings.gateway_secret.get_secret_value()
        gateway.check_secret(secret)  # at start-up, not at the first request
        app.add_middleware(gateway.GatewayCheck, secret=secret)  # type: ignore[arg-type]
    cors.install(app, settings.cors_origins)  # outermost: refusals carry its headers too
    if not telemetry.traces_requests():
        # A cached read answered in front of FastAPI never enters it; the FastAPI
        # instrumentation traces only what does, so with tracing on everything stays inside.
        app.serve_in_front(through=CachedAgentReads)
    for router in ROUTERS:
        app.include_router(router)
    app.openapi = lambda: apidoc.document(app)  # type: ignore[method-assign]
    return app


def operation_id(route: APIRoute) -> str:
    """Every route's OpenAPI operation id, from its function's name: ``list_contacts`` is
    ``listContacts``. Clients generate method names from it and links refer to it, so it stays
    stable as long as the function keeps its name (tests assert the ids are unique)."""
    first, *rest = route.name.split("_")
    return first + "".join(word.capitalize() for word in rest)


def file_routes(settings: Settings) -> list[limits.FileRoute]:
    """The routes that take a file, and their body limits; every other body is JSON."""

    def upload_limit(_: str) -> int:
        return settings.max_upload_bytes + upload.FORM_OVERHEAD

    return [
        limits.FileRoute("POST", re.compile(r"/kalimera/contact/import/?"), csv_limit),
        limits.FileRoute("POST", re.compile(r"/kalimera/ai-agent/[^/]+/voice/?"), upload_limit),
    ]
