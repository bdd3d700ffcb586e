"""A contact's ETag: If-Match on changes (412 when someone changed it since), If-None-Match on
reads (304 while unchanged), Location on create; and the same on an agent's read."""

from collections.abc import Callable

import httpx

from tests.conftest import Tenant
from tests.support.problems import assert_problem


def _contact(client: httpx.Client) -> httpx.Response:
    made = client.post("/kalimera/contact", json={"first_name": "Ada", "last_name": "Lovelace"})
    assert made.status_code == 201, made.text
    return made


def test_a_created_contact_says_where_it_is_and_its_version(tenant: Tenant) -> None:
    made = _contact(tenant.client)
    location = made.headers["Location"]
    assert location == f"/kalimera/contact/{made.json()['id']}"
    read = tenant.client.get(location)
    assert read.status_code == 200
    assert read.headers["ETag"] == made.headers["ETag"]


def test_a_stale_if_match_changes_nothing_and_a_current_one_does(tenant: Tenant) -> None:
    made = _contact(tenant.client)
    path, first = made.headers["Location"], made.headers["ETag"]
    changed = tenant.client.put(path, json={"first_name": "Augusta"}, headers={"If-Match": first})
    assert changed.status_code == 200
    second = changed.headers["ETag"]
    assert second != first

    for stale in (first, '"not-ours"', "W/" + first):
        assert_problem(
            tenant.client.put(path, json={"first_name": "Lost"}, headers={"If-Match": stale}), 412
        )
        assert_problem(tenant.client.delete(path, headers={"If-Match": stale}), 412)
    # A body that changes nothing is checked against the version too.
    assert_problem(tenant.client.put(path, json={}, headers={"If-Match": first}), 412)
    assert tenant.client.get(path).json()["first_name"] == "Augusta"

    assert tenant.client.delete(path, headers={"If-Match": second}).status_code == 200
    assert_problem(tenant.client.delete(path, headers={"If-Match": second}), 404)
    assert_problem(
        tenant.client.put(path, json={"first_name": "X"}, headers={"If-Match": "*"}), 404
    )


def test_an_unchanged_contact_or_agent_answers_304_without_a_body(tenant: Tenant) -> None:
    path = _contact(tenant.client).headers["Location"]
    tag = tenant.client.get(path).headers["ETag"]
    for header in (tag, f'"0", {tag}', "*", "W/" + tag):
        unchanged = tenant.client.get(path, headers={"If-None-Match": header})
        assert unchanged.status_code == 304
        assert unchanged.content == b""
        assert unchanged.headers["ETag"] == tag
    tenant.client.put(path, json={"last_name": "King"})
    assert tenant.client.get(path, headers={"If-None-Match": tag}).status_code == 200

    agent = tenant.client.post("/kalimera/ai-agent", json={"name": "Reception"})
    assert agent.status_code == 201
    agent_path = agent.headers["Location"]
    assert agent_path == f"/kalimera/ai-agent/{agent.json()['id']}"
    agent_tag = tenant.client.get(agent_path).headers["ETag"]
    unchanged = tenant.client.get(agent_path, headers={"If-None-Match": agent_tag})
    assert unchanged.status_code == 304
    assert unchanged.content == b""
    tenant.client.put(agent_path, json={"name": "Front desk"})
    assert tenant.client.get(agent_path, headers={"If-None-Match": agent_tag}).status_code == 200


def test_another_tenants_contact_is_404_whatever_the_preconditions(
    tenant: Tenant, new_tenant: Callable[..., Tenant]
) -> None:
    path = _contact(tenant.client).headers["Location"]
    other = new_tenant()
    assert_problem(other.client.get(path, headers={"If-None-Match": "*"}), 404)
    assert_problem(other.client.delete(path, headers={"If-Match": "*"}), 404)
