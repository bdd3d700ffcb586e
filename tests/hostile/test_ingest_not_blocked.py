"""Ingestion holds nothing across the network: while one turn's Table storage call is slow (a
real slow path: a proxy that holds the connection), another turn of the same conversation is
ingested without waiting for it, which it would if the first held the conversation's row lock
across the call."""

from __future__ import annotations

import re
import threading
import time

import pytest
from pydantic import SecretStr

from kalimera.conversations.ingest import IngestResult, Outcome, ingest_blob
from kalimera.settings import Settings
from tests.conftest import Tenant
from tests.support.audio_fixtures import wav_bytes
from tests.support.calls import Call, ingest, put_blob, with_services
from tests.support.slow_proxy import SlowProxy

DELAY = 4.0  # seconds the slow turn's Table call is held


@pytest.fixture
def call(settings: Settings, tenant: Tenant) -> Call:
    return Call(settings, tenant)


def _through_proxy(settings: Settings, proxy: SlowProxy) -> Settings:
    assert settings.storage_connection_string is not None
    conn = settings.storage_connection_string.get_secret_value()
    slowed = re.sub(
        r"TableEndpoint=http://127\.0\.0\.1:\d+",
        f"TableEndpoint=http://127.0.0.1:{proxy.port}",
        conn,
    )
    assert slowed != conn
    return settings.model_copy(update={"storage_connection_string": SecretStr(slowed)})


def test_a_slow_table_call_of_one_turn_does_not_block_the_next(call: Call) -> None:
    slow_name, fast_name = call.name(1, "input", "wav"), call.name(1, "output", "wav")
    put_blob(call.settings, slow_name, wav_bytes(1.0), {"transcript": "thank you so much"})
    put_blob(call.settings, fast_name, wav_bytes(2.0))
    assert call.settings.storage_connection_string is not None
    table_port = int(
        re.search(
            r"TableEndpoint=http://127\.0\.0\.1:(\d+)",
            call.settings.storage_connection_string.get_secret_value(),
        )[1]  # type: ignore[index]
    )
    results: dict[str, IngestResult] = {}
    with SlowProxy(table_port, DELAY) as proxy:
        slow = _through_proxy(call.settings, proxy)
        worker = threading.Thread(
            target=lambda: results.update(
                slow=with_services(
                    slow, lambda services: ingest_blob(services=services, blob_name=slow_name)
                )
            )
        )
        started = time.perf_counter()
        worker.start()
        assert proxy.arrived.wait(30), "the slow turn never reached Table storage"
        fast_started = time.perf_counter()
        fast = ingest(call.settings, fast_name)
        fast_seconds = time.perf_counter() - fast_started
        in_flight = proxy.open > 0
        worker.join(timeout=60)
    slow_seconds = time.perf_counter() - started
    print(
        f"other turn ingested in {fast_seconds:.3f} s while the slow turn's Table call was held"
        f" ({DELAY} s; the slow turn took {slow_seconds:.3f} s)"
    )
    assert fast.outcome is Outcome.INGESTED
    assert in_flight, "the slow call ended before the other turn was done"
    assert fast_seconds < DELAY / 2
    assert results["slow"].outcome is Outcome.INGESTED
    conversation = call.conversation()
    assert conversation is not None
    assert (conversation["turn_count"], str(conversation["duration"])) == (2, "3.000")
