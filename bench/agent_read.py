"""Cached agent read vs the fastest floor of the stack, side by side in one run: over HTTP and
called in-process.

    .venv/bin/python -m bench.agent_read [--seconds 3] [--rounds 9] [--connections 64]

Over HTTP, two servers on loopback, one worker each:
- ``agent``: the product started as a developer starts it, ``kalimera run`` (uvloop, httptools,
  redis-py with hiredis, access log off, its background jobs running), serving
  ``GET /kalimera/ai-agent/{id}`` with auth, tenancy, cache and masking (the agent has secrets in
  several sections, so the cached document is a realistic one);
- ``floor``: a bare ASGI app that does one Redis GET of the same cached document and returns it,
  on the fastest stack this machine has: uvicorn with ``--loop uvloop --http httptools``,
  redis-py with hiredis, no timeouts, no access log.
Both are loaded with 64 concurrent keep-alive connections from a separate process (``wrk`` when
installed, else the small asyncio client below), alternating rounds. Bar: ratio >= 0.8, agent
p99 <= 25 ms.

In-process (what the app itself adds, which is what a Functions worker pays): the product's ASGI
app (``create_app``, its lifespan run) and the floor app are called directly on uvloop with a
prepared scope, ``receive`` and ``send``, 64 callers at once, alternating rounds, counted per
second of the process's CPU time (what the app costs) and of wall-clock time. Bar: >= 0.8 per
CPU-second.
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
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
FLOOR_KEY_ENV = "BENCH_FLOOR_KEY"
FLOOR_REDIS_ENV = "BENCH_FLOOR_REDIS"


# --- the floor: a bare ASGI app doing one Redis GET -------------------------------------------


class _Floor:
    """``GET /`` → the bytes at one Redis key: redis-py (hiredis parses the reply) with no
    socket timeouts, the fastest client configuration; nothing else."""

    def __init__(self) -> None:
        self.redis: Any = None
        self.key = os.environ.get(FLOOR_KEY_ENV, "")
        self.url = os.environ.get(FLOOR_REDIS_ENV, "")

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    from redis.asyncio import Redis

                    # No socket timeouts: redis-py 8 defaults them to 5 s, and a timeout
                    # costs a task per command written and a timer per reply read.
                    self.redis = Redis.from_url(self.url, socket_timeout=None)
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


def stack_versions() -> str:
    """What the floor runs on, so the printout says it is the fastest stack."""
    from importlib.metadata import version

    import redis.utils

    assert redis.utils.HIREDIS_AVAILABLE, "hiredis is not installed: not the fastest floor"
    names = ("uvicorn", "uvloop", "httptools", "redis", "hiredis")
    return ", ".join(f"{name} {version(name)}" for name in names)


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


# --- in-process: the ASGI callables without a server ------------------------------------------


@asynccontextmanager
async def lifespan(app: Any) -> AsyncIterator[None]:
    """Run an ASGI app's lifespan around the block, as a server does."""
    inbox: asyncio.Queue[dict[str, str]] = asyncio.Queue()
    outbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    scope = {"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}}
    task = asyncio.create_task(app(scope, inbox.get, outbox.put))
    await inbox.put({"type": "lifespan.startup"})
    started = await outbox.get()
    assert started["type"] == "lifespan.startup.complete", started
    try:
        yield
    finally:
        await inbox.put({"type": "lifespan.shutdown"})
        await outbox.get()
        await task


def http_scope(path: str, headers: dict[str, str]) -> dict[str, Any]:
    """The scope uvicorn's httptools protocol makes for ``GET path`` on loopback."""
    return {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "server": ("127.0.0.1", 8000),
        "client": ("127.0.0.1", 50000),
        "scheme": "http",
        "root_path": "",
        "method": "GET",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "headers": [(b"host", b"127.0.0.1:8000")]
        + [(k.lower().encode(), v.encode()) for k, v in headers.items()],
        "state": {},
    }


async def call(app: Any, scope: dict[str, Any]) -> tuple[int, bytes]:
    """One request through ``app``: its status and body (a fresh copy of the scope each time,
    as a server makes one per request)."""
    status = 0
    body = b""

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status, body
        if message["type"] == "http.response.start":
            status = message["status"]
        else:
            body += message.get("body", b"")

    await app({**scope, "headers": list(scope["headers"]), "state": {}}, receive, send)
    return status, body


async def calls_per_second(
    app: Any, scope: dict[str, Any], seconds: float, callers: int
) -> tuple[float, float]:
    """``callers`` concurrent loops calling ``app`` for ``seconds``: completed calls per second
    of wall-clock time, and per second of this process's CPU time. On a machine shared with
    other work the wall clock measures the scheduler as much as the app; the CPU time is what
    the app itself costs (the Redis server runs in its own process, for both apps alike)."""
    done = 0

    async def caller(until: float) -> None:
        nonlocal done
        while time.perf_counter() < until:
            status, _ = await call(app, scope)
            assert status == 200, status
            done += 1

    cpu = time.process_time()
    started = time.perf_counter()
    await asyncio.gather(*(caller(started + seconds) for _ in range(callers)))
    return done / (time.perf_counter() - started), done / (time.process_time() - cpu)


async def in_process(
    settings: Any,
    *,
    path: str,
    headers: dict[str, str],
    key: str,
    redis_url: str,
    seconds: float,
    rounds: int,
    callers: int,
) -> dict[str, list[tuple[float, float]]]:
    """Alternating rounds of the product's app and the floor app, called directly."""
    from kalimera.app import create_app

    agent = create_app(settings)
    floor = _Floor()
    floor.key, floor.url = key, redis_url
    results: dict[str, list[tuple[float, float]]] = {"floor": [], "agent": []}
    async with lifespan(agent), lifespan(floor):
        apps = {"floor": (floor, http_scope("/", {})), "agent": (agent, http_scope(path, headers))}
        (_, agent_body), (_, floor_body) = [await call(*apps[n]) for n in ("agent", "floor")]
        assert floor_body.endswith(agent_body), "the two apps answer different documents"
        for app, scope in apps.values():  # warm up both
            await calls_per_second(app, scope, 1.0, callers)
        for i in range(rounds):
            for name, (app, scope) in apps.items():
                wall, cpu = await calls_per_second(app, scope, seconds, callers)
                results[name].append((wall, cpu))
                print(
                    f"in-process round {i + 1} {name:5}: {wall:8.0f} calls/s,"
                    f" {cpu:8.0f} calls per CPU-second"
                )
    return results


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


@contextmanager
def kalimera_run(env: dict[str, str], local_dir: Path) -> Iterator[str]:
    """``kalimera run`` as a developer starts it, on the bench stack's services (it uses the
    Postgres, Redis and Azurite the environment names), its files under ``local_dir``."""
    from kalimera.dev.localstack import free_port, wait_for_port

    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "kalimera", "run", "--port", str(port)],
        env={**env, "KALIMERA_LOCAL_DIR": str(local_dir)},
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for_port(port, seconds=60, proc=proc)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(timeout=30)


AGENT_BODY = {
    "name": "Bench agent",
    "type": "inbound",
    "description": "A realistic cached document",
    "ElevenLabsTTS": {"ApiKey": "s3cret", "VoiceId": "Rachel", "Stability": 0.5},
    "Azure": {"SpeechKey": "s3cret", "Region": "westeurope", "RecognitionLanguage": "el-GR"},
    "Redis": {"ConnectionString": "host:6380,password=s3cret"},
    "Logging": {"LogLevel": {"Default": "Information", "Microsoft": "Warning"}},
    "AllowedHosts": "*",
}


def print_medians(results: dict[str, list[dict[str, float]]]) -> dict[str, dict[str, float]]:
    med = {
        name: {m: statistics.median(r[m] for r in rs) for m in ("rps", "p50", "p99", "errors")}
        for name, rs in results.items()
    }
    for name, m in med.items():
        print(
            f"median {name:5}: {m['rps']:8.0f} req/s  p50 {m['p50']:6.2f} ms"
            f"  p99 {m['p99']:6.2f} ms  errors {m['errors']:.0f}"
        )
    return med


def pairwise(agent: list[float], floor: list[float]) -> float:
    """Rounds alternate, so each agent round has a floor round next to it under the same
    machine load: the median of those pairwise ratios is the steadier figure on a shared box."""
    return statistics.median(a / f for a, f in zip(agent, floor, strict=True))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--connections", type=int, default=64)
    args = parser.parse_args()

    import httpx
    import redis
    import uvloop

    from bench._bars import bar
    from bench._stack import BenchStack

    load_before = os.getloadavg()[0]
    with BenchStack() as stack:
        redis_url = stack.env["REDIS_URL"]
        tenant_id = uuid.uuid4()
        headers = {"Authorization": f"Bearer {stack.token(tenant_id)}"}
        with kalimera_run(stack.process_env(), stack.tmp / "run") as agent_url:
            created = httpx.post(f"{agent_url}/kalimera/ai-agent", json=AGENT_BODY, headers=headers)
            created.raise_for_status()
            agent_id = created.json()["id"]
            path = f"/kalimera/ai-agent/{agent_id}"
            first = httpx.get(agent_url + path, headers=headers)  # fills the cache
            first.raise_for_status()
            key = f"kalimera:agent:{tenant_id}:{agent_id}"
            assert redis.Redis.from_url(redis_url).exists(key), "the agent was not cached"

            floor_env = stack.process_env(**{FLOOR_KEY_ENV: key, FLOOR_REDIS_ENV: redis_url})
            fastest = ("--app-dir", "bench", "--loop", "uvloop", "--http", "httptools")
            with uvicorn("agent_read:floor_app", floor_env, *fastest) as floor_url:
                floor_bytes = httpx.get(floor_url + "/").content
                print(
                    f"loopback, {args.connections} connections, one worker each, "
                    f"{args.rounds} rounds of {args.seconds:g} s, load by "
                    f"{'wrk' if shutil.which('wrk') else 'asyncio clients'}; "
                    f"agent body {len(first.content)} B, floor body {len(floor_bytes)} B"
                )
                print(f"floor: uvicorn --loop uvloop --http httptools; {stack_versions()}")
                print("agent: kalimera run (uvloop.run, httptools, access log off)")
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
        inproc = uvloop.run(
            in_process(
                stack.settings(),
                path=path,
                headers=headers,
                key=key,
                redis_url=redis_url,
                seconds=args.seconds,
                rounds=args.rounds,
                callers=args.connections,
            )
        )
    load_after = os.getloadavg()[0]

    med = print_medians(results)
    http_ratio = pairwise(
        [r["rps"] for r in results["agent"]], [r["rps"] for r in results["floor"]]
    )
    ok = http_ratio >= 0.8 and med["agent"]["p99"] <= 25
    print(
        f"over HTTP, agent/floor throughput, median of {args.rounds} pairwise ratios: "
        f"{http_ratio:.2f} (bar >= 0.80; ratio of medians "
        f"{med['agent']['rps'] / med['floor']['rps']:.2f}); agent p99 {med['agent']['p99']:.2f} ms"
        f" (bar <= 25 ms): {'PASS' if ok else 'FAIL'}"
    )
    walls = {name: [wall for wall, _ in rs] for name, rs in inproc.items()}
    cpus = {name: [cpu for _, cpu in rs] for name, rs in inproc.items()}
    wall_ratio = pairwise(walls["agent"], walls["floor"])
    cpu_ratio = pairwise(cpus["agent"], cpus["floor"])
    print(
        f"in-process, agent/floor, median of {args.rounds} pairwise ratios: per CPU-second "
        f"{cpu_ratio:.2f} (medians {statistics.median(cpus['agent']):.0f} vs "
        f"{statistics.median(cpus['floor']):.0f}), per wall-clock second {wall_ratio:.2f} "
        f"(medians {statistics.median(walls['agent']):.0f} vs "
        f"{statistics.median(walls['floor']):.0f}); bar >= 0.80 on CPU: "
        f"{'PASS' if cpu_ratio >= 0.8 else 'FAIL'}"
    )
    print(
        f"load average: {load_before:.1f} before, {load_after:.1f} after, on {os.cpu_count()} cores"
    )
    bar(
        "cached agent read over HTTP vs the fastest floor",
        f"{http_ratio:.2f}x",
        ">= 0.8x",
        http_ratio >= 0.8,
    )
    p99 = med["agent"]["p99"]
    bar("cached agent read over HTTP, p99", f"{p99:.1f} ms", "<= 25 ms", p99 <= 25)
    bar(
        "cached agent read in-process vs the floor app, per CPU-second",
        f"{cpu_ratio:.2f}x",
        ">= 0.8x",
        cpu_ratio >= 0.8,
    )


if __name__ == "__main__":
    main()
