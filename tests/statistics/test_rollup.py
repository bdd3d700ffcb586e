"""The timer's semantics: dirty marks, idempotence, catching up, overlapping runs, finalising."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from kalimera.services import Services
from kalimera.settings import Settings
from kalimera.statistics.rollup import RollupReport, run_rollup
from tests.conftest import Tenant, run_async
from tests.statistics.conftest import Conv, Db, rollup

TODAY = datetime.now(UTC).date()


def at(day: date, hour: int = 12, minute: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=UTC)


def marks(db: Db, tenant: uuid.UUID) -> set[date]:
    rows = db.execute("SELECT day FROM kalimera_stats_dirty WHERE tenant_id = %(t)s", {"t": tenant})
    return {row["day"] for row in rows}


def snapshot(db: Db, tenant: uuid.UUID) -> tuple[list[Any], list[Any]]:
    quarters = db.execute(
        "SELECT agent_id, bucket, total, inbound, completed, failed, positive, neutral, negative,"
        " duration_sum, duration_count, d_0_30, d_30_60, d_1_3, d_3_5, d_5_10"
        " FROM kalimera_stats_quarter WHERE tenant_id = %(t)s ORDER BY agent_id, bucket",
        {"t": tenant},
    )
    rolled = db.execute(
        "SELECT day, agent_ids, languages, agent_languages FROM kalimera_stats_rolled"
        " WHERE tenant_id = %(t)s ORDER BY day",
        {"t": tenant},
    )
    return quarters, [{**r, "agent_ids": sorted(r["agent_ids"])} for r in rolled]


def test_every_write_marks_its_utc_day_and_the_rollup_clears_closed_ones(
    db: Db, settings: Settings
) -> None:
    tenant, agent = uuid.uuid4(), uuid.uuid4()
    old, older = TODAY - timedelta(days=3), TODAY - timedelta(days=5)
    conv = Conv(tenant, agent, at(old, 23, 59))
    db.insert([conv, Conv(tenant, agent, at(TODAY, 0, 1))])
    assert marks(db, tenant) == {old, TODAY}

    rollup(settings)
    assert marks(db, tenant) == {TODAY}  # today is not closed: it stays live

    # A change that no statistic reads marks nothing.
    db.execute(
        "UPDATE kalimera_conversations SET turn_count = 3, title = 'x'"
        " WHERE tenant_id = %(t)s AND id = %(i)s",
        {"t": tenant, "i": conv.id},
    )
    assert marks(db, tenant) == {TODAY}
    # A late edit that moves it marks both days; a deletion marks its day.
    db.execute(
        "UPDATE kalimera_conversations SET started_at = %(s)s"
        " WHERE tenant_id = %(t)s AND id = %(i)s",
        {"t": tenant, "i": conv.id, "s": at(older)},
    )
    assert marks(db, tenant) == {old, older, TODAY}
    rollup(settings)
    db.execute(
        "DELETE FROM kalimera_conversations WHERE tenant_id = %(t)s AND id = %(i)s",
        {"t": tenant, "i": conv.id},
    )
    assert marks(db, tenant) == {older, TODAY}
    rollup(settings)
    quarters, rolled = snapshot(db, tenant)
    assert quarters == []
    assert rolled == []


def test_a_second_run_changes_nothing(db: Db, settings: Settings) -> None:
    tenant = uuid.uuid4()
    agents = [uuid.uuid4(), uuid.uuid4()]
    db.insert(
        [
            Conv(
                tenant,
                agents[i % 2],
                at(TODAY - timedelta(days=1 + i % 4), i % 24, 15 * (i % 4)),
                duration=Decimal(i) / 3,
                language=None if i % 5 == 0 else "el",
            )
            for i in range(40)
        ]
    )
    rollup(settings)
    before = snapshot(db, tenant)
    assert len(before[1]) == 4
    report = rollup(settings)
    assert snapshot(db, tenant) == before
    assert tenant not in report.tenants


def test_three_missed_days_are_three_days_computed_on_the_next_run(
    db: Db, settings: Settings
) -> None:
    tenant, agent = uuid.uuid4(), uuid.uuid4()
    days = [TODAY - timedelta(days=n) for n in (3, 2, 1)]
    # The timer last ran on the morning of days[0]; ingestion went on for three days.
    db.insert([Conv(tenant, agent, at(day, 9)) for day in days])
    first = rollup(settings, today=days[0])
    assert tenant not in first.tenants
    assert marks(db, tenant) == set(days)

    report = rollup(settings)
    assert tenant in report.tenants
    assert marks(db, tenant) == set()
    _, rolled = snapshot(db, tenant)
    assert [r["day"] for r in rolled] == days
    assert all(r["languages"] == {"en": 1} for r in rolled)
    assert all(r["agent_languages"] == {str(agent): {"en": 1}} for r in rolled)


def test_two_runs_at_once_count_each_day_once_and_end_as_one_run_would(
    db: Db, settings: Settings
) -> None:
    tenants = [uuid.uuid4() for _ in range(6)]
    agent = uuid.uuid4()
    rows = [
        Conv(t, agent, at(TODAY - timedelta(days=1 + d), h), sentiment="positive")
        for t in tenants
        for d in range(12)
        for h in (1, 13)
    ]
    db.insert(rows)
    wanted = {(t, TODAY - timedelta(days=1 + d)) for t in tenants for d in range(12)}

    async def both() -> list[RollupReport]:
        services = [Services(settings), Services(settings)]
        pools = [await s.db() for s in services]
        try:
            return await asyncio.gather(
                *(run_rollup(p, idle_minutes=120, batch_pairs=5, workers=2) for p in pools)
            )
        finally:
            for s in services:
                await s.aclose()

    reports = run_async(both())
    assert sum(r.days for r in reports) >= len(wanted)  # other tests' days may be in there too
    concurrent = {t: snapshot(db, t) for t in tenants}
    assert all(marks(db, t) == set() for t in tenants)

    # The same days rolled up again by a single run give the same rows.
    db.execute(
        "SELECT kalimera_stats_mark(array_agg(tenant_id), array_agg(day))"
        " FROM kalimera_stats_rolled WHERE tenant_id = ANY(%(t)s)",
        {"t": tenants},
    )
    rollup(settings)
    assert {t: snapshot(db, t) for t in tenants} == concurrent
    assert sum(len(concurrent[t][1]) for t in tenants) == len(wanted)


def test_idle_active_conversations_are_completed_when_last_heard_from(
    db: Db, settings: Settings, tenant: Tenant
) -> None:
    agent = uuid.uuid4()
    now = datetime.now(UTC)
    idle = Conv(
        tenant.id,
        agent,
        now - timedelta(hours=5),
        status="Active",
        last_activity_at=now - timedelta(hours=3),
        duration=None,
    )
    live = Conv(
        tenant.id,
        agent,
        now - timedelta(minutes=30),
        status="Active",
        last_activity_at=now - timedelta(minutes=2),
        profile_type="outbound",
        duration=None,
    )
    db.insert([idle, live])
    assert tenant.client.get("/kalimera/statistics/realtime").json()["active_outbound"] == 1
    report = rollup(settings)
    assert report.finalised >= 1
    rows = {
        r["id"]: r
        for r in db.execute(
            "SELECT id, status, ended_at, last_activity_at FROM kalimera_conversations"
            " WHERE tenant_id = %(t)s",
            {"t": tenant.id},
        )
    }
    assert rows[idle.id]["status"] == "Completed"
    assert rows[idle.id]["ended_at"] == rows[idle.id]["last_activity_at"]
    assert rows[live.id]["status"] == "Active"
    body = tenant.client.get("/kalimera/statistics/realtime").json()
    assert (body["active_inbound"], body["active_outbound"], body["active_total"]) == (0, 1, 1)


def test_a_catch_up_of_idle_calls_is_finalised_by_every_worker_once_each(
    db: Db, settings: Settings
) -> None:
    # More idle calls than two statements finalise, over a week: the two workers' loops take
    # them apart (SKIP LOCKED) and together finalise each once, before any day is rolled up.
    tenant, agent = uuid.uuid4(), uuid.uuid4()
    now = datetime.now(UTC)
    calls = [
        Conv(
            tenant,
            agent,
            now - timedelta(days=1 + i % 7, minutes=i % 600),
            status="Active",
            last_activity_at=now
            - timedelta(days=1 + i % 7, minutes=i % 600)
            + timedelta(minutes=3),
            duration=None,
        )
        for i in range(2_500)
    ]
    db.insert(calls)
    report = rollup(settings, workers=2)
    assert report.finalised >= len(calls)
    (row,) = db.execute(
        "SELECT count(*) FILTER (WHERE status = 'Completed' AND ended_reason = 'idle-timeout'"
        " AND ended_at = last_activity_at) AS finalised, count(*) AS n"
        " FROM kalimera_conversations WHERE tenant_id = %(t)s",
        {"t": tenant},
    )
    assert (row["finalised"], row["n"]) == (len(calls), len(calls))
    (rolled,) = db.execute(
        "SELECT sum(completed) AS completed FROM kalimera_stats_rolled WHERE tenant_id = %(t)s",
        {"t": tenant},
    )
    assert rolled["completed"] == len(calls)
    assert not marks(db, tenant)


def test_a_late_edit_to_a_rolled_up_day_is_answered_at_once(
    db: Db, settings: Settings, tenant: Tenant
) -> None:
    agent = uuid.uuid4()
    day = TODAY - timedelta(days=2)
    conv = Conv(tenant.id, agent, at(day, 10), status="Completed")
    db.insert([conv, Conv(tenant.id, agent, at(day, 11), status="Completed")])
    rollup(settings)
    params = {"start": day.isoformat(), "end": day.isoformat()}
    body = tenant.client.get("/kalimera/statistics/history", params=params).json()
    assert (body["series"][0]["completed"], body["series"][0]["failed"]) == (2, 0)
    db.execute(
        "UPDATE kalimera_conversations SET status = 'Failed'"
        " WHERE tenant_id = %(t)s AND id = %(i)s",
        {"t": tenant.id, "i": conv.id},
    )
    body = tenant.client.get("/kalimera/statistics/history", params=params).json()
    assert (body["series"][0]["completed"], body["series"][0]["failed"]) == (1, 1)
    rollup(settings)
    body = tenant.client.get("/kalimera/statistics/history", params=params).json()
    assert (body["series"][0]["completed"], body["series"][0]["failed"]) == (1, 1)


def test_agents_sharing_a_quarter_get_their_own_rows_and_a_lone_agent_shares_the_total(
    db: Db, settings: Settings, tenant: Tenant
) -> None:
    a, b = uuid.uuid4(), uuid.uuid4()
    day = TODAY - timedelta(days=2)
    db.insert(
        [
            Conv(tenant.id, a, at(day, 9, 1)),
            Conv(tenant.id, b, at(day, 9, 14), profile_type="outbound"),
            Conv(tenant.id, a, at(day, 9, 7)),
            Conv(tenant.id, b, at(day, 15, 30)),
        ]
    )
    rollup(settings)
    rows = db.execute(
        "SELECT agent_id, bucket, sole_agent, total FROM kalimera_stats_quarter"
        " WHERE tenant_id = %(t)s ORDER BY bucket, agent_id",
        {"t": tenant.id},
    )
    nine, half_past_three = at(day, 9), at(day, 15, 30)
    assert {(r["agent_id"], r["bucket"], r["sole_agent"], r["total"]) for r in rows} == {
        (uuid.UUID(int=0), nine, None, 3),
        (a, nine, None, 2),
        (b, nine, None, 1),
        (uuid.UUID(int=0), half_past_three, b, 1),
    }
    params = {"start": day.isoformat(), "end": day.isoformat()}
    for agent, total, hours in ((a, 2, {9: 2}), (b, 2, {9: 1, 15: 1})):
        body = tenant.client.get(
            "/kalimera/statistics/call-breakdown", params={**params, "agent_id": str(agent)}
        ).json()
        assert body["total"] == total
        assert {h: n for h, n in enumerate(body["by_hour"]) if n} == hours


def test_since_recomputes_every_day_from_that_date(db: Db, settings: Settings) -> None:
    tenant, agent = uuid.uuid4(), uuid.uuid4()
    days = [TODAY - timedelta(days=n) for n in (6, 4, 2)]
    db.insert([Conv(tenant, agent, at(day)) for day in days])
    rollup(settings)
    # A rollup row gone wrong behind the triggers' back (say, a bug fixed in a new release).
    db.execute(
        "UPDATE kalimera_stats_quarter SET total = 99 WHERE tenant_id = %(t)s", {"t": tenant}
    )

    async def since() -> RollupReport:
        services = Services(settings)
        try:
            return await run_rollup(
                await services.db(), idle_minutes=settings.idle_minutes, since=days[1]
            )
        finally:
            await services.aclose()

    report = run_async(since())
    assert tenant in report.tenants
    totals = db.execute(
        "SELECT total FROM kalimera_stats_quarter WHERE tenant_id = %(t)s ORDER BY bucket",
        {"t": tenant},
    )
    assert [r["total"] for r in totals] == [99, 1, 1]  # days[0] is before --since


def test_an_intraday_run_keeps_the_mark_and_a_change_below_its_cut_lowers_changed_from(
    db: Db, settings: Settings
) -> None:
    tenant, agent = uuid.uuid4(), uuid.uuid4()
    day = TODAY - timedelta(days=1)  # an intraday run of yesterday, before the nightly one
    early = Conv(tenant, agent, at(day, 1, 5))
    db.insert([early, Conv(tenant, agent, at(day, 13))])

    def mark() -> dict[str, Any]:
        (row,) = db.execute(
            "SELECT rolled_to, changed_from FROM kalimera_stats_dirty"
            " WHERE tenant_id = %(t)s AND day = %(d)s",
            {"t": tenant, "d": day},
        )
        return dict(row)

    report = rollup(settings, through=at(day, 12))
    assert report.days >= 1
    assert mark() == {"rolled_to": at(day, 12), "changed_from": None}
    # Rows up to the cut only: the 01:05 call's quarter, not the 13:00 one's.
    buckets = db.execute(
        "SELECT bucket, total FROM kalimera_stats_quarter WHERE tenant_id = %(t)s",
        {"t": tenant},
    )
    assert [(r["bucket"], r["total"]) for r in buckets] == [(at(day, 1, 0), 1)]

    # A write after the cut changes nothing the rows say; one before it lowers changed_from.
    db.insert([Conv(tenant, agent, at(day, 12, 30))])
    assert mark() == {"rolled_to": at(day, 12), "changed_from": None}
    # So a run again at the same cut (a retry within the quarter) has nothing of it to redo.
    assert tenant not in rollup(settings, through=at(day, 12)).tenants
    db.execute(
        "UPDATE kalimera_conversations SET status = 'Failed' WHERE tenant_id = %(t)s"
        " AND id = %(i)s",
        {"t": tenant, "i": early.id},
    )
    assert mark() == {"rolled_to": at(day, 12), "changed_from": at(day, 1, 5)}
    db.insert([Conv(tenant, agent, at(day, 3))])  # later than the change recorded: no update
    assert mark()["changed_from"] == at(day, 1, 5)
    # A run at the same cut now recomputes the day up to it.
    assert tenant in rollup(settings, through=at(day, 12)).tenants
    assert mark() == {"rolled_to": at(day, 12), "changed_from": None}
    buckets = db.execute(
        "SELECT bucket, total, failed FROM kalimera_stats_quarter WHERE tenant_id = %(t)s"
        " AND agent_id = %(all)s ORDER BY bucket",
        {"t": tenant, "all": uuid.UUID(int=0)},
    )
    assert [(r["bucket"], r["total"], r["failed"]) for r in buckets] == [
        (at(day, 1, 0), 1, 1),
        (at(day, 3, 0), 1, 0),
    ]

    # The nightly run recomputes the whole day and clears the mark.
    rollup(settings)
    assert day not in marks(db, tenant)
    totals = db.execute(
        "SELECT sum(total) AS n FROM kalimera_stats_quarter WHERE tenant_id = %(t)s"
        " AND agent_id = %(all)s",
        {"t": tenant, "all": uuid.UUID(int=0)},
    )
    assert totals[0]["n"] == 4
