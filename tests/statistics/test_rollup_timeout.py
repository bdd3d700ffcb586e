"""The rollup as the product runs it, under the product's statement timeout.

At 10,000,000 conversations, ``kalimera stats rollup --since <first day>`` died with
``DatabaseUnavailable: QueryCanceled``: one statement aggregated every claimed day of the largest
tenant (2,000,000 rows) and ran past the default 15 s ``KALIMERA_DB_STATEMENT_TIMEOUT_MS``. The
same wall at a small scale: a 250 ms timeout and one tenant of 40,000 conversations over 200 days,
which a single statement aggregates in about a second on these machines (main's code fails here),
while the rollup's statements are sized to the timeout (500 conversations a batch at 250 ms) and
each takes a few milliseconds. Both drivers go through their real entry points in a process of
their own, configured only by the environment: the ``kalimera`` command and the timer function of
``function_app.py``.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.statistics.conftest import Db

TIMEOUT_MS = "250"
CONVERSATIONS = 40_000
DAYS = 200
FIRST_DAY = datetime.now(UTC).date() - timedelta(days=DAYS)
KALIMERA = Path(sys.executable).parent / "kalimera"
ROOT = Path(__file__).resolve().parents[2]

# Three agents, both directions, every status but Active, ten-minute spacing within a day.
_INSERT = """
INSERT INTO kalimera_conversations (tenant_id, id, agent_id, status, profile_type, language,
                                    duration, started_at, last_activity_at, sentiment)
SELECT %(t)s, gen_random_uuid(), (%(agents)s::uuid[])[1 + i %% 3],
       CASE WHEN i %% 10 = 0 THEN 'Failed' ELSE 'Completed' END,
       CASE WHEN i %% 3 = 0 THEN 'outbound' ELSE 'inbound' END,
       CASE WHEN i %% 7 = 0 THEN 'el' ELSE 'en' END, (i %% 600)::numeric,
       at, at, 'neutral'
FROM generate_series(0, %(n)s - 1) AS i,
     LATERAL (SELECT %(first)s::timestamp AT TIME ZONE 'UTC'
                     + i * (%(days)s * interval '1 day') / %(n)s AS at) AS t
"""


@pytest.fixture(scope="module")
def tenant(db: Db) -> Iterator[uuid.UUID]:
    tenant = uuid.uuid4()
    agents = [uuid.uuid4() for _ in range(3)]
    db.execute(
        _INSERT,
        {"t": tenant, "agents": agents, "n": CONVERSATIONS, "first": FIRST_DAY, "days": DAYS},
    )
    yield tenant
    for table in (
        "kalimera_conversations",
        "kalimera_stats_dirty",
        "kalimera_stats_quarter",
        "kalimera_stats_hour",
        "kalimera_stats_rolled",
    ):
        db.execute(f"DELETE FROM {table} WHERE tenant_id = %(t)s", {"t": tenant})  # noqa: S608


def run(settings_env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, **settings_env, "KALIMERA_DB_STATEMENT_TIMEOUT_MS": TIMEOUT_MS}
    return subprocess.run(
        args, env=env, cwd=ROOT, capture_output=True, text=True, timeout=300, check=False
    )


def assert_rolled_up_exactly(db: Db, tenant: uuid.UUID) -> None:
    truth = db.execute(
        "SELECT (started_at AT TIME ZONE 'UTC')::date AS day, count(*) AS total,"
        " count(*) FILTER (WHERE status = 'Failed') AS failed, sum(duration) AS duration_sum"
        " FROM kalimera_conversations WHERE tenant_id = %(t)s GROUP BY 1 ORDER BY 1",
        {"t": tenant},
    )
    rolled = db.execute(
        "SELECT day, total, failed, duration_sum FROM kalimera_stats_rolled"
        " WHERE tenant_id = %(t)s ORDER BY day",
        {"t": tenant},
    )
    assert len(truth) == DAYS
    assert rolled == truth
    dirty = db.execute(
        "SELECT day FROM kalimera_stats_dirty WHERE tenant_id = %(t)s AND day < current_date",
        {"t": tenant},
    )
    assert dirty == []


def test_the_timer_rolls_up_a_large_catch_up_within_the_statement_timeout(
    db: Db, tenant: uuid.UUID, settings_env: dict[str, str]
) -> None:
    # Every day of the tenant dirty (as after its rows were written, or a bulk correction): the
    # nightly run catches up.
    db.execute(
        "SELECT kalimera_stats_mark(array_agg(tenant_id), array_agg(day)) FROM ("
        " SELECT DISTINCT tenant_id, (started_at AT TIME ZONE 'UTC')::date AS day"
        " FROM kalimera_conversations WHERE tenant_id = %(t)s) AS d",
        {"t": tenant},
    )
    timer = """
import asyncio

from azure.functions.timer import TimerRequest

import function_app

functions = {f.get_function_name(): f for f in function_app.app.get_functions()}
timer = functions["rollup_statistics"].get_user_function()
asyncio.run(timer(TimerRequest(past_due=False)))
"""
    done = run(settings_env, sys.executable, "-c", timer)
    assert done.returncode == 0, done.stderr[-2000:]
    assert_rolled_up_exactly(db, tenant)


def test_stats_rollup_since_the_first_day_finishes_within_the_statement_timeout(
    db: Db, tenant: uuid.UUID, settings_env: dict[str, str]
) -> None:
    done = run(settings_env, str(KALIMERA), "stats", "rollup", "--since", FIRST_DAY.isoformat())
    assert done.returncode == 0, done.stderr[-2000:]
    assert_rolled_up_exactly(db, tenant)


def test_stats_rollup_profile_prints_each_statements_time(
    db: Db, tenant: uuid.UUID, settings_env: dict[str, str]
) -> None:
    done = run(
        settings_env,
        str(KALIMERA),
        "stats",
        "rollup",
        "--since",
        FIRST_DAY.isoformat(),
        "--profile",
    )
    assert done.returncode == 0, done.stderr[-2000:]
    said = done.stdout + done.stderr
    steps = ("finalise", "mark since", "claim", "size", "delete", "recompute", "recompute outcomes")
    for statement in steps:
        assert f"  {statement} " in said, said[-2000:]
    assert_rolled_up_exactly(db, tenant)
