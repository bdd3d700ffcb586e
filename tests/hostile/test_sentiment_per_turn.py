"""A turn's sentiment work is that turn's words alone: each caller turn with words is scored once
when it is ingested, and the conversation's sentiment is the mean of those scores, whatever its
length. Turns without words (most output turns, wordless input turns) score nothing."""

from __future__ import annotations

from statistics import fmean

import pytest

from kalimera.conversations import sentiment
from kalimera.conversations.ingest import Outcome
from tests.support.audio_fixtures import wav_bytes
from tests.support.calls import Call, ingest, put_blob, query, record_texts

Turn = tuple[int, str, str | None]


@pytest.fixture
def scored(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every text the scorer is given, in order."""
    return record_texts(monkeypatch, sentiment.default_scorer(), "score")


def _ingest(call: Call, turns: list[Turn]) -> None:
    for seq, direction, words in turns:
        name = call.name(seq, direction, "wav")
        put_blob(call.settings, name, wav_bytes(0.5), {"transcript": words} if words else {})
        assert ingest(call.settings, name).outcome is Outcome.INGESTED


def _mood(call: Call) -> tuple[str, float | None]:
    conversation = call.conversation()
    assert conversation is not None
    return conversation["sentiment"], conversation["sentiment_score"]


def _expected(words: list[str]) -> tuple[str, float]:
    vader = sentiment.VaderScorer()
    score = fmean(vader.score(w) for w in words)
    if score >= sentiment.POSITIVE_AT:
        return "positive", score
    if score <= sentiment.NEGATIVE_AT:
        return "negative", score
    return "neutral", score


def test_each_caller_turn_is_scored_once_by_its_own_words(call: Call, scored: list[str]) -> None:
    _ingest(
        call,
        [
            (1, "input", "I love this service, it is great"),
            (2, "output", "Glad to hear that"),
            (3, "input", None),
            (4, "input", "but the wait was awful!"),
            (5, "input", None),
        ],
    )
    assert scored == ["I love this service, it is great", "but the wait was awful!"]
    label, score = _mood(call)
    assert score is not None
    assert (label, pytest.approx(score)) == _expected(scored)


def test_a_long_conversation_scores_only_the_new_turn(call: Call, scored: list[str]) -> None:
    words = [f"turn {i}: the agent was {'helpful' if i % 3 else 'rude'}" for i in range(40)]
    _ingest(call, [(i + 1, "input", w) for i, w in enumerate(words)])
    assert scored == words  # 40 turns, 40 scorings of one turn each: never the whole call again
    label, score = _mood(call)
    assert score is not None
    assert (label, pytest.approx(score)) == _expected(words)


def test_new_words_for_a_turn_replace_its_score(call: Call) -> None:
    _ingest(call, [(1, "input", "this is wonderful, thank you"), (2, "input", "fine")])
    assert _mood(call)[0] == "positive"
    _ingest(call, [(1, "input", "this is terrible and I hate it")])
    label, score = _mood(call)
    assert score is not None
    assert (label, pytest.approx(score)) == _expected(["this is terrible and I hate it", "fine"])


def test_a_call_without_caller_words_is_unknown(call: Call, scored: list[str]) -> None:
    _ingest(call, [(1, "output", "Hello, how can I help?"), (2, "input", None)])
    assert _mood(call) == ("unknown", None)
    assert scored == []


def test_turns_from_before_per_turn_scores_are_scored_once_by_the_next_turn(
    call: Call, scored: list[str]
) -> None:
    _ingest(call, [(1, "input", "great, really great"), (2, "input", "awful, just awful")])
    # As migration 0013 leaves the turns ingested before it: words, no score, ingested earlier.
    query(
        call.settings,
        "UPDATE kalimera_recordings SET sentiment_score = NULL, ingested_at = '2020-01-01'"
        " WHERE tenant_id = %(t)s AND conversation_id = %(c)s RETURNING seq",
        {"t": call.tenant.id, "c": call.conversation_id},
    )
    scored.clear()
    _ingest(call, [(3, "input", "okay I guess")])
    assert sorted(scored) == sorted(["great, really great", "awful, just awful", "okay I guess"])
    scored.clear()
    _ingest(call, [(4, "input", "thanks")])
    assert scored == ["thanks"]
    label, score = _mood(call)
    assert score is not None
    words = ["great, really great", "awful, just awful", "okay I guess", "thanks"]
    assert (label, pytest.approx(score)) == _expected(words)
