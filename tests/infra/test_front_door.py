"""Own checks for the Azure front door, audit and nothing-lost changes (issue 13, items 7-9),
each on the Bicep as tree-sitter reads it: checkov has no rule for any of them.

- the Function App refuses all but API Management's region and Event Grid, and the app checks
  API Management's gateway secret;
- every resource that holds or moves data sends its logs to Log Analytics;
- the app's storage roles are on its containers, queue and table, never the account;
- Event Grid dead-letters what it cannot deliver;
- the secrets live in Key Vault, written by provision only while absent, so a rotation stays."""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

import pytest

from kalimera import gateway
from kalimera.storage import (
    ANALYSIS_POISON_QUEUE,
    ANALYSIS_QUEUE,
    WEBHOOKS_POISON_QUEUE,
    WEBHOOKS_QUEUE,
)
from tests.infra.bicep import INFRA, ROOT, app_settings, of_type, resources, scope_of, symbol

APP = INFRA / "app"
# Every resource type that holds or moves data, and so needs an audit trail.
AUDITED = {
    "Microsoft.KeyVault/vaults",
    "Microsoft.Storage/storageAccounts/blobServices",
    "Microsoft.Storage/storageAccounts/queueServices",
    "Microsoft.Storage/storageAccounts/tableServices",
    "Microsoft.DBforPostgreSQL/flexibleServers",
    "Microsoft.ApiManagement/service",
    "Microsoft.Web/sites",
    "Microsoft.EventGrid/systemTopics",
    "Microsoft.CognitiveServices/accounts",
}
STORAGE_DATA_ROLES = {
    "storageBlobDataOwner",
    "storageBlobDataContributor",
    "storageQueueDataContributor",
    "storageTableDataContributor",
}
NARROW_STORAGE_SCOPES = {
    "Microsoft.Storage/storageAccounts/blobServices/containers",
    "Microsoft.Storage/storageAccounts/queueServices/queues",
    "Microsoft.Storage/storageAccounts/tableServices/tables",
}


def site():  # type: ignore[no-untyped-def]
    (found,) = of_type("Microsoft.Web/sites")
    return found


def test_the_function_app_refuses_all_but_api_management_and_event_grid() -> None:
    config = {k: v for k, v in site().props.items() if k.startswith("properties.siteConfig.")}
    assert config["properties.siteConfig.ipSecurityRestrictionsDefaultAction"] == "Deny"
    assert config["properties.siteConfig.ipSecurityRestrictions"] == "accessRestrictions"
    function = (APP / "function.bicep").read_text()
    rules = function[function.index("var accessRestrictions = [") :]
    rules = rules[: rules.index("\n]\n")]
    assert rules.count("action: 'Allow'") == 2
    assert "action: 'Deny'" not in rules
    assert "tag: 'ServiceTag'" in rules
    assert "ipAddress: frontDoorServiceTag" in rules
    assert "ipAddress: 'AzureEventGrid'" in rules  # the blob trigger's webhook stays reachable
    assert not re.search(r"ipAddress: '(\d|Internet|\*)", rules)
    # APIM Consumption calls from its region's Azure addresses (no fixed or tagged egress).
    assert "frontDoorServiceTag: 'AzureCloud.${location}'" in (INFRA / "main.bicep").read_text()
    # Deployments use Entra, not publishing passwords.
    policies = of_type("Microsoft.Web/sites/basicPublishingCredentialsPolicies")
    assert {(p.props["name"], p.props["properties.allow"]) for p in policies} == {
        ("ftp", "false"),
        ("scm", "false"),
    }


def test_api_management_sends_the_gateway_secret_the_app_checks() -> None:
    policy = (INFRA / "apim" / "policy.xml").read_text()
    header = re.search(
        r'<set-header name="([^"]+)" exists-action="override">\s*'
        r"<value>\{\{kalimera-gateway-secret\}\}</value>",
        policy,
    )
    assert header, "policy.xml must set the gateway header from the named value"
    assert header[1].lower().encode() == gateway.HEADER
    (named,) = of_type("Microsoft.ApiManagement/service/namedValues")
    assert named.props["name"] == "kalimera-gateway-secret"
    assert named.props["properties.secret"] == "true"
    assert "secrets/${gatewaySecretName}" in named.props["properties.keyVault.secretIdentifier"]
    assert app_settings()["KALIMERA_GATEWAY_SECRET"] == (
        "'@Microsoft.KeyVault(VaultName=${keyVaultName};SecretName=${gatewaySecretName})'"
    )
    # API Management may read that one secret, not the vault.
    reader = symbol(APP / "apim.bicep", "apimSecretReader")
    assert scope_of(reader).type == "Microsoft.KeyVault/vaults/secrets"
    assert gateway.SETTING in app_settings()


@pytest.mark.parametrize("type_", sorted(AUDITED))
def test_every_resource_that_holds_data_sends_its_logs_to_log_analytics(type_: str) -> None:
    targets = of_type(type_)
    assert targets, type_
    settings = of_type("Microsoft.Insights/diagnosticSettings")
    for target in targets:
        mine = [d for d in settings if d.file == target.file and d.props["scope"] == target.symbol]
        assert len(mine) == 1, f"{target.file.name}: {target.symbol} has no diagnostic setting"
        (setting,) = mine
        assert setting.props["properties.workspaceId"] == "logAnalyticsWorkspaceId"
        assert re.search(
            r"categoryGroup: '(allLogs|audit)', enabled: true", setting.props["properties.logs"]
        ), setting.props["properties.logs"]
        assert setting.condition is None
        assert target.condition is None or "privateNetworking" not in target.condition


def test_every_diagnostic_setting_goes_to_the_deployment_workspace() -> None:
    main = (INFRA / "main.bicep").read_text()
    files = {d.file.name for d in of_type("Microsoft.Insights/diagnosticSettings")}
    for module in files:
        block = main[main.index(f"'app/{module}'") :]
        block = block[: block.index("\n}\n")]
        assert "logAnalyticsWorkspaceId: monitoring.outputs.logAnalyticsWorkspaceId" in block, (
            module
        )


def test_the_app_storage_roles_are_on_its_containers_queue_and_table() -> None:
    """Never account-wide: only the Blob Delegator role (no data access) is on the account."""
    app_roles = [
        a
        for a in of_type("Microsoft.Authorization/roleAssignments")
        if a.props["properties.principalId"] == "appPrincipalId"
    ]
    scoped = {}
    for a in app_roles:
        role = re.search(r"roles\.(\w+)\)", a.props["properties.roleDefinitionId"])
        assert role, a.symbol
        if role[1] in STORAGE_DATA_ROLES:
            scope = scope_of(a)
            assert scope.type in NARROW_STORAGE_SCOPES, f"{a.symbol} is on {scope.type}"
            scoped[role[1]] = scoped.get(role[1], set()) | {scope.props["name"]}
        elif role[1] == "storageBlobDelegator":
            assert scope_of(a).type == "Microsoft.Storage/storageAccounts"
    assert scoped["storageBlobDataContributor"] == {"voiceContainerName"}
    assert scoped["storageQueueDataContributor"] == {
        "poisonQueueName",
        "analysisQueueName",
        "analysisPoisonQueueName",
        "webhooksQueueName",
        "webhooksPoisonQueueName",
    }
    assert scoped["storageTableDataContributor"] == {"turnsTableName"}
    assert scoped["storageBlobDataOwner"] == {"hostContainer"}
    rbac = (APP / "rbac.bicep").read_text()
    assert (
        "var hostContainerNames = [ 'azure-webjobs-hosts', 'azure-webjobs-secrets', "
        "deploymentContainerName ]" in rbac
    )
    # The dead-letter container is not the app's.
    assert not any(scope_of(a).symbol == "deadLetterContainer" for a in app_roles)


def test_every_container_queue_and_table_the_app_is_given_exists() -> None:
    storage = APP / "storage.bicep"
    made = {r.props.get("name") for r in resources(storage) if not r.existing}
    assert {"voiceContainerName", "deadLetterContainerName", "hostContainer"} <= made
    assert {"poisonQueueName", "turnsTableName", "deploymentContainerName"} <= made
    text = storage.read_text()
    assert "var hostContainerNames = [ 'azure-webjobs-hosts', 'azure-webjobs-secrets' ]" in text
    assert "var poisonQueueName = 'webjobs-blobtrigger-poison'" in text
    # The analysis queue and its poison queue, by the names the app and host.json use.
    assert {"analysisQueueName", "analysisPoisonQueueName"} <= made
    assert f"var analysisQueueName = '{ANALYSIS_QUEUE}'" in text
    assert f"var analysisPoisonQueueName = '{ANALYSIS_POISON_QUEUE}'" in text
    # The webhooks' queue and its poison queue (docs/webhooks.md), likewise.
    assert {"webhooksQueueName", "webhooksPoisonQueueName"} <= made
    assert f"var webhooksQueueName = '{WEBHOOKS_QUEUE}'" in text
    assert f"var webhooksPoisonQueueName = '{WEBHOOKS_POISON_QUEUE}'" in text


def test_event_grid_dead_letters_what_it_cannot_deliver() -> None:
    (sub,) = of_type("Microsoft.EventGrid/systemTopics/eventSubscriptions")
    props = sub.props
    prefix = "properties.deadLetterWithResourceIdentity."
    assert props[prefix + "identity.type"] == "SystemAssigned"
    assert props[prefix + "deadLetterDestination.endpointType"] == "StorageBlob"
    destination = prefix + "deadLetterDestination.properties."
    assert props[destination + "blobContainerName"] == "deadLetterContainerName"
    assert props[destination + "resourceId"] == "stg.id"
    assert int(props["properties.retryPolicy.maxDeliveryAttempts"]) >= 10
    assert props["properties.retryPolicy.eventTimeToLiveInMinutes"] == "1440"
    eventgrid = (INFRA / "eventgrid.bicep").read_text()
    assert "param deadLetterContainerName string = 'kalimera-deadletter'" in eventgrid
    assert "var deadLetterContainerName = 'kalimera-deadletter'" in (
        (INFRA / "main.bicep").read_text()
    )
    hook = (ROOT / "scripts" / "postdeploy.sh").read_text()
    assert 'deadLetterContainerName="$KALIMERA_DEADLETTER_CONTAINER"' in hook
    assert 'storageAccountName="$AZURE_STORAGE_ACCOUNT_NAME"' in hook
    # The topic's identity can write there, and only there.
    (topic,) = of_type("Microsoft.EventGrid/systemTopics")
    assert topic.props["identity.type"] == "SystemAssigned"
    writers = [
        a
        for a in of_type("Microsoft.Authorization/roleAssignments")
        if a.props["properties.principalId"] == "systemTopicPrincipalId"
    ]
    assert [scope_of(a).symbol for a in writers] == ["deadLetterContainer"]


def test_provision_writes_the_secrets_only_while_the_vault_lacks_them() -> None:
    """`azd provision` must not undo a rotation done in Key Vault."""
    secrets = {s.symbol: s for s in of_type("Microsoft.KeyVault/vaults/secrets")}
    assert secrets["encKey"].condition == "(!empty(encryptionKey))"
    assert secrets["gwSecret"].condition == "(!empty(gatewaySecret))"
    keyvault = (APP / "keyvault.bicep").read_text()
    assert "param encryptionKey string = ''" in keyvault
    assert "param gatewaySecret string = ''" in keyvault
    # The app refers to the secret by name (the latest version), not to the resource.
    assert app_settings()["KALIMERA_ENCRYPTION_KEY"] == (
        "'@Microsoft.KeyVault(VaultName=${keyVaultName};SecretName=${encryptionKeyName})'"
    )
    params = json.loads((INFRA / "main.parameters.json").read_text())["parameters"]
    assert params["encryptionKey"]["value"] == "${KALIMERA_ENCRYPTION_KEY_SEED=}"
    assert params["gatewaySecret"]["value"] == "${KALIMERA_GATEWAY_SECRET_SEED=}"
    assert params["encryptionKeyRotating"]["value"] == "${KALIMERA_ENCRYPTION_KEY_ROTATING=false}"
    function = (APP / "function.bicep").read_text()
    assert "SecretName=${encryptionKeyName}-old)" in function
    assert "concat(appSettings, encryptionKeyRotating ? rotationSettings : []," in function
    deploy = (ROOT / "docs" / "deploy.md").read_text()
    steps = deploy[deploy.index("## Rotate the encryption key") :]
    for step in (
        "kalimera-encryption-key-old",
        "KALIMERA_ENCRYPTION_KEY_ROTATING true",
        "kalimera secrets rotate",
        "KALIMERA_ENCRYPTION_KEY_ROTATING false",
    ):
        assert step in steps, step


FAKE_AZD = """#!/bin/sh
# azd env get-value / set over a KEY=VALUE file
f="$FAKE_ENV"
case "$1 $2" in
  "env get-value") v=$(grep "^$3=" "$f" | cut -d= -f2-)
    [ -n "$v" ] && echo "$v" && exit 0; exit 1 ;;
  "env set") grep -v "^$3=" "$f" > "$f.tmp" || true; echo "$3=$4" >> "$f.tmp"; mv "$f.tmp" "$f" ;;
esac
"""
FAKE_AZ = """#!/bin/sh
# az keyvault show / secret list over $FAKE_VAULT (no file: no vault; 'denied': unreadable)
case "$1 $2" in
  "keyvault show") [ -f "$FAKE_VAULT" ] ;;
  "keyvault secret")
    [ "$(cat "$FAKE_VAULT")" = denied ] && { echo Forbidden >&2; exit 1; }
    name=$(echo "$*" | sed -n "s/.*name=='\\([^']*\\)'.*/\\1/p")
    grep -cx "$name" "$FAKE_VAULT" || true ;;
  *) exit 1 ;;
esac
"""


def run_preprovision(tmp_path: Path, env_file: str, vault: str | None) -> tuple[int, str]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    for name, body in (("azd", FAKE_AZD), ("az", FAKE_AZ), ("curl", "#!/bin/sh\nexit 1\n")):
        (bin_dir / name).write_text(body)
        (bin_dir / name).chmod(0o755)
    (tmp_path / "env").write_text(env_file)
    if vault is not None:
        (tmp_path / "vault").write_text(vault)
    result = subprocess.run(
        ["sh", str(ROOT / "scripts" / "preprovision.sh")],
        env={
            "PATH": f"{bin_dir}:{os.environ['PATH']}",
            "FAKE_ENV": str(tmp_path / "env"),
            "FAKE_VAULT": str(tmp_path / "vault"),
        },
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    return result.returncode, (tmp_path / "env").read_text()


def values(env_file: str) -> dict[str, str]:
    return dict(line.split("=", 1) for line in env_file.splitlines() if "=" in line)


def test_the_hook_seeds_a_new_environment(tmp_path: Path) -> None:
    code, env = run_preprovision(tmp_path, "AZURE_PRINCIPAL_NAME=op@example.com\n", None)
    assert code == 0
    seeds = values(env)
    assert len(seeds["KALIMERA_ENCRYPTION_KEY_SEED"]) == 44  # base64 of 32 bytes
    assert len(seeds["KALIMERA_GATEWAY_SECRET_SEED"]) >= gateway.MIN_LENGTH


def test_the_hook_leaves_the_vault_secrets_alone_once_they_exist(tmp_path: Path) -> None:
    env = "AZURE_KEY_VAULT_NAME=kv-x\nKALIMERA_ENCRYPTION_KEY=c3RhbGU=\nAZURE_PRINCIPAL_NAME=o\n"
    code, after = run_preprovision(
        tmp_path, env, "kalimera-encryption-key\nkalimera-gateway-secret\n"
    )
    assert code == 0
    assert values(after)["KALIMERA_ENCRYPTION_KEY_SEED"] == ""
    assert values(after)["KALIMERA_GATEWAY_SECRET_SEED"] == ""


def test_the_hook_keeps_an_older_environment_key_for_its_first_vault_write(
    tmp_path: Path,
) -> None:
    env = "AZURE_KEY_VAULT_NAME=kv-x\nKALIMERA_ENCRYPTION_KEY=b2xkZXI=\nAZURE_PRINCIPAL_NAME=o\n"
    code, after = run_preprovision(tmp_path, env, "kalimera-gateway-secret\n")
    assert code == 0
    assert values(after)["KALIMERA_ENCRYPTION_KEY_SEED"] == "b2xkZXI="
    assert values(after)["KALIMERA_GATEWAY_SECRET_SEED"] == ""


def test_the_hook_stops_when_it_cannot_read_the_vault(tmp_path: Path) -> None:
    """Guessing "absent" would overwrite a rotated key with the first one."""
    code, after = run_preprovision(tmp_path, "AZURE_KEY_VAULT_NAME=kv-x\n", "denied")
    assert code != 0
    assert "KALIMERA_ENCRYPTION_KEY_SEED" not in after


def test_the_hooks_can_read_the_vault_they_decide_by() -> None:
    """preprovision lists the vault's secrets from the operator's machine: with private
    networking (always in prod) the vault's firewall admits that one address, nothing wider."""
    (kv,) = of_type("Microsoft.KeyVault/vaults")
    assert kv.props["properties.networkAcls.ipRules"] == (
        "empty(developerIpAddress) ? [] : [ { value: developerIpAddress } ]"
    )
    main = (INFRA / "main.bicep").read_text()
    block = main[main.index("'app/keyvault.bicep'") :]
    assert "developerIpAddress: developerIpAddress" in block[: block.index("\n}\n")]
