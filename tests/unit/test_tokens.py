"""API tokens without the app: header parsing, default scopes, the checksum that refuses a
mistyped token before any lookup, and the cache's bound on unknown tokens."""

import uuid

import pytest

from kalimera.auth import (
    Principal,
    Scope,
    TokenCache,
    bearer_token,
    new_token,
    parse_scopes,
    well_formed,
)


@pytest.mark.parametrize(
    ("header", "token"),
    [
        ("Bearer abc", "abc"),
        ("bearer  abc ", "abc"),
        ("abc", "abc"),
        ("", None),
        ("Basic abc", None),
    ],
)
def test_bearer_token_parsing(header: str, token: str | None) -> None:
    assert bearer_token(header) == token


def test_default_scopes_exclude_the_runtime_export() -> None:
    assert Scope.AGENTS_RUNTIME not in parse_scopes("")


def test_a_new_token_carries_a_checksum_that_catches_any_one_changed_character() -> None:
    token = new_token()
    assert well_formed(token)
    assert len({new_token() for _ in range(100)}) == 100
    for i in range(4, len(token)):
        changed = "A" if token[i] != "A" else "B"
        assert not well_formed(token[:i] + changed + token[i + 1 :])
    for malformed in ("", "klm_", "klm_nope", token[:-1], token + "x", "ghp_" + token[4:]):
        assert not well_formed(malformed)


def test_the_token_cache_evicts_the_least_recent_unknown_tokens_and_keeps_known_ones() -> None:
    cache = TokenCache(60)
    cache.MAX_UNKNOWN = 100
    known = Principal(token_id=uuid.uuid4(), tenant_id=uuid.uuid4(), scopes=frozenset())
    cache.put(b"known", known)
    cache.put(b"unknown-0", None)
    for i in range(1, 1_000):
        cache.put(f"unknown-{i}".encode(), None)
        assert cache.get(b"unknown-0") == (True, None)  # seen again: most recent, never evicted
    assert cache.get(b"known") == (True, known)
    assert len(cache) == 101
    assert cache.get(b"unknown-1") == (False, None)
    assert cache.get(b"unknown-999") == (True, None)
