"""The statistics endpoints' contract: bad input, scopes, tenancy, rounding, shapes."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from kalimera.auth import Scope
from kalimera.settings import Settings
from kalimera.statistics.measures import round1
from kalimera.statistics.windows import Window
from tests.conftest import Tenant
from tests.statistics.conftest import Conv, Db, rollup

TODAY = datetime.now(UTC).date()
PATHS = ["realtime", "history", "sentiment", "call-breakdown", "recent-logs", "outcomes"]


@pytest.mark.parametrize(
    ("path", "params"),
    [
        ("history", {"granularity": "year"}),
        ("sentiment", {"granularity": "year"}),
        ("history", {"start": "2026-02-02", "end": "2026-02-01"}),
        ("call-breakdown", {"start": "2026-02-02", "end": "2026-02-01"}),
        ("history", {"start": "2023-01-01", "end": "2026-01-01"}),  # 1,097 days
        ("sentiment", {"start": "2020-01-01", "end": "2026-01-01"}),
        ("history", {"tz": "Mars/Olympus_Mons"}),
        ("call-breakdown", {"tz": "../../etc/passwd"}),
        ("realtime", {"tz": "Not/AZone"}),
        ("recent-logs", {"tz": "UTC+25"}),
        ("recent-logs", {"limit": "101"}),
        ("recent-logs", {"limit": "0"}),
        ("history", {"start": "yesterday"}),
        ("history", {"agent_id": "not-a-uuid"}),
        ("history", {"start": "0001-01-01", "end": "0001-01-02", "tz": "America/New_York"}),
        ("outcomes", {"granularity": "year"}),
        ("outcomes", {"granularity": ""}),
        ("outcomes", {"start": "2026-02-02", "end": "2026-02-01"}),
        ("outcomes", {"start": "2023-01-01", "end": "2026-01-01"}),  # 1,097 days
        ("outcomes", {"tz": "Mars/Olympus_Mons"}),
        ("outcomes", {"tz": "x" * 65}),
        ("outcomes", {"start": "2026-13-01"}),
        ("outcomes", {"end": "9999-12-31", "tz": "Pacific/Kiritimati"}),
        ("outcomes", {"agent_id": "not-a-uuid"}),
        ("outcomes", {"start": "0001-01-01", "end": "0001-01-02", "tz": "America/New_York"}),
    ],
)
def test_bad_input_is_422_problem_json(tenant: Tenant, path: str, params: dict[str, str]) -> None:
    got = tenant.client.get(f"/kalimera/statistics/{path}", params=params)
    assert got.status_code == 422, got.text
    assert got.headers["content-type"].startswith("application/problem+json")
    body = got.json()
    assert body["status"] == 422
    assert body["errors"]


def test_the_longest_range_allowed_is_1096_days(tenant: Tenant) -> None:
    got = tenant.client.get(
        "/kalimera/statistics/history",
        params={"start": "2023-01-01", "end": "2025-12-31", "granularity": "month"},
    )
    assert got.status_code == 200, got.text
    assert len(got.json()["series"]) == 36


@pytest.mark.parametrize("path", PATHS)
def test_a_token_without_statistics_read_gets_403(
    new_tenant: Callable[..., Tenant], path: str
) -> None:
    other = new_tenant(scopes=(Scope.AGENTS_READ,))
    got = other.client.get(f"/kalimera/statistics/{path}")
    assert got.status_code == 403
    assert got.headers["content-type"].startswith("application/problem+json")


def test_another_tenants_conversations_are_never_counted(
    db: Db, settings: Settings, new_tenant: Callable[..., Tenant]
) -> None:
    a, b = new_tenant(), new_tenant()
    agent = uuid.uuid4()
    now = datetime.now(UTC)
    db.insert(
        [
            Conv(a.id, agent, now - timedelta(days=2), language="el"),
            Conv(a.id, agent, now - timedelta(minutes=1), status="Active", duration=None),
        ]
    )
    rollup(settings)
    for path in PATHS:
        body = b.client.get(f"/kalimera/statistics/{path}", params={"agent_id": str(agent)}).json()
        assert body.get("total", 0) == 0
        assert body.get("items", []) == []
        assert body.get("active_total", 0) == 0
        if "series" in body:
            assert all(p.get("total", p.get("ended")) == 0 for p in body["series"])
        assert body.get("totals", {}).get("ended", 0) == 0
    got = a.client.get("/kalimera/statistics/call-breakdown").json()
    assert got["total"] == 2
    assert a.client.get("/kalimera/statistics/outcomes").json()["totals"]["ended"] == 1
    assert got["by_language"] == {"el": 1, "en": 1}


def test_averages_and_percentages_round_half_away_from_zero(
    db: Db, settings: Settings, tenant: Tenant
) -> None:
    agent = uuid.uuid4()
    day = TODAY - timedelta(days=3)
    start = datetime(day.year, day.month, day.day, 8, tzinfo=UTC)
    # One positive among sixteen: 6.25 % -> 6.3; durations 0.2 and 0.3 average 0.25 -> 0.3.
    rows = [
        Conv(
            tenant.id,
            agent,
            start + timedelta(minutes=i),
            sentiment="positive" if i == 0 else "neutral",
            duration=Decimal("0.2") if i == 0 else Decimal("0.3") if i == 1 else None,
        )
        for i in range(16)
    ]
    db.insert(rows)
    params = {"start": day.isoformat(), "end": day.isoformat()}
    for _ in range(2):  # live, then from the rollup
        sentiment = tenant.client.get("/kalimera/statistics/sentiment", params=params).json()
        assert sentiment["percentages"] == {
            "positive": 6.3,
            "neutral": 93.8,
            "negative": 0.0,
            "unknown": 0.0,
        }
        history = tenant.client.get("/kalimera/statistics/history", params=params).json()
        assert history["series"][0]["avg_duration"] == 0.3
        assert history["series"][0]["total_duration"] == 0.5
        rollup(settings)
    assert round1(Decimal("-0.25")) == Decimal("-0.3")


def test_a_zone_with_offsets_off_the_quarter_hour_is_answered_live_and_exactly(
    db: Db, settings: Settings, tenant: Tenant
) -> None:
    # Liberia kept -00:44:30 until 1972: no 15-minute bucket fits its local hours.
    assert not Window.of("Africa/Monrovia", datetime(1970, 5, 1).date(), TODAY).aligned
    agent = uuid.uuid4()
    at = datetime(1970, 5, 2, 0, 30, tzinfo=UTC)  # 23:45:30 on May 1st in Monrovia
    db.insert([Conv(tenant.id, agent, at), Conv(tenant.id, agent, at + timedelta(minutes=15))])
    rollup(settings)
    body = tenant.client.get(
        "/kalimera/statistics/call-breakdown",
        params={"start": "1970-05-01", "end": "1970-05-01", "tz": "Africa/Monrovia"},
    ).json()
    assert body["total"] == 1
    assert body["by_hour"][23] == 1


def test_the_series_has_every_period_that_intersects_the_range(tenant: Tenant) -> None:
    got = tenant.client.get(
        "/kalimera/statistics/sentiment",
        params={"start": "2026-01-28", "end": "2026-03-02", "granularity": "month"},
    ).json()
    assert [p["period_start"] for p in got["series"]] == ["2026-01-01", "2026-02-01", "2026-03-01"]
    got = tenant.client.get(
        "/kalimera/statistics/history",
        params={"start": "2026-01-28", "end": "2026-02-02", "granularity": "week"},
    ).json()
    # 2026-01-26 and 2026-02-02 are Mondays.
    assert [p["period_start"] for p in got["series"]] == ["2026-01-26", "2026-02-02"]
    default = tenant.client.get("/kalimera/statistics/history").json()
    assert len(default["series"]) == 30
