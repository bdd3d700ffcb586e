"""The outcome statistics by hand: known conversations, the numbers an operator reads."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from kalimera.settings import Settings
from kalimera.statistics.models import OutcomeStatistics
from tests.conftest import Tenant
from tests.statistics.conftest import Conv, Db, rollup

TODAY = datetime.now(UTC).date()
DAY = TODAY - timedelta(days=3)
AT = datetime(DAY.year, DAY.month, DAY.day, 9, tzinfo=UTC)
PARAMS = {"start": DAY.isoformat(), "end": DAY.isoformat()}


def _calls(tenant: uuid.UUID, agent: uuid.UUID) -> list[Conv]:
    eur = {"currency": "EUR", "telephony": 0.02, "stt": 0.004, "llm": 0.003, "tts": 0.002}
    return [
        Conv(
            tenant,
            agent,
            AT,
            ended_reason="customer-ended-call",
            cost=eur,
            latencies=[500, 700, 900],
            analysis_status="done",
            success_rubric="pass_fail",
            success_result="pass",
            analysis_cost=Decimal("0.001"),
        ),
        Conv(
            tenant,
            agent,
            AT + timedelta(minutes=20),
            status="Failed",
            cost=eur,
            latencies=[1500],
            analysis_status="done",
            success_rubric="pass_fail",
            success_result="fail",
        ),
        Conv(
            tenant,
            agent,
            AT + timedelta(hours=3),
            ended_reason="idle-timeout",
            analysis_status="done",
            success_rubric="score_1_10",
            success_score=7,
        ),
        Conv(
            tenant,
            agent,
            AT + timedelta(hours=4),
            ended_reason="busy",
            analysis_status="pending",
            success_rubric="score_1_10",
            success_score=8,
        ),
        # Not ended (still heard from): counted nowhere.
        Conv(
            tenant,
            agent,
            AT,
            status="Active",
            cost=eur,
            latencies=[10, 20],
            last_activity_at=datetime.now(UTC),
        ),
    ]


def test_the_outcomes_of_a_day_live_and_from_the_rollup(
    db: Db, settings: Settings, tenant: Tenant
) -> None:
    db.insert(_calls(tenant.id, uuid.uuid4()))
    for _ in range(2):  # live, then from the rollup
        body = tenant.client.get("/kalimera/statistics/outcomes", params=PARAMS).json()
        # The service writes the JSON itself: it is exactly what the documented model emits.
        assert OutcomeStatistics.model_validate(body).model_dump(mode="json", by_alias=True) == body
        assert body["series"][0]["period_start"] == DAY.isoformat()
        totals = body["totals"]
        assert {k: v for k, v in totals.items() if k != "by_ended_reason"} == {
            "ended": 4,
            "analysed": 3,
            "success_evaluated": 2,
            "success_pass": 1,
            "success_rate": 50.0,
            "avg_score": 7.5,
            "cost_total": 0.059,  # two calls of 0.029, one with 0.001 of analysis
            "cost_avg": 0.0295,
            "currency": "EUR",
            "cost_by_currency": {"EUR": {"total": 0.059, "avg": 0.0295, "conversations": 2}},
            "latency_p50_ms": 700,  # of 500, 700, 900, 1500: the 2nd
            "latency_p90_ms": 1500,  # the 4th
        }
        assert totals["by_ended_reason"]["unknown"] == 1  # ended without a reason
        assert totals["by_ended_reason"]["customer-ended-call"] == 1
        assert totals["by_ended_reason"]["idle-timeout"] == 1
        assert totals["by_ended_reason"]["busy"] == 1
        assert sum(totals["by_ended_reason"].values()) == 4
        assert len(totals["by_ended_reason"]) == 12
        assert body["series"][0] | {"period_start": None} == totals | {"period_start": None}
        rollup(settings)
    rows = db.execute(
        "SELECT currency, ended FROM kalimera_stats_outcome_day WHERE tenant_id = %(t)s"
        " ORDER BY currency",
        {"t": tenant.id},
    )
    assert [(r["currency"], r["ended"]) for r in rows] == [("", 2), ("EUR", 2)]


def test_costs_in_several_currencies_are_never_added(
    db: Db, settings: Settings, tenant: Tenant
) -> None:
    agent = uuid.uuid4()
    db.insert(
        [
            Conv(tenant.id, agent, AT, cost={"currency": "EUR", "telephony": 1}),
            Conv(tenant.id, agent, AT, cost={"currency": "USD", "telephony": 2}),
            Conv(tenant.id, agent, AT, analysis_cost=Decimal("0.5")),
        ]
    )
    rollup(settings)
    totals = tenant.client.get("/kalimera/statistics/outcomes", params=PARAMS).json()["totals"]
    assert (totals["cost_total"], totals["cost_avg"], totals["currency"]) == (None, None, None)
    assert totals["cost_by_currency"] == {
        "EUR": {"total": 1.0, "avg": 1.0, "conversations": 1},
        "USD": {"total": 2.0, "avg": 2.0, "conversations": 1},
        "unknown": {"total": 0.5, "avg": 0.5, "conversations": 1},
    }


def test_an_empty_period_has_zeros_and_nulls(tenant: Tenant) -> None:
    totals = tenant.client.get("/kalimera/statistics/outcomes", params=PARAMS).json()["totals"]
    assert totals["ended"] == 0
    assert (totals["success_rate"], totals["avg_score"]) == (None, None)
    assert (totals["cost_total"], totals["cost_avg"], totals["currency"]) == (0, None, None)
    assert (totals["latency_p50_ms"], totals["latency_p90_ms"]) == (None, None)
    assert set(totals["by_ended_reason"].values()) == {0}


def test_a_new_analysis_after_the_rollup_marks_its_day_dirty(
    db: Db, settings: Settings, tenant: Tenant
) -> None:
    calls = _calls(tenant.id, uuid.uuid4())
    db.insert(calls)
    rollup(settings)
    dirty = "SELECT count(*) AS n FROM kalimera_stats_dirty WHERE tenant_id = %(t)s"
    assert db.execute(dirty, {"t": tenant.id})[0]["n"] == 0
    for column, value in (
        ("analysis_status", "'done'"),  # pending -> done
        ("analysis_cost", "0.25"),
        ("success_score", "2"),
    ):
        db.execute(
            f"UPDATE kalimera_conversations SET {column} = {value}"  # noqa: S608
            " WHERE tenant_id = %(t)s AND id = %(i)s",
            {"t": tenant.id, "i": calls[3].id},
        )
        assert db.execute(dirty, {"t": tenant.id})[0]["n"] == 1
        totals = tenant.client.get("/kalimera/statistics/outcomes", params=PARAMS).json()
        rollup(settings)
        assert tenant.client.get("/kalimera/statistics/outcomes", params=PARAMS).json() == totals
    totals = totals["totals"]
    assert (totals["analysed"], totals["avg_score"]) == (4, 4.5)
    assert totals["cost_by_currency"]["unknown"] == {
        "total": 0.25,
        "avg": 0.25,
        "conversations": 1,
    }
