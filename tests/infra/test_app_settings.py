"""infra/ and the app agree on settings, in both directions.

Every setting the app needs in production is set by infra/app/function.bicep (the app starts on
exactly those), and every setting the Bicep sets is one that the app (kalimera/settings.py), the
Functions host, or a trigger binding reads: a renamed setting fails here, not on Azure."""

import re
from typing import Any

import pytest

from kalimera.settings import Settings, load_settings
from tests.infra.bicep import INFRA, app_settings

# The storage connection the blob trigger binds to (architecture.md); the host reads its
# identity-based form <NAME>__blobServiceUri, __queueServiceUri, __credential, __clientId.
TRIGGER_CONNECTION = "KALIMERA_STORAGE"
IDENTITY_SUFFIXES = (
    "blobServiceUri",
    "queueServiceUri",
    "tableServiceUri",
    "credential",
    "clientId",
)
# Read by the Functions host itself, not by our code.
HOST_SETTINGS = {
    *(f"AzureWebJobsStorage__{s}" for s in IDENTITY_SUFFIXES),
    "APPLICATIONINSIGHTS_AUTHENTICATION_STRING",
}
VALID_KEY = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="
CLIENT_ID = "00000000-0000-0000-0000-000000000000"
# Literal variables of main.bicep (passed to the function module under the same names).
MAIN_VARS = dict(re.findall(r"^var (\w+) = '([^'$]*)'$", (INFRA / "main.bicep").read_text(), re.M))


def app_reads() -> set[str]:
    return {
        str(field.validation_alias)
        for field in Settings.model_fields.values()
        if field.validation_alias is not None
    }


def resolved(name: str, expression: str) -> str:
    """A plausible deployed value for a Bicep value expression (what ARM would render)."""
    if expression.startswith("'@Microsoft.KeyVault("):
        return VALID_KEY  # the platform resolves the reference before the app sees it
    ternary = re.fullmatch(r"\w+ \? ('[^']*') : '[^']*'", expression)
    if ternary:
        expression = ternary[1]
    if expression.startswith("'"):
        return re.sub(r"\$\{[^}]*\}", "x", expression.strip("'"))
    if name.endswith("ServiceUri"):
        kind = name.rsplit("__", 1)[1].removesuffix("ServiceUri")
        return f"https://acct.{kind}.core.windows.net/"
    if expression == "identityClientId":
        return CLIENT_ID
    if expression == "appi.properties.ConnectionString":
        return "InstrumentationKey=00000000-0000-0000-0000-000000000000;IngestionEndpoint=https://127.0.0.1:1/"
    assert expression in MAIN_VARS, f"teach resolved() what {name} = {expression} renders to"
    return MAIN_VARS[expression]


def binding_settings(indexed: dict[str, dict[str, Any]]) -> tuple[set[str], set[str]]:
    """(connection names, %NAME% app-setting expressions) used by the functions' bindings."""
    connections, expressions = set(), set()
    for function in indexed.values():
        for binding in function["bindings"]:
            if binding.get("connection"):
                connections.add(binding["connection"])
            for value in binding.values():
                if isinstance(value, str):
                    expressions.update(re.findall(r"%([A-Za-z0-9_]+)%", value))
    return connections, expressions


def test_the_app_starts_in_production_on_exactly_the_settings_infra_sets(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in app_reads():
        monkeypatch.delenv(name, raising=False)
    for name, expression in app_settings().items():
        monkeypatch.setenv(name, resolved(name, expression))
    settings = load_settings()
    assert settings.env.value == "production"
    assert settings.db_entra_auth
    assert settings.redis_entra_auth
    assert settings.storage_connection_string is None  # identity-based, no account key
    assert settings.storage_blob_uri
    assert settings.managed_identity_client_id


def test_every_setting_infra_sets_is_read_by_the_app_or_the_host(
    indexed_functions: dict[str, dict[str, Any]],
) -> None:
    connections, expressions = binding_settings(indexed_functions)
    connection_settings = {
        f"{c}__{s}" for c in {*connections, TRIGGER_CONNECTION} for s in IDENTITY_SUFFIXES
    }
    known = app_reads() | HOST_SETTINGS | connection_settings | expressions
    unread = sorted(set(app_settings()) - known)
    assert unread == [], f"infra/app/function.bicep sets settings nothing reads: {unread}"


def test_every_binding_setting_is_set_by_infra(
    indexed_functions: dict[str, dict[str, Any]],
) -> None:
    connections, expressions = binding_settings(indexed_functions)
    bicep = set(app_settings())
    missing = sorted(e for e in expressions if e not in bicep)
    assert missing == [], f"bindings read %NAME% settings infra/ does not set: {missing}"
    for connection in connections:
        # An identity-based blob trigger needs both (poison blobs go to a queue).
        for suffix in ("blobServiceUri", "queueServiceUri", "credential", "clientId"):
            assert f"{connection}__{suffix}" in bicep, f"{connection}__{suffix}"
