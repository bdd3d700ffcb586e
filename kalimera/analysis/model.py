"""Placeholder of the model client's interface (branch model14 builds the real one): the types
the pipeline codes against. Replaced whole by model14's module when its branch is merged."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Literal

from kalimera.analysis.models import AnalysisPlan


@dataclass(frozen=True)
class TranscriptLine:
    speaker: Literal["Caller", "Agent"]
    offset_seconds: float
    text: str


@dataclass(frozen=True)
class ModelAnswer:
    summary: str | None
    success: dict[str, Any] | None
    data: dict[str, Any] | None
    sentiment: dict[str, Any] | None
    model: str
    input_tokens: int
    output_tokens: int
    cost: Decimal


class ModelUnavailable(Exception):
    """Retries exhausted: the queue retries later."""


class AnswerRefused(Exception):
    """An invalid answer after one repair."""


class Analyser:
    async def analyse(self, *, plan: AnalysisPlan, lines: Sequence[TranscriptLine]) -> ModelAnswer:
        raise NotImplementedError
