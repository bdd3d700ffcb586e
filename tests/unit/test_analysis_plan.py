"""The plan's model without a server: the default plan, the defaults of a part left out, and
the rules of each part (the HTTP answers for them are tested in tests/analysis)."""

from typing import Any

import pytest
from pydantic import ValidationError

from kalimera.analysis.models import DEFAULT_PLAN, MAX_CRITERIA, MAX_INSTRUCTIONS, AnalysisPlan


def locs(body: Any) -> list[tuple[str | int, ...]]:
    with pytest.raises(ValidationError) as caught:
        AnalysisPlan.model_validate(body)
    return [tuple(error["loc"]) for error in caught.value.errors()]


def test_the_default_plan_has_summary_and_sentiment_on_success_and_data_off() -> None:
    stored = DEFAULT_PLAN.stored()
    assert stored["summary"]["enabled"] is True
    assert stored["sentiment"] == {"enabled": True}
    assert stored["success"]["enabled"] is False
    assert stored["data"] == {"enabled": False, "instructions": None, "schema": None}


def test_a_part_left_out_takes_its_default() -> None:
    plan = AnalysisPlan.model_validate({"sentiment": {"enabled": False}})
    assert plan.stored()["summary"] == DEFAULT_PLAN.stored()["summary"]
    assert plan.stored()["sentiment"] == {"enabled": False}


def test_the_schema_is_stored_under_its_own_name() -> None:
    schema = {"type": "object", "properties": {"n": {"type": "integer"}}}
    plan = AnalysisPlan.model_validate({"data": {"enabled": True, "schema": schema}})
    assert plan.stored()["data"]["schema"] == schema


def test_blank_instructions_are_no_instructions() -> None:
    plan = AnalysisPlan.model_validate({"summary": {"instructions": " \n\t "}})
    assert plan.summary.instructions is None


@pytest.mark.parametrize(
    ("body", "loc"),
    [
        ({"summary": {"enabled": "yes"}}, ("summary", "enabled")),
        ({"summary": {"enabled": 1}}, ("summary", "enabled")),
        ({"summary": {"max_words": 9}}, ("summary", "max_words")),
        ({"summary": {"max_words": 501}}, ("summary", "max_words")),
        ({"summary": {"max_words": "80"}}, ("summary", "max_words")),
        ({"summary": {"max_words": 80.5}}, ("summary", "max_words")),
        ({"summary": {"instructions": "x" * (MAX_INSTRUCTIONS + 1)}}, ("summary", "instructions")),
        ({"summary": {"tone": "dry"}}, ("summary", "tone")),
        ({"success": {"enabled": True, "rubric": "stars", "criteria": "c"}}, ("success", "rubric")),
        ({"success": {"enabled": True}}, ("success",)),
        ({"success": {"enabled": True, "criteria": "   "}}, ("success",)),
        ({"success": {"criteria": "x" * (MAX_CRITERIA + 1)}}, ("success", "criteria")),
        ({"data": {"enabled": True}}, ("data",)),
        ({"data": {"schema": "object"}}, ("data", "schema")),
        ({"data": {"data_schema": {}}}, ("data", "data_schema")),
        ({"sentiment": {"enabled": True, "model": "vader"}}, ("sentiment", "model")),
        ({"sentiment": None}, ("sentiment",)),
        ({"version": 3}, ("version",)),
        ({"outcome": {}}, ("outcome",)),
    ],
)
def test_a_bad_part_is_refused_at_its_path(body: dict[str, Any], loc: tuple[str, ...]) -> None:
    assert loc in locs(body)


@pytest.mark.parametrize("rubric", ["pass_fail", "score_1_10", "likert_5"])
def test_every_rubric_is_taken(rubric: str) -> None:
    plan = AnalysisPlan.model_validate(
        {"success": {"enabled": True, "rubric": rubric, "criteria": "The caller booked."}}
    )
    assert plan.stored()["success"]["rubric"] == rubric
