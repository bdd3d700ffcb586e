"""Upload memory: a 25 MiB voice upload must raise the server's peak RSS by < 4 MiB (issue 17's
bar; quality-bars.md's first one was < 16 MiB).

The API runs in a process of its own under uvicorn (the app factory, one worker, the product's
default settings: ``bench/_stack.py``) on a throwaway database and a private Azurite; the agent
and the token are made as a user makes them (``POST /kalimera/ai-agent``, ``issue_token`` as
``kalimera token create`` does). After two small warm-up uploads, each round resets the server's
peak RSS (``/proc/PID/clear_refs``), reads ``VmHWM`` before, uploads a 25 MiB WAV streamed from a
generator (chunked, no Content-Length), reads ``VmHWM`` after; the figure is the median increase.

    .venv/bin/python -m bench.upload_memory [--rounds 3]
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx

from bench._bars import bar
from bench._stack import BenchStack

MiB = 1024 * 1024
SIZE = 25 * MiB
BAR = 4 * MiB


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
    with BenchStack() as stack:
        url, server = stack.start_server()
        headers = {"Authorization": f"Bearer {stack.token(uuid.uuid4())}"}
        with httpx.Client(base_url=url, headers=headers, timeout=120) as c:
            made = c.post("/kalimera/ai-agent", json={"name": "bench", "type": "inbound"})
            made.raise_for_status()
            agent_id = uuid.UUID(made.json()["id"])
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
    median = statistics.median(increases)
    print(
        f"upload memory: a {SIZE // MiB} MiB upload raises the server's peak RSS by "
        f"{median / MiB:.1f} MiB (median of {args.rounds}; load average {os.getloadavg()[0]:.1f})"
    )
    figure = f"{median / MiB:.1f} MiB"
    bar(f"upload of {SIZE // MiB} MiB, peak RSS growth", figure, "< 4 MiB (issue 17)", median < BAR)


if __name__ == "__main__":
    main()
