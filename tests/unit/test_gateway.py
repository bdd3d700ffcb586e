"""The gateway check (kalimera/gateway.py) as ASGI middleware, without the app: a request
without API Management's X-Kalimera-Gateway header is refused with 403 before anything behind it
runs or a byte of its body is read. The app wiring it in: tests/infra/test_gateway.py."""

from __future__ import annotations

import asyncio
import secrets
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request

from kalimera.gateway import GatewayCheck, GatewaySecretError, check_secret

SECRET = secrets.token_urlsafe(48)


def tracked_app() -> tuple[FastAPI, list[str]]:
    """An app that records what reached it, with a route that reads the body."""
    app, seen = FastAPI(), []

    @app.post("/kalimera/echo")
    async def echo(request: Request) -> dict[str, int]:
        seen.append("echo")
        return {"bytes": len(await request.body())}

    return app, seen


def call(app: Any, headers: list[tuple[str, str]], body: bytes = b"{}") -> httpx.Response:
    async def go() -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://app") as client:
            return await client.post("/kalimera/echo", content=body, headers=headers)

    return asyncio.run(go())


@pytest.mark.parametrize(
    "headers",
    [
        [],
        [("X-Kalimera-Gateway", "")],
        [("X-Kalimera-Gateway", SECRET[:-1])],
        [("X-Kalimera-Gateway", SECRET + "x")],
        [("X-Kalimera-Gateway", SECRET.upper())],
        # A second header (a caller's, next to the gateway's) is refused, not guessed at.
        [("X-Kalimera-Gateway", SECRET), ("X-Kalimera-Gateway", "mine")],
    ],
    ids=["missing", "empty", "short", "long", "case", "twice"],
)
def test_a_request_without_the_gateway_secret_is_refused_before_the_app(
    headers: list[tuple[str, str]],
) -> None:
    app, seen = tracked_app()
    response = call(GatewayCheck(app, SECRET), headers)
    assert response.status_code == 403
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["status"] == 403
    assert "API Management" in response.json()["detail"]
    assert seen == []


def test_the_body_of_a_refused_request_is_never_read() -> None:
    """64 MiB announced and streamed: refused without a single receive() call."""
    app, seen = tracked_app()
    guarded = GatewayCheck(app, SECRET)
    received: list[int] = []

    async def go() -> list[dict[str, Any]]:
        sent: list[dict[str, Any]] = []

        async def receive() -> dict[str, Any]:
            received.append(1)
            return {"type": "http.request", "body": b"x" * 65536, "more_body": True}

        async def send(message: dict[str, Any]) -> None:
            sent.append(message)

        scope = {
            "type": "http",
            "method": "POST",
            "path": "/kalimera/echo",
            "raw_path": b"/kalimera/echo",
            "query_string": b"",
            "headers": [(b"content-length", str(64 * 1024 * 1024).encode())],
            "http_version": "1.1",
            "scheme": "http",
            "server": ("app", 80),
            "client": ("127.0.0.1", 1),
            "root_path": "",
        }
        await guarded(scope, receive, send)
        return sent

    sent = asyncio.run(go())
    assert sent[0]["status"] == 403
    assert received == []
    assert seen == []


def test_the_secret_admits_the_request() -> None:
    app, seen = tracked_app()
    response = call(GatewayCheck(app, SECRET), [("X-Kalimera-Gateway", SECRET)], b"12345")
    assert response.status_code == 200
    assert response.json() == {"bytes": 5}
    assert seen == ["echo"]


def test_lifespan_passes_through() -> None:
    app, _ = tracked_app()
    guarded = GatewayCheck(app, SECRET)
    messages = iter([{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}])
    sent: list[str] = []

    async def receive() -> dict[str, Any]:
        return next(messages)

    async def send(message: dict[str, Any]) -> None:
        sent.append(message["type"])

    asyncio.run(guarded({"type": "lifespan", "asgi": {"version": "3.0"}}, receive, send))
    assert sent == ["lifespan.startup.complete", "lifespan.shutdown.complete"]


@pytest.mark.parametrize(
    ("secret", "message"),
    [
        ("@Microsoft.KeyVault(VaultName=kv;SecretName=kalimera-gateway-secret)", "unresolved"),
        ("short", "at least 32"),
    ],
)
def test_a_secret_that_cannot_be_right_stops_startup(secret: str, message: str) -> None:
    with pytest.raises(GatewaySecretError, match=message):
        check_secret(secret)


def test_it_is_a_starlette_middleware() -> None:
    """How app.py wires it: ``app.add_middleware(GatewayCheck, secret=...)`` (outermost when
    added last), so it runs before routing and every other middleware's body reads."""
    app, seen = tracked_app()
    app.add_middleware(GatewayCheck, secret=SECRET)
    assert call(app, []).status_code == 403
    assert call(app, [("X-Kalimera-Gateway", SECRET)]).status_code == 200
    assert seen == ["echo"]
