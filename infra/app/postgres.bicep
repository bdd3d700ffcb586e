// PostgreSQL Flexible Server, Entra authentication only (no password exists). Reachable from the
// app only through a private endpoint in the VNet, and from the internet only at the operator's
// address (their migrations, scripts/postdeploy.sh); no rule admits "all Azure services".
// The only Entra administrator is the operator: the app's identity is a plain database role that
// can read and write rows (scripts/postgres_roles.py, run by the postdeploy hook), not change the
// schema, and the migrations run as the owner role kalimera_owner.
param name string
param location string
param tags object
param isProd bool
param privateEndpointSubnetId string
param databaseName string
param operatorPrincipalId string
param operatorPrincipalName string
param developerIpAddress string
param logAnalyticsWorkspaceId string

resource pg 'Microsoft.DBforPostgreSQL/flexibleServers@2024-08-01' = {
  name: name
  location: location
  tags: tags
  sku: isProd ? { name: 'Standard_D2ds_v5', tier: 'GeneralPurpose' } : { name: 'Standard_B1ms', tier: 'Burstable' }
  properties: {
    version: '16'
    storage: { storageSizeGB: 32, autoGrow: 'Enabled' }
    backup: { backupRetentionDays: isProd ? 35 : 7, geoRedundantBackup: isProd ? 'Enabled' : 'Disabled' }
    highAvailability: { mode: isProd ? 'ZoneRedundant' : 'Disabled' }
    authConfig: { activeDirectoryAuth: 'Enabled', passwordAuth: 'Disabled', tenantId: tenant().tenantId }
    // Public access exists only for the operator's one-address rule; without it, none at all.
    network: { publicNetworkAccess: empty(developerIpAddress) ? 'Disabled' : 'Enabled' }
  }
}

resource db 'Microsoft.DBforPostgreSQL/flexibleServers/databases@2024-08-01' = {
  parent: pg
  name: databaseName
  properties: { charset: 'UTF8', collation: 'en_US.utf8' }
}

// The operator's address only (preprovision.sh records it), for `kalimera migrate`.
resource operatorIp 'Microsoft.DBforPostgreSQL/flexibleServers/firewallRules@2024-08-01' = if (!empty(developerIpAddress)) {
  parent: pg
  name: 'operator'
  properties: { startIpAddress: developerIpAddress, endIpAddress: developerIpAddress }
  dependsOn: [ db ]
}

// Server parameters are written one at a time (parallel writes conflict).
resource extensions 'Microsoft.DBforPostgreSQL/flexibleServers/configurations@2024-08-01' = {
  parent: pg
  name: 'azure.extensions'
  properties: { value: 'PG_TRGM,UNACCENT', source: 'user-override' }
  dependsOn: [ operatorIp ]
}

resource secureTransport 'Microsoft.DBforPostgreSQL/flexibleServers/configurations@2024-08-01' = {
  parent: pg
  name: 'require_secure_transport'
  properties: { value: 'ON', source: 'user-override' }
  dependsOn: [ extensions ]
}

resource tlsMinimum 'Microsoft.DBforPostgreSQL/flexibleServers/configurations@2024-08-01' = {
  parent: pg
  name: 'ssl_min_protocol_version'
  properties: { value: 'TLSv1.2', source: 'user-override' }
  dependsOn: [ secureTransport ]
}

resource connectionThrottling 'Microsoft.DBforPostgreSQL/flexibleServers/configurations@2024-08-01' = {
  parent: pg
  name: 'connection_throttle.enable'
  properties: { value: 'ON', source: 'user-override' }
  dependsOn: [ tlsMinimum ]
}

resource logCheckpoints 'Microsoft.DBforPostgreSQL/flexibleServers/configurations@2024-08-01' = {
  parent: pg
  name: 'log_checkpoints'
  properties: { value: 'ON', source: 'user-override' }
  dependsOn: [ connectionThrottling ]
}

resource logConnections 'Microsoft.DBforPostgreSQL/flexibleServers/configurations@2024-08-01' = {
  parent: pg
  name: 'log_connections'
  properties: { value: 'ON', source: 'user-override' }
  dependsOn: [ logCheckpoints ]
}

// Production (General Purpose) serves the app through the built-in PgBouncer on port 6432, in
// transaction mode: every instance's pool is a client of it, and the server sees at most
// default_pool_size connections of the app however many instances run. max_client_conn covers
// 1,000 instances of 2 pools of KALIMERA_DB_POOL_MAX (4) each, so raising maximumInstanceCount to
// Flex Consumption's limit needs no change here (docs/performance.md, "Connection budget").
// Burstable (dev) has no PgBouncer: the app uses 5432 there, and the migrations always do (they
// hold a session advisory lock, which a transaction pooler cannot keep).
resource pgbouncerEnabled 'Microsoft.DBforPostgreSQL/flexibleServers/configurations@2024-08-01' = if (isProd) {
  parent: pg
  name: 'pgbouncer.enabled'
  properties: { value: 'true', source: 'user-override' }
  dependsOn: [ logConnections ]
}

resource pgbouncerPoolMode 'Microsoft.DBforPostgreSQL/flexibleServers/configurations@2024-08-01' = if (isProd) {
  parent: pg
  name: 'pgbouncer.pool_mode'
  properties: { value: 'transaction', source: 'user-override' }
  dependsOn: [ pgbouncerEnabled ]
}

resource pgbouncerPoolSize 'Microsoft.DBforPostgreSQL/flexibleServers/configurations@2024-08-01' = if (isProd) {
  parent: pg
  name: 'pgbouncer.default_pool_size'
  properties: { value: '50', source: 'user-override' }
  dependsOn: [ pgbouncerPoolMode ]
}

resource pgbouncerClients 'Microsoft.DBforPostgreSQL/flexibleServers/configurations@2024-08-01' = if (isProd) {
  parent: pg
  name: 'pgbouncer.max_client_conn'
  properties: { value: '10000', source: 'user-override' }
  dependsOn: [ pgbouncerPoolSize ]
}

// The operator creates the app's role and runs `kalimera migrate` (scripts/postdeploy.sh) with
// their own Entra token; the only Entra administrator.
resource operatorAdmin 'Microsoft.DBforPostgreSQL/flexibleServers/administrators@2024-08-01' = if (!empty(operatorPrincipalId) && !empty(operatorPrincipalName)) {
  parent: pg
  name: empty(operatorPrincipalId) ? 'none' : operatorPrincipalId
  properties: { principalName: operatorPrincipalName, principalType: 'User', tenantId: tenant().tenantId }
  dependsOn: [ logConnections, pgbouncerClients ]
}

// The app reaches the server only here: a private address in the VNet it integrates into.
module endpoint 'private-endpoint.bicep' = {
  name: 'pe-postgres'
  params: {
    name: 'pe-${name}'
    location: location
    tags: tags
    subnetId: privateEndpointSubnetId
    targetId: pg.id
    groupId: 'postgresqlServer'
    dnsZoneName: 'privatelink.postgres.database.azure.com'
  }
}

// Audit: connections, failed logins, errors (log_connections is on), to Log Analytics.
resource pgLogs 'Microsoft.Insights/diagnosticSettings@2021-05-01-preview' = {
  name: 'audit'
  scope: pg
  properties: {
    workspaceId: logAnalyticsWorkspaceId
    logs: [ { categoryGroup: 'allLogs', enabled: true } ]
  }
}

output name string = pg.name
output host string = pg.properties.fullyQualifiedDomainName
// The port the app connects to: PgBouncer where the tier has it.
output appPort int = isProd ? 6432 : 5432
