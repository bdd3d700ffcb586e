"""``kalimera demo seed``: realistic synthetic conversations, written with COPY.

Tenants are skewed (the largest takes ``largest_share``, the rest follow a Zipf curve); each has a
home UTC offset, a main language and 1-25 agents, each inbound or outbound. Volume grows over the
period and dips at weekends; calls follow a business-hours curve in the tenant's local time;
durations are log-normal; most calls completed, some failed, the last hour's still ``Active`` and a
few stale ``Active`` ones for the timer to finalise. Ended calls carry outcomes: an ended reason
(completed and failed calls end differently), telephony's cost in the tenant's currency, their
output turns' latencies (log-normal around 850 ms, rounded down to 10 ms) and the analysis verdict
of the agent's rubric (most analysed, a few failed or skipped, some not yet). Rows are written
day by day in time order (as ingestion writes them), in COPY statements of about ``CHUNK`` rows
(through a temporary table: see ``flush``).
"""

from __future__ import annotations

import json
import math
import random
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from kalimera.db import Pool, transaction

CHUNK = 20_000
"""Rows a COPY and its INSERT carry: the INSERT fires the statistics and search triggers for
each row, and must finish within the statement timeout (15 s by default) on a machine that is
busy with other work too (100,000 did not, once, with both cores loaded)."""

COLUMNS = (
    "tenant_id, id, agent_id, title, status, profile_type, from_number, to_number, language, "
    "duration, started_at, ended_at, last_activity_at, sentiment, sentiment_score, turn_count, "
    "ended_reason, cost, latency_rounded_ms, analysis_status, success_rubric, success_result, "
    "success_score, analysis_cost"
)

_STAGE = (
    "CREATE TEMP TABLE kalimera_seed_rows (LIKE kalimera_conversations INCLUDING DEFAULTS)"
    " ON COMMIT DROP"
)
_BULK_TIMEOUT = "SET LOCAL statement_timeout = '10min'"
# The columns COPY wrote, named: the table may have generated columns, which take no value.
_FROM_STAGE = (
    f"INSERT INTO kalimera_conversations ({COLUMNS})"  # noqa: S608 - constant column list
    f" SELECT {COLUMNS} FROM kalimera_seed_rows"
)

# Calls per local hour, relative (night, morning ramp, business hours, evening).
HOUR_CURVE = [1, 1, 1, 1, 1, 2, 4, 8, 16, 24, 26, 25, 20, 22, 25, 24, 20, 14, 9, 6, 4, 3, 2, 1]
HOME_OFFSETS_MIN = [120, 0, 60, -300, -480, 330, 540, -180, 345, 600]
LANGUAGES = ["en", "el", "de", "fr", "es", "it", "hi", "ja", "pt", "nl"]
SENTIMENTS = ["positive", "neutral", "negative", "unknown"]
SENTIMENT_WEIGHTS = [45, 30, 15, 10]
COMPLETED_REASONS = {
    "customer-ended-call": 52,
    "agent-ended-call": 25,
    "transferred": 8,
    "silence-timeout": 5,
    "voicemail": 3,
    "max-duration-reached": 2,
    "unknown": 2,
    "\\N": 3,  # telephony said nothing
}
FAILED_REASONS = {"no-answer": 35, "busy": 20, "failed-to-connect": 20, "error": 15, "\\N": 10}
RUBRICS = ["pass_fail", "pass_fail", "pass_fail", "score_1_10", "likert_5"]
LIKERT = ["strongly_disagree", "disagree", "neutral", "agree", "strongly_agree"]


@dataclass
class SeedReport:
    conversations: int
    tenants: int
    largest_tenant: uuid.UUID
    largest_count: int
    agents: list[tuple[uuid.UUID, uuid.UUID]]
    """Each tenant's first inbound agent (or first agent), largest tenant first."""


@dataclass
class _Tenant:
    id: uuid.UUID
    offset_min: int
    language: str
    agents: list[tuple[uuid.UUID, str]]
    currency: str
    rubrics: dict[uuid.UUID, str]


def _time_ordered_id(rng: random.Random, at: datetime) -> uuid.UUID:
    # UUIDv7 layout (milliseconds first): index inserts stay near the right edge.
    ms = int(at.timestamp() * 1000) & ((1 << 48) - 1)
    value = (ms << 80) | (0x7 << 76) | (rng.getrandbits(12) << 64) | (0b10 << 62)
    return uuid.UUID(int=value | rng.getrandbits(62))


def _tenants(
    rng: random.Random, count: int, largest_share: float, fixed: list[uuid.UUID]
) -> tuple[list[_Tenant], list[float]]:
    tenants = []
    for i in range(count):
        n_agents = 25 if i == 0 else max(1, min(12, int(rng.expovariate(1 / 3)) + 1))
        agents = [
            (uuid.uuid4(), "inbound" if rng.random() < 0.65 else "outbound")
            for _ in range(n_agents)
        ]
        tenants.append(
            _Tenant(
                id=fixed[i] if i < len(fixed) else uuid.uuid4(),
                offset_min=rng.choice(HOME_OFFSETS_MIN),
                language=rng.choice(LANGUAGES),
                agents=agents,
                currency="EUR" if i == 0 or rng.random() < 0.7 else "USD",
                rubrics={agent: rng.choice(RUBRICS) for agent, _ in agents},
            )
        )
    rest = [1 / (i**0.9) for i in range(1, count)]
    weights = [largest_share if count > 1 else 1.0] + [
        (1 - largest_share) * w / sum(rest) for w in rest
    ]
    return tenants, weights


def _day_counts(total: int, days: int, start: datetime) -> list[int]:
    """Conversations per day: growing over the period, fewer at weekends; sums to ``total``."""
    weights = []
    for d in range(days):
        day = start + timedelta(days=d)
        weights.append((0.5 + 0.5 * d / max(1, days - 1)) * (0.6 if day.weekday() >= 5 else 1.0))
    scale = total / sum(weights)
    counts = [math.floor(w * scale) for w in weights]
    for i in range(total - sum(counts)):
        counts[-1 - (i % days)] += 1
    return counts


def _row(rng: random.Random, tenant: _Tenant, day: datetime, now: datetime) -> str:
    hour = rng.choices(range(24), weights=HOUR_CURVE)[0]
    local = day + timedelta(hours=hour, seconds=rng.randrange(3600))
    started = local - timedelta(minutes=tenant.offset_min)
    if started > now:  # today's calls that have not happened yet: earlier today instead
        started = now - timedelta(seconds=rng.randrange(1, 4 * 3600))
    agent_id, profile = rng.choice(tenant.agents)
    recent = now - started < timedelta(hours=1)
    roll = rng.random()
    duration: float | None
    if recent or roll < 0.002:
        status, ended, duration = "Active", None, None
    elif roll < 0.08:
        status = "Failed"
        duration = round(rng.uniform(0, 40), 3) if rng.random() < 0.6 else None
        ended = started + timedelta(seconds=duration or 5)
    else:
        status = "Completed"
        duration = round(min(5400.0, rng.lognormvariate(4.6, 0.9)), 3)
        ended = started + timedelta(seconds=duration)
    last = ended or started + timedelta(seconds=rng.randrange(600))
    sentiment = rng.choices(SENTIMENTS, weights=SENTIMENT_WEIGHTS)[0] if duration else "unknown"
    score = {
        "positive": rng.uniform(0.05, 1),
        "neutral": rng.uniform(-0.05, 0.05),
        "negative": rng.uniform(-1, -0.05),
    }.get(sentiment)
    language = tenant.language if rng.random() < 0.85 else rng.choice(LANGUAGES)
    turns = int((duration or 0) // 20) + 1
    outcome = (
        _outcome(rng, tenant, agent_id, status, duration, turns)
        if ended
        else ["\\N", "\\N", "{}", *["\\N"] * 5]
    )
    caller = f"+30210{rng.randrange(10**7):07d}"
    line = "+302100000000"
    conv_id = _time_ordered_id(rng, started)
    return "\t".join(
        (
            str(tenant.id),
            str(conv_id),
            str(agent_id),
            "",
            status,
            profile,
            caller if profile == "inbound" else line,
            line if profile == "inbound" else caller,
            language if rng.random() > 0.02 else "\\N",
            "\\N" if duration is None else f"{duration:.3f}",
            started.isoformat(),
            "\\N" if ended is None else ended.isoformat(),
            last.isoformat(),
            sentiment,
            "\\N" if score is None else f"{score:.4f}",
            str(turns),
            *outcome,
        )
    )


def _outcome(
    rng: random.Random,
    tenant: _Tenant,
    agent_id: uuid.UUID,
    status: str,
    duration: float | None,
    turns: int,
) -> list[str]:
    """An ended call's outcome columns, as COPY text: reason, cost, latencies, analysis."""
    reasons = COMPLETED_REASONS if status == "Completed" else FAILED_REASONS
    reason = rng.choices(list(reasons), weights=list(reasons.values()))[0]
    minutes = (duration or 0) / 60
    cost = {
        "currency": tenant.currency,
        "telephony": round(0.008 + 0.012 * minutes, 6),
        "stt": round(0.006 * minutes, 6),
        "llm": round(0.0004 * turns, 6),
        "tts": round(0.004 * minutes, 6),
        "other": 0,
    }
    latencies = [
        int(min(20_000.0, rng.lognormvariate(6.75, 0.35))) // 10 * 10 for _ in range(turns // 2)
    ]
    roll = rng.random()
    analysis = ["\\N"] * 5
    if duration and roll < 0.8:
        rubric = tenant.rubrics[agent_id]
        result = score = "\\N"
        if rubric == "pass_fail":
            result = "pass" if rng.random() < 0.72 else "fail"
        elif rubric == "likert_5":
            result = rng.choices(LIKERT, weights=[5, 10, 20, 40, 25])[0]
        else:
            score = str(min(10, max(1, round(rng.triangular(1, 10, 7.5)))))
        analysis = ["done", rubric, result, score, f"{rng.uniform(0.0005, 0.004):.6f}"]
    elif duration and roll < 0.9:
        analysis = [rng.choice(["failed", "skipped", "pending"]), "\\N", "\\N", "\\N", "\\N"]
    return [
        reason,
        "\\N" if status == "Failed" and not duration else json.dumps(cost),
        "{" + ",".join(map(str, latencies)) + "}",
        *analysis,
    ]


async def seed_conversations(
    pool: Pool,
    *,
    tenants: int,
    conversations: int,
    days: int,
    largest_share: float = 0.2,
    fixed_tenants: list[uuid.UUID] | None = None,
    seed: int = 1,
    progress: Callable[[int], None] | None = None,
    now: datetime | None = None,
) -> SeedReport:
    """Write ``conversations`` rows over the ``days`` days ending ``now``; returns what it made."""
    rng = random.Random(seed)  # noqa: S311 - demo data, reproducible
    now = now or datetime.now(UTC)
    people, weights = _tenants(rng, tenants, largest_share, fixed_tenants or [])
    cum = [0.0]
    for w in weights:
        cum.append(cum[-1] + w)
    cum = cum[1:]
    start = datetime(now.year, now.month, now.day, tzinfo=UTC) - timedelta(days=days - 1)
    written = 0
    largest = 0
    async with transaction(pool, system=True) as conn:
        await conn.execute(
            "INSERT INTO kalimera_ai_agents (tenant_id, id, name, description, profile_type)"
            " SELECT * FROM unnest(%(t)s::uuid[], %(i)s::uuid[], %(n)s::text[], %(d)s::text[],"
            " %(p)s::text[]) ON CONFLICT DO NOTHING",
            {
                "t": [t.id for t in people for _ in t.agents],
                "i": [a for t in people for a, _ in t.agents],
                "n": [
                    f"Demo {p} agent {k + 1}" for t in people for k, (_, p) in enumerate(t.agents)
                ],
                "d": ["Made by kalimera demo seed" for t in people for _ in t.agents],
                "p": [p for t in people for _, p in t.agents],
            },
        )
    lines: list[str] = []

    async def flush() -> None:
        nonlocal lines, written
        if not lines:
            return
        async with transaction(pool, system=True) as conn:
            # Row-level security refuses COPY FROM into the table itself: COPY into a temporary
            # table, then one INSERT (which the policies check).
            await conn.execute(_STAGE)
            # A bulk load, not a request: the API's statement timeout (15 s by default) bounds
            # what a client waits for, and cancelled the 10M seed's INSERT at 5.7M rows on a
            # busy machine (each row fires the statistics and search triggers). A chunk gets
            # ten minutes, this transaction only.
            await conn.execute(_BULK_TIMEOUT)
            async with conn.cursor().copy(
                f"COPY kalimera_seed_rows ({COLUMNS}) FROM STDIN"
            ) as copy:
                await copy.write("\n".join(lines) + "\n")
            await conn.execute(_FROM_STAGE)
        written += len(lines)
        lines = []
        if progress is not None:
            progress(written)

    for d, count in enumerate(_day_counts(conversations, days, start)):
        day = start + timedelta(days=d)
        picks = rng.choices(people, cum_weights=cum, k=count)
        rows = [_row(rng, t, day, now) for t in picks]
        rows.sort(key=lambda r: r.split("\t", 11)[10])
        largest += sum(1 for r in rows if r.startswith(str(people[0].id)))
        lines.extend(rows)
        if len(lines) >= CHUNK:
            await flush()
    await flush()
    await _vacuum(pool)
    return SeedReport(
        conversations=written,
        tenants=tenants,
        largest_tenant=people[0].id,
        largest_count=largest,
        agents=[(t.id, _first_inbound(t.agents)) for t in people],
    )


async def _vacuum(pool: Pool) -> None:
    """What PostgreSQL's documentation asks after a bulk load: ``VACUUM (ANALYZE)`` of the table
    loaded. It sets the rows' hint bits and the visibility map (index-only scans then skip the
    heap) and gives the planner the table's statistics. Autovacuum would get there in time
    where it runs (it is off on some servers, this project's test machines among them);
    otherwise the first statement to read each row pays for it: the first rollup after a 1M
    seed took 67.6 s without this and 46.0 s with it. Outside a transaction (a pool connection
    is in autocommit mode), with the server's statement timeout, as the login role: a role
    that does not own the table is told so in a warning, and the seed stands."""
    async with pool.connection() as conn:
        await conn.execute("VACUUM (ANALYZE) kalimera_conversations")


def _first_inbound(agents: list[tuple[uuid.UUID, str]]) -> uuid.UUID:
    return next((a for a, profile in agents if profile == "inbound"), agents[0][0])
