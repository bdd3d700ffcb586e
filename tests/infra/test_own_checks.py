"""What checkov does not look at: Postgres auth and firewall, TLS minimums, secret-free settings.

checkov fires nothing for a PostgreSQL Flexible Server or its firewall rules, so these read the
Bicep (tree-sitter) and assert the properties that matter."""

import json
import re

from tests.infra.bicep import INFRA, app_settings, of_type

ALL_ADDRESSES_END = "255.255.255.255"
AZURE_SERVICES = "0.0.0.0"  # noqa: S104 - the firewall's "Azure services" marker, not a bind


def one(type_: str):  # type: ignore[no-untyped-def]
    found = of_type(type_)
    assert len(found) == 1, f"expected one {type_}, found {[r.symbol for r in found]}"
    return found[0]


def test_postgres_accepts_only_entra_tokens() -> None:
    pg = one("Microsoft.DBforPostgreSQL/flexibleServers")
    assert pg.props["properties.authConfig.passwordAuth"] == "Disabled"
    assert pg.props["properties.authConfig.activeDirectoryAuth"] == "Enabled"
    assert not any("administratorLoginPassword" in key for key in pg.props)
    admins = of_type("Microsoft.DBforPostgreSQL/flexibleServers/administrators")
    app_admin = [a for a in admins if a.props["properties.principalType"] == "ServicePrincipal"]
    assert len(app_admin) == 1
    assert app_admin[0].condition is None


def test_postgres_has_no_all_addresses_firewall_rule() -> None:
    rules = of_type("Microsoft.DBforPostgreSQL/flexibleServers/firewallRules")
    assert rules, "expected the Azure-services rule (public access, dev)"
    for rule in rules:
        start, end = rule.props["properties.startIpAddress"], rule.props["properties.endIpAddress"]
        assert end != ALL_ADDRESSES_END, rule.symbol
        assert start != ALL_ADDRESSES_END, rule.symbol
        # Fixed ranges are only the Azure-services marker; others are one operator address.
        if start == AZURE_SERVICES:
            assert end == AZURE_SERVICES, rule.symbol
        else:
            assert start == end, rule.symbol
        # No public rule at all when private networking is on (prod option).
        assert rule.condition is not None
        assert "!privateNetworking" in rule.condition


def test_prod_parameters_open_nothing_to_the_internet() -> None:
    params = json.loads((INFRA / "main.parameters.json").read_text())["parameters"]
    values = json.dumps(params)
    assert AZURE_SERVICES not in values
    assert ALL_ADDRESSES_END not in values
    # The operator's address comes from their machine (preprovision), never a fixed range.
    assert params["developerIpAddress"]["value"].startswith("${")


def test_tls_minimums_everywhere() -> None:
    stg = one("Microsoft.Storage/storageAccounts")
    assert stg.props["properties.minimumTlsVersion"] == "TLS1_2"
    assert stg.props["properties.supportsHttpsTrafficOnly"] == "true"
    site = one("Microsoft.Web/sites")
    assert site.props["properties.httpsOnly"] == "true"
    assert site.props["properties.siteConfig.minTlsVersion"] == "1.2"
    assert site.props["properties.siteConfig.ftpsState"] == "Disabled"
    redis = one("Microsoft.Cache/redisEnterprise")
    assert redis.props["properties.minimumTlsVersion"] == "1.2"
    db = one("Microsoft.Cache/redisEnterprise/databases")
    assert db.props["properties.clientProtocol"] == "Encrypted"
    pg_params = {
        r.props["name"]: r.props["properties.value"]
        for r in of_type("Microsoft.DBforPostgreSQL/flexibleServers/configurations")
    }
    assert pg_params["require_secure_transport"] == "ON"
    assert pg_params["ssl_min_protocol_version"] == "TLSv1.2"
    apim = one("Microsoft.ApiManagement/service")
    for proto in ("Tls10", "Tls11", "Backend.Protocols.Tls10", "Backend.Protocols.Tls11"):
        keys = [k for k in apim.props if k.endswith(f"Security.{proto}")]
        keys += [k for k in apim.props if k.endswith(f"Security.Protocols.{proto}")]
        assert keys, proto
        assert all(apim.props[k] == "false" for k in keys), proto


def test_pg_trgm_is_allow_listed() -> None:
    pg_params = {
        r.props["name"]: r.props["properties.value"]
        for r in of_type("Microsoft.DBforPostgreSQL/flexibleServers/configurations")
    }
    assert "PG_TRGM" in pg_params["azure.extensions"].upper().split(",")


def test_no_key_based_access_is_left_on() -> None:
    assert one("Microsoft.Storage/storageAccounts").props["properties.allowSharedKeyAccess"] == (
        "false"
    )
    assert one("Microsoft.Storage/storageAccounts").props["properties.allowBlobPublicAccess"] == (
        "false"
    )
    db = one("Microsoft.Cache/redisEnterprise/databases")
    assert db.props["properties.accessKeysAuthentication"] == "Disabled"
    appi = one("Microsoft.Insights/components")
    assert appi.props["properties.DisableLocalAuth"] == "true"
    kv = one("Microsoft.KeyVault/vaults")
    assert kv.props["properties.enableRbacAuthorization"] == "true"
    assert kv.props["properties.enablePurgeProtection"] == "true"


SECRET_MARKERS = re.compile(
    r"AccountKey=|SharedAccessSignature|listKeys\(|listConnectionStrings|primaryKey|"
    r"secondaryKey|password|InstrumentationKey=",
    re.IGNORECASE,
)


def test_no_app_setting_carries_a_secret() -> None:
    settings = app_settings()
    assert settings, "no app settings found in infra/app/function.bicep"
    for name, value in settings.items():
        if name == "APPLICATIONINSIGHTS_CONNECTION_STRING":
            # An ingestion address, not a credential: local auth is off (Entra only).
            assert value == "appi.properties.ConnectionString"
            continue
        assert not SECRET_MARKERS.search(value), f"{name} looks secret-bearing: {value}"
        # URLs carry no user:password@.
        assert not re.search(r"//[^/@]*:[^/@]*@", value), name
    assert settings["KALIMERA_ENCRYPTION_KEY"].startswith("'@Microsoft.KeyVault(SecretUri=")
    assert settings["KALIMERA_DB_ENTRA_AUTH"] == "'true'"
    assert settings["KALIMERA_REDIS_ENTRA_AUTH"] == "'true'"
    assert settings["AzureWebJobsStorage__credential"] == "'managedidentity'"
    assert settings["KALIMERA_STORAGE__credential"] == "'managedidentity'"


def test_the_identity_gets_only_data_plane_roles_on_single_resources() -> None:
    allowed = {
        "storageBlobDataOwner",
        "storageBlobDataContributor",
        "storageBlobDelegator",  # user delegation keys for SAS URLs: no data access of its own
        "storageQueueDataContributor",
        "storageTableDataContributor",
        "monitoringMetricsPublisher",
        "keyVaultSecretsUser",
    }
    assignments = of_type("Microsoft.Authorization/roleAssignments")
    assert len(assignments) >= 5
    for a in assignments:
        role = re.search(r"roles\.(\w+)\)", a.props["properties.roleDefinitionId"])
        assert role, a.symbol
        assert role[1] in allowed, a.symbol
        assert a.props["scope"] in {"stg", "appi", "kv"}, (
            a.symbol
        )  # never the group or subscription
