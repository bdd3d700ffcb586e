"""Erasure keeps the statistics invariant (statistics.md): after calls are erased one by one
(``DELETE``) or by the retention, every statistic still equals plain SQL over the conversations
that remain, before the next rollup (the erased days are dirty, answered live) and after it."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kalimera.auth import DEFAULT_SCOPES, Scope
from kalimera.conversations import erasure
from kalimera.settings import Settings
from tests.conftest import Server, make_token
from tests.statistics.conftest import Conv, Db, rollup
from tests.statistics.test_invariant import ZONES, check_everything, conversations
from tests.support.calls import with_services


@st.composite
def scenarios(draw: st.DrawFn) -> dict[str, Any]:
    tenants = [uuid.uuid4(), uuid.uuid4()]
    agents = [uuid.uuid4() for _ in range(4)]  # agents 0, 2 -> tenant 0; 1, 3 -> tenant 1
    rows = draw(st.lists(conversations(tenants, agents), min_size=1, max_size=40))
    return {
        "tenants": tenants,
        "agents": agents,
        "rows": rows,
        "deleted": draw(st.lists(st.integers(0, 10_000), max_size=8)),
        "retention_days": draw(st.one_of(st.none(), st.integers(1, 40))),
        "tz": draw(st.sampled_from(["UTC", *ZONES])),
        "granularity": draw(st.sampled_from(["day", "week", "month"])),
        "range": None,
        "agent": draw(st.sampled_from([None, 0, 2])),
        "limit": 100,
    }


def _retain(settings_: Settings, tenant: uuid.UUID, days: int) -> None:
    async def work(services: Any) -> None:
        from kalimera.conversations.models import RetentionUpdate

        await erasure.set_retention(
            services=services, tenant_id=tenant, token_id=None, body=RetentionUpdate(days=days)
        )
        await erasure.enforce_retention(services=services, tenant_id=tenant)

    with_services(settings_, work)


@settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(s=scenarios())
def test_statistics_equal_the_ground_truth_after_erasures(
    db: Db, server: Server, settings: Settings, s: dict[str, Any]
) -> None:
    rows: list[Conv] = s["rows"]
    db.insert(rows)
    rollup(settings)
    tenant = s["tenants"][0]
    token = make_token(settings, tenant, (*DEFAULT_SCOPES, Scope.SETTINGS_ADMIN))
    with httpx.Client(
        base_url=server.url, timeout=30, headers={"Authorization": f"Bearer {token}"}
    ) as client:
        ours = [row for row in rows if row.tenant_id == tenant]
        for index in s["deleted"]:
            if ours:
                row = ours.pop(index % len(ours))
                response = client.delete(f"/kalimera/conversations/{row.id}")
                assert response.status_code == 204, response.text
        if s["retention_days"] is not None:
            _retain(settings, tenant, s["retention_days"])
        check_everything(db, client, settings, s, tenant)
        rollup(settings)
        check_everything(db, client, settings, s, tenant)
    # The other tenant's calls were never touched.
    theirs = [row.id for row in rows if row.tenant_id != tenant]
    kept = db.execute(
        "SELECT count(*) AS n FROM kalimera_conversations WHERE id = ANY(%(ids)s)", {"ids": theirs}
    )
    assert kept[0]["n"] == len(theirs)
