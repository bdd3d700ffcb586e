"""The conversation's sentiment stays what it was defined as, VADER over the caller's transcripts
together, while turns without words (most output turns, wordless input turns) score nothing."""

from __future__ import annotations

import pytest

from kalimera.conversations import sentiment
from kalimera.conversations.ingest import Outcome
from kalimera.settings import Settings
from tests.conftest import Tenant
from tests.conversations.audio_fixtures import wav_bytes
from tests.conversations.conftest import Call, ingest, put_blob


@pytest.fixture
def call(settings: Settings, tenant: Tenant) -> Call:
    return Call(settings, tenant)


def test_the_sentiment_is_the_callers_words_scored_together(
    call: Call, monkeypatch: pytest.MonkeyPatch
) -> None:
    turns = [
        (1, "input", "I love this service, it is great"),
        (2, "output", "Glad to hear that"),
        (3, "input", None),
        (4, "input", "but the wait was awful!"),
        (5, "input", None),
    ]
    scored: list[list[str]] = []
    real_assess = sentiment.assess

    def counting(transcripts: list[str], scorer: object = None) -> object:
        scored.append(transcripts)
        return real_assess(transcripts)

    monkeypatch.setattr(sentiment, "assess", counting)
    for seq, direction, words in turns:
        name = call.name(seq, direction, "wav")
        put_blob(call.settings, name, wav_bytes(0.5), {"transcript": words} if words else {})
        assert ingest(call.settings, name).outcome is Outcome.INGESTED
    conversation = call.conversation()
    assert conversation is not None
    expected = real_assess([w for _, d, w in turns if d == "input" and w])
    assert (conversation["sentiment"], conversation["sentiment_score"]) == (
        expected[0].value,
        expected[1],
    )
    assert len(scored) == 2  # the two input turns with words; not the wordless ones
