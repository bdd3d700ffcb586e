"""The analysis plan (docs/analysis.md): its four parts, its limits, and the check of the data
part's JSON Schema, which names the path of whatever it refuses.

The parts are pydantic models (unknown fields refused); the ``schema`` of the data part is read
as plain JSON and checked by ``schema_errors``, a pure function, so a 422 can point into it as
deep as the fault lies (``["body", "data", "schema", "properties", "party_size", "type"]``).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from datetime import date, datetime
from typing import Annotated, Any, Literal

import orjson
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    model_validator,
)

# The limits, as docs/analysis.md writes them down.
MAX_INSTRUCTIONS = 2_000  # characters, summary and data instructions
MAX_CRITERIA = 2_000  # characters, the success criteria
MIN_WORDS, MAX_WORDS, DEFAULT_WORDS = 10, 500, 120  # the summary's max_words
MAX_PROPERTIES = 50
MAX_SCHEMA_BYTES = 16 * 1024  # the schema as compact JSON (UTF-8)
MAX_DESCRIPTION = 500  # characters, a property's (or the schema's) description or title
MAX_ENUM = 100  # values of one enum
MAX_ENUM_VALUE = 200  # characters of one enum value
PROPERTY_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")

SCALARS = ("string", "number", "integer", "boolean")
FORMATS = ("date", "date-time", "email")
SCHEMA_KEYWORDS = frozenset({"type", "properties", "required", "additionalProperties"})
PROPERTY_KEYWORDS = frozenset({"type", "enum", "format", "items"})
NOTES = frozenset({"description", "title"})  # free text, allowed at every level

Loc = tuple[str | int, ...]


def _optional_text(text: str | None) -> str | None:
    """Blank text is no text."""
    if text is None:
        return None
    return text if text.strip() else None


Instructions = Annotated[
    str | None, Field(max_length=MAX_INSTRUCTIONS), AfterValidator(_optional_text)
]


# How the verdict is given: pass/fail, a score from 1 to 10, or agreement on a five-point scale
# (strongly_disagree ... strongly_agree) that the criteria were met.
Rubric = Literal["pass_fail", "score_1_10", "likert_5"]


class Part(BaseModel):
    model_config = ConfigDict(extra="forbid")


class AnalysisSummary(Part):
    enabled: StrictBool = True
    instructions: Instructions = None
    max_words: StrictInt = Field(DEFAULT_WORDS, ge=MIN_WORDS, le=MAX_WORDS)


class AnalysisSuccess(Part):
    enabled: StrictBool = False
    rubric: Rubric = "pass_fail"
    criteria: Annotated[
        str | None, Field(max_length=MAX_CRITERIA), AfterValidator(_optional_text)
    ] = None

    @model_validator(mode="after")
    def _criteria_when_enabled(self) -> AnalysisSuccess:
        if self.enabled and self.criteria is None:
            msg = "criteria are required when success is enabled"
            raise ValueError(msg)
        return self


class AnalysisData(Part):
    enabled: StrictBool = False
    instructions: Instructions = None
    # Checked by schema_errors (service), which names the path of a fault inside it.
    data_schema: dict[str, Any] | None = Field(
        None,
        alias="schema",
        description="A JSON Schema object: at most 50 properties and 16 KiB; property types "
        "string (with enum, format date/date-time/email), number, integer, boolean, and arrays "
        "of those",
    )

    @model_validator(mode="after")
    def _schema_when_enabled(self) -> AnalysisData:
        if self.enabled and self.data_schema is None:
            msg = "a schema is required when data is enabled"
            raise ValueError(msg)
        return self


class AnalysisSentiment(Part):
    enabled: StrictBool = True


class AnalysisPlan(BaseModel):
    """The plan a PUT sends: a part left out takes its default (the default plan's part)."""

    model_config = ConfigDict(extra="forbid")

    summary: AnalysisSummary = Field(default_factory=AnalysisSummary)
    success: AnalysisSuccess = Field(default_factory=AnalysisSuccess)
    data: AnalysisData = Field(default_factory=AnalysisData)
    sentiment: AnalysisSentiment = Field(default_factory=AnalysisSentiment)

    def stored(self) -> dict[str, Any]:
        return self.model_dump(mode="json", by_alias=True)


DEFAULT_PLAN = AnalysisPlan()


class AnalysisPlanRead(AnalysisPlan):
    """The current plan, its version (0: the default plan, never written) and when it was
    written (null for version 0)."""

    version: int
    created_at: datetime | None


class AnalysisPlanPage(BaseModel):
    items: list[AnalysisPlanRead]
    total: int
    page: int
    limit: int


def schema_errors(schema: Any) -> Iterator[tuple[Loc, str]]:
    """Every fault of a data schema, as (path inside the schema, what is wrong); none when it is
    one the analysis takes."""
    if not isinstance(schema, dict):
        yield (), "must be a JSON Schema object"
        return
    try:
        size = len(orjson.dumps(schema))
    except TypeError:  # an integer past 64 bits: no schema keyword takes one
        yield (), "must be plain JSON (an integer here is out of range)"
        return
    if size > MAX_SCHEMA_BYTES:
        yield (), f"is {size:,} bytes as JSON, over the limit of {MAX_SCHEMA_BYTES:,} (16 KiB)"
        return
    yield from _unknown_keywords(schema, SCHEMA_KEYWORDS, ())
    yield from _notes(schema, ())
    if schema.get("type") != "object":
        yield ("type",), 'must be "object"'
    if "additionalProperties" in schema and schema["additionalProperties"] is not False:
        yield ("additionalProperties",), "must be false (or left out)"
    properties = schema.get("properties")
    if not isinstance(properties, dict) or not properties:
        yield ("properties",), "must be an object of at least one property"
        return
    if len(properties) > MAX_PROPERTIES:
        yield ("properties",), f"has {len(properties)} properties; at most {MAX_PROPERTIES}"
        return
    for name, spec in properties.items():
        loc: Loc = ("properties", name)
        if not PROPERTY_NAME.fullmatch(name):
            yield (
                loc,
                ("a property name is a letter or _ then letters, digits or _, at most 64 in all"),
            )
            continue
        yield from _property(spec, loc, array_allowed=True)
    yield from _required(schema.get("required"), properties)


def _required(required: Any, properties: dict[str, Any]) -> Iterator[tuple[Loc, str]]:
    if required is None:
        return
    if not isinstance(required, list):
        yield ("required",), "must be a list of property names"
        return
    seen: set[str] = set()
    for i, name in enumerate(required):
        if not isinstance(name, str) or name not in properties:
            yield ("required", i), "must name one of the properties"
        elif name in seen:
            yield ("required", i), "names a property twice"
        else:
            seen.add(name)


def _property(spec: Any, loc: Loc, *, array_allowed: bool) -> Iterator[tuple[Loc, str]]:
    if not isinstance(spec, dict):
        yield loc, "must be an object with a type"
        return
    kind = spec.get("type")
    allowed = (*SCALARS, "array") if array_allowed else SCALARS
    if kind not in allowed:  # the fault that matters: what else it says follows from it
        what = "missing" if "type" not in spec else "not supported"
        yield (*loc, "type"), f"{what}: the type is one of {', '.join(allowed)}"
        return
    yield from _unknown_keywords(spec, PROPERTY_KEYWORDS, loc)
    yield from _notes(spec, loc)
    if "enum" in spec:
        if kind != "string":
            yield (*loc, "enum"), "only a string property may have an enum"
        else:
            yield from _enum(spec["enum"], (*loc, "enum"))
    if "format" in spec:
        if kind != "string":
            yield (*loc, "format"), "only a string property may have a format"
        elif spec["format"] not in FORMATS:
            yield (*loc, "format"), f"the format is one of {', '.join(FORMATS)}"
    if kind == "array":
        if "items" not in spec:
            yield (*loc, "items"), "an array names the type of its items"
        else:
            yield from _property(spec["items"], (*loc, "items"), array_allowed=False)
    elif "items" in spec:
        yield (*loc, "items"), "only an array has items"


def _enum(values: Any, loc: Loc) -> Iterator[tuple[Loc, str]]:
    if not isinstance(values, list) or not 1 <= len(values) <= MAX_ENUM:
        yield loc, f"must be a list of 1 to {MAX_ENUM} strings"
        return
    seen: set[str] = set()
    for i, value in enumerate(values):
        if not isinstance(value, str) or not value.strip() or len(value) > MAX_ENUM_VALUE:
            yield (*loc, i), f"must be a non-blank string of at most {MAX_ENUM_VALUE} characters"
        elif value in seen:
            yield (*loc, i), "is listed twice"
        else:
            seen.add(value)


def _unknown_keywords(
    node: dict[str, Any], allowed: frozenset[str], loc: Loc
) -> Iterator[tuple[Loc, str]]:
    for key in node:
        if key not in allowed and key not in NOTES:
            yield (*loc, key), "is not a keyword the analysis supports"


def _notes(node: dict[str, Any], loc: Loc) -> Iterator[tuple[Loc, str]]:
    for key in NOTES & node.keys():
        value = node[key]
        if not isinstance(value, str) or len(value) > MAX_DESCRIPTION:
            yield (*loc, key), f"must be text of at most {MAX_DESCRIPTION} characters"


# ---- re-runs -----------------------------------------------------------------------------------

RunStatus = Literal["running", "done", "cancelled"]


class AnalysisRunCreate(BaseModel):
    """A bulk re-run: the agent's conversations that ended from ``since`` to ``until`` (UTC
    days, both included) and have no result for the plan version."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"since": "2026-11-01", "until": "2026-11-30"}]},
    )

    since: date
    until: date
    plan_version: StrictInt | None = Field(
        None, ge=0, description="A version of the agent's plan (default: the current one)"
    )


class AnalysisRunCreated(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"id": "0b9f3f8e-3c52-4f3f-9d55-2f0c1b9d7a10", "total": 1240}]
        }
    )

    id: uuid.UUID
    total: int = Field(description="The conversations the run analyses")


class AnalysisRunRead(BaseModel):
    """A run's progress: ``total`` = ``done`` + ``failed`` + ``skipped`` + ``cancelled`` + what
    is still to do; ``status`` is ``done`` when nothing is left to do."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": "0b9f3f8e-3c52-4f3f-9d55-2f0c1b9d7a10",
                    "agent_id": "7d1c2a4e-95a1-4c1e-8f7e-3a1b2c3d4e5f",
                    "plan_version": 3,
                    "since": "2026-11-01",
                    "until": "2026-11-30",
                    "status": "running",
                    "total": 1240,
                    "done": 512,
                    "failed": 2,
                    "skipped": 6,
                    "cancelled": 0,
                    "created_at": "2026-12-01T06:00:00Z",
                }
            ]
        }
    )

    id: uuid.UUID
    agent_id: uuid.UUID
    plan_version: int
    since: date
    until: date
    status: RunStatus
    total: int
    done: int
    failed: int
    skipped: int
    cancelled: int
    created_at: datetime


class AnalysisRequested(BaseModel):
    """The conversation's analysis is asked for again (202): it shows ``pending`` until done."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"conversation_id": "5e0c7a1b-2f4d-4c8e-9a3b-1d2e3f4a5b6c", "status": "pending"}
            ]
        }
    )

    conversation_id: uuid.UUID
    status: Literal["pending"] = "pending"
