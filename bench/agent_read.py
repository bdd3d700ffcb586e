"""Cached agent read vs the floor of the stack, side by side in one run.

    .venv/bin/python -m bench.agent_read [--seconds 3] [--rounds 9] [--connections 64]

Starts two single-worker uvicorn processes on loopback with the same options:
- ``agent``: the Kalimera app; ``GET /kalimera/ai-agent/{id}`` with auth, tenancy, cache, masking
  (the agent has secrets in several sections, so the cached document is a realistic one);
- ``floor``: a bare ASGI app that does one Redis GET of the same cached document and returns it.
Then loads each with 64 concurrent keep-alive connections from a separate process (``wrk`` when
installed, else the small asyncio client below), alternating rounds, and prints throughput, p50
and p99 per round and their medians, and the ratio agent / floor. Bar: ratio >= 0.5, p99 <= 50 ms.
Runs on a throwaway stack (``bench/_stack.py``: a database, a Redis database and an Azurite of
its own); the app gets the product's default settings, as a deployment does.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
FLOOR_KEY_ENV = "BENCH_FLOOR_KEY"
FLOOR_REDIS_ENV = "BENCH_FLOOR_REDIS"


# --- the floor: a bare ASGI app doing one Redis GET -------------------------------------------


class _Floor:
    """``GET /`` → the bytes at one Redis key, with the same Redis client settings as the app."""

    def __init__(self) -> None:
        self.redis: Any = None
        self.key = os.environ.get(FLOOR_KEY_ENV, "")

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    from kalimera.cache import create_redis

                    # No fail-open here, so a generous timeout: the floor must not error.
                    self.redis = create_redis(os.environ[FLOOR_REDIS_ENV], timeout_ms=1000)
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await self.redis.aclose()
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        body = await self.redis.get(self.key) or b""
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})


floor_app = _Floor()


# --- the load generators ----------------------------------------------------------------------


def wrk(url: str, headers: dict[str, str], seconds: float, connections: int) -> dict[str, float]:
    argv = [
        "wrk",
        "-t1",
        f"-c{connections}",
        f"-d{max(1, round(seconds))}s",
        "--latency",
        "--timeout",
        "5s",
    ]
    for name, value in headers.items():
        argv += ["-H", f"{name}: {value}"]
    out = subprocess.run([*argv, url], capture_output=True, text=True, check=True).stdout
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: .*", out)
    return {
        "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),  # type: ignore[union-attr]
        "p50": _ms(re.search(r"50%\s+([\d.]+\w+)", out).group(1)),  # type: ignore[union-attr]
        "p99": _ms(re.search(r"99%\s+([\d.]+\w+)", out).group(1)),  # type: ignore[union-attr]
        "errors": float(non_2xx.group(1) if non_2xx else 0) + (1 if errors else 0),
    }


def _ms(text: str) -> float:
    value, unit = re.match(r"([\d.]+)(\w+)", text).groups()  # type: ignore[union-attr]
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}[unit]


async def _client(
    host: str, port: int, request: bytes, until: float, latencies: list[float], errors: list[int]
) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    while time.perf_counter() < until:
        started = time.perf_counter()
        try:
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            length = re.search(rb"(?i)content-length: (\d+)", head)
            if length is None:
                raise ValueError("a response without Content-Length")
            await reader.readexactly(int(length.group(1)))
        except (OSError, ValueError, asyncio.IncompleteReadError):
            errors.append(1)
            writer.close()
            reader, writer = await asyncio.open_connection(host, port)
            continue
        latencies.append((time.perf_counter() - started) * 1000)
        if not head.startswith(b"HTTP/1.1 200"):
            errors.append(1)
    writer.close()


def asyncio_load(
    url: str, headers: dict[str, str], seconds: float, connections: int
) -> dict[str, float]:
    """The fallback without wrk: keep-alive HTTP/1.1 clients on one event loop."""
    match = re.match(r"http://([^:/]+):(\d+)(/.*)", url)
    assert match is not None
    host, port, path = match.group(1), int(match.group(2)), match.group(3)
    lines = [f"GET {path} HTTP/1.1", f"Host: {host}:{port}"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    request = ("\r\n".join(lines) + "\r\n\r\n").encode()
    latencies: list[float] = []
    errors: list[int] = []

    async def main() -> None:
        until = time.perf_counter() + seconds
        await asyncio.gather(
            *(_client(host, port, request, until, latencies, errors) for _ in range(connections))
        )

    started = time.perf_counter()
    asyncio.run(main())
    elapsed = time.perf_counter() - started
    latencies.sort()
    return {
        "rps": len(latencies) / elapsed,
        "p50": latencies[len(latencies) // 2],
        "p99": latencies[int(len(latencies) * 0.99)],
        "errors": float(len(errors)),
    }


def load(url: str, headers: dict[str, str], seconds: float, connections: int) -> dict[str, float]:
    if shutil.which("wrk"):
        return wrk(url, headers, seconds, connections)
    # A separate process, so the generator never shares a core's event loop with a server.
    code = (
        "import json, sys; sys.path.insert(0, sys.argv[1]); import agent_read as b; "
        "print(json.dumps(b.asyncio_load(sys.argv[2], json.loads(sys.argv[3]), "
        "float(sys.argv[4]), int(sys.argv[5]))))"
    )
    out = subprocess.run(
        [
            sys.executable,
            "-c",
            code,
            str(Path(__file__).parent),
            url,
            json.dumps(headers),
            str(seconds),
            str(connections),
        ],
        stdout=subprocess.PIPE,
        text=True,
        check=True,
    ).stdout
    return json.loads(out)  # type: ignore[no-any-return]


# --- setup ------------------------------------------------------------------------------------


@contextmanager
def uvicorn(app: str, env: dict[str, str], *extra: str) -> Iterator[str]:
    from kalimera.dev.localstack import free_port, start_uvicorn

    port = free_port()
    proc = start_uvicorn(app, port=port, env=env, extra=extra, cwd=ROOT)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--connections", type=int, default=64)
    args = parser.parse_args()

    import httpx
    import redis

    from bench._stack import BenchStack

    with BenchStack() as stack:
        redis_url = stack.env["REDIS_URL"]
        tenant_id = uuid.uuid4()
        headers = {"Authorization": f"Bearer {stack.token(tenant_id)}"}
        with uvicorn("kalimera.app:create_app", stack.process_env(), "--factory") as agent_url:
            body = {
                "name": "Bench agent",
                "type": "inbound",
                "description": "A realistic cached document",
                "ElevenLabsTTS": {"ApiKey": "s3cret", "VoiceId": "Rachel", "Stability": 0.5},
                "Azure": {
                    "SpeechKey": "s3cret",
                    "Region": "westeurope",
                    "RecognitionLanguage": "el-GR",
                },
                "Redis": {"ConnectionString": "host:6380,password=s3cret"},
                "Logging": {"LogLevel": {"Default": "Information", "Microsoft": "Warning"}},
                "AllowedHosts": "*",
            }
            created = httpx.post(f"{agent_url}/kalimera/ai-agent", json=body, headers=headers)
            created.raise_for_status()
            agent_id = created.json()["id"]
            path = f"/kalimera/ai-agent/{agent_id}"
            first = httpx.get(agent_url + path, headers=headers)  # fills the cache
            first.raise_for_status()
            key = f"kalimera:agent:{tenant_id}:{agent_id}"
            assert redis.Redis.from_url(redis_url).exists(key), "the agent was not cached"

            floor_env = stack.process_env(**{FLOOR_KEY_ENV: key, FLOOR_REDIS_ENV: redis_url})
            with uvicorn("agent_read:floor_app", floor_env, "--app-dir", "bench") as floor_url:
                floor_bytes = httpx.get(floor_url + "/").content
                print(
                    f"loopback, {args.connections} connections, one uvicorn worker each, "
                    f"{args.rounds} rounds of {args.seconds:g} s, load by "
                    f"{'wrk' if shutil.which('wrk') else 'asyncio clients'}; "
                    f"agent body {len(first.content)} B, floor body {len(floor_bytes)} B"
                )
                targets = {"floor": (floor_url + "/", {}), "agent": (agent_url + path, headers)}
                for url, hdrs in targets.values():  # warm up both (connections, pools)
                    load(url, hdrs, 2.0, args.connections)
                results: dict[str, list[dict[str, float]]] = {"floor": [], "agent": []}
                for i in range(args.rounds):
                    for name, (url, hdrs) in targets.items():
                        r = load(url, hdrs, args.seconds, args.connections)
                        results[name].append(r)
                        print(
                            f"round {i + 1} {name:5}: {r['rps']:8.0f} req/s  p50 {r['p50']:6.2f} ms"
                            f"  p99 {r['p99']:6.2f} ms  errors {r['errors']:.0f}"
                        )

    med = {
        name: {m: statistics.median(r[m] for r in rs) for m in ("rps", "p50", "p99", "errors")}
        for name, rs in results.items()
    }
    for name, m in med.items():
        print(
            f"median {name:5}: {m['rps']:8.0f} req/s  p50 {m['p50']:6.2f} ms"
            f"  p99 {m['p99']:6.2f} ms"
        )
    # Rounds alternate, so each agent round has a floor round next to it under the same
    # machine load: the median of those pairwise ratios is the steadier figure on a shared box.
    pairwise = statistics.median(
        a["rps"] / f["rps"] for a, f in zip(results["agent"], results["floor"], strict=True)
    )
    print(f"pairwise ratio agent/floor, median of {len(results['agent'])} rounds: {pairwise:.2f}")
    ratio = med["agent"]["rps"] / med["floor"]["rps"]
    ok = ratio >= 0.5 and med["agent"]["p99"] <= 50
    print(
        f"ratio agent/floor throughput: {ratio:.2f} (bar >= 0.50); agent p99 "
        f"{med['agent']['p99']:.2f} ms (bar <= 50 ms): {'PASS' if ok else 'FAIL'}"
    )


if __name__ == "__main__":
    main()
