"""Listing: newest first, case-insensitive search, capped pagination."""

from tests.agents.conftest import create
from tests.conftest import Tenant


def test_list_is_newest_first_and_paginated(tenant: Tenant) -> None:
    ids = [create(tenant.client, {"name": f"Agent {i}", "type": "inbound"}) for i in range(5)]
    first = tenant.client.get("/kalimera/ai-agent", params={"limit": 2}).json()
    assert first["total"] == 5
    assert (first["page"], first["limit"]) == (1, 2)
    assert [a["id"] for a in first["items"]] == ids[::-1][:2]
    last = tenant.client.get("/kalimera/ai-agent", params={"limit": 2, "page": 3}).json()
    assert [a["id"] for a in last["items"]] == [ids[0]]
    beyond = tenant.client.get("/kalimera/ai-agent", params={"limit": 2, "page": 9}).json()
    assert beyond["items"] == []
    assert beyond["total"] == 5


def test_search_matches_name_description_or_type_case_insensitively(tenant: Tenant) -> None:
    sales = create(tenant.client, {"name": "Sales Bot", "type": "outbound"})
    support = create(
        tenant.client, {"name": "Helper", "type": "inbound", "description": "Customer SUPPORT"}
    )
    create(tenant.client, {"name": "100% real_agent", "type": "inbound"})

    def found(search: str) -> set[str]:
        items = tenant.client.get("/kalimera/ai-agent", params={"search": search}).json()["items"]
        return {a["id"] for a in items}

    assert found("sales") == {sales}
    assert found("support") == {support}
    assert found("OUTBOUND") == {sales}
    assert len(found("100%")) == 1
    assert found("%") == found("100%")
    assert found("_agent") == found("real_agent")
    assert found("nothing-like-this") == set()
