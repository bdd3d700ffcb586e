"""What the model is asked, as pure functions: the transcript's lines and its cut, the strict
schema, the check of an answer."""

from __future__ import annotations

import json

import pytest

from kalimera.analysis.models import AnalysisPlan
from kalimera.analysis.prompt import (
    InvalidAnswer,
    TranscriptLine,
    answer_schema,
    format_line,
    parse_answer,
    transcript_text,
    wants_anything,
)


def test_a_line_is_minutes_and_seconds_from_the_start_past_the_hour_too() -> None:
    assert (
        format_line(TranscriptLine("Caller", 3.9, "  yes\n please "))
        == "[00:03] Caller: yes please"
    )
    assert format_line(TranscriptLine("Agent", 4503.0, "ok")) == "[75:03] Agent: ok"


def test_a_transcript_within_the_budget_is_sent_whole() -> None:
    lines = [TranscriptLine("Caller", 0, "hello"), TranscriptLine("Agent", 1, "hi")]
    assert transcript_text(lines, 1_000) == "[00:00] Caller: hello\n[00:01] Agent: hi"


@pytest.mark.parametrize("budget", [1_000, 5_000, 48_000])
def test_a_cut_keeps_the_first_and_last_lines_whole_and_fits_the_budget(budget: int) -> None:
    lines = [TranscriptLine("Caller", i, f"line {i} " + "λέξη " * 20) for i in range(2_000)]
    text = transcript_text(lines, budget)
    assert len(text) <= budget
    assert text.startswith(format_line(lines[0]) + "\n")
    assert text.endswith("\n" + format_line(lines[-1]))
    assert "cut from the middle of the call" in text
    head, _, tail = text.partition("[…")
    assert len(head) > budget // 3  # both ends, about half each
    assert len(tail) > budget // 3


def test_one_huge_turn_is_cut_inside_it() -> None:
    text = transcript_text([TranscriptLine("Caller", 0, "start " + "x" * 100_000 + " end")], 2_000)
    assert len(text) <= 2_000
    assert text.startswith("[00:00] Caller: start")
    assert text.endswith(" end")


def test_a_plan_with_every_part_disabled_asks_for_nothing() -> None:
    plan = AnalysisPlan.model_validate(
        {"summary": {"enabled": False}, "sentiment": {"enabled": False}}
    )
    assert not wants_anything(plan)
    assert answer_schema(plan)["properties"] == {}


def test_an_answer_must_be_json_of_the_schema() -> None:
    plan = AnalysisPlan()  # summary and sentiment
    good = {"summary": "A short call.", "sentiment": {"label": "neutral", "score": 0.0}}
    assert parse_answer(plan, json.dumps(good)) == good
    for bad, fault in [
        (None, "empty"),
        ("", "empty"),
        ("[1, 2]", "is not of type 'object'"),
        (json.dumps({**good, "extra": 1}), "Additional properties"),
        (json.dumps({**good, "sentiment": {"label": "happy", "score": 0}}), "sentiment/label"),
        (json.dumps({**good, "summary": "   "}), "summary: it is empty"),
    ]:
        with pytest.raises(InvalidAnswer, match=fault):
            parse_answer(plan, bad)
