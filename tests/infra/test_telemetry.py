"""Telemetry: off and not even imported without a connection string; with one, requests,
dependencies (Postgres, Redis, Storage) and trigger operations become spans, logs carry a
request id, and no secret reaches a span or a log line."""

from __future__ import annotations

import asyncio
import json
import logging

import httpx
import pytest
from fastapi import FastAPI

from kalimera import telemetry
from tests.infra.conftest import IMPORT_ENV
from tests.infra.fresh import fresh_python

CONNECTION_STRING = (
    "InstrumentationKey=00000000-0000-0000-0000-000000000000;IngestionEndpoint=https://127.0.0.1:1/"
)


def test_without_a_connection_string_nothing_is_configured_or_imported() -> None:
    code = (
        "import sys, function_app; from kalimera import telemetry; "
        "print([m for m in sys.modules if m.startswith('azure.monitor')], telemetry._configured)"
    )
    assert fresh_python("-c", code, env=IMPORT_ENV, timeout=60) == "[] False"


def test_every_response_carries_a_request_id_that_its_log_records_carry(
    caplog: pytest.LogCaptureFixture,
) -> None:
    app = FastAPI()
    telemetry.install(app)

    @app.get("/work")
    async def work() -> dict[str, str]:
        logging.getLogger("kalimera.test").info("working")
        return {"request_id": telemetry.request_id.get()}

    async def calls() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://app") as client:
            return [
                await client.get("/work"),
                await client.get("/work", headers={"X-Request-ID": "apim-7f3a.1"}),
                await client.get("/work", headers={"X-Request-ID": "x" * 65}),
            ]

    with caplog.at_level(logging.INFO, logger="kalimera.test"):
        fresh, given, hostile = asyncio.run(calls())
    assert len(fresh.headers["x-request-id"]) == 32
    assert fresh.json()["request_id"] == fresh.headers["x-request-id"]
    assert given.headers["x-request-id"] == "apim-7f3a.1"
    assert hostile.headers["x-request-id"] != "x" * 65  # replaced, not echoed
    ids = [r.request_id for r in caplog.records if r.name == "kalimera.test"]  # type: ignore[attr-defined]
    assert ids == [fresh.headers["x-request-id"], "apim-7f3a.1", hostile.headers["x-request-id"]]
    assert telemetry.request_id.get() == "-"  # nothing leaks past the request


def test_the_health_endpoint_answers_with_a_request_id(anon: httpx.Client) -> None:
    assert len(anon.get("/kalimera/health").headers["x-request-id"]) == 32


@pytest.fixture(scope="module")
def traced(settings_env: dict[str, str]) -> dict[str, object]:
    line = fresh_python(
        "-m",
        "tests.infra.telemetry_probe",
        env={
            **settings_env,
            "APPLICATIONINSIGHTS_CONNECTION_STRING": CONNECTION_STRING,
            # Keep every span (production samples; a test wants them all).
            "OTEL_TRACES_SAMPLER": "always_on",
        },
    )
    return json.loads(line)  # type: ignore[no-any-return]


def test_requests_dependencies_and_triggers_are_traced(traced: dict[str, object]) -> None:
    spans = traced["spans"]
    assert isinstance(spans, list)
    assert traced["health_status"] == 200
    servers = [s for s in spans if s["kind"] == "SERVER"]
    assert any(s["attributes"].get("http.route") == "/kalimera/health" for s in servers)
    systems = {s["attributes"].get("db.system") for s in spans}
    assert {"postgresql", "redis"} <= systems
    # Storage through the Azure SDK's own tracing: the operation and its HTTP call.
    names = {s["name"] for s in spans}
    assert "ContainerClient.get_container_properties" in names, names
    assert any("az.client_request_id" in s["attributes"] for s in spans)
    trigger = [s for s in servers if s["name"] == "ingest_recording"]
    assert len(trigger) == 1
    assert trigger[0]["attributes"]["blob"] == "kalimera-voice/x.wav"


def test_log_lines_carry_the_request_id(traced: dict[str, object]) -> None:
    log = str(traced["log"])
    assert any(
        line.split(" ", 1)[0] not in ("-", "")
        for line in log.splitlines()
        if "ingesting one recording" in line
    )


def test_no_secret_reaches_a_span_or_a_log_line(
    traced: dict[str, object], settings_env: dict[str, str]
) -> None:
    planted = [
        str(traced["token"]),
        settings_env["KALIMERA_ENCRYPTION_KEY"],
        # Azurite's account key, inside the storage connection string.
        settings_env["KALIMERA_STORAGE"].split("AccountKey=")[1].split(";")[0],
    ]
    everything = json.dumps(traced["spans"]) + str(traced["log"])
    for secret in planted:
        assert secret not in everything
