"""The one search pattern every listing uses: the term anywhere, its LIKE wildcards taken
literally (whether a listing finds what it should is tested against Postgres in each domain)."""

import pytest

from kalimera.paging import contains


@pytest.mark.parametrize(
    ("term", "pattern"),
    [
        ("maria", "%maria%"),
        ("  maria  ", "%maria%"),
        ("50%", "%50\\%%"),
        ("a_b", "%a\\_b%"),
        ("c:\\x", "%c:\\\\x%"),
        ("\\%_", "%\\\\\\%\\_%"),
    ],
)
def test_a_term_matches_anywhere_with_its_wildcards_taken_literally(
    term: str, pattern: str
) -> None:
    assert contains(term) == pattern


@pytest.mark.parametrize("term", [None, "", "   "])
def test_no_term_or_a_blank_one_is_no_search(term: str | None) -> None:
    assert contains(term) is None
