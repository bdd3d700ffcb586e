"""Statistics at scale: seed, full rollup, nightly rollup after 1% changed, endpoint latency.

Bars (quality-bars.md): with 10,000,000 conversations (1,000 tenants, 2 years, the largest tenant
2,000,000), the full rollup <= 3 min; a nightly run after 1% of the rows changed <= 10 s; every
statistics endpoint for the largest tenant over one year p95 <= 50 ms and >= 20x faster than the
live ground-truth query for the same answer (medians side by side, one run).

Runs in a throwaway database (dropped at the end unless --keep). ``--conversations`` makes it
smaller: ``.venv/bin/python bench/statistics.py --conversations 1000000``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import psycopg

ROOT = Path(__file__).resolve().parent.parent
ADMIN_URL = os.environ.get(
    "KALIMERA_BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)

# The live ground truth: one plain query over kalimera_conversations per endpoint.
IN_YEAR = """
c.tenant_id = %(t)s AND (c.started_at AT TIME ZONE %(tz)s)::date BETWEEN %(start)s AND %(end)s
"""
GROUND_TRUTH = {
    "history": f"""
SELECT (c.started_at AT TIME ZONE %(tz)s)::date AS period,
       count(*) FILTER (WHERE c.profile_type = 'inbound'),
       count(*) FILTER (WHERE c.profile_type = 'outbound'), count(*),
       count(*) FILTER (WHERE c.status = 'Completed'),
       count(*) FILTER (WHERE c.status = 'Failed'),
       coalesce(sum(c.duration), 0), round(avg(c.duration), 1)
FROM kalimera_conversations c WHERE {IN_YEAR} GROUP BY 1""",  # noqa: S608
    "sentiment": f"""
SELECT (c.started_at AT TIME ZONE %(tz)s)::date AS period, c.sentiment, count(*)
FROM kalimera_conversations c WHERE {IN_YEAR} GROUP BY 1, 2""",  # noqa: S608
    "call-breakdown": f"""
SELECT c.status, c.profile_type, coalesce(c.language, 'unknown'),
       extract(hour FROM c.started_at AT TIME ZONE %(tz)s),
       extract(isodow FROM c.started_at AT TIME ZONE %(tz)s),
       width_bucket(c.duration, ARRAY[30, 60, 180, 300, 600]::numeric[]),
       count(*), sum(c.duration), count(c.duration)
FROM kalimera_conversations c WHERE {IN_YEAR} GROUP BY 1, 2, 3, 4, 5, 6""",  # noqa: S608
    "realtime": """
SELECT count(*) FILTER (WHERE profile_type = 'inbound'),
       count(*) FILTER (WHERE profile_type = 'outbound')
FROM kalimera_conversations WHERE tenant_id = %(t)s AND status = 'Active'
  AND last_activity_at >= now() - interval '120 minutes'""",
    "recent-logs": """
SELECT * FROM kalimera_conversations WHERE tenant_id = %(t)s
ORDER BY started_at DESC, id DESC LIMIT 10""",
}


def with_db(url: str, name: str) -> str:
    from psycopg.conninfo import conninfo_to_dict, make_conninfo

    params = conninfo_to_dict(url)
    params["dbname"] = name
    return make_conninfo(**params)  # type: ignore[arg-type]


# (This file is bench/statistics.py: the standard library's statistics module is shadowed.)
def median(samples: list[float]) -> float:
    ordered = sorted(samples)
    mid = len(ordered) // 2
    return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2


def p95(samples: list[float]) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--conversations", type=int, default=10_000_000)
    ap.add_argument("--tenants", type=int, default=1_000)
    ap.add_argument("--days", type=int, default=730)
    ap.add_argument("--largest", type=float, default=0.2, help="share of the largest tenant")
    ap.add_argument("--requests", type=int, default=100, help="requests per endpoint")
    ap.add_argument("--tz", default="UTC")
    ap.add_argument("--keep", action="store_true", help="keep the database")
    args = ap.parse_args()

    name = f"kalimera_bench_stats_{secrets.token_hex(4)}"
    url = with_db(ADMIN_URL, name)
    with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    env = {
        **os.environ,
        "DATABASE_URL": url,
        "KALIMERA_ENV": "development",
        "KALIMERA_LOCAL_DIR": f"/tmp/{name}",
    }
    os.environ.update(env)
    try:
        return run(args, url, env)
    finally:
        if not args.keep:
            with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
                admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        else:
            print(f"kept database {name}")


def run(args: argparse.Namespace, url: str, env: dict[str, str]) -> int:
    kalimera = str(ROOT / ".venv" / "bin" / "kalimera")
    subprocess.run([kalimera, "migrate"], env=env, check=True, capture_output=True)
    print(
        f"{args.conversations:,} conversations, {args.tenants:,} tenants, {args.days} days,"
        f" largest share {args.largest}"
    )

    started = time.monotonic()
    seeded = subprocess.run(
        [
            kalimera,
            "demo",
            "seed",
            "--tenants",
            str(args.tenants),
            "--conversations",
            str(args.conversations),
            "--days",
            str(args.days),
            "--largest",
            str(args.largest),
        ],
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    print(f"seed (kalimera demo seed, COPY): {time.monotonic() - started:.0f} s")
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE kalimera_conversations")
        tenant = conn.execute(
            "SELECT tenant_id, count(*) FROM kalimera_conversations"
            " GROUP BY 1 ORDER BY 2 DESC LIMIT 1"
        ).fetchone()
        assert tenant is not None
        largest, largest_count = tenant
        dirty = conn.execute("SELECT count(*) FROM kalimera_stats_dirty").fetchone()
    print(f"largest tenant: {largest_count:,} conversations; dirty tenant-days: {dirty[0]:,}")
    del seeded

    from kalimera.db import create_pool
    from kalimera.statistics.rollup import run_rollup

    async def rollup() -> tuple[float, int]:
        pool = create_pool(url, min_size=2, max_size=4, timeout=10, statement_timeout_ms=0)
        await pool.open()
        try:
            t0 = time.monotonic()
            report = await run_rollup(pool, idle_minutes=120, workers=2)
            return time.monotonic() - t0, report.days
        finally:
            await pool.close()

    seconds, days = asyncio.run(rollup())
    print(f"full rollup: {seconds:.1f} s for {days:,} tenant-days (bar <= 180 s)")
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            "VACUUM ANALYZE kalimera_stats_quarter, kalimera_stats_rolled, kalimera_stats_dirty"
        )
        rows = conn.execute("SELECT count(*) FROM kalimera_stats_quarter").fetchone()
        print(f"rollup rows: {rows[0]:,} quarter rows")
        changed = change_one_percent(conn, args.conversations)
        dirty = conn.execute(
            "SELECT count(*) FROM kalimera_stats_dirty WHERE day < current_date"
        ).fetchone()
    seconds, days = asyncio.run(rollup())
    print(
        f"nightly rollup after {changed:,} rows changed (1%, {dirty[0]:,} dirty tenant-days):"
        f" {seconds:.1f} s (bar <= 10 s)"
    )

    latency(args, url, largest)
    return 0


def change_one_percent(conn: psycopg.Connection, total: int) -> int:
    """1% of the rows: late status and sentiment changes (60%), deletions (20%) and late
    recordings (20%), on conversations of the last 30 days, where late writes happen."""
    n = total // 100
    recent = "started_at >= now() - interval '30 days' AND started_at < date_trunc('day', now())"
    conn.execute(
        f"""UPDATE kalimera_conversations c SET
              status = CASE WHEN c.status = 'Failed' THEN 'Completed' ELSE 'Failed' END,
              sentiment = CASE WHEN c.sentiment = 'positive' THEN 'negative' ELSE 'positive' END
            FROM (SELECT tenant_id, id FROM kalimera_conversations WHERE {recent}
                  ORDER BY random() LIMIT %(n)s) AS x
            WHERE c.tenant_id = x.tenant_id AND c.id = x.id""",  # noqa: S608
        {"n": n * 6 // 10},
    )
    conn.execute(
        f"""DELETE FROM kalimera_conversations c
            USING (SELECT tenant_id, id FROM kalimera_conversations WHERE {recent}
                   ORDER BY random() LIMIT %(n)s) AS x
            WHERE c.tenant_id = x.tenant_id AND c.id = x.id""",  # noqa: S608
        {"n": n * 2 // 10},
    )
    conn.execute(
        f"""INSERT INTO kalimera_conversations (tenant_id, id, agent_id, status, profile_type,
                language, duration, started_at, ended_at, last_activity_at, sentiment)
            SELECT tenant_id, gen_random_uuid(), agent_id, 'Completed', profile_type, language,
                   duration, started_at - interval '7 minutes', ended_at, last_activity_at,
                   sentiment
            FROM kalimera_conversations WHERE {recent} ORDER BY random() LIMIT %(n)s""",  # noqa: S608
        {"n": n - n * 6 // 10 - n * 2 // 10},
    )
    return n


def latency(args: argparse.Namespace, url: str, tenant: object) -> None:
    import uvicorn

    from kalimera.app import create_app
    from kalimera.auth import DEFAULT_SCOPES, create_token
    from kalimera.db import transaction
    from kalimera.localstack import free_port
    from kalimera.services import Services
    from kalimera.settings import load_settings

    settings = load_settings()

    async def token() -> str:
        services = Services(settings)
        try:
            async with transaction(await services.db(), tenant_id=tenant) as conn:
                _, value = await create_token(
                    conn=conn, tenant_id=tenant, name="bench", scopes=DEFAULT_SCOPES
                )  # type: ignore[arg-type]
            return value
        finally:
            await services.aclose()

    bearer = asyncio.run(token())
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(create_app(settings), host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    end = datetime.now(UTC).date()
    start = end - timedelta(days=364)
    window = {"start": start.isoformat(), "end": end.isoformat(), "tz": args.tz}
    endpoints = {
        "history": {**window, "granularity": "day"},
        "sentiment": {**window, "granularity": "week"},
        "call-breakdown": window,
        "realtime": {"tz": args.tz},
        "recent-logs": {"tz": args.tz, "limit": "10"},
    }
    print(
        f"largest tenant, one year ({start} .. {end}, tz {args.tz}), {args.requests} requests each:"
    )
    print(
        f"{'endpoint':16} {'p50 ms':>8} {'p95 ms':>8} {'live query median ms':>21}"
        f" {'live/p50':>9} {'live/p95':>9}"
    )
    try:
        with (
            httpx.Client(
                base_url=f"http://127.0.0.1:{port}",
                headers={"Authorization": f"Bearer {bearer}"},
                timeout=60,
            ) as client,
            psycopg.connect(url, autocommit=True) as conn,
        ):
            conn.execute("SET jit = off")
            for path, params in endpoints.items():
                samples = []
                for i in range(args.requests + 5):
                    t0 = time.perf_counter()
                    got = client.get(f"/kalimera/statistics/{path}", params=params)
                    elapsed = time.perf_counter() - t0
                    got.raise_for_status()
                    if i >= 5:  # warm-up
                        samples.append(elapsed * 1000)
                live = []
                for _ in range(5):
                    t0 = time.perf_counter()
                    conn.execute(
                        GROUND_TRUTH[path], {"t": tenant, "tz": args.tz, "start": start, "end": end}
                    ).fetchall()
                    live.append((time.perf_counter() - t0) * 1000)
                med, live_med = median(samples), median(live)
                high = p95(samples)
                print(
                    f"{path:16} {med:8.1f} {high:8.1f} {live_med:21.1f}"
                    f" {live_med / med:8.1f}x {live_med / high:8.1f}x"
                )
    finally:
        server.should_exit = True
        thread.join(timeout=10)


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    sys.exit(main())
