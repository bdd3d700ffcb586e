"""What the Functions worker would index from ``function_app``, read with its own API."""

import asyncio
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from azure.functions.decorators.utils import StringifyEnumJsonEncoder
from pydantic import SecretStr

from kalimera.settings import Settings


@pytest.fixture(scope="module")
def indexed(settings_env: dict[str, str]) -> dict[str, dict[str, Any]]:
    # get_functions() works once per app instance: read it once for the module.
    with pytest.MonkeyPatch.context() as env:
        for name, value in settings_env.items():
            env.setenv(name, value)
        from kalimera.settings import get_settings

        get_settings.cache_clear()
        import function_app

        functions = function_app.app.get_functions()
        get_settings.cache_clear()
    return {
        f.get_function_name(): json.loads(
            json.dumps(f.get_dict_repr(), cls=StringifyEnumJsonEncoder)
        )
        for f in functions
    }


def test_the_http_function_serves_every_route_anonymously(
    indexed: dict[str, dict[str, Any]],
) -> None:
    http = indexed["http_app_func"]
    trigger = next(b for b in http["bindings"] if b["type"] == "httpTrigger")
    assert trigger["authLevel"].lower() == "anonymous"
    assert trigger["route"] == "/{*route}"
    assert {"GET", "POST", "PUT", "PATCH", "DELETE"} <= {m.upper() for m in trigger["methods"]}
    assert any(b["type"] == "http" and b["direction"].lower() == "out" for b in http["bindings"])


def test_the_timer_rolls_up_statistics_on_the_configured_schedule(
    indexed: dict[str, dict[str, Any]],
) -> None:
    timer = indexed["rollup_statistics"]
    (binding,) = timer["bindings"]
    assert binding["type"] == "timerTrigger"
    assert binding["name"] == "timer"
    assert binding["schedule"] == "%KALIMERA_TIMER_SCHEDULE%"
    assert binding["runOnStartup"] is False


def test_a_timer_rolls_up_todays_closed_quarters_every_quarter_hour(
    indexed: dict[str, dict[str, Any]],
) -> None:
    (binding,) = indexed["rollup_today"]["bindings"]
    assert binding["type"] == "timerTrigger"
    assert binding["schedule"] == "0 2,17,32,47 * * * *"


def test_importing_function_app_connects_to_nothing() -> None:
    # No services: ports where nothing listens. The import must still succeed, quickly.
    env = {
        "PATH": "/usr/bin:/bin",
        "KALIMERA_ENV": "production",
        "DATABASE_URL": "postgresql://nobody@127.0.0.1:1/none",
        "REDIS_URL": "redis://127.0.0.1:1/0",
        "KALIMERA_STORAGE": "DefaultEndpointsProtocol=http;AccountName=a;AccountKey=YQ==;BlobEndpoint=http://127.0.0.1:1/a;",
        "KALIMERA_ENCRYPTION_KEY": "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=",
    }
    result = subprocess.run(
        [sys.executable, "-c", "import function_app; print(len(function_app.app.get_functions()))"],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert int(result.stdout.strip()) >= 1


def test_a_missing_secret_stops_the_worker_naming_the_setting() -> None:
    env = {
        "PATH": "/usr/bin:/bin",
        "KALIMERA_ENV": "production",
        "DATABASE_URL": "postgresql://x@127.0.0.1:1/x",
    }
    result = subprocess.run(
        [sys.executable, "-c", "import function_app"],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode != 0
    assert "KALIMERA_ENCRYPTION_KEY" in result.stderr
    assert "REDIS_URL" in result.stderr


def test_the_blob_trigger_ingests_recordings_from_event_grid(
    indexed: dict[str, dict[str, Any]],
) -> None:
    trigger = next(b for b in indexed["ingest_recording"]["bindings"] if b["direction"] == "IN")
    assert trigger["type"] == "blobTrigger"
    assert trigger["name"] == "blob"
    assert trigger["path"] == "kalimera-voice/{name}"
    assert trigger["connection"] == "KALIMERA_STORAGE"
    assert trigger["source"] == "EventGrid"


def test_the_queue_trigger_analyses_from_the_analysis_queue_with_the_storage_identity(
    indexed: dict[str, dict[str, Any]],
) -> None:
    from kalimera.analysis.pipeline import MAX_DEQUEUE
    from kalimera.dev.poller import NEW_BATCH_THRESHOLD, QUEUE_BATCH
    from kalimera.storage import ANALYSIS_POISON_QUEUE, ANALYSIS_QUEUE

    (trigger,) = indexed["analyse_conversation"]["bindings"]
    assert trigger["type"] == "queueTrigger"
    assert trigger["name"] == "msg"
    assert trigger["queueName"] == ANALYSIS_QUEUE
    assert trigger["connection"] == "KALIMERA_STORAGE"
    # host.json: base64 messages (what the relay sends), five tries, then the poison queue that
    # Functions names after the queue.
    host = json.loads(Path("host.json").read_text())["extensions"]["queues"]
    assert host["messageEncoding"] == "base64"
    assert host["maxDequeueCount"] == MAX_DEQUEUE
    # The dev runner's consumer takes messages as the host does.
    assert (host["batchSize"], host["newBatchThreshold"]) == (QUEUE_BATCH, NEW_BATCH_THRESHOLD)
    assert f"{ANALYSIS_QUEUE}-poison" == ANALYSIS_POISON_QUEUE


def test_a_timer_relays_the_analysis_outbox_every_minute(
    indexed: dict[str, dict[str, Any]],
) -> None:
    (binding,) = indexed["relay_analysis"]["bindings"]
    assert binding["type"] == "timerTrigger"
    assert binding["schedule"] == "0 * * * * *"


def test_a_timer_enforces_retention_and_sweeps_erasures_every_minute(
    indexed: dict[str, dict[str, Any]],
) -> None:
    (binding,) = indexed["enforce_retention"]["bindings"]
    assert binding["type"] == "timerTrigger"
    assert binding["schedule"] == "0 * * * * *"


def test_the_http_function_builds_the_api_on_its_first_request(settings: Settings) -> None:
    # What the worker does: the lifespan startup before the first request, then the request.
    import azure.functions as func

    from kalimera.asgi import LazyApp

    lazy = LazyApp(settings)
    middleware = func.AsgiMiddleware(lazy)

    async def first_request() -> func.HttpResponse:
        assert await middleware.notify_startup()
        try:
            request = func.HttpRequest("GET", "http://app/kalimera/health", body=b"")
            return await middleware.handle_async(request)
        finally:
            await middleware.notify_shutdown()

    response = asyncio.run(first_request())
    assert response.status_code == 200, response.get_body()
    assert json.loads(response.get_body())["status"] == "ok"


def test_a_guessable_gateway_secret_still_stops_the_import(settings: Settings) -> None:
    from kalimera.asgi import LazyApp
    from kalimera.gateway import GatewaySecretError

    guessable = settings.model_copy(update={"gateway_secret": SecretStr("short")})
    with pytest.raises(GatewaySecretError, match="at least"):
        LazyApp(guessable)
