"""The optional Azure OpenAI account (infra/app/openai.bicep, ``deployOpenAi``): keys off, the
app's identity allowed to call the model and nothing more, and the settings that point the app
at it, which the app reads as its Azure mode (docs/analysis.md, "Choosing a model")."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from kalimera.llm import COGNITIVE_SCOPE, build_chat_model
from kalimera.settings import load_settings
from tests.infra.bicep import INFRA, app_settings, of_type, scope_of
from tests.infra.test_app_settings import app_reads, resolved

OPENAI_USER = "5e0bd9bd-7b93-4f28-af87-19fc36ad61bd"  # Cognitive Services OpenAI User
MAIN = (INFRA / "main.bicep").read_text()


def test_the_account_is_created_only_when_asked_for() -> None:
    assert "param deployOpenAi bool = false" in MAIN
    assert "module openAi 'app/openai.bicep' = if (deployOpenAi) {" in MAIN
    params = json.loads((INFRA / "main.parameters.json").read_text())["parameters"]
    assert params["deployOpenAi"]["value"] == "${KALIMERA_DEPLOY_OPENAI=false}"
    for name in ("openAiModelName", "openAiModelVersion", "openAiDeploymentSku", "openAiCapacity"):
        assert name in params, name


def test_the_account_takes_entra_tokens_only() -> None:
    (account,) = of_type("Microsoft.CognitiveServices/accounts")
    assert account.props["kind"] == "OpenAI"
    assert account.props["properties.disableLocalAuth"] == "true"
    # Entra tokens are accepted on the account's own subdomain only.
    assert account.props["properties.customSubDomainName"] == "name"
    assert account.props["properties.publicNetworkAccess"] == (
        "privateNetworking ? 'Disabled' : 'Enabled'"
    )
    (deployment,) = of_type("Microsoft.CognitiveServices/accounts/deployments")
    assert deployment.props["properties.model.format"] == "OpenAI"
    assert deployment.props["sku.capacity"] == "capacity"


def test_the_app_may_call_the_model_and_nothing_more() -> None:
    (role,) = [
        a
        for a in of_type("Microsoft.Authorization/roleAssignments")
        if "cognitiveServicesOpenAiUser" in a.props["properties.roleDefinitionId"]
    ]
    assert role.props["properties.principalId"] == "appPrincipalId"
    assert role.props["properties.principalType"] == "ServicePrincipal"
    assert scope_of(role).type == "Microsoft.CognitiveServices/accounts"
    assert f"cognitiveServicesOpenAiUser: '{OPENAI_USER}'" in role.file.read_text()


class _Credential:
    def get_token(self, *scopes: str) -> Any:
        from azure.core.credentials import AccessToken

        assert scopes == (COGNITIVE_SCOPE,)
        return AccessToken("token", int(time.time()) + 3600)


def test_the_app_reads_the_settings_infra_sets_as_azure_openai(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    llm = app_settings("llmSettings")
    assert set(llm) == {"KALIMERA_LLM_ENDPOINT", "KALIMERA_LLM_MODEL"}
    assert set(llm) <= app_reads()
    assert llm == {"KALIMERA_LLM_ENDPOINT": "llmEndpoint", "KALIMERA_LLM_MODEL": "llmModel"}
    assert "llmEndpoint: deployOpenAi ? openAi.outputs.endpoint : ''" in MAIN
    assert "llmModel: deployOpenAi ? openAi.outputs.deploymentName : ''" in MAIN
    function = (INFRA / "app" / "function.bicep").read_text()
    assert "empty(llmEndpoint) ? [] : llmSettings" in function
    assert not any(name.startswith("KALIMERA_LLM_") for name in app_settings())
    # What ARM renders: the account's endpoint and the deployment's name.
    for name in app_reads():
        monkeypatch.delenv(name, raising=False)
    for name, expression in app_settings().items():
        monkeypatch.setenv(name, resolved(name, expression))
    monkeypatch.setenv("KALIMERA_LLM_ENDPOINT", "https://oai-abc123.openai.azure.com/")
    monkeypatch.setenv("KALIMERA_LLM_MODEL", "gpt-4.1-mini")
    settings = load_settings()
    assert settings.llm_configured
    assert settings.llm_api_key is None  # no key anywhere: the identity's token
    assert build_chat_model(settings, credential=_Credential()) is not None
