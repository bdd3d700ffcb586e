"""What checkov does not look at: Postgres auth, roles and firewall, TLS minimums, secret-free
settings, role scopes.

checkov fires nothing for a PostgreSQL Flexible Server or its firewall rules, so these read the
Bicep (tree-sitter) and assert the properties that matter. The front door, audit and
nothing-lost checks are in test_front_door.py."""

import json
import re

from tests.infra.bicep import INFRA, ROOT, app_settings, of_type, scope_of

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


def test_the_app_identity_is_not_a_postgres_administrator() -> None:
    """Only the operator is an Entra admin; the app logs in as a plain role that
    scripts/postgres_roles.py makes (rows, not the schema), which the postdeploy hook runs."""
    admins = of_type("Microsoft.DBforPostgreSQL/flexibleServers/administrators")
    assert [a.props["properties.principalType"] for a in admins] == ["User"]
    assert all("appIdentity" not in a.text for a in admins)
    hook = (ROOT / "scripts" / "postdeploy.sh").read_text()
    roles = hook.index('scripts/postgres_roles.py --app "$POSTGRES_APP_ROLE"')
    migrate = hook.index("-m kalimera migrate")
    assert roles < migrate  # the owner role exists before the migrations run as it
    assert "options=-c%20role%3Dkalimera_owner" in hook
    assert "azure_pg_admin" not in hook
    main = (INFRA / "main.bicep").read_text()
    assert "output POSTGRES_APP_PRINCIPAL_ID string = identity.outputs.principalId" in main


def test_postgres_has_no_azure_services_or_wide_firewall_rule() -> None:
    """No 0.0.0.0 ("all Azure services", any tenant's) rule and no range: the one rule is the
    operator's own address, and without it public access is off."""
    rules = of_type("Microsoft.DBforPostgreSQL/flexibleServers/firewallRules")
    assert len(rules) <= 1, [r.symbol for r in rules]
    for rule in rules:
        start, end = rule.props["properties.startIpAddress"], rule.props["properties.endIpAddress"]
        assert start == end == "developerIpAddress", rule.symbol
        assert rule.condition == "(!empty(developerIpAddress))", rule.condition
    text = (INFRA / "app" / "postgres.bicep").read_text()
    assert AZURE_SERVICES not in text
    assert "AllowAllAzureServices" not in text
    pg = one("Microsoft.DBforPostgreSQL/flexibleServers")
    assert pg.props["properties.network.publicNetworkAccess"] == (
        "empty(developerIpAddress) ? 'Disabled' : 'Enabled'"
    )


def test_the_app_reaches_postgres_through_a_private_endpoint_in_every_environment() -> None:
    postgres = (INFRA / "app" / "postgres.bicep").read_text()
    endpoint = re.search(r"module endpoint 'private-endpoint.bicep' = (\S+)", postgres)
    assert endpoint
    assert endpoint[1] == "{", "the Postgres private endpoint must not be conditional"
    assert "groupId: 'postgresqlServer'" in postgres
    main = (INFRA / "main.bicep").read_text()
    assert "module network 'app/network.bicep' = {" in main  # unconditional
    site = one("Microsoft.Web/sites")
    assert site.props["properties.virtualNetworkSubnetId"] == "virtualNetworkSubnetId"
    assert "virtualNetworkSubnetId: network.outputs.appSubnetId" in main
    # The production size always gets private endpoints for the rest of its data.
    assert "var privateData = privateNetworking || isProd" in main
    assert "privateNetworking: privateNetworking\n" not in main


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
    assert settings["KALIMERA_ENCRYPTION_KEY"].startswith("'@Microsoft.KeyVault(VaultName=")
    assert settings["KALIMERA_GATEWAY_SECRET"].startswith("'@Microsoft.KeyVault(VaultName=")
    assert settings["KALIMERA_DB_ENTRA_AUTH"] == "'true'"
    assert settings["KALIMERA_REDIS_ENTRA_AUTH"] == "'true'"
    assert settings["AzureWebJobsStorage__credential"] == "'managedidentity'"
    assert settings["KALIMERA_STORAGE__credential"] == "'managedidentity'"


def test_the_identities_get_only_data_plane_roles_on_single_resources() -> None:
    allowed = {
        "storageBlobDataOwner",
        "storageBlobDataContributor",
        "storageBlobDelegator",
        "storageQueueDataContributor",
        "storageTableDataContributor",
        "monitoringMetricsPublisher",
        "keyVaultSecretsUser",
        "keyVaultSecretsOfficer",
        "cognitiveServicesOpenAiUser",
    }
    assignments = of_type("Microsoft.Authorization/roleAssignments")
    assert len(assignments) >= 5
    for a in assignments:
        role = re.search(
            r"(?:roles\.(\w+)|'([0-9a-f-]{36})')\)", a.props["properties.roleDefinitionId"]
        )
        assert role, a.symbol
        assert (role[1] or "keyVaultSecretsUser") in allowed, a.symbol
        assert role[2] in {None, "4633458b-17de-408a-b874-0445c86b69e6"}, a.symbol
        # Never the resource group or the subscription: always a resource of this deployment.
        assert a.props.get("scope"), a.symbol
        assert scope_of(a).type.startswith(
            (
                "Microsoft.Storage/",
                "Microsoft.Insights/",
                "Microsoft.KeyVault/",
                "Microsoft.CognitiveServices/",
            )
        ), a.symbol


def test_prod_reaches_postgres_through_pgbouncer_and_migrates_directly() -> None:
    """The app's DATABASE_URL takes the port of the built-in PgBouncer where the tier has one
    (General Purpose: prod), which the app then detects (no prepared statements); the
    migrations hold a session advisory lock and stay on 5432 (docs/performance.md)."""
    pgbouncer = {
        r.props["name"]: (r.props["properties.value"], r.condition)
        for r in of_type("Microsoft.DBforPostgreSQL/flexibleServers/configurations")
        if r.props["name"].startswith("pgbouncer.")
    }
    assert pgbouncer["pgbouncer.enabled"] == ("true", "(isProd)")
    assert pgbouncer["pgbouncer.pool_mode"] == ("transaction", "(isProd)")
    postgres = (INFRA / "app" / "postgres.bicep").read_text()
    assert "output appPort int = isProd ? 6432 : 5432" in postgres
    assert "postgresPort: postgres.outputs.appPort" in (INFRA / "main.bicep").read_text()
    assert app_settings()["DATABASE_URL"] == (
        "'postgresql://${identityName}@${postgresHost}:${postgresPort}/${databaseName}"
        "?sslmode=require'"
    )
    hook = (ROOT / "scripts" / "postdeploy.sh").read_text()
    migrate = hook[: hook.index("-m kalimera migrate")].rsplit("DATABASE_URL=", 1)[1]
    assert ":5432/" in migrate.split()[0]
