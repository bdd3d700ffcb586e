"""An agent's analysis plan: the default plan until one is written, each PUT a new version,
the versions newest first, If-Match, and the plan's life tied to its agent's."""

import copy
import uuid
from collections.abc import Callable

from kalimera.auth import Scope
from kalimera.db import transaction
from kalimera.services import Services
from kalimera.settings import Settings
from tests.analysis.conftest import PLAN, create_agent, plan_path
from tests.conftest import Tenant
from tests.support.calls import with_services
from tests.support.problems import assert_problem

DEFAULT = {
    "summary": {"enabled": True, "instructions": None, "max_words": 120},
    "success": {"enabled": False, "rubric": "pass_fail", "criteria": None},
    "data": {"enabled": False, "instructions": None, "schema": None},
    "sentiment": {"enabled": True},
}


def plan_of(body: dict[str, object]) -> dict[str, object]:
    return {key: body[key] for key in ("summary", "success", "data", "sentiment")}


def test_an_agent_without_a_plan_has_the_default_plan_version_0(tenant: Tenant, agent: str) -> None:
    response = tenant.client.get(plan_path(agent))
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["version"] == 0
    assert body["created_at"] is None
    assert plan_of(body) == DEFAULT
    assert response.headers["etag"] == '"0"'


def test_a_put_writes_version_1_then_2_and_the_get_answers_the_newest(
    tenant: Tenant, agent: str
) -> None:
    first = tenant.client.put(plan_path(agent), json=PLAN)
    assert first.status_code == 200, first.text
    assert first.json()["version"] == 1
    assert first.headers["etag"] == '"1"'
    assert plan_of(first.json()) == PLAN
    assert first.json()["created_at"] is not None

    second_plan = copy.deepcopy(PLAN)
    second_plan["success"]["rubric"] = "score_1_10"
    second = tenant.client.put(plan_path(agent), json=second_plan)
    assert second.json()["version"] == 2

    current = tenant.client.get(plan_path(agent))
    assert current.headers["etag"] == '"2"'
    assert current.json()["version"] == 2
    assert plan_of(current.json()) == second_plan


def test_a_part_left_out_takes_its_default(tenant: Tenant, agent: str) -> None:
    response = tenant.client.put(plan_path(agent), json={"sentiment": {"enabled": False}})
    assert response.status_code == 200, response.text
    assert plan_of(response.json()) == {**DEFAULT, "sentiment": {"enabled": False}}


def test_the_versions_are_listed_newest_first_and_paged(tenant: Tenant, agent: str) -> None:
    assert tenant.client.get(f"{plan_path(agent)}/versions").json() == {
        "items": [],
        "total": 0,
        "page": 1,
        "limit": 10,
    }
    for words in (50, 60, 70):
        body = {"summary": {"enabled": True, "max_words": words}}
        assert tenant.client.put(plan_path(agent), json=body).status_code == 200

    listing = tenant.client.get(f"{plan_path(agent)}/versions").json()
    assert listing["total"] == 3
    assert [item["version"] for item in listing["items"]] == [3, 2, 1]
    assert [item["summary"]["max_words"] for item in listing["items"]] == [70, 60, 50]

    page = tenant.client.get(f"{plan_path(agent)}/versions", params={"page": 2, "limit": 2})
    assert [item["version"] for item in page.json()["items"]] == [1]
    assert page.json()["total"] == 3
    past = tenant.client.get(f"{plan_path(agent)}/versions", params={"page": 9, "limit": 2})
    assert past.json()["items"] == []
    for bad in ({"page": 0}, {"limit": 101}, {"limit": "ten"}):
        assert_problem(tenant.client.get(f"{plan_path(agent)}/versions", params=bad), 422)


def test_if_match_takes_the_current_version_and_refuses_a_stale_one(
    tenant: Tenant, agent: str
) -> None:
    tag = tenant.client.get(plan_path(agent)).headers["etag"]
    assert tag == '"0"'
    first = tenant.client.put(plan_path(agent), json=PLAN, headers={"If-Match": tag})
    assert first.status_code == 200, first.text

    stale = tenant.client.put(plan_path(agent), json={}, headers={"If-Match": tag})
    body = assert_problem(stale, 412)
    assert "stale" in str(body["detail"])
    assert tenant.client.get(plan_path(agent)).json()["version"] == 1

    for junk in ("junk", '"-1"', '"99"', 'W/"0"', '"1" extra'):
        assert_problem(
            tenant.client.put(plan_path(agent), json={}, headers={"If-Match": junk}), 412
        )
    fresh = tenant.client.put(
        plan_path(agent), json={}, headers={"If-Match": first.headers["etag"]}
    )
    assert fresh.status_code == 200
    weak = tenant.client.put(plan_path(agent), json={}, headers={"If-Match": 'W/"2"'})
    assert weak.status_code == 200
    star = tenant.client.put(plan_path(agent), json={}, headers={"If-Match": "*"})
    assert star.json()["version"] == 4


def test_an_unknown_agent_is_404_everywhere(tenant: Tenant) -> None:
    path = plan_path(str(uuid.uuid4()))
    assert_problem(tenant.client.get(path), 404)
    assert_problem(tenant.client.put(path, json=PLAN), 404)
    assert_problem(tenant.client.put(path, json=PLAN, headers={"If-Match": '"0"'}), 404)
    assert_problem(tenant.client.get(f"{path}/versions"), 404)
    assert_problem(tenant.client.get("/kalimera/ai-agent/not-a-uuid/analysis-plan"), 422)


def test_deleting_the_agent_removes_its_plans(settings: Settings, tenant: Tenant) -> None:
    agent = create_agent(tenant.client)
    for _ in range(2):
        assert tenant.client.put(plan_path(agent), json=PLAN).status_code == 200

    async def stored(services: Services) -> int:
        async with transaction(await services.db(), system=True) as conn:
            cur = await conn.execute(
                "SELECT count(*) AS n FROM kalimera_analysis_plans WHERE agent_id = %(a)s",
                {"a": uuid.UUID(agent)},
            )
            row = await cur.fetchone()
            assert row is not None
            return int(row["n"])

    assert with_services(settings, stored) == 2
    assert tenant.client.delete(f"/kalimera/ai-agent/{agent}").status_code == 200
    assert with_services(settings, stored) == 0
    assert_problem(tenant.client.get(plan_path(agent)), 404)
    assert_problem(tenant.client.get(f"{plan_path(agent)}/versions"), 404)
    # A new agent never inherits anything: its plan is the default again.
    again = create_agent(tenant.client)
    assert tenant.client.get(plan_path(again)).json()["version"] == 0


def test_the_plan_is_not_an_agent_section(tenant: Tenant, agent: str) -> None:
    # PUT /{agent_id}/{section} must not take analysis-plan for a section name.
    assert tenant.client.put(plan_path(agent), json=PLAN).status_code == 200
    assert "analysis_plan" not in tenant.client.get(f"/kalimera/ai-agent/{agent}").json()


def test_reads_need_agents_read_and_writes_agents_write(
    new_tenant: Callable[..., Tenant], tenant: Tenant, agent: str
) -> None:
    reader = new_tenant((Scope.AGENTS_READ,))
    writer = new_tenant((Scope.AGENTS_WRITE,))
    assert_problem(reader.client.put(plan_path(agent), json=PLAN), 403)
    assert_problem(writer.client.get(plan_path(agent)), 403)
    assert_problem(writer.client.get(f"{plan_path(agent)}/versions"), 403)
    # With the scope, another tenant's agent is unknown.
    assert_problem(reader.client.get(plan_path(agent)), 404)
