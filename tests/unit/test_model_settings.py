"""The model's settings (docs/analysis.md, "Choosing a model"): one model, named, or none; a
conflict or a missing name stops startup with a message that names the settings."""

from __future__ import annotations

from decimal import Decimal

import pytest

from kalimera.llm import build_chat_model
from kalimera.settings import SettingsError, load_settings

DEV = {"KALIMERA_ENV": "development"}


@pytest.fixture(autouse=True)
def _no_model_in_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("ENDPOINT", "BASE_URL", "API_KEY", "MODEL", "PRICE_INPUT", "PRICE_OUTPUT"):
        monkeypatch.delenv(f"KALIMERA_LLM_{name}", raising=False)


def test_no_model_configured_builds_no_analyser() -> None:
    settings = load_settings(**DEV)
    assert not settings.llm_configured
    assert build_chat_model(settings) is None


def test_an_endpoint_and_a_base_url_together_are_refused_naming_both() -> None:
    with pytest.raises(SettingsError) as err:
        load_settings(
            **DEV,
            KALIMERA_LLM_ENDPOINT="https://kalimera.openai.azure.com",
            KALIMERA_LLM_BASE_URL="http://127.0.0.1:11434/v1",
            KALIMERA_LLM_MODEL="gpt-4.1-mini",
        )
    assert "KALIMERA_LLM_ENDPOINT" in str(err.value)
    assert "KALIMERA_LLM_BASE_URL" in str(err.value)


@pytest.mark.parametrize(
    "where",
    [
        {"KALIMERA_LLM_ENDPOINT": "https://kalimera.openai.azure.com"},
        {"KALIMERA_LLM_BASE_URL": "http://127.0.0.1:11434/v1"},
    ],
)
def test_a_model_server_without_a_model_name_is_refused(where: dict[str, str]) -> None:
    with pytest.raises(SettingsError, match="KALIMERA_LLM_MODEL is required"):
        load_settings(**DEV, **where)


def test_a_model_name_without_a_server_is_refused() -> None:
    with pytest.raises(SettingsError, match="KALIMERA_LLM_MODEL is set without"):
        load_settings(**DEV, KALIMERA_LLM_MODEL="gpt-4.1-mini")


def test_the_api_key_never_shows_in_the_settings_repr() -> None:
    settings = load_settings(
        **DEV,
        KALIMERA_LLM_BASE_URL="http://127.0.0.1:11434/v1",
        KALIMERA_LLM_MODEL="llama3.1",
        KALIMERA_LLM_API_KEY="sk-hunter2-secret",
    )
    assert "hunter2" not in repr(settings)


def test_prices_are_decimals_and_a_negative_one_is_refused() -> None:
    settings = load_settings(
        **DEV, KALIMERA_LLM_PRICE_INPUT="0.40", KALIMERA_LLM_PRICE_OUTPUT="1.6"
    )
    assert (settings.llm_price_input, settings.llm_price_output) == (
        Decimal("0.40"),
        Decimal("1.6"),
    )
    with pytest.raises(SettingsError, match="KALIMERA_LLM_PRICE_INPUT"):
        load_settings(**DEV, KALIMERA_LLM_PRICE_INPUT="-1")


def test_the_defaults_are_the_documented_ones() -> None:
    settings = load_settings(**DEV)
    assert settings.llm_max_input_chars == 48_000
    assert settings.llm_concurrency == 4
    assert settings.llm_timeout_seconds == 60
    assert settings.llm_price_input == settings.llm_price_output == 0
