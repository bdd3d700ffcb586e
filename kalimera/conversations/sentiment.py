"""Sentiment of a conversation, from its caller-side (``input``) transcripts.

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


class Sentiment(StrEnum):
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


def label(score: float | None) -> Sentiment:
    if score is None:
        return Sentiment.UNKNOWN
    if score >= POSITIVE_AT:
        return Sentiment.POSITIVE
    if score <= NEGATIVE_AT:
        return Sentiment.NEGATIVE
    return Sentiment.NEUTRAL


def assess(
    transcripts: list[str], scorer: SentimentScorer | None = None
) -> tuple[Sentiment, float | None]:
    """Label and score of the caller's transcripts taken together; ``unknown`` without text."""
    text = "\n".join(t.strip() for t in transcripts if t and t.strip())
    if not text:
        return Sentiment.UNKNOWN, None
    score = (scorer or default_scorer()).score(text)
    return label(score), score
