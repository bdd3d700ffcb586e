"""The post-call analysis of one conversation: its transcript in, the plan's answer out
(docs/analysis.md).

One Chat Completions request with a strict ``json_schema`` response format that ``prompt.py``
builds from the plan's enabled parts, through the configured model (``kalimera.llm``: the
server, the retries, the concurrency limit, the price). The answer is checked against the plan;
one that fails gets one repair request carrying the fault, and a second invalid answer is
``AnswerRefused``.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from kalimera.analysis import prompt
from kalimera.analysis.models import AnalysisPlan
from kalimera.analysis.prompt import TranscriptLine
from kalimera.llm import ChatModel, ModelUnavailable, Reply, RequestRefused, shorten
from kalimera.services import Services

__all__ = [
    "Analyser",
    "AnswerRefused",
    "ModelAnswer",
    "ModelUnavailable",
    "TranscriptLine",
    "analyser_for",
]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ModelAnswer:
    """The plan's enabled parts as the model answered them (a disabled part is None), and what
    the answer cost, over the request and its repair."""

    summary: str | None
    success: dict[str, Any] | None  # {"result": "pass"|"fail" | 1..10 | likert label, "rationale"}
    data: dict[str, Any] | None  # the plan's data schema; null for a field the call did not give
    sentiment: dict[str, Any] | None  # {"label": positive|neutral|negative, "score": -1..1}
    model: str
    input_tokens: int
    output_tokens: int
    cost: Decimal


class AnswerRefused(Exception):
    """No valid answer after the one repair (or a request the server refuses as malformed);
    ``str(e)`` is the reason stored with the failed analysis."""


class Analyser:
    """The plan's questions to the configured model."""

    def __init__(self, chat: ChatModel) -> None:
        self._chat = chat

    async def analyse(self, *, plan: AnalysisPlan, lines: Sequence[TranscriptLine]) -> ModelAnswer:
        """Ask for the plan's enabled parts over the transcript; one repair if the answer is not
        valid. Raises ``ModelUnavailable`` (try later) or ``AnswerRefused`` (store the reason).
        A plan with every part disabled asks nothing and costs nothing."""
        if not prompt.wants_anything(plan):
            return ModelAnswer(None, None, None, None, self._chat.model, 0, 0, Decimal(0))
        first = prompt.messages(plan, prompt.transcript_text(lines, self._chat.max_input_chars))
        fmt = prompt.response_format(plan)
        replies = [await self._ask(first, fmt)]
        try:
            answer = _parse(plan, replies[0])
        except prompt.InvalidAnswer as first_error:
            logger.info("invalid model answer, asking once more: %s", first_error)
            repair = prompt.repair_messages(first, replies[0].content, str(first_error))
            replies.append(await self._ask(repair, fmt))
            try:
                answer = _parse(plan, replies[1])
            except prompt.InvalidAnswer as second_error:
                msg = f"the model's answer was invalid twice: {second_error}"
                raise AnswerRefused(msg) from None
        input_tokens = sum(r.input_tokens for r in replies)
        output_tokens = sum(r.output_tokens for r in replies)
        return ModelAnswer(
            summary=answer.get("summary"),
            success=answer.get("success"),
            data=answer.get("data"),
            sentiment=answer.get("sentiment"),
            model=replies[-1].model,
            input_tokens=input_tokens,
            output_tokens=output_tokens,
            cost=self._chat.cost(input_tokens, output_tokens),
        )

    async def _ask(self, messages: list[dict[str, str]], fmt: dict[str, Any]) -> Reply:
        try:
            return await self._chat.ask(messages, fmt)
        except RequestRefused as exc:
            raise AnswerRefused(str(exc)) from None


def analyser_for(services: Services) -> Analyser | None:
    """The analyser of the process's model; None when no model is configured."""
    chat = services.llm
    return None if chat is None else Analyser(chat)


def _parse(plan: AnalysisPlan, reply: Reply) -> dict[str, Any]:
    if reply.refusal:
        raise prompt.InvalidAnswer(f"the model refused: {shorten(reply.refusal)}")
    return prompt.parse_answer(plan, reply.content)
