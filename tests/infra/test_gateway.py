"""The gateway check (kalimera/gateway.py) in the app: with KALIMERA_GATEWAY_SECRET set, a request
without API Management's X-Kalimera-Gateway header is refused with 403 before the app routes it
(the middleware itself, without the app: tests/unit/test_gateway.py)."""

from __future__ import annotations

import asyncio
import secrets

import httpx
from pydantic import SecretStr

from kalimera.app import create_app
from kalimera.gateway import GatewayCheck
from kalimera.settings import Settings

SECRET = secrets.token_urlsafe(48)


def test_without_a_secret_the_app_answers_directly(settings: Settings) -> None:
    app = create_app(settings.model_copy(update={"gateway_secret": None}))
    assert not any(m.cls is GatewayCheck for m in [*app.front_middleware, *app.user_middleware])


def test_with_a_secret_the_app_refuses_callers_that_skipped_the_gateway(
    settings: Settings,
) -> None:
    app = create_app(settings.model_copy(update={"gateway_secret": SecretStr(SECRET)}))

    async def get(headers: dict[str, str]) -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://app") as client:
            return await client.get("/kalimera/health/live", headers=headers)

    assert asyncio.run(get({})).status_code == 403
    assert asyncio.run(get({"X-Kalimera-Gateway": SECRET})).status_code == 200
