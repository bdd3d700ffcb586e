"""Another tenant using this tenant's agent ids gets 404 for the plan and changes nothing; the
table's row-level security hides the rows even from a query that forgets its tenant."""

import uuid

import psycopg
import pytest

from kalimera.db import transaction
from kalimera.services import Services
from kalimera.settings import Settings
from tests.analysis.conftest import PLAN, plan_path
from tests.conftest import Tenant
from tests.support.calls import with_services


def test_another_tenants_agent_is_404_and_unchanged(
    tenant: Tenant, other_tenant: Tenant, agent: str
) -> None:
    assert tenant.client.put(plan_path(agent), json=PLAN).status_code == 200
    before = tenant.client.get(plan_path(agent)).json()

    attempts = [
        other_tenant.client.get(plan_path(agent)),
        other_tenant.client.get(f"{plan_path(agent)}/versions"),
        other_tenant.client.put(plan_path(agent), json={}),
        other_tenant.client.put(plan_path(agent), json={}, headers={"If-Match": '"1"'}),
        other_tenant.client.put(plan_path(agent), json={}, headers={"If-Match": "*"}),
    ]
    for response in attempts:
        assert response.status_code == 404, (response.request.method, response.text)
        assert response.headers["content-type"] == "application/problem+json"
        assert "booking" not in response.text

    assert tenant.client.get(plan_path(agent)).json() == before
    assert tenant.client.get(f"{plan_path(agent)}/versions").json()["total"] == 1


def test_row_level_security_hides_plans_from_a_query_without_a_tenant_filter(
    settings: Settings, tenant: Tenant, other_tenant: Tenant, agent: str
) -> None:
    assert tenant.client.put(plan_path(agent), json=PLAN).status_code == 200
    params = {"t": tenant.id, "a": uuid.UUID(agent)}

    async def visible(services: Services, tenant_id: uuid.UUID) -> int:
        async with transaction(await services.db(), tenant_id=tenant_id) as conn:
            cur = await conn.execute(
                "SELECT count(*) AS n FROM kalimera_analysis_plans WHERE agent_id = %(a)s", params
            )
            row = await cur.fetchone()
            assert row is not None
            return int(row["n"])

    async def forge(services: Services) -> None:
        async with transaction(await services.db(), tenant_id=other_tenant.id) as conn:
            await conn.execute(
                "INSERT INTO kalimera_analysis_plans (tenant_id, agent_id, version, plan)"
                " VALUES (%(t)s, %(a)s, 99, '{}')",
                params,
            )

    assert with_services(settings, lambda services: visible(services, tenant.id)) == 1
    assert with_services(settings, lambda services: visible(services, other_tenant.id)) == 0
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        with_services(settings, forge)
    assert tenant.client.get(plan_path(agent)).json()["version"] == 1
