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

// The operator creates the app's role and runs `kalimera migrate` (scripts/postdeploy.sh) with
// their own Entra token; the only Entra administrator.
resource operatorAdmin 'Microsoft.DBforPostgreSQL/flexibleServers/administrators@2024-08-01' = if (!empty(operatorPrincipalId) && !empty(operatorPrincipalName)) {
  parent: pg
  name: empty(operatorPrincipalId) ? 'none' : operatorPrincipalId
  properties: { principalName: operatorPrincipalName, principalType: 'User', tenantId: tenant().tenantId }
  dependsOn: [ logConnections ]
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
