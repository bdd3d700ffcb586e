"""CORS for a browser console on its own origin: exact origins from KALIMERA_CORS_ORIGINS, none by
default; preflights answered and cached; refusals readable by the console too; and API
Management's rule (infra/apim/cors.xml) the same as the app's."""

from __future__ import annotations

import asyncio
import xml.etree.ElementTree as ET
from collections.abc import Awaitable, Callable
from pathlib import Path

import httpx
import pytest

from kalimera import cors
from kalimera.app import create_app
from kalimera.settings import Settings, SettingsError, load_settings

CONSOLE = "https://console.example.com"
INFRA = Path(__file__).resolve().parents[2] / "infra"

Call = Callable[[httpx.AsyncClient], Awaitable[httpx.Response]]


def _answer(settings: Settings, call: Call) -> httpx.Response:
    app = create_app(settings)

    async def run() -> httpx.Response:
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://app") as client:
                return await call(client)

    return asyncio.run(run())


def _preflight(origin: str, method: str = "PUT") -> Call:
    headers = {
        "Origin": origin,
        "Access-Control-Request-Method": method,
        "Access-Control-Request-Headers": "authorization,content-type,if-match",
    }
    return lambda c: c.options(
        "/kalimera/ai-agent/00000000-0000-0000-0000-000000000000", headers=headers
    )


def test_without_origins_no_answer_allows_a_browser(settings: Settings) -> None:
    assert settings.cors_origins == ()
    answered = _answer(
        settings, lambda c: c.get("/kalimera/health/live", headers={"Origin": CONSOLE})
    )
    assert "access-control-allow-origin" not in answered.headers
    assert "access-control-allow-origin" not in _answer(settings, _preflight(CONSOLE)).headers


def test_an_allowed_origin_gets_its_preflight_and_every_answer_marked(settings: Settings) -> None:
    allowing = settings.model_copy(update={"cors_origins": (CONSOLE, "http://localhost:5173")})

    preflight = _answer(allowing, _preflight(CONSOLE))
    assert preflight.status_code == 200
    assert preflight.headers["access-control-allow-origin"] == CONSOLE
    assert set(preflight.headers["access-control-allow-methods"].split(", ")) == set(cors.METHODS)
    assert preflight.headers["access-control-max-age"] == "600"
    assert "access-control-allow-credentials" not in preflight.headers  # Bearer, never cookies

    stranger = _answer(allowing, _preflight("https://evil.example.com"))
    assert stranger.status_code == 400
    assert "access-control-allow-origin" not in stranger.headers

    # A refusal (no token: 401) is readable by the console, with the headers it may read.
    refused = _answer(allowing, lambda c: c.get("/kalimera/ai-agent", headers={"Origin": CONSOLE}))
    assert refused.status_code == 401
    assert refused.headers["access-control-allow-origin"] == CONSOLE
    assert "ETag" in refused.headers["access-control-expose-headers"]
    too_big = _answer(
        allowing,
        lambda c: c.post(
            "/kalimera/ai-agent",
            content=b"{" + b" " * (2 * 1024 * 1024) + b"}",
            headers={"Origin": CONSOLE, "Content-Type": "application/json"},
        ),
    )
    assert too_big.status_code in {401, 413}
    assert too_big.headers["access-control-allow-origin"] == CONSOLE


@pytest.mark.parametrize(
    "value",
    ["*", "https://console.example.com/app", "HTTPS://Console.example.com", "console.example.com"],
)
def test_an_origin_that_is_not_exact_stops_startup(
    value: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KALIMERA_ENV", "development")
    monkeypatch.setenv("KALIMERA_CORS_ORIGINS", value)
    with pytest.raises(SettingsError, match="KALIMERA_CORS_ORIGINS"):
        load_settings()


def test_origins_are_a_comma_separated_list(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KALIMERA_ENV", "development")
    monkeypatch.setenv("KALIMERA_CORS_ORIGINS", " https://a.example.com/, http://localhost:5173 ,")
    assert load_settings().cors_origins == ("https://a.example.com", "http://localhost:5173")


def test_api_management_applies_the_same_rule() -> None:
    rule = ET.parse(INFRA / "apim" / "cors.xml").getroot()  # noqa: S314 - our own file
    assert rule.get("allow-credentials") == "false"
    assert [m.text for m in rule.iter("method")] == list(cors.METHODS)
    assert [h.text for h in rule.find("allowed-headers").iter("header")] == list(cors.HEADERS)  # type: ignore[union-attr]
    assert [h.text for h in rule.find("expose-headers").iter("header")] == list(cors.EXPOSED)  # type: ignore[union-attr]
    assert rule.find("allowed-methods").get("preflight-result-max-age") == str(cors.MAX_AGE)  # type: ignore[union-attr]
    # First in the API's inbound policy, before the rate limit and the backend.
    policy = (INFRA / "apim" / "policy.xml").read_text()
    assert policy.index("<!-- cors -->") < policy.index("<base />") < policy.index("<rate-limit")
    bicep = (INFRA / "app" / "apim.bicep").read_text()
    assert "replace(loadTextContent('../apim/policy.xml'), '<!-- cors -->', corsPolicy)" in bicep
    assert "KALIMERA_CORS_ORIGINS" in (INFRA / "main.parameters.json").read_text()
