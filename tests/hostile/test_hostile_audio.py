"""A FLAC of nothing but valid frame headers, 64 KiB and 25 MiB, written to Azurite (and, the
small one, uploaded through the API) is decided, a rejection, within 2 s of arriving, while
``/kalimera/health`` of the same server answers within 1 s (quality-bars.md, linear work).

The ingestion runs on the event loop of the uvicorn server, as the dev runner's poller runs it
(and as the Functions host runs the trigger beside the HTTP app): a probe that held the loop
would show in the health latencies measured meanwhile.
"""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import uvicorn

from kalimera.app import create_app
from kalimera.conversations.ingest import IngestResult, Outcome, ingest_blob
from kalimera.dev.localstack import free_port
from kalimera.services import Services
from kalimera.settings import Settings
from tests.conftest import make_token
from tests.support.calls import make_agent, put_blob, query
from tests.support.crafted_audio import flac_of_frame_headers

DECIDE_SECONDS = 2.0
HEALTH_SECONDS = 1.0


class LoopServer:
    """The app under uvicorn on an event loop of a thread, with ``Services`` on that loop, so
    the test can run the ingestion on the loop that serves HTTP."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.loop = asyncio.new_event_loop()
        self.services: Services | None = None
        self.server = uvicorn.Server(
            uvicorn.Config(
                create_app(settings),
                host="127.0.0.1",
                port=self.port,
                log_level="warning",
                lifespan="on",
            )
        )
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        async def main() -> None:
            self.services = Services(self.settings)
            try:
                await self.server.serve()
            finally:
                await self.services.aclose()

        self.loop.run_until_complete(main())

    def __enter__(self) -> LoopServer:
        self.thread.start()
        while not self.server.started:
            if not self.thread.is_alive():
                msg = "the test server did not start"
                raise RuntimeError(msg)
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)

    def ingest(self, name: str) -> tuple[IngestResult, float]:
        """Ingest ``name`` on the server's loop; the result and the seconds it took."""
        assert self.services is not None
        started = time.perf_counter()
        future = asyncio.run_coroutine_threadsafe(
            ingest_blob(services=self.services, blob_name=name), self.loop
        )
        result = future.result(timeout=120)
        return result, time.perf_counter() - started


class HealthWatch:
    """Calls ``/kalimera/health`` back to back while the block runs; the latencies seen."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.latencies: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        with httpx.Client(base_url=self.url, timeout=30) as client:
            while not self._stop.is_set():
                started = time.perf_counter()
                client.get("/kalimera/health")
                self.latencies.append(time.perf_counter() - started)
                time.sleep(0.02)

    @property
    def slowest(self) -> float:
        """The slowest answer; a loop blocked throughout gave none: then infinity."""
        return max(self.latencies, default=float("inf"))

    def __str__(self) -> str:
        return f"health slowest {self.slowest:.3f} s over {len(self.latencies)} calls"

    def __enter__(self) -> HealthWatch:
        self._thread.start()
        while not self.latencies:  # the first answer: the server is warm
            time.sleep(0.01)
        self.latencies.clear()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=30)


@pytest.fixture(scope="module")
def loop_server(settings: Settings) -> Iterator[LoopServer]:
    with LoopServer(settings) as server:
        yield server


def _rejection(settings: Settings, name: str) -> list[dict[str, Any]]:
    return query(
        settings,
        "SELECT reason FROM kalimera_ingest_rejections WHERE blob_name = %(b)s",
        {"b": name},
    )


@pytest.mark.parametrize("size", [64 * 1024, 25 * 1024 * 1024], ids=["64KiB", "25MiB"])
def test_a_flac_of_frame_headers_written_to_storage_is_rejected_quickly(
    settings: Settings, loop_server: LoopServer, size: int
) -> None:
    tenant_id = uuid.uuid4()
    agent_id = make_agent(settings, tenant_id)
    name = f"{tenant_id}/{agent_id}/{uuid.uuid4()}/000001-input.flac"
    put_blob(settings, name, flac_of_frame_headers(size))
    with HealthWatch(loop_server.url) as health:
        result, seconds = loop_server.ingest(name)
        time.sleep(0.1)  # one more health answer after the decision
    print(f"crafted FLAC of {size} B: decided in {seconds:.3f} s; {health}")
    assert result.outcome is Outcome.REJECTED, result
    assert "FLAC frame" in result.reason
    assert seconds < DECIDE_SECONDS
    assert health.slowest < HEALTH_SECONDS
    assert _rejection(settings, name)


def test_a_flac_of_frame_headers_uploaded_through_the_api_is_rejected_quickly(
    settings: Settings, loop_server: LoopServer
) -> None:
    tenant_id = uuid.uuid4()
    agent_id = make_agent(settings, tenant_id)
    token = make_token(settings, tenant_id)
    with httpx.Client(
        base_url=loop_server.url, timeout=30, headers={"Authorization": f"Bearer {token}"}
    ) as client:
        response = client.post(
            f"/kalimera/ai-agent/{agent_id}/voice",
            files={"voice_file": ("crafted.flac", flac_of_frame_headers(64 * 1024), "audio/flac")},
        )
    assert response.status_code == 202, response.text
    blob = response.json()["blob"]
    with HealthWatch(loop_server.url) as health:
        result, seconds = loop_server.ingest(blob)
        time.sleep(0.1)
    print(f"uploaded crafted FLAC: decided in {seconds:.3f} s; {health}")
    assert result.outcome is Outcome.REJECTED, result
    assert seconds < DECIDE_SECONDS
    assert health.slowest < HEALTH_SECONDS
