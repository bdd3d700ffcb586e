"""The gateway check: on Azure only API Management may call the app.

The Function App's hostname is public (it is in every signed URL), and API Management Consumption
has no fixed address the platform's access restrictions could single out: they admit Azure's
addresses in the region, not API Management alone. So API Management sends a secret in
``X-Kalimera-Gateway`` (a Key Vault named value, ``infra/apim/policy.xml``) and this ASGI layer
refuses every request that lacks it with 403 problem+json, before routing, authentication or any
read of the body: a caller who skips API Management skips neither its subscription key nor its
rate limit.

The check is on only when ``KALIMERA_GATEWAY_SECRET`` is set (on Azure, a Key Vault reference
that ``infra/`` sets); locally, in tests and behind another front door it is absent and the app
answers directly. The Functions host's own endpoints (the Event Grid webhook
``/runtime/webhooks/blobs``, ``/admin``) never reach the ASGI app and are not affected.
"""

from __future__ import annotations

import hmac
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from starlette.types import ASGIApp, Receive, Scope, Send

HEADER = b"x-kalimera-gateway"
SETTING = "KALIMERA_GATEWAY_SECRET"
MIN_LENGTH = 32
# What the app setting holds when the platform could not resolve the Key Vault reference.
UNRESOLVED_REFERENCE = "@Microsoft.KeyVault("


class GatewaySecretError(ValueError):
    """The configured secret cannot be right; the message names the setting and the fix."""


def check_secret(secret: str) -> None:
    """Refuse a secret that cannot be right (``GatewaySecretError`` naming the fix)."""
    if secret.startswith(UNRESOLVED_REFERENCE):
        msg = (
            f"{SETTING} is an unresolved Key Vault reference: give the app's identity "
            "Key Vault Secrets User on the vault and check the secret exists"
        )
        raise GatewaySecretError(msg)
    if len(secret) < MIN_LENGTH:
        msg = f"{SETTING} must be at least {MIN_LENGTH} characters (it is guessable)"
        raise GatewaySecretError(msg)


class GatewayCheck:
    """Pure ASGI middleware: HTTP and WebSocket requests must carry the gateway secret."""

    def __init__(self, app: ASGIApp, secret: str) -> None:
        check_secret(secret)
        self.app = app
        self._secret = secret.encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket") or self._admits(scope):
            await self.app(scope, receive, send)
            return
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1008})
            return
        # Imported here: ``function_app`` checks the secret at import (``check_secret``), and
        # the problem module's imports (psycopg among them) are not worth a cold start there.
        from kalimera.problems import problem_response

        response = problem_response(
            403, "Call the API through its API Management gateway.", title="Forbidden"
        )
        await response(scope, receive, send)

    def _admits(self, scope: Scope) -> bool:
        presented = [value for name, value in scope["headers"] if name == HEADER]
        # Exactly one header: a second one could be a caller's, appended by a proxy.
        return len(presented) == 1 and hmac.compare_digest(presented[0], self._secret)
