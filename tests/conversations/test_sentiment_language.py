"""Without a model, VADER scores English caller turns only (docs/analysis.md): a Greek call is
``unknown``, never a false ``neutral``; a call of both is scored on its English turns; and a turn
is looked at once, however long the call and whatever its language."""

from __future__ import annotations

from statistics import fmean
from urllib.parse import quote

import pytest

from kalimera.conversations import sentiment
from kalimera.conversations.ingest import Outcome
from tests.support.audio_fixtures import wav_bytes
from tests.support.calls import Call, ingest, put_blob, query, record_texts

GREEK_CALLER = [
    "Καλησπέρα, θα ήθελα να κλείσω ένα τραπέζι για τέσσερα άτομα την Παρασκευή.",
    "Είστε πολύ ευγενικοί, σας ευχαριστώ πάρα πολύ!",
    "Η αναμονή ήταν απαίσια όμως, περίμενα είκοσι λεπτά.",
]
ENGLISH_CALLER = [
    "Hi, I'd like to book a table for four on Friday evening.",
    "You are so kind, thank you very much!",
]


@pytest.fixture
def examined(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every text whose language is asked, in order."""
    return record_texts(monkeypatch, sentiment, "is_english")


def _ingest(call: Call, turns: list[tuple[int, str, str]]) -> None:
    for seq, direction, words in turns:
        name = call.name(seq, direction, "wav")
        put_blob(call.settings, name, wav_bytes(0.5), {"transcript": quote(words, safe="")})
        assert ingest(call.settings, name).outcome is Outcome.INGESTED


def _mood(call: Call) -> tuple[str, float | None]:
    conversation = call.conversation()
    assert conversation is not None
    return conversation["sentiment"], conversation["sentiment_score"]


def test_a_greek_call_is_unknown_not_neutral(call: Call) -> None:
    _ingest(call, [(i + 1, "input", words) for i, words in enumerate(GREEK_CALLER)])
    assert _mood(call) == ("unknown", None)


def test_an_english_call_is_scored_by_vader(call: Call) -> None:
    _ingest(call, [(i + 1, "input", words) for i, words in enumerate(ENGLISH_CALLER)])
    label, score = _mood(call)
    vader = sentiment.VaderScorer()
    assert score == pytest.approx(fmean(vader.score(w) for w in ENGLISH_CALLER))
    assert label == "positive"


def test_a_call_in_both_languages_is_scored_on_its_english_turns(call: Call) -> None:
    _ingest(
        call,
        [
            (1, "input", GREEK_CALLER[2]),  # negative, in Greek: not counted
            (2, "input", ENGLISH_CALLER[1]),
            (3, "output", "Παρακαλώ, καλή σας βραδιά."),
        ],
    )
    label, score = _mood(call)
    assert score == pytest.approx(sentiment.VaderScorer().score(ENGLISH_CALLER[1]))
    assert label == "positive"


def test_a_long_greek_call_looks_at_each_turn_once(call: Call, examined: list[str]) -> None:
    words = [f"{GREEK_CALLER[i % 3]} ({i})" for i in range(30)]
    _ingest(call, [(i + 1, "input", w) for i, w in enumerate(words)])
    assert examined == words  # never the earlier turns again, though they have no score
    assert _mood(call) == ("unknown", None)


def test_a_greek_turn_from_before_per_turn_scores_is_looked_at_once(
    call: Call, examined: list[str]
) -> None:
    _ingest(call, [(1, "input", GREEK_CALLER[0]), (2, "input", ENGLISH_CALLER[0])])
    # As migration 0013 leaves the turns ingested before it: words, no score, ingested earlier.
    query(
        call.settings,
        "UPDATE kalimera_recordings SET sentiment_score = NULL, ingested_at = '2020-01-01'"
        " WHERE tenant_id = %(t)s AND conversation_id = %(c)s RETURNING seq",
        {"t": call.tenant.id, "c": call.conversation_id},
    )
    examined.clear()
    _ingest(call, [(3, "input", ENGLISH_CALLER[1])])
    assert sorted(examined) == sorted([GREEK_CALLER[0], *ENGLISH_CALLER])
    examined.clear()
    _ingest(call, [(4, "input", GREEK_CALLER[1])])
    assert examined == [GREEK_CALLER[1]]
    vader = sentiment.VaderScorer()
    assert _mood(call)[1] == pytest.approx(fmean(vader.score(w) for w in ENGLISH_CALLER))
