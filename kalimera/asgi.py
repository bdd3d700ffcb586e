"""The API as the Functions worker gets it: an ASGI app built on its first call.

The worker imports ``function_app`` to index the triggers, on every cold start, whichever trigger
woke the instance; a queue, blob or timer invocation never needs FastAPI, the routes or their
models (about two thirds of that import). So ``function_app`` hands the worker this wrapper: the
FastAPI app is built when the first ASGI message arrives (the lifespan startup that the worker
sends before the first HTTP request). What can be checked without building it (the settings,
the gateway secret) is still checked at import, so a misconfigured app still fails at once.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from kalimera import gateway

if TYPE_CHECKING:
    from starlette.types import ASGIApp, Receive, Scope, Send

    from kalimera.settings import Settings


class LazyApp:
    """``create_app(settings)``, built on the first call and reused for every later one."""

    def __init__(self, settings: Settings) -> None:
        if settings.gateway_secret is not None:
            gateway.check_secret(settings.gateway_secret.get_secret_value())
        self.settings = settings
        self._app: ASGIApp | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        app = self._app
        if app is None:
            from kalimera.app import create_app

            app = self._app = create_app(self.settings)
        await app(scope, receive, send)
