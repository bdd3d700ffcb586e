"""Upload memory: a 25 MiB voice upload must raise the server's peak RSS by < 16 MiB.

The API runs in a subprocess under uvicorn (as ``kalimera run`` serves it) on a throwaway
database and a private Azurite. After two small warm-up uploads, each round resets the server's
peak RSS (``/proc/PID/clear_refs``), reads ``VmHWM`` before, uploads a 25 MiB WAV streamed from a
generator (chunked, no Content-Length), reads ``VmHWM`` after; the figure is the median increase.

    .venv/bin/python bench/upload_memory.py [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))

from ingest import ROOT, make_agent, voice_stack

from kalimera.auth import DEFAULT_SCOPES, create_token
from kalimera.db import transaction
from kalimera.localstack import free_port, wait_for_port
from kalimera.services import Services
from kalimera.settings import load_settings

MiB = 1024 * 1024
SIZE = 25 * MiB
BAR = 16 * MiB
SERVER = (
    "import uvicorn, sys; from kalimera.app import create_app; "
    "uvicorn.run(create_app(), host='127.0.0.1', port=int(sys.argv[1]), log_level='warning')"
)


def status_kib(pid: int, field: str) -> int:
    text = Path(f"/proc/{pid}/status").read_text()
    match = re.search(rf"^{field}:\s+(\d+) kB", text, re.MULTILINE)
    assert match is not None
    return int(match[1])


def wav_body(size: int) -> Iterator[bytes]:
    """A WAV of exactly ``size`` bytes, in 256 KiB pieces (never whole in this process either)."""
    data_bytes = size - 44
    header = (
        b"RIFF"
        + (36 + data_bytes).to_bytes(4, "little")
        + b"WAVEfmt "
        + (16).to_bytes(4, "little")
        + (1).to_bytes(2, "little")
        + (1).to_bytes(2, "little")
        + (16000).to_bytes(4, "little")
        + (32000).to_bytes(4, "little")
        + (2).to_bytes(2, "little")
        + (16).to_bytes(2, "little")
        + b"data"
        + data_bytes.to_bytes(4, "little")
    )
    yield header
    piece = b"\x01\x00" * (128 * 1024)
    left = data_bytes
    while left > 0:
        yield piece[:left]
        left -= len(piece)


def multipart(boundary: str, size: int, conversation_id: str) -> Iterator[bytes]:
    yield (
        f'--{boundary}\r\nContent-Disposition: form-data; name="conversation_id"\r\n\r\n'
        f"{conversation_id}\r\n"
        f'--{boundary}\r\nContent-Disposition: form-data; name="voice_file"; '
        f'filename="call.wav"\r\nContent-Type: audio/wav\r\n\r\n'
    ).encode()
    yield from wav_body(size)
    yield f"\r\n--{boundary}--\r\n".encode()


async def credentials() -> tuple[str, uuid.UUID]:
    services = Services(load_settings())
    try:
        tenant_id = uuid.uuid4()
        agent_id = await make_agent(services, tenant_id)
        async with transaction(await services.db(), tenant_id=tenant_id) as conn:
            _, token = await create_token(
                conn=conn, tenant_id=tenant_id, name="bench", scopes=DEFAULT_SCOPES
            )
        return token, agent_id
    finally:
        await services.aclose()


def upload(client: httpx.Client, agent_id: uuid.UUID, size: int) -> None:
    boundary = uuid.uuid4().hex
    response = client.post(
        f"/kalimera/ai-agent/{agent_id}/voice",
        content=multipart(boundary, size, str(uuid.uuid4())),
        headers={"Content-Type": f"multipart/form-data; boundary={boundary}"},
    )
    assert response.status_code == 202, response.text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with voice_stack() as env:
        token, agent_id = asyncio.run(credentials())
        port = free_port()
        server = subprocess.Popen(
            [sys.executable, "-c", SERVER, str(port)], env={**os.environ, **env}, cwd=ROOT
        )
        try:
            wait_for_port(port, seconds=30, proc=server)
            headers = {"Authorization": f"Bearer {token}"}
            with httpx.Client(
                base_url=f"http://127.0.0.1:{port}", headers=headers, timeout=120
            ) as c:
                for _ in range(2):
                    upload(c, agent_id, 100 * 1024)
                increases = []
                for _ in range(args.rounds):
                    Path(f"/proc/{server.pid}/clear_refs").write_text("5")  # reset VmHWM
                    before = status_kib(server.pid, "VmHWM")
                    started = time.perf_counter()
                    upload(c, agent_id, SIZE)
                    seconds = time.perf_counter() - started
                    after = status_kib(server.pid, "VmHWM")
                    increases.append((after - before) * 1024)
                    print(
                        f"  round: VmHWM {before / 1024:.1f} MiB -> {after / 1024:.1f} MiB "
                        f"(+{(after - before) / 1024:.1f} MiB), upload {seconds:.2f} s"
                    )
        finally:
            server.terminate()
            server.wait(timeout=10)
    median = statistics.median(increases)
    print(
        f"upload memory: a {SIZE // MiB} MiB upload raises the server's peak RSS by "
        f"{median / MiB:.1f} MiB (median of {args.rounds}); bar < {BAR // MiB} MiB: "
        f"{'met' if median < BAR else 'NOT met'}"
    )


if __name__ == "__main__":
    main()
