"""Statistics at scale, as users run them: seed, full rollup, nightly rollup, endpoint latency.

Bars (quality-bars.md): with 10,000,000 conversations (1,000 tenants, 2 years, the largest tenant
2,000,000), the full rollup <= 3 min; a nightly run after 1% of the rows changed <= 10 s; every
statistics endpoint for the largest tenant over one year p95 <= 50 ms and >= 20x faster than the
live ground-truth query for the same answer (medians side by side, one run).

Everything goes through the product's own entry points with its default settings (no
``KALIMERA_*`` tuning is passed on, so the statement timeout is the default 15 s): the data is
written by ``kalimera demo seed``, rolled up by ``kalimera stats rollup`` (a process of its own,
timed from start to exit: after the seed, after 1% changed, ``--today`` as the quarter-hourly
timer runs it, and ``--since`` the first day, the command that rebuilds everything), the
endpoints are served by the app in a uvicorn process.
Only the 1% of changes (late edits, deletions, late recordings: what ingestion and PATCH write)
and the ground-truth queries are plain SQL.

Runs in a throwaway database (dropped at the end unless --keep). ``--conversations`` makes it
smaller: ``.venv/bin/python -m bench.statistics --conversations 1000000``.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import psycopg

from bench._bars import bar
from bench._stack import BenchStack, percentile
from kalimera.statistics.measures import REASONS

KALIMERA = Path(sys.executable).parent / "kalimera"

# The endpoints served from the rollups, which the live-ratio bar is about (realtime and recent
# logs read the conversations themselves, as their live query does).
ROLLED_UP = ("history", "sentiment", "call-breakdown", "outcomes")

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
    "outcomes": f"""
WITH e AS MATERIALIZED (
    SELECT (c.started_at AT TIME ZONE %(tz)s)::date AS period, c.*
    FROM kalimera_conversations c WHERE {IN_YEAR} AND c.status IN ('Completed', 'Failed')
)
SELECT * FROM (
    SELECT period, coalesce(cost->>'currency', '') AS currency, count(*),
           count(*) FILTER (WHERE analysis_status = 'done'),
           count(*) FILTER (WHERE success_rubric = 'pass_fail'),
           count(*) FILTER (WHERE success_rubric = 'pass_fail' AND success_result = 'pass'),
           round(avg(success_score), 2),
           {
        ", ".join(
            f"count(*) FILTER (WHERE coalesce(ended_reason, 'unknown') = '{r}')" for r in REASONS
        )
    },
           sum(coalesce((cost->>'telephony')::numeric, 0) + coalesce((cost->>'stt')::numeric, 0)
               + coalesce((cost->>'llm')::numeric, 0) + coalesce((cost->>'tts')::numeric, 0)
               + coalesce((cost->>'other')::numeric, 0) + coalesce(analysis_cost, 0)),
           count(*) FILTER (WHERE cost IS NOT NULL OR analysis_cost IS NOT NULL)
    FROM e GROUP BY 1, 2
) AS counts
LEFT JOIN (
    SELECT period, percentile_disc(ARRAY[0.5, 0.9]) WITHIN GROUP (ORDER BY v)
    FROM e CROSS JOIN LATERAL unnest(e.latency_rounded_ms) AS v GROUP BY 1
) AS latency USING (period)""",  # noqa: S608
    "realtime": """
SELECT count(*) FILTER (WHERE profile_type = 'inbound'),
       count(*) FILTER (WHERE profile_type = 'outbound')
FROM kalimera_conversations WHERE tenant_id = %(t)s AND status = 'Active'
  AND last_activity_at >= now() - interval '120 minutes'""",
    "recent-logs": """
SELECT * FROM kalimera_conversations WHERE tenant_id = %(t)s
ORDER BY started_at DESC, id DESC LIMIT 10""",
}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--conversations", type=int, default=10_000_000)
    ap.add_argument("--tenants", type=int, default=1_000)
    ap.add_argument("--days", type=int, default=730)
    ap.add_argument("--largest", type=float, default=0.2, help="share of the largest tenant")
    ap.add_argument("--requests", type=int, default=100, help="requests per endpoint")
    ap.add_argument("--tz", default="UTC")
    ap.add_argument(
        "--rebuild",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="time `kalimera stats rollup --since` the first day too",
    )
    ap.add_argument("--live-runs", type=int, default=5, help="runs of each live query")
    ap.add_argument("--keep", action="store_true", help="keep the database")
    ap.add_argument(
        "--template",
        help="a database that `kalimera demo seed` filled before (and nothing rolled up): the"
        " run works on a copy of it instead of seeding (the 10M seed takes half an hour)",
    )
    args = ap.parse_args()

    with BenchStack(keep=args.keep, template=args.template) as stack:
        env = stack.process_env()
        timeout = stack.settings().db_statement_timeout_ms
        print(
            f"{args.conversations:,} conversations, {args.tenants:,} tenants, {args.days} days,"
            f" largest share {args.largest}; default settings (statement timeout {timeout:,} ms)"
        )
        if args.template:
            print(f"seed: a copy of {args.template} (seeded by kalimera demo seed)")
        else:
            seed(args, env)
        with psycopg.connect(stack.database_url, autocommit=True) as conn:
            row = conn.execute(
                "SELECT tenant_id, count(*) FROM kalimera_conversations"
                " GROUP BY 1 ORDER BY 2 DESC LIMIT 1"
            ).fetchone()
            assert row is not None
            largest, largest_count = row
            dirty = conn.execute("SELECT count(*) FROM kalimera_stats_dirty").fetchone()
            total = conn.execute("SELECT count(*) FROM kalimera_conversations").fetchone()
        assert dirty is not None
        assert total is not None
        print(
            f"{total[0]:,} conversations; largest tenant: {largest_count:,};"
            f" dirty tenant-days: {dirty[0]:,}"
        )

        seconds, said = kalimera(env, "stats", "rollup", "--profile")
        print(f"full rollup (kalimera stats rollup after the seed): {seconds:.1f} s")
        print(f"  {said}")
        size = f"{total[0] / 1_000_000:g}M"
        bar(f"full rollup of {size}", f"{seconds:.1f} s", "<= 180 s (quality-bars)", seconds <= 180)
        bar(f"full rollup of {size}", f"{seconds:.1f} s", "<= 60 s (issue 17)", seconds <= 60)
        with psycopg.connect(stack.database_url, autocommit=True) as conn:
            rows = conn.execute("SELECT count(*) FROM kalimera_stats_quarter").fetchone()
            assert rows is not None
            print(f"rollup rows: {rows[0]:,} quarter rows")
            changed = change_one_percent(conn, args.conversations)
            dirty = conn.execute(
                "SELECT count(*) FROM kalimera_stats_dirty WHERE day < current_date"
            ).fetchone()
        assert dirty is not None
        seconds, said = kalimera(env, "stats", "rollup", "--profile")
        print(
            f"nightly rollup (kalimera stats rollup) after {changed:,} rows changed"
            f" (1%, {dirty[0]:,} dirty tenant-days): {seconds:.1f} s"
        )
        print(f"  {said}")
        bar(
            "nightly rollup after 1% changed",
            f"{seconds:.1f} s",
            "<= 10 s (quality-bars)",
            seconds <= 10,
        )
        bar(
            "nightly rollup after 1% changed", f"{seconds:.1f} s", "<= 2 s (issue 17)", seconds <= 2
        )
        # As deployed, the quarter-hourly timer has rolled up today's closed quarters.
        seconds, said = kalimera(env, "stats", "rollup", "--today", "--profile")
        print(f"intraday rollup (kalimera stats rollup --today): {seconds:.1f} s")
        print(f"  {said}")
        if args.rebuild:
            rebuild(stack, env)
        latency(args, stack, largest)
    return 0


def seed(args: argparse.Namespace, env: dict[str, str]) -> None:
    seconds, _ = kalimera(
        env,
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
        "--calls",  # the statistics rows only: no recordings, analyses or webhooks
        "0",
    )
    print(f"seed (kalimera demo seed, COPY): {seconds:.0f} s")


def rebuild(stack: BenchStack, env: dict[str, str]) -> None:
    """The command that rebuilds everything, after the nightly run: a rebuild rewrites every
    rollup row, which leaves millions of dead rows for autovacuum; a real nightly run follows
    the previous nightly run, not a rebuild."""
    with psycopg.connect(stack.database_url, autocommit=True) as conn:
        row = conn.execute("SELECT min(day)::text FROM kalimera_stats_rolled").fetchone()
    assert row is not None
    first = row[0]  # the first UTC day with conversations
    seconds, said = kalimera(env, "stats", "rollup", "--since", first, "--profile")
    print(f"full rollup again (kalimera stats rollup --since {first}): {seconds:.1f} s")
    print(f"  {said}")


def kalimera(env: dict[str, str], *args: str) -> tuple[float, str]:
    """Run the ``kalimera`` command as a user would; (seconds from start to exit, its summary)."""
    started = time.monotonic()
    done = subprocess.run(
        [str(KALIMERA), *args], env=env, capture_output=True, text=True, check=False
    )
    seconds = time.monotonic() - started
    if done.returncode:
        print(f"kalimera {' '.join(args)} failed after {seconds:.1f} s:\n{done.stderr[-3000:]}")
        raise SystemExit(1)
    said = re.search(r"(rolled up|wrote) .*", done.stderr, re.DOTALL)
    # The summary, then (--profile) one line per kind of statement.
    lines = (said.group(0) if said else done.stderr).splitlines()
    return seconds, "\n  ".join(" ".join(line.split()) for line in lines if line.strip())


def change_one_percent(conn: psycopg.Connection[Any], total: int) -> int:
    """1% of the rows: late status, sentiment and verdict changes (60%), deletions (20%) and
    late recordings (20%), on conversations of the last 30 days, where late writes happen."""
    n = total // 100
    recent = "started_at >= now() - interval '30 days' AND started_at < date_trunc('day', now())"
    conn.execute(
        f"""UPDATE kalimera_conversations c SET
              status = CASE WHEN c.status = 'Failed' THEN 'Completed' ELSE 'Failed' END,
              sentiment = CASE WHEN c.sentiment = 'positive' THEN 'negative' ELSE 'positive' END,
              success_result = CASE WHEN c.success_rubric = 'pass_fail' THEN
                  CASE WHEN c.success_result = 'pass' THEN 'fail' ELSE 'pass' END
                  ELSE c.success_result END
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
                language, duration, started_at, ended_at, last_activity_at, sentiment,
                ended_reason, cost, latency_rounded_ms, analysis_status, success_rubric,
                success_result, success_score, analysis_cost)
            SELECT tenant_id, gen_random_uuid(), agent_id, 'Completed', profile_type, language,
                   duration, started_at - interval '7 minutes', ended_at, last_activity_at,
                   sentiment, ended_reason, cost, latency_rounded_ms, analysis_status,
                   success_rubric, success_result, success_score, analysis_cost
            FROM kalimera_conversations WHERE {recent} ORDER BY random() LIMIT %(n)s""",  # noqa: S608
        {"n": n - n * 6 // 10 - n * 2 // 10},
    )
    return n


def latency(args: argparse.Namespace, stack: BenchStack, tenant: Any) -> None:
    url, _ = stack.start_server()
    end = datetime.now(UTC).date()
    start = end - timedelta(days=364)
    window = {"start": start.isoformat(), "end": end.isoformat(), "tz": args.tz}
    endpoints = {
        "history": {**window, "granularity": "day"},
        "sentiment": {**window, "granularity": "week"},
        "call-breakdown": window,
        "outcomes": {**window, "granularity": "day"},
        "realtime": {"tz": args.tz},
        "recent-logs": {"tz": args.tz, "limit": "10"},
    }
    print(
        f"largest tenant, one year ({start} .. {end}, tz {args.tz}), {args.requests} requests"
        " each through HTTP (uvicorn, one worker)"
    )
    # Every endpoint's latency first, printed as it comes: the live queries behind the ratios
    # take minutes at 10M (the outcomes' most of all), and a run cut short keeps the latencies.
    print(f"{'endpoint':16} {'p50 ms':>8} {'p95 ms':>8}")
    served: dict[str, tuple[float, float]] = {}
    with httpx.Client(
        base_url=url, headers={"Authorization": f"Bearer {stack.token(tenant)}"}, timeout=60
    ) as client:
        for path, params in endpoints.items():
            samples = []
            for i in range(args.requests + 5):
                t0 = time.perf_counter()
                got = client.get(f"/kalimera/statistics/{path}", params=params)
                elapsed = time.perf_counter() - t0
                got.raise_for_status()
                if i >= 5:  # warm-up
                    samples.append(elapsed * 1000)
            served[path] = (percentile(samples, 50), percentile(samples, 95))
            print(f"{path:16} {served[path][0]:8.1f} {served[path][1]:8.1f}", flush=True)
    print(f"live ground truth: a plain connection, median of {args.live_runs}")
    print(f"{'endpoint':16} {'live query median ms':>21} {'live/p50':>9} {'live/p95':>9}")
    with psycopg.connect(stack.database_url, autocommit=True) as conn:
        for path, (med, high) in served.items():
            live = []
            for _ in range(args.live_runs):
                t0 = time.perf_counter()
                conn.execute(
                    GROUND_TRUTH[path], {"t": tenant, "tz": args.tz, "start": start, "end": end}
                ).fetchall()
                live.append((time.perf_counter() - t0) * 1000)
            live_med = median(live)
            print(
                f"{path:16} {live_med:21.1f} {live_med / med:8.1f}x {live_med / high:8.1f}x",
                flush=True,
            )
            ratio = live_med / high
            bar(f"statistics {path} p95, tz {args.tz}", f"{high:.1f} ms", "<= 10 ms", high <= 10)
            if path in ROLLED_UP:
                bar(
                    f"statistics {path} live/p95, tz {args.tz}",
                    f"{ratio:.1f}x",
                    ">= 100x",
                    ratio >= 100,
                )


# (This file is bench/statistics.py: the standard library's statistics module is shadowed.)
def median(samples: list[float]) -> float:
    ordered = sorted(samples)
    mid = len(ordered) // 2
    return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2


if __name__ == "__main__":
    sys.exit(main())
