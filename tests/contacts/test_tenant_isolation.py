"""Tenant B never reads, changes or finds tenant A's contacts: A's ids are 404 for B."""

from collections.abc import Callable

from tests.conftest import Server, Tenant
from tests.contacts.conftest import URL, create
from tests.support.problems import assert_problem


def test_another_tenant_gets_404_and_changes_nothing(
    server: Server, new_tenant: Callable[..., Tenant]
) -> None:
    a, b = new_tenant(), new_tenant()
    contact = create(a.client, contact_no="+302101234567", email="a@example.com")
    path = f"{URL}/{contact['id']}"
    # Every operation that takes a contact id, so a new one without the tenant check fails here.
    calls = [
        (method.upper(), template.replace("{contact_id}", str(contact["id"])))
        for template, operations in server.app.openapi()["paths"].items()
        if "{contact_id}" in template
        for method in operations
    ]
    assert {method for method, _ in calls} >= {"GET", "PUT", "DELETE"}
    for method, url in calls:
        body = {"first_name": "Stolen"} if method in ("PUT", "PATCH", "POST") else None
        assert_problem(b.client.request(method, url, json=body), 404)
    assert_problem(b.client.put(path, json={}), 404)
    assert a.client.get(path).json() == contact


def test_another_tenant_sees_none_of_the_contacts_in_lists_or_searches(
    new_tenant: Callable[..., Tenant],
) -> None:
    a, b = new_tenant(), new_tenant()
    create(a.client, first_name="Zoe", contact_no="+302101234567", email="zoe@example.com")
    for params in ({}, {"search": "Zoe"}, {"search": "2101234567"}, {"status": "Inbound"}):
        page = b.client.get(URL, params=params).json()
        assert (page["contacts"], page["total"]) == ([], 0)
    assert a.client.get(URL, params={"search": "Zoe"}).json()["total"] == 1


def test_phone_numbers_are_unique_per_tenant_only(new_tenant: Callable[..., Tenant]) -> None:
    a, b = new_tenant(), new_tenant()
    create(a.client, contact_no="+302101234567", first_name="Zoe", last_name="Alpha")
    create(b.client, contact_no="+302101234567")
    # B's import of the same number and the same phone-less person is not a duplicate of A's.
    csv = b"first_name,last_name,contact_no\nZoe,Alpha,\nX,Y,+302109999999\n"
    response = b.client.post(f"{URL}/import", content=csv, headers={"Content-Type": "text/csv"})
    assert response.json() == {"created": 2, "errors": []}
    assert a.client.get(URL).json()["total"] == 1
