"""The demo seed's scripted calls (``kalimera.dev.calls``): a restaurant's phone line, the
analysis plan its agents get, and for each call what its analysis says, written with the script
(so the console's analyses are true to the recordings without a language model).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from kalimera.analysis.models import AnalysisPlan

PLAN = AnalysisPlan.model_validate(
    {
        "summary": {"enabled": True, "max_words": 60},
        "success": {
            "enabled": True,
            "rubric": "pass_fail",
            "criteria": "The caller booked a table.",
        },
        "data": {
            "enabled": True,
            "schema": {
                "type": "object",
                "properties": {
                    "intent": {"type": "string", "enum": ["booking", "cancel", "question"]},
                    "party_size": {"type": "integer"},
                    "date": {"type": "string", "format": "date"},
                },
            },
        },
        "sentiment": {"enabled": True},
    }
)


@dataclass(frozen=True)
class Script:
    """One call: who calls (a contact of the tenant), its lines (caller first), why it ended,
    and what its analysis says."""

    caller: tuple[str, str]
    lines: tuple[str, ...]
    ended_reason: str
    summary: str
    verdict: str
    rationale: str
    data: Callable[[date], dict[str, Any]]
    sentiment: tuple[str, float]

    def answer(self, day: date) -> dict[str, Any]:
        """The analysis a model would give for this call on ``day``, in the plan's shape."""
        label, score = self.sentiment
        return {
            "summary": self.summary,
            "success": {"rationale": self.rationale, "result": self.verdict},
            "data": self.data(day),
            "sentiment": {"label": label, "score": score},
        }


def _next(day: date, weekday: int) -> str:
    return (day + timedelta(days=(weekday - day.weekday()) % 7 or 7)).isoformat()


SCRIPTS = (
    Script(
        caller=("Maria", "Papadopoulou"),
        lines=(
            "Hello, I would like to book a table for four on Friday at eight, please.",
            "Good evening, this is Kalimera. Friday at eight for four: a table by the window "
            "is free. May I have your name?",
            "Papadopoulou. Maria Papadopoulou.",
            "Thank you, Maria. Your table for four is booked for Friday at eight. See you then!",
        ),
        ended_reason="agent-ended-call",
        summary="Maria Papadopoulou booked a table for four on Friday at eight, by the window.",
        verdict="pass",
        rationale="A table for four was booked for Friday at eight.",
        data=lambda day: {"intent": "booking", "party_size": 4, "date": _next(day, 4)},
        sentiment=("positive", 0.8),
    ),
    Script(
        caller=("Giorgos", "Nikolaou"),
        lines=(
            "Hi, I need to cancel my booking for Saturday evening. It is under Nikolaou.",
            "I found it: a table for two on Saturday at nine, under Nikolaou. Shall I cancel it?",
            "Yes please, we cannot make it.",
            "Done, your booking is cancelled. We hope to see you another time.",
        ),
        ended_reason="customer-ended-call",
        summary="Mr Nikolaou cancelled his booking for two on Saturday at nine.",
        verdict="fail",
        rationale="The caller cancelled a booking; no table was booked.",
        data=lambda day: {"intent": "cancel", "party_size": 2, "date": _next(day, 5)},
        sentiment=("neutral", 0.0),
    ),
    Script(
        caller=("Eleni", "Vlachou"),
        lines=(
            "Good afternoon. Are you open on Sunday, and do you have vegan dishes?",
            "We are open on Sunday from one until eleven, and a third of our menu is vegan.",
            "Lovely, thank you. I will call back to book.",
            "You are welcome. Have a nice day!",
        ),
        ended_reason="customer-ended-call",
        summary="The caller asked about Sunday's opening hours and vegan dishes, and will call "
        "back to book.",
        verdict="fail",
        rationale="The caller only asked questions and will call back; no table was booked.",
        data=lambda day: {"intent": "question", "party_size": None, "date": None},
        sentiment=("positive", 0.6),
    ),
    Script(
        caller=("Nikos", "Antoniou"),
        lines=(
            "Can I get a table for twelve tonight at eight?",
            "I am sorry, we are fully booked tonight for a group of twelve. Tomorrow at eight "
            "is free.",
            "No, it has to be tonight. Never mind.",
            "I understand. Sorry we could not help this time.",
        ),
        ended_reason="customer-ended-call",
        summary="The caller wanted a table for twelve tonight at eight; the restaurant was full "
        "and the caller declined tomorrow instead.",
        verdict="fail",
        rationale="No table was booked: the restaurant was full tonight.",
        data=lambda day: {"intent": "booking", "party_size": 12, "date": day.isoformat()},
        sentiment=("negative", -0.5),
    ),
)
LATENCIES_MS = (640, 910, 720, 1180, 560, 830)
