"""The dev runner's consumer of the analysis queue (``make run``): it drives the same service as
the queue trigger, analyses an ended call within seconds, leaves a failed message for
redelivery and moves it to the poison queue after ``MAX_DEQUEUE`` tries, like Functions."""

from __future__ import annotations

import asyncio
import time
import uuid

import orjson

from kalimera.conversations.ingest import ingest_blob
from kalimera.db import transaction
from kalimera.dev.poller import MAX_DEQUEUE, consume_message, receive, run_consumer
from kalimera.services import Services
from kalimera.settings import Settings
from tests.support.analysis import drain, meta
from tests.support.audio_fixtures import wav_bytes
from tests.support.calls import Call, with_services
from tests.support.settings import settings_with


def test_the_running_consumer_analyses_an_ended_call_within_seconds(call: Call) -> None:
    name = call.name(1, "input", "wav")

    async def work(services: Services) -> float:
        await drain(services)  # what earlier tests left
        consumer = asyncio.create_task(run_consumer(services))
        try:
            blob = services.recordings.get_blob_client(name)
            await blob.upload_blob(
                wav_bytes(0.5), metadata=meta(transcript="Hello, one table please.", final="true")
            )
            started = time.monotonic()
            await ingest_blob(services=services, blob_name=name)
            while time.monotonic() - started < 30:
                async with transaction(await services.db(), tenant_id=call.tenant.id) as conn:
                    cur = await conn.execute(
                        "SELECT analysis_status FROM kalimera_conversations WHERE id = %(c)s",
                        {"c": call.conversation_id},
                    )
                    row = await cur.fetchone()
                if row is not None and row["analysis_status"] == "skipped":
                    return time.monotonic() - started
                await asyncio.sleep(0.1)
            raise AssertionError("not analysed within 30 s")
        finally:
            consumer.cancel()
            await asyncio.gather(consumer, return_exceptions=True)

    # Seconds, not the sweeper's minute: the ingestion relayed it after its commit.
    assert with_services(call.settings, work) < 10


def test_a_message_that_keeps_failing_goes_to_the_poison_queue(
    settings: Settings, settings_env: dict[str, str], blackhole: int
) -> None:
    body = orjson.dumps(
        {
            "kind": "analyse",
            "tenant_id": str(uuid.uuid4()),
            "conversation_id": str(uuid.uuid4()),
            "run_id": None,
            "reason": "rerun",
        }
    ).decode()
    # Its database hangs: every try fails (DatabaseUnavailable), as an outage would.
    hung = settings_with(
        settings_env,
        DATABASE_URL=f"postgresql://nobody@127.0.0.1:{blackhole}/none",
        KALIMERA_DB_TIMEOUT_SECONDS="0.3",
    )

    async def prepare(services: Services) -> None:
        await drain(services)
        await services.analysis_queue.send_message(body)

    with_services(settings, prepare)

    async def tries(services: Services) -> list[bool]:
        settled: list[bool] = []
        deadline = time.monotonic() + 60
        while not any(settled) and time.monotonic() < deadline:
            for message in await receive(services, 8):
                assert message.content == body
                settled.append(await consume_message(services, message, retry_seconds=0))
        return settled

    assert with_services(hung, tries) == [False] * (MAX_DEQUEUE - 1) + [True]

    async def poisoned(services: Services) -> list[str]:
        found = [m.content async for m in services.analysis_poison_queue.receive_messages()]
        for_us = [m for m in found if m == body]
        assert await receive(services, 8) == []  # gone from the analysis queue
        return for_us

    assert with_services(settings, poisoned) == [body]
