"""One notion of a day (issue 16, item 7): a chart's period and the conversation list behind it
count the same calls. A console clicks a bar of ``GET /kalimera/statistics/history`` and lists
that period's calls with the same filters (``agent_id``, ``start``/``end``, ``tz``): the list's
``total`` is the bar's, in a zone half an hour off UTC, from the rollups and live alike."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from kalimera.settings import Settings
from tests.conftest import Tenant
from tests.statistics.conftest import Conv, Db, rollup
from tests.support.problems import assert_problem

TZ = "Asia/Kolkata"  # UTC+05:30: a local day starts at 18:30 UTC
# Around the local midnight (18:30 UTC) and the UTC one: each falls on a different local day
# than its UTC day.
TIMES = (time(0, 10), time(18, 29), time(18, 31), time(23, 50))


def _calls(tenant_id: uuid.UUID, agents: list[uuid.UUID], days: range) -> list[Conv]:
    today = datetime.now(UTC).date()
    rows = []
    for back in days:
        for n, moment in enumerate(TIMES):
            started = datetime.combine(today - timedelta(days=back), moment, UTC)
            if started < datetime.now(UTC):
                rows.append(Conv(tenant_id, agents[(back + n) % len(agents)], started))
    return rows


def _period_end(starts: list[date], i: int, last: date) -> date:
    return min(starts[i + 1] - timedelta(days=1), last) if i + 1 < len(starts) else last


def _clicks(tenant: Tenant, params: dict[str, Any], granularity: str) -> list[tuple[int, int]]:
    """Each period's (chart total, list total) for the same filters."""
    history = tenant.client.get(
        "/kalimera/statistics/history", params={**params, "granularity": granularity}
    )
    assert history.status_code == 200, history.text
    series = history.json()["series"]
    starts = [date.fromisoformat(p["period_start"]) for p in series]
    first, last = date.fromisoformat(params["start"]), date.fromisoformat(params["end"])
    out = []
    for i, period in enumerate(series):
        listed = tenant.client.get(
            "/kalimera/conversations",
            params={
                **params,
                "start": max(starts[i], first).isoformat(),
                "end": _period_end(starts, i, last).isoformat(),
                "limit": 1,
            },
        )
        assert listed.status_code == 200, listed.text
        out.append((period["total"], listed.json()["total"]))
    return out


@pytest.mark.parametrize("granularity", ["day", "week"])
def test_a_chart_period_s_total_is_its_list_s_total_in_a_half_hour_zone(
    db: Db, settings: Settings, new_tenant: Callable[..., Tenant], granularity: str
) -> None:
    tenant = new_tenant()
    agents = [uuid.uuid4(), uuid.uuid4()]
    db.insert(_calls(tenant.id, agents, range(1, 16)))
    rollup(settings)  # closed days from the rollups...
    db.insert(_calls(tenant.id, agents, range(0, 4)))  # ...and dirty days and today live
    today = datetime.now(UTC).astimezone(ZoneInfo(TZ)).date()
    window = {"start": (today - timedelta(days=17)).isoformat(), "end": today.isoformat()}
    for agent in (None, agents[0]):
        params = {**window, "tz": TZ, **({"agent_id": str(agent)} if agent else {})}
        clicks = _clicks(tenant, params, granularity)
        assert [chart for chart, _ in clicks] == [listed for _, listed in clicks]
        assert sum(chart for chart, _ in clicks) > 0
    # The same clicks with the list's days in UTC disagree: the test can tell.
    if granularity == "day":
        utc_days = _clicks(tenant, {**window, "tz": TZ}, granularity)
        listed_utc = [
            tenant.client.get(
                "/kalimera/conversations", params={"start": day, "end": day, "limit": 1}
            ).json()["total"]
            for day in (
                (date.fromisoformat(window["start"]) + timedelta(days=n)).isoformat()
                for n in range(len(utc_days))
            )
        ]
        assert listed_utc != [chart for chart, _ in utc_days]


def test_the_list_s_days_are_local_to_tz(db: Db, new_tenant: Callable[..., Tenant]) -> None:
    tenant = new_tenant()
    agent = uuid.uuid4()
    day = date(2026, 3, 10)
    before = Conv(tenant.id, agent, datetime.combine(day, time(18, 29), UTC))  # local 23:59
    after = Conv(tenant.id, agent, datetime.combine(day, time(18, 30), UTC))  # local 00:00
    db.insert([before, after])

    def listed(**params: str) -> list[str]:
        page = tenant.client.get("/kalimera/conversations", params=params)
        assert page.status_code == 200, page.text
        return [item["id"] for item in page.json()["items"]]

    local = day.isoformat()
    next_day = (day + timedelta(days=1)).isoformat()
    assert listed(start=local, end=local, tz=TZ) == [str(before.id)]
    assert listed(start=next_day, end=next_day, tz=TZ) == [str(after.id)]
    assert listed(start=local, end=local) == [str(after.id), str(before.id)]  # UTC by default
    assert listed(start=local, end=local, tz="UTC") == [str(after.id), str(before.id)]
    # The calendar's ends bound nothing, in any zone.
    assert len(listed(start="0001-01-01", end="9999-12-31", tz=TZ)) == 2
    assert len(listed(start="0001-01-01", end="9999-12-31", tz="America/Los_Angeles")) == 2


@pytest.mark.parametrize("tz", ["Mars/Olympus_Mons", "utc+1", "", "../etc/passwd", "A" * 65])
def test_an_unknown_tz_on_the_list_is_422_naming_it(tenant: Tenant, tz: str) -> None:
    body = assert_problem(tenant.client.get("/kalimera/conversations", params={"tz": tz}), 422)
    assert ["query", "tz"] in [error["loc"] for error in body["errors"]]  # type: ignore[union-attr]
