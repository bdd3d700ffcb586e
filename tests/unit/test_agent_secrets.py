"""Which configuration names are secrets, and that a sealed value opens only for its own agent
(what the API and the stores do with them: tests/agents/test_secrets.py)."""

import uuid

import pytest

from kalimera.agents.secrets import Cipher, is_secret_name


def test_the_secret_rule_matches_names_at_any_case_and_spelling() -> None:
    for name in (
        "ApiKey",
        "api_key",
        "SPEECH-KEY",
        "ClientSecret",
        "password",
        "AccessToken",
        "ConnectionString",
        "connection_string",
        "instrumentationKey",
    ):
        assert is_secret_name(name), name
    for name in ("VoiceId", "Region", "Endpoint", "Name"):
        assert not is_secret_name(name), name
    assert is_secret_name("SasUrl", frozenset({"sasurl"}))


def test_a_ciphertext_does_not_decrypt_for_another_agent() -> None:
    cipher = Cipher(b"k" * 32)
    tenant, one, two = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    sealed = cipher.encrypt("value", tenant.bytes + one.bytes)
    assert cipher.decrypt(sealed, tenant.bytes + one.bytes) == "value"
    with pytest.raises(RuntimeError):
        cipher.decrypt(sealed, tenant.bytes + two.bytes)
