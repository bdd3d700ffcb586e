"""A long call: the cost of a turn's ingestion against its position in the call.

One conversation of ``--turns`` caller turns, each a 1 s WAV with a transcript of about sixty
words, uploaded and ingested one after another through ``ingest_blob`` (what the blob trigger
runs) with the default settings. Prints the median ingestion time of the first and of the last
``--window`` turns and their ratio: the work of a turn is that turn's (quality-bars.md, "Hostile
input and abuse"), so the ratio stays near 1 however long the call; a turn that re-scored the
whole conversation's words would make it grow with the call.

    .venv/bin/python -m bench.long_call [--turns 400] [--window 25]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.ingest import make_agent, voice_stack  # noqa: E402
from kalimera.conversations.ingest import Outcome, ingest_blob  # noqa: E402
from kalimera.services import Services  # noqa: E402
from kalimera.settings import load_settings  # noqa: E402
from tests.support.audio_fixtures import wav_bytes  # noqa: E402

WORDS = (
    "well I called last week about the invoice and nobody called me back which is frustrating "
    "but the agent today was friendly and helpful so thank you I still think the wait was far "
    "too long and the music on hold was awful yet the answer I finally got was clear and fair "
    "so overall I am fairly happy"
)


async def run(turns: int, window: int) -> None:
    services = Services(load_settings())
    try:
        tenant_id = uuid.uuid4()
        agent_id = await make_agent(services, tenant_id)
        conversation_id = uuid.uuid4()
        container = services.blobs.get_container_client(services.settings.voice_container)
        audio = wav_bytes(1.0)
        seconds = []
        for seq in range(1, turns + 1):
            name = f"{tenant_id}/{agent_id}/{conversation_id}/{seq:06d}-input.wav"
            words = WORDS.replace(" ", "%20") + f"%20turn%20{seq}"
            await container.upload_blob(name, audio, overwrite=True, metadata={"transcript": words})
            start = time.perf_counter()
            result = await ingest_blob(services=services, blob_name=name)
            seconds.append(time.perf_counter() - start)
            assert result.outcome is Outcome.INGESTED, result
        first = statistics.median(seconds[:window])
        last = statistics.median(seconds[-window:])
        print(f"one call of {turns} caller turns, ~{len(WORDS.split())} words each")
        print(f"median ingestion of turns 1-{window}: {first * 1000:.1f} ms")
        print(f"median ingestion of turns {turns - window + 1}-{turns}: {last * 1000:.1f} ms")
        print(f"ratio last/first: {last / first:.2f} (1.00 = a turn's work is its own)")
    finally:
        await services.aclose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--turns", type=int, default=400)
    parser.add_argument("--window", type=int, default=25)
    args = parser.parse_args()
    with voice_stack():
        asyncio.run(run(args.turns, args.window))


if __name__ == "__main__":
    main()
