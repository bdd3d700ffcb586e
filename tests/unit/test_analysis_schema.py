"""The data part's JSON Schema, checked without a server: what the analysis takes, and for
everything else the path of the fault (the API prefixes it with ``body, data, schema``)."""

from typing import Any

import orjson
import pytest

from kalimera.analysis.models import MAX_PROPERTIES, MAX_SCHEMA_BYTES, schema_errors

SPEC_EXAMPLE: dict[str, Any] = {
    "type": "object",
    "properties": {
        "party_size": {"type": "integer"},
        "date": {"type": "string", "format": "date"},
        "intent": {"type": "string", "enum": ["booking", "cancel", "question"]},
    },
}


def faults(schema: Any) -> list[tuple[tuple[str | int, ...], str]]:
    return list(schema_errors(schema))


def with_property(spec: Any, name: str = "field") -> dict[str, Any]:
    return {"type": "object", "properties": {name: spec}}


def test_the_specs_example_is_valid() -> None:
    assert faults(SPEC_EXAMPLE) == []


@pytest.mark.parametrize(
    "spec",
    [
        {"type": "string"},
        {"type": "string", "format": "date-time"},
        {"type": "string", "format": "email", "description": "the caller's email"},
        {"type": "string", "enum": ["ja", "nein", "ναι", "🙂"]},
        {"type": "number", "title": "Amount"},
        {"type": "integer"},
        {"type": "boolean"},
        {"type": "array", "items": {"type": "string", "enum": ["a", "b"]}},
        {"type": "array", "items": {"type": "string", "format": "date"}},
        {"type": "array", "items": {"type": "integer"}},
        {"type": "array", "items": {"type": "boolean"}, "description": "flags"},
    ],
)
def test_every_supported_property_shape_is_valid(spec: dict[str, Any]) -> None:
    assert faults(with_property(spec)) == []


def test_required_and_closed_objects_are_valid() -> None:
    schema = {
        **SPEC_EXAMPLE,
        "required": ["party_size", "date"],
        "additionalProperties": False,
        "description": "What the booking call collects",
    }
    assert faults(schema) == []


P = ("properties", "field")


@pytest.mark.parametrize(
    ("spec", "loc"),
    [
        ({"type": "object", "properties": {}}, (*P, "type")),
        ({"type": "null"}, (*P, "type")),
        ({"type": ["string", "null"]}, (*P, "type")),
        ({"type": "String"}, (*P, "type")),
        ({"enum": ["a"]}, (*P, "type")),
        ({}, (*P, "type")),
        ("string", P),
        (None, P),
        ([{"type": "string"}], P),
        ({"type": "string", "format": "uri"}, (*P, "format")),
        ({"type": "string", "format": 7}, (*P, "format")),
        ({"type": "integer", "format": "date"}, (*P, "format")),
        ({"type": "number", "enum": ["1", "2"]}, (*P, "enum")),
        ({"type": "string", "enum": []}, (*P, "enum")),
        ({"type": "string", "enum": "a"}, (*P, "enum")),
        ({"type": "string", "enum": ["a", 1]}, (*P, "enum", 1)),
        ({"type": "string", "enum": ["a", "a"]}, (*P, "enum", 1)),
        ({"type": "string", "enum": ["  "]}, (*P, "enum", 0)),
        ({"type": "string", "enum": ["x" * 201]}, (*P, "enum", 0)),
        ({"type": "string", "enum": [f"v{i}" for i in range(101)]}, (*P, "enum")),
        ({"type": "array"}, (*P, "items")),
        (
            {"type": "array", "items": {"type": "array", "items": {"type": "string"}}},
            (*P, "items", "type"),
        ),
        ({"type": "array", "items": {"type": "object"}}, (*P, "items", "type")),
        ({"type": "array", "items": "string"}, (*P, "items")),
        ({"type": "array", "items": {"type": "string", "format": "ipv4"}}, (*P, "items", "format")),
        ({"type": "string", "items": {"type": "string"}}, (*P, "items")),
        ({"type": "string", "pattern": "^a$"}, (*P, "pattern")),
        ({"type": "string", "$ref": "#/defs/x"}, (*P, "$ref")),
        ({"type": "integer", "minimum": 1}, (*P, "minimum")),
        ({"type": "string", "description": 5}, (*P, "description")),
        ({"type": "string", "description": "d" * 501}, (*P, "description")),
    ],
)
def test_an_unsupported_property_is_refused_at_its_path(
    spec: Any, loc: tuple[str | int, ...]
) -> None:
    found = faults(with_property(spec))
    assert found, spec
    assert found[0][0] == loc


@pytest.mark.parametrize(
    ("schema", "loc"),
    [
        ([], ()),
        ("object", ()),
        (None, ()),
        ({"type": "array", "properties": {"a": {"type": "string"}}}, ("type",)),
        ({"properties": {"a": {"type": "string"}}}, ("type",)),
        ({"type": "object"}, ("properties",)),
        ({"type": "object", "properties": {}}, ("properties",)),
        ({"type": "object", "properties": []}, ("properties",)),
        (
            {
                "type": "object",
                "properties": {"a": {"type": "string"}},
                "additionalProperties": True,
            },
            ("additionalProperties",),
        ),
        ({"type": "object", "properties": {"a": {"type": "string"}}, "$defs": {}}, ("$defs",)),
        (
            {"type": "object", "properties": {"a": {"type": "string"}}, "required": "a"},
            ("required",),
        ),
        (
            {"type": "object", "properties": {"a": {"type": "string"}}, "required": ["b"]},
            ("required", 0),
        ),
        (
            {"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a", "a"]},
            ("required", 1),
        ),
        ({"type": "object", "properties": {"a": {"type": "string"}}, "title": ["x"]}, ("title",)),
        (with_property({"type": "string"}, name="party size"), ("properties", "party size")),
        (with_property({"type": "string"}, name="1st"), ("properties", "1st")),
        (with_property({"type": "string"}, name="a" * 65), ("properties", "a" * 65)),
        (with_property({"type": "string"}, name="größe"), ("properties", "größe")),
        (with_property({"type": "string"}, name=""), ("properties", "")),
        ({"type": "object", "properties": {"a": {"type": 2**70}}}, ()),
    ],
)
def test_an_unsupported_schema_is_refused_at_its_path(
    schema: Any, loc: tuple[str | int, ...]
) -> None:
    found = faults(schema)
    assert found, schema
    assert found[0][0] == loc


def test_at_most_50_properties() -> None:
    properties = {f"p{i}": {"type": "string"} for i in range(50)}
    assert faults({"type": "object", "properties": properties}) == []
    properties["p50"] = {"type": "string"}
    assert faults({"type": "object", "properties": properties}) == [
        (("properties",), f"has 51 properties; at most {MAX_PROPERTIES}"),
    ]


def test_at_most_16_kib_as_json() -> None:
    def sized(description_chars: int) -> dict[str, Any]:
        return {
            "type": "object",
            "properties": {
                f"p{i}": {"type": "string", "description": "é" * description_chars}
                for i in range(40)
            },
        }

    small = sized(100)
    assert len(orjson.dumps(small)) <= MAX_SCHEMA_BYTES
    assert faults(small) == []
    # Bytes, not characters: 40 descriptions of 250 two-byte characters are ~20 KB.
    large = sized(250)
    assert len(orjson.dumps(large)) > MAX_SCHEMA_BYTES
    found = faults(large)
    assert [loc for loc, _ in found] == [()]
    assert "16 KiB" in found[0][1]


def test_every_fault_is_named_not_only_the_first() -> None:
    schema = {
        "type": "object",
        "properties": {
            "a": {"type": "object"},
            "b": {"type": "string", "format": "uri"},
            "c": {"type": "integer"},
        },
        "required": ["z"],
    }
    assert [loc for loc, _ in faults(schema)] == [
        ("properties", "a", "type"),
        ("properties", "b", "format"),
        ("required", 0),
    ]
