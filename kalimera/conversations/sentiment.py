"""Sentiment of a conversation, from its caller-side (``input``) transcripts.

Each caller turn with words is scored once, when it is ingested; the conversation's score is the
mean of its caller turns' scores and its label that mean against ``POSITIVE_AT``/``NEGATIVE_AT``
(``unknown`` when no caller turn has words). Both are derived in SQL from the turns
(``repository.recompute_conversation``), so the work of a new turn is the scoring of that turn's
words alone, however long the conversation: scoring the whole conversation again on each turn
made the thousandth turn a thousand times the work of the first.

A scorer maps text to a compound score in -1..1; VADER ships its lexicon inside the package, so
it works offline and costs nothing per call. Another scorer (Azure AI Language, say) only has to
satisfy ``SentimentScorer``.
"""

from __future__ import annotations

from enum import StrEnum
from functools import lru_cache
from typing import Protocol

POSITIVE_AT = 0.05
NEGATIVE_AT = -0.05


class SentimentLabel(StrEnum):
    POSITIVE = "positive"
    NEUTRAL = "neutral"
    NEGATIVE = "negative"
    UNKNOWN = "unknown"


class SentimentScorer(Protocol):
    def score(self, text: str) -> float:
        """The compound sentiment of ``text``, from -1 (negative) to 1 (positive)."""
        ...


class VaderScorer:
    """VADER's compound score; the analyser (and its lexicon) is built on first use."""

    def __init__(self) -> None:
        from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

        self._analyzer = SentimentIntensityAnalyzer()

    def score(self, text: str) -> float:
        return float(self._analyzer.polarity_scores(text)["compound"])


@lru_cache(maxsize=1)
def default_scorer() -> SentimentScorer:
    return VaderScorer()


def score_turn(transcript: str | None, scorer: SentimentScorer | None = None) -> float | None:
    """The compound score of one turn's words; None for a turn without words, which then counts
    for nothing in the conversation's mean."""
    text = (transcript or "").strip()
    if not text:
        return None
    return (scorer or default_scorer()).score(text)
