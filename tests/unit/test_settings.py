import base64

import pytest

from kalimera.settings import Settings, SettingsError, load_settings

GOOD_KEY = base64.b64encode(b"k" * 32).decode()
PRODUCTION = {
    "KALIMERA_ENV": "production",
    "DATABASE_URL": "postgresql://u:hunter2-db@db/kalimera",
    "REDIS_URL": "redis://:hunter2-redis@cache:6380/0",
    "KALIMERA_STORAGE": "UseDevelopmentStorage=true",
    "KALIMERA_ENCRYPTION_KEY": GOOD_KEY,
}


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in (*PRODUCTION, "KALIMERA_ENCRYPTION_KEY_OLD", "KALIMERA_STORAGE__blobServiceUri"):
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def test_production_refuses_to_start_without_secrets_and_names_them(
    env: pytest.MonkeyPatch,
) -> None:
    env.setenv("KALIMERA_ENV", "production")
    with pytest.raises(SettingsError) as err:
        load_settings()
    for name in ("DATABASE_URL", "REDIS_URL", "KALIMERA_STORAGE", "KALIMERA_ENCRYPTION_KEY"):
        assert name in str(err.value)


def test_a_malformed_key_is_named_and_never_echoed(env: pytest.MonkeyPatch) -> None:
    for name, value in PRODUCTION.items():
        env.setenv(name, value)
    env.setenv("KALIMERA_ENCRYPTION_KEY", "not-a-key-SECRETVALUE")
    with pytest.raises(SettingsError) as err:
        load_settings()
    assert "KALIMERA_ENCRYPTION_KEY" in str(err.value)
    assert "SECRETVALUE" not in str(err.value)
    assert "hunter2" not in str(err.value)


def test_secrets_never_show_in_the_settings_repr(env: pytest.MonkeyPatch) -> None:
    for name, value in PRODUCTION.items():
        env.setenv(name, value)
    settings = load_settings()
    assert "hunter2" not in repr(settings)
    assert GOOD_KEY not in repr(settings)


def test_development_fills_local_defaults(env: pytest.MonkeyPatch, tmp_path: object) -> None:
    env.setenv("KALIMERA_ENV", "development")
    env.setenv("KALIMERA_ENCRYPTION_KEY", GOOD_KEY)
    settings = Settings()
    assert settings.database_url is not None
    assert "127.0.0.1" in settings.database_url.get_secret_value()
    assert settings.redis_url is not None
    assert settings.storage_connection_string is not None


def test_identity_based_storage_needs_no_connection_string(env: pytest.MonkeyPatch) -> None:
    for name, value in PRODUCTION.items():
        env.setenv(name, value)
    env.delenv("KALIMERA_STORAGE")
    env.setenv("KALIMERA_STORAGE__blobServiceUri", "https://acct.blob.core.windows.net")
    settings = load_settings()
    assert settings.storage_connection_string is None
    assert settings.table_service_uri == "https://acct.table.core.windows.net"


def test_every_setting_is_documented_in_the_readme() -> None:
    from pathlib import Path

    readme = Path(__file__).resolve().parents[2].joinpath("README.md").read_text()
    for field in Settings.model_fields.values():
        alias = str(field.validation_alias)
        name = alias.split("__")[-1] if "__" in alias else alias
        assert name in readme, f"{alias} is not in the README's settings table"
