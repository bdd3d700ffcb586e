"""Every error is problem+json; no stack traces."""

import httpx

from tests.conftest import Tenant
from tests.support.problems import assert_problem


def test_unknown_routes_are_404_problems(anon: httpx.Client) -> None:
    assert_problem(anon.get("/kalimera/no-such-thing"), 404)
    assert_problem(anon.get("/elsewhere"), 404)


def test_a_wrong_method_is_405_problem(anon: httpx.Client) -> None:
    assert_problem(anon.delete("/kalimera/health"), 405)


def test_openapi_and_docs_are_served(anon: httpx.Client) -> None:
    doc = anon.get("/kalimera/openapi.json").json()
    assert doc["openapi"].startswith("3.")
    assert "/kalimera/health" in doc["paths"]
    assert "Problem" in doc["components"]["schemas"]
    assert anon.get("/kalimera/docs").status_code == 200


PROBE = "/kalimera/_probe/6f1c1d1e-8a43-4d53-9f3e-3a2b1c0d9e8f"


def test_malformed_json_is_400_problem(tenant: Tenant) -> None:
    response = tenant.client.post(
        PROBE, content=b'{"name": "x", "count": ', headers={"Content-Type": "application/json"}
    )
    assert_problem(response, 400)


def test_wrong_types_are_422_with_the_field_named(tenant: Tenant) -> None:
    body = assert_problem(tenant.client.post(PROBE, json={"name": "x", "count": "many"}), 422)
    assert ["body", "count"] in [e["loc"] for e in body["errors"]]  # type: ignore[union-attr]


def test_a_bad_uuid_in_the_path_is_422_problem(tenant: Tenant) -> None:
    body = assert_problem(
        tenant.client.post("/kalimera/_probe/not-a-uuid", json={"name": "x", "count": 1}), 422
    )
    assert ["path", "item_id"] in [e["loc"] for e in body["errors"]]  # type: ignore[union-attr]


def test_validation_errors_never_echo_the_input(tenant: Tenant) -> None:
    response = tenant.client.post(PROBE, json={"name": "x", "count": "SECRET-VALUE-42"})
    assert "SECRET-VALUE-42" not in response.text


def test_405_names_every_method_of_the_path(tenant: Tenant) -> None:
    response = tenant.client.patch("/kalimera/contact")
    assert_problem(response, 405)
    assert {m.strip() for m in response.headers["allow"].split(",")} >= {"GET", "POST"}
