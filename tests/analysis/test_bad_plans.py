"""A plan the analysis cannot run is refused with 422 naming the path of the fault, and writes
no version; hostile text is refused or kept exactly as sent."""

import copy
import json
from typing import Any

import pytest

from tests.analysis.conftest import PLAN, plan_path
from tests.conftest import Tenant
from tests.support.problems import assert_problem


def with_data_property(spec: Any, name: str = "party_size") -> dict[str, Any]:
    plan = copy.deepcopy(PLAN)
    plan["data"]["schema"]["properties"][name] = spec
    return plan


def with_schema(schema: Any) -> dict[str, Any]:
    plan = copy.deepcopy(PLAN)
    plan["data"]["schema"] = schema
    return plan


def with_part(part: str, value: Any) -> dict[str, Any]:
    plan = copy.deepcopy(PLAN)
    plan[part] = value
    return plan


S = ("body", "data", "schema")
PARTY = (*S, "properties", "party_size")
FIFTY_ONE = {f"p{i}": {"type": "string"} for i in range(51)}
BIG = {f"p{i}": {"type": "string", "description": "x" * 400} for i in range(45)}

BAD: list[tuple[str, Any, tuple[str | int, ...]]] = [
    ("object property", with_data_property({"type": "object"}), (*PARTY, "type")),
    ("null type", with_data_property({"type": "null"}), (*PARTY, "type")),
    ("type union", with_data_property({"type": ["integer", "null"]}), (*PARTY, "type")),
    ("no type", with_data_property({"description": "how many"}), (*PARTY, "type")),
    ("not an object", with_data_property("integer"), PARTY),
    ("unknown format", with_data_property({"type": "string", "format": "uri"}), (*PARTY, "format")),
    (
        "format on integer",
        with_data_property({"type": "integer", "format": "date"}),
        (*PARTY, "format"),
    ),
    ("enum on integer", with_data_property({"type": "integer", "enum": ["1"]}), (*PARTY, "enum")),
    ("empty enum", with_data_property({"type": "string", "enum": []}), (*PARTY, "enum")),
    (
        "enum of numbers",
        with_data_property({"type": "string", "enum": ["a", 2]}),
        (*PARTY, "enum", 1),
    ),
    ("array without items", with_data_property({"type": "array"}), (*PARTY, "items")),
    (
        "array of arrays",
        with_data_property(
            {"type": "array", "items": {"type": "array", "items": {"type": "string"}}}
        ),
        (*PARTY, "items", "type"),
    ),
    (
        "array of objects",
        with_data_property({"type": "array", "items": {"type": "object"}}),
        (*PARTY, "items", "type"),
    ),
    ("pattern", with_data_property({"type": "string", "pattern": "^a"}), (*PARTY, "pattern")),
    ("$ref", with_data_property({"type": "string", "$ref": "#/$defs/x"}), (*PARTY, "$ref")),
    ("minimum", with_data_property({"type": "integer", "minimum": 1}), (*PARTY, "minimum")),
    (
        "name with a space",
        with_data_property({"type": "string"}, name="party size"),
        (*S, "properties", "party size"),
    ),
    ("schema a string", with_schema("object"), S),
    ("schema a list", with_schema([]), S),
    (
        "top type array",
        with_schema({"type": "array", "properties": {"a": {"type": "string"}}}),
        (*S, "type"),
    ),
    ("no properties", with_schema({"type": "object"}), (*S, "properties")),
    ("empty properties", with_schema({"type": "object", "properties": {}}), (*S, "properties")),
    ("51 properties", with_schema({"type": "object", "properties": FIFTY_ONE}), (*S, "properties")),
    ("over 16 KiB", with_schema({"type": "object", "properties": BIG}), S),
    (
        "open object",
        with_schema(
            {
                "type": "object",
                "properties": {"a": {"type": "string"}},
                "additionalProperties": {"type": "string"},
            }
        ),
        (*S, "additionalProperties"),
    ),
    (
        "required unknown",
        with_schema({"type": "object", "properties": {"a": {"type": "string"}}, "required": ["b"]}),
        (*S, "required", 0),
    ),
    (
        "$defs",
        with_schema({"type": "object", "properties": {"a": {"type": "string"}}, "$defs": {}}),
        (*S, "$defs"),
    ),
    ("data on without schema", with_part("data", {"enabled": True}), ("body", "data")),
    ("success on without criteria", with_part("success", {"enabled": True}), ("body", "success")),
    (
        "unknown rubric",
        with_part("success", {"enabled": True, "rubric": "stars", "criteria": "c"}),
        ("body", "success", "rubric"),
    ),
    (
        "max_words too low",
        with_part("summary", {"enabled": True, "max_words": 0}),
        ("body", "summary", "max_words"),
    ),
    (
        "max_words a string",
        with_part("summary", {"enabled": True, "max_words": "80"}),
        ("body", "summary", "max_words"),
    ),
    (
        "enabled a string",
        with_part("sentiment", {"enabled": "true"}),
        ("body", "sentiment", "enabled"),
    ),
    (
        "long instructions",
        with_part("summary", {"instructions": "x" * 2001}),
        ("body", "summary", "instructions"),
    ),
    (
        "long criteria",
        with_part("success", {"enabled": True, "criteria": "x" * 2001}),
        ("body", "success", "criteria"),
    ),
    ("unknown part", {**PLAN, "outcome": {"enabled": True}}, ("body", "outcome")),
    ("version in body", {**PLAN, "version": 7}, ("body", "version")),
    (
        "unknown field",
        with_part("sentiment", {"enabled": True, "model": "x"}),
        ("body", "sentiment", "model"),
    ),
]


@pytest.mark.parametrize(("case", "body", "loc"), BAD, ids=[case for case, _, _ in BAD])
def test_a_bad_plan_is_422_naming_the_path_and_writes_nothing(
    tenant: Tenant, agent: str, case: str, body: Any, loc: tuple[str | int, ...]
) -> None:
    problem = assert_problem(tenant.client.put(plan_path(agent), json=body), 422)
    locs = [tuple(error["loc"]) for error in problem["errors"]]  # type: ignore[attr-defined]
    assert loc in locs, (case, locs)
    assert tenant.client.get(plan_path(agent)).json()["version"] == 0


def test_a_body_that_is_not_an_object_is_422(tenant: Tenant, agent: str) -> None:
    for body in ([PLAN], "plan", 7, None):
        assert_problem(tenant.client.put(plan_path(agent), json=body), 422)
    response = tenant.client.put(
        plan_path(agent), content=b'{"summary": ', headers={"Content-Type": "application/json"}
    )
    assert response.status_code in (400, 422)
    assert tenant.client.get(plan_path(agent)).json()["version"] == 0


ODD = [
    "Καλημέρα! Σύνοψη στα ελληνικά, παρακαλώ.",
    "עברית ثم العربية, right to left",
    "emoji 🙂👍🏽 and a ZWJ family 👨‍👩‍👧",
    "zero\u200bwidth and combining e\u0301",
    "quotes \" ' ` and backslashes \\ \\n and <script>alert(1)</script>",
    "line one\nline two\r\n\ttabbed",
    "'; DROP TABLE kalimera_analysis_plans; --",
    "%(tenant_id)s {tenant_id} $1",
]


@pytest.mark.parametrize("text", ODD)
def test_odd_text_is_kept_exactly(tenant: Tenant, agent: str, text: str) -> None:
    plan = copy.deepcopy(PLAN)
    plan["summary"]["instructions"] = text
    plan["success"]["criteria"] = text
    plan["data"]["schema"]["properties"]["intent"]["enum"] = [text, "other"]
    plan["data"]["schema"]["properties"]["party_size"]["description"] = text
    assert tenant.client.put(plan_path(agent), json=plan).status_code == 200
    stored = tenant.client.get(plan_path(agent)).json()
    assert stored["summary"]["instructions"] == text
    assert stored["success"]["criteria"] == text
    assert stored["data"]["schema"] == plan["data"]["schema"]


@pytest.mark.parametrize("text", ["nul \u0000 inside", "lone \ud800 surrogate"])
def test_text_postgres_cannot_store_is_422(tenant: Tenant, agent: str, text: str) -> None:
    plan = copy.deepcopy(PLAN)
    plan["summary"]["instructions"] = text
    payload = json.dumps(plan).encode()  # \u escapes: the lone surrogate travels as JSON allows
    response = tenant.client.put(
        plan_path(agent), content=payload, headers={"Content-Type": "application/json"}
    )
    assert_problem(response, 422)
    assert tenant.client.get(plan_path(agent)).json()["version"] == 0


def test_a_body_over_the_limit_is_413(tenant: Tenant, agent: str) -> None:
    plan = copy.deepcopy(PLAN)
    plan["summary"]["instructions"] = "x" * (1024 * 1024)
    assert_problem(tenant.client.put(plan_path(agent), json=plan), 413)
