"""The seed's contact flows: create, read, update a subset, paginate, delete."""

from tests.conftest import Tenant
from tests.contacts.conftest import URL, create
from tests.support.problems import assert_problem


def test_create_with_only_the_names_applies_the_defaults(tenant: Tenant) -> None:
    contact = create(tenant.client, first_name="Nikos", last_name="Georgiou")
    assert isinstance(contact["id"], int)
    assert contact["first_name"] == "Nikos"
    assert contact["last_name"] == "Georgiou"
    assert contact["language"] == "English"
    assert contact["voice"] == "Male"
    assert contact["status"] == "Inbound"
    for empty in ("contact_no", "email", "start_datetime", "end_datetime"):
        assert contact[empty] is None
    assert contact["created_at"].endswith("Z")
    assert tenant.client.get(f"{URL}/{contact['id']}").json() == contact


def test_create_normalises_phone_email_and_times(tenant: Tenant) -> None:
    contact = create(
        tenant.client,
        contact_no="210 123 4567",
        email="Maria@Example.COM",
        start_datetime="2024-08-24T17:30:00+03:00",
        end_datetime="2024-08-24 15:00",
        voice="female",
        status="OUTBOUND",
        language="Greek",
    )
    assert contact["contact_no"] == "+302101234567"
    assert contact["email"] == "Maria@example.com"
    assert contact["start_datetime"] == "2024-08-24T14:30:00Z"
    assert contact["end_datetime"] == "2024-08-24T15:00:00Z"
    assert (contact["voice"], contact["status"], contact["language"]) == (
        "Female",
        "Outbound",
        "Greek",
    )


def test_missing_names_answer_400_with_the_seed_message(tenant: Tenant) -> None:
    for body in ({}, {"first_name": "Maria"}, {"first_name": "  ", "last_name": "X"}):
        problem = assert_problem(tenant.client.post(URL, json=body), 400)
        assert problem["detail"] == "First name and last name are required"
    problem = assert_problem(tenant.client.post(URL, json={"last_name": "X"}), 400)
    assert [e["loc"] for e in problem["errors"]] == [["body", "first_name"]]  # type: ignore[attr-defined]


def test_update_changes_only_the_fields_given(tenant: Tenant) -> None:
    contact = create(tenant.client, contact_no="+302101234567", email="a@example.com")
    response = tenant.client.put(
        f"{URL}/{contact['id']}", json={"status": "Outbound", "email": None}
    )
    assert response.status_code == 200, response.text
    updated = response.json()
    assert updated["status"] == "Outbound"
    assert updated["email"] is None
    unchanged = {k: v for k, v in contact.items() if k not in ("status", "email", "updated_at")}
    assert {k: updated[k] for k in unchanged} == unchanged
    assert updated["updated_at"] > contact["updated_at"]
    assert tenant.client.get(f"{URL}/{contact['id']}").json() == updated


def test_an_empty_update_changes_nothing(tenant: Tenant) -> None:
    contact = create(tenant.client)
    assert tenant.client.put(f"{URL}/{contact['id']}", json={}).json() == contact


def test_listing_paginates_newest_first(tenant: Tenant) -> None:
    ids = [create(tenant.client, first_name=f"P{i}")["id"] for i in range(7)]
    first = tenant.client.get(URL, params={"per_page": 3}).json()
    assert (first["total"], first["pages"], first["current_page"]) == (7, 3, 1)
    assert [c["id"] for c in first["contacts"]] == ids[::-1][:3]
    last = tenant.client.get(URL, params={"per_page": 3, "page": 3}).json()
    assert [c["id"] for c in last["contacts"]] == [ids[0]]
    beyond = tenant.client.get(URL, params={"per_page": 3, "page": 4}).json()
    assert (beyond["contacts"], beyond["total"], beyond["current_page"]) == ([], 7, 4)
    default = tenant.client.get(URL).json()
    assert len(default["contacts"]) == 7


def test_an_empty_list_has_no_pages(tenant: Tenant) -> None:
    assert tenant.client.get(URL).json() == {
        "contacts": [],
        "total": 0,
        "pages": 0,
        "current_page": 1,
    }


def test_search_matches_names_phone_and_email_and_status_filters(tenant: Tenant) -> None:
    eleni = create(tenant.client, first_name="Eleni", last_name="Kosta", contact_no="+302101111111")
    yannis = create(
        tenant.client, first_name="Yannis", email="yannis@kalimera.gr", status="Outbound"
    )

    def found(**params: str) -> list[int]:
        response = tenant.client.get(URL, params=params)
        assert response.status_code == 200, response.text
        return [c["id"] for c in response.json()["contacts"]]

    assert found(search="eleni") == [eleni["id"]]
    assert found(search="eleni kos") == [eleni["id"]]
    assert found(search="210 111-1111") == [eleni["id"]]
    assert found(search="@KALIMERA") == [yannis["id"]]
    assert found(search="%") == []
    assert found(search="_") == []
    assert found(status="Outbound") == [yannis["id"]]
    assert found(status="outbound") == [yannis["id"]]
    assert found(status="Inbound", search="yannis") == []


def test_delete_removes_the_contact(tenant: Tenant) -> None:
    contact = create(tenant.client)
    response = tenant.client.delete(f"{URL}/{contact['id']}")
    assert response.status_code == 200
    assert response.json() == {"message": "Contact deleted successfully"}
    assert_problem(tenant.client.get(f"{URL}/{contact['id']}"), 404)
    assert_problem(tenant.client.delete(f"{URL}/{contact['id']}"), 404)
