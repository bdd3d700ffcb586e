"""Every setting the app reads, with its environment name and default.

Nothing else in the package reads ``os.environ``. In ``production`` (the default, and what
``function_app.py`` runs with) a missing or malformed secret stops startup with a message naming
the setting; in ``development`` (``kalimera run``) local defaults are filled in.
"""

import base64
import binascii
import os
import re
import secrets
from decimal import Decimal
from enum import StrEnum
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Self

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

LOCAL_DIR = Path(os.environ.get("KALIMERA_LOCAL_DIR", ".local"))
DEV_DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/kalimera"
DEV_REDIS_URL = "redis://127.0.0.1:6379/0"
EXACT_ORIGIN = re.compile(r"https?://[a-z0-9.-]+(:[0-9]{1,5})?")  # scheme://host[:port]


class Environment(StrEnum):
    DEVELOPMENT = "development"
    PRODUCTION = "production"


class Settings(BaseSettings):
    """The app's configuration; see the settings table in the README."""

    model_config = SettingsConfigDict(case_sensitive=False, extra="ignore", frozen=True)

    env: Environment = Field(Environment.PRODUCTION, validation_alias="KALIMERA_ENV")
    database_url: SecretStr | None = Field(None, validation_alias="DATABASE_URL")
    db_pool_min: int = Field(1, ge=0, validation_alias="KALIMERA_DB_POOL_MIN")
    db_pool_max: int = Field(8, ge=1, validation_alias="KALIMERA_DB_POOL_MAX")
    db_timeout_seconds: float = Field(1.5, gt=0, validation_alias="KALIMERA_DB_TIMEOUT_SECONDS")
    db_statement_timeout_ms: int = Field(
        15_000, ge=0, validation_alias="KALIMERA_DB_STATEMENT_TIMEOUT_MS"
    )
    db_entra_auth: bool = Field(False, validation_alias="KALIMERA_DB_ENTRA_AUTH")
    # A pooler in transaction mode sits between the app and Postgres: prepare nothing on the
    # server. Unset: yes when DATABASE_URL's port is 6432 (Azure's PgBouncer); see kalimera/db.py.
    db_transaction_pooling: bool | None = Field(
        None, validation_alias="KALIMERA_DB_TRANSACTION_POOLING"
    )
    # The role the app's transactions act as (SET LOCAL ROLE): rows, not schema; see kalimera/db.py.
    db_app_role: str | None = Field("kalimera_app", validation_alias="KALIMERA_DB_APP_ROLE")
    redis_url: SecretStr | None = Field(None, validation_alias="REDIS_URL")
    # What infra/ deploys. At 50 ms a healthy Redis was declared down whenever the event loop was
    # saturated (64 concurrent reads on a busy machine): each false alarm sends two seconds of
    # reads to Postgres (kalimera.cache's backoff). A Redis that hangs costs one request per
    # backoff this long, not every request.
    redis_timeout_ms: int = Field(250, gt=0, validation_alias="KALIMERA_REDIS_TIMEOUT_MS")
    redis_entra_auth: bool = Field(False, validation_alias="KALIMERA_REDIS_ENTRA_AUTH")
    storage_connection_string: SecretStr | None = Field(None, validation_alias="KALIMERA_STORAGE")
    storage_blob_uri: str | None = Field(None, validation_alias="KALIMERA_STORAGE__blobServiceUri")
    storage_table_uri: str | None = Field(
        None, validation_alias="KALIMERA_STORAGE__tableServiceUri"
    )
    storage_client_id: str | None = Field(None, validation_alias="KALIMERA_STORAGE__clientId")
    storage_queue_uri: str | None = Field(
        None, validation_alias="KALIMERA_STORAGE__queueServiceUri"
    )
    managed_identity_client_id: str | None = Field(None, validation_alias="AZURE_CLIENT_ID")
    voice_container: str = Field("kalimera-voice", validation_alias="KALIMERA_VOICE_CONTAINER")
    turns_table: str = Field("kalimeraturns", validation_alias="KALIMERA_TURNS_TABLE")
    encryption_key: SecretStr | None = Field(None, validation_alias="KALIMERA_ENCRYPTION_KEY")
    # Set on Azure (a Key Vault reference): API Management sends it, kalimera/gateway.py checks.
    gateway_secret: SecretStr | None = Field(None, validation_alias="KALIMERA_GATEWAY_SECRET")
    encryption_key_old: SecretStr | None = Field(
        None, validation_alias="KALIMERA_ENCRYPTION_KEY_OLD"
    )
    auth_cache_seconds: Annotated[float, Field(ge=0, le=60)] = Field(
        30.0, validation_alias="KALIMERA_AUTH_CACHE_SECONDS"
    )
    agent_cache_ttl_seconds: int = Field(3600, gt=0, validation_alias="KALIMERA_AGENT_CACHE_TTL")
    idle_minutes: int = Field(120, gt=0, validation_alias="KALIMERA_IDLE_MINUTES")
    sweep_minutes: int = Field(10, gt=0, validation_alias="KALIMERA_SWEEP_MINUTES")
    default_phone_region: str = Field("GR", validation_alias="KALIMERA_DEFAULT_PHONE_REGION")
    max_upload_bytes: int = Field(
        25 * 1024 * 1024, gt=0, validation_alias="KALIMERA_MAX_UPLOAD_BYTES"
    )
    log_level: str = Field("INFO", validation_alias="KALIMERA_LOG_LEVEL")
    # Browser origins allowed to call the API (comma-separated, exact); see kalimera/cors.py.
    cors_origins: Annotated[tuple[str, ...], NoDecode] = Field(
        (), validation_alias="KALIMERA_CORS_ORIGINS"
    )
    appinsights_connection_string: SecretStr | None = Field(
        None, validation_alias="APPLICATIONINSIGHTS_CONNECTION_STRING"
    )
    # The post-call analysis model (docs/analysis.md, "Choosing a model"): an Azure OpenAI
    # resource reached with the managed identity, or any OpenAI-compatible server with a key.
    llm_endpoint: str | None = Field(None, validation_alias="KALIMERA_LLM_ENDPOINT")
    llm_base_url: str | None = Field(None, validation_alias="KALIMERA_LLM_BASE_URL")
    llm_api_key: SecretStr | None = Field(None, validation_alias="KALIMERA_LLM_API_KEY")
    llm_model: str | None = Field(None, validation_alias="KALIMERA_LLM_MODEL")
    llm_api_version: str = Field("2024-10-21", validation_alias="KALIMERA_LLM_API_VERSION")
    llm_max_input_chars: int = Field(
        48_000, ge=1_000, validation_alias="KALIMERA_LLM_MAX_INPUT_CHARS"
    )
    llm_concurrency: int = Field(4, ge=1, le=256, validation_alias="KALIMERA_LLM_CONCURRENCY")
    llm_price_input: Decimal = Field(Decimal(0), ge=0, validation_alias="KALIMERA_LLM_PRICE_INPUT")
    llm_price_output: Decimal = Field(
        Decimal(0), ge=0, validation_alias="KALIMERA_LLM_PRICE_OUTPUT"
    )
    llm_timeout_seconds: float = Field(60.0, gt=0, validation_alias="KALIMERA_LLM_TIMEOUT_SECONDS")
    # One webhook attempt's bound (docs/webhooks.md, "Delivery"): 10 s; tests lower it.
    webhook_timeout_seconds: float = Field(
        10.0, gt=0, le=10, validation_alias="KALIMERA_WEBHOOK_TIMEOUT_SECONDS"
    )

    @field_validator("*", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        # An empty environment variable (as in local.settings.example.json) means "not set".
        return None if value == "" else value

    @field_validator("cors_origins", mode="before")
    @classmethod
    def _origins(cls, value: object) -> object:
        if value is None:
            return ()
        if isinstance(value, str):
            return tuple(o.strip().rstrip("/") for o in value.split(",") if o.strip())
        return value

    @field_validator("cors_origins")
    @classmethod
    def _exact_origins(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        bad = [o for o in value if not EXACT_ORIGIN.fullmatch(o)]
        if bad:
            msg = f"not an exact origin (scheme://host[:port], lower case, no wildcard): {bad}"
            raise ValueError(msg)
        return value

    @property
    def is_development(self) -> bool:
        return self.env is Environment.DEVELOPMENT

    @model_validator(mode="after")
    def _fill_or_refuse(self) -> Self:
        if self.is_development:
            self._fill_development_defaults()
        missing = [name for name, value in self._required().items() if not value]
        if missing:
            msg = f"missing required setting(s) for {self.env.value}: {', '.join(missing)}"
            raise ValueError(msg)
        for name, key in (
            ("KALIMERA_ENCRYPTION_KEY", self.encryption_key),
            ("KALIMERA_ENCRYPTION_KEY_OLD", self.encryption_key_old),
        ):
            if key is not None:
                decode_key(key.get_secret_value(), name)
        self._check_llm()
        return self

    def _check_llm(self) -> None:
        """One model, named: an endpoint or a base URL (not both), and the model with either."""
        if self.llm_endpoint and self.llm_base_url:
            msg = (
                "set KALIMERA_LLM_ENDPOINT (Azure OpenAI) or KALIMERA_LLM_BASE_URL "
                "(an OpenAI-compatible server), not both"
            )
            raise ValueError(msg)
        if (self.llm_endpoint or self.llm_base_url) and not self.llm_model:
            msg = (
                "KALIMERA_LLM_MODEL is required with KALIMERA_LLM_ENDPOINT or "
                "KALIMERA_LLM_BASE_URL (the deployment or model name)"
            )
            raise ValueError(msg)
        if self.llm_model and not (self.llm_endpoint or self.llm_base_url):
            msg = "KALIMERA_LLM_MODEL is set without KALIMERA_LLM_ENDPOINT or KALIMERA_LLM_BASE_URL"
            raise ValueError(msg)

    @property
    def llm_configured(self) -> bool:
        """Whether a model is configured; without one, analyses are skipped."""
        return bool(self.llm_endpoint or self.llm_base_url)

    def _required(self) -> dict[str, object]:
        return {
            "DATABASE_URL": self.database_url,
            "REDIS_URL": self.redis_url,
            "KALIMERA_STORAGE (or KALIMERA_STORAGE__blobServiceUri)": (
                self.storage_connection_string or self.storage_blob_uri
            ),
            "KALIMERA_ENCRYPTION_KEY": self.encryption_key,
        }

    def _fill_development_defaults(self) -> None:
        # The model is frozen for callers; filling local defaults happens once, here.
        if self.database_url is None:
            object.__setattr__(self, "database_url", SecretStr(DEV_DATABASE_URL))
        if self.redis_url is None:
            object.__setattr__(self, "redis_url", SecretStr(DEV_REDIS_URL))
        if self.storage_connection_string is None and self.storage_blob_uri is None:
            object.__setattr__(
                self, "storage_connection_string", SecretStr("UseDevelopmentStorage=true")
            )
        if self.encryption_key is None:
            object.__setattr__(self, "encryption_key", SecretStr(local_encryption_key()))

    @property
    def table_service_uri(self) -> str | None:
        """The table endpoint; derived from the blob one when only that is set."""
        if self.storage_table_uri:
            return self.storage_table_uri
        if self.storage_blob_uri:
            return self.storage_blob_uri.replace(".blob.", ".table.")
        return None

    @property
    def queue_service_uri(self) -> str | None:
        """The queue endpoint (the analysis queue's); derived from the blob one when only that
        is set."""
        if self.storage_queue_uri:
            return self.storage_queue_uri
        if self.storage_blob_uri:
            return self.storage_blob_uri.replace(".blob.", ".queue.")
        return None


def decode_key(value: str, name: str) -> bytes:
    """Decode a base64 AES-256 key, or fail naming the setting (never echoing the value)."""
    try:
        raw = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raw = b""
    if len(raw) != 32:
        msg = f"{name} must be 32 bytes encoded as base64 (e.g. `openssl rand -base64 32`)"
        raise ValueError(msg)
    return raw


def local_encryption_key() -> str:
    """The development key, generated once under ``.local/`` so local data stays readable."""
    path = LOCAL_DIR / "encryption.key"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(base64.b64encode(secrets.token_bytes(32)).decode())
        path.chmod(0o600)
    return path.read_text().strip()


class SettingsError(RuntimeError):
    """A setting is missing or malformed; the message names it and never echoes a value."""


def load_settings(**overrides: object) -> Settings:
    """Read the settings, turning pydantic's error (which echoes inputs, secrets included) into
    one that only names the settings at fault."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or 'settings'}: {err['msg']}"
            for err in exc.errors(include_input=False, include_url=False)
        )
        raise SettingsError(f"invalid Kalimera settings: {problems}") from None


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read once from the environment."""
    return load_settings()
