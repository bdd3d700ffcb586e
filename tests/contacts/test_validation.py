"""Bad input is a 4xx problem+json naming the field, never a 5xx and never silently clamped."""

from collections.abc import Callable

import pytest

from kalimera.auth import Scope
from tests.conftest import Tenant
from tests.contacts.conftest import URL, create, locs
from tests.support.problems import assert_problem


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"per_page": "1000000000"}, "per_page"),
        ({"per_page": "101"}, "per_page"),
        ({"per_page": "0"}, "per_page"),
        ({"page": "0"}, "page"),
        ({"page": "-1"}, "page"),
        ({"page": "99999999999999999999999"}, "page"),
        ({"page": "two"}, "page"),
        ({"status": "Sideways"}, "status"),
        ({"search": "x" * 101}, "search"),
        ({"search": "a\x00b"}, "search"),
    ],
)
def test_bad_list_parameters_are_422_naming_the_parameter(
    tenant: Tenant, params: dict[str, str], field: str
) -> None:
    assert ["query", field] in locs(tenant.client.get(URL, params=params), 422)


def test_the_largest_page_size_is_100(tenant: Tenant) -> None:
    response = tenant.client.get(URL, params={"per_page": 100})
    assert response.status_code == 200


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"contact_no": "12"}, "contact_no"),
        ({"contact_no": "not a number"}, "contact_no"),
        ({"contact_no": "+30 210 123"}, "contact_no"),
        ({"contact_no": "+302101234567 ext. 12"}, "contact_no"),
        ({"contact_no": "+30" + "1" * 60}, "contact_no"),
        ({"email": "not-an-email"}, "email"),
        ({"email": "a@b"}, "email"),
        ({"email": "x" * 95 + "@example.com"}, "email"),
        ({"start_datetime": "yesterday"}, "start_datetime"),
        ({"start_datetime": "0001-01-01T00:00:00+05:00"}, "start_datetime"),
        (
            {"start_datetime": "2024-08-24T18:00:00Z", "end_datetime": "2024-08-24T17:00:00Z"},
            "end_datetime",
        ),
        ({"voice": "Robot"}, "voice"),
        ({"status": "Sideways"}, "status"),
        ({"language": ""}, "language"),
        ({"first_name": "x" * 51}, "first_name"),
        ({"last_name": "a\x00b"}, "last_name"),
        ({"tenant_id": "00000000-0000-0000-0000-000000000000"}, "tenant_id"),
        ({"id": 1}, "id"),
    ],
)
def test_bad_fields_are_refused_naming_the_field(
    tenant: Tenant, fields: dict[str, object], field: str
) -> None:
    body = {"first_name": "Maria", "last_name": "Papadopoulou", **fields}
    assert ["body", field] in locs(tenant.client.post(URL, json=body), 422)
    contact = create(tenant.client)
    assert ["body", field] in locs(tenant.client.put(f"{URL}/{contact['id']}", json=fields), 422)
    assert tenant.client.get(f"{URL}/{contact['id']}").json() == contact


def test_an_update_may_not_end_the_period_before_its_stored_start(tenant: Tenant) -> None:
    contact = create(
        tenant.client,
        start_datetime="2024-08-24T17:00:00Z",
        end_datetime="2024-08-24T18:00:00Z",
    )
    path = f"{URL}/{contact['id']}"
    early_end = {"end_datetime": "2024-08-24T16:00:00Z"}
    assert ["body", "end_datetime"] in locs(tenant.client.put(path, json=early_end), 422)
    late_start = {"start_datetime": "2024-08-24T19:00:00Z"}
    assert ["body", "start_datetime"] in locs(tenant.client.put(path, json=late_start), 422)
    assert tenant.client.get(path).json() == contact


def test_required_fields_may_not_be_cleared(tenant: Tenant) -> None:
    contact = create(tenant.client)
    path = f"{URL}/{contact['id']}"
    problem = assert_problem(tenant.client.put(path, json={"first_name": None}), 400)
    assert problem["detail"] == "First name and last name are required"
    for field in ("language", "voice", "status"):
        assert ["body", field] in locs(tenant.client.put(path, json={field: None}), 422)


def test_a_phone_number_already_stored_is_a_409_on_create_and_update(tenant: Tenant) -> None:
    create(tenant.client, contact_no="+302101234567")
    body = {"first_name": "A", "last_name": "B", "contact_no": "210 123 4567"}
    assert ["body", "contact_no"] in locs(tenant.client.post(URL, json=body), 409)
    other = create(tenant.client, contact_no="+302109999999")
    path = f"{URL}/{other['id']}"
    assert ["body", "contact_no"] in locs(
        tenant.client.put(path, json={"contact_no": "+30 210 1234567"}), 409
    )
    assert tenant.client.get(path).json() == other
    # Writing a contact's own number again is no conflict.
    assert tenant.client.put(path, json={"contact_no": "2109999999"}).status_code == 200


@pytest.mark.parametrize("contact_id", ["0", "-1", "abc", "9223372036854775808", "1.5"])
def test_bad_ids_are_422_naming_the_id(tenant: Tenant, contact_id: str) -> None:
    for method in ("GET", "PUT", "DELETE"):
        response = tenant.client.request(method, f"{URL}/{contact_id}", json={})
        assert ["path", "contact_id"] in locs(response, 422)


def test_the_import_path_answers_405_to_other_methods(tenant: Tenant) -> None:
    for method in ("GET", "PUT", "DELETE"):
        response = tenant.client.request(method, f"{URL}/import")
        assert_problem(response, 405)
        assert response.headers["allow"] == "POST"


def test_malformed_json_is_400(tenant: Tenant) -> None:
    response = tenant.client.post(
        URL, content=b'{"first_name": ', headers={"Content-Type": "application/json"}
    )
    assert_problem(response, 400)


def test_each_endpoint_needs_its_scope(new_tenant: Callable[..., Tenant], tenant: Tenant) -> None:
    contact = create(tenant.client)
    reader = new_tenant(scopes=(Scope.CONTACTS_READ,))
    assert reader.client.get(URL).status_code == 200
    assert_problem(reader.client.post(URL, json={"first_name": "A", "last_name": "B"}), 403)
    assert_problem(reader.client.delete(f"{URL}/{contact['id']}"), 403)
    assert_problem(reader.client.post(f"{URL}/import", content=b"first_name,last_name\nA,B\n"), 403)
    writer = new_tenant(scopes=(Scope.AGENTS_READ,))
    assert_problem(writer.client.get(URL), 403)
