// PostgreSQL Flexible Server, Entra authentication only (no password exists): the app's identity
// is an Entra admin and logs in with an access token as the password; pg_trgm is allow-listed.
param name string
param location string
param tags object
param isProd bool
param privateNetworking bool
param delegatedSubnetId string
param privateDnsZoneId string
param databaseName string
param appIdentityName string
param appIdentityPrincipalId string
param operatorPrincipalId string
param operatorPrincipalName string
param developerIpAddress string

var publicNetwork = {
  publicNetworkAccess: 'Enabled'
}
var privateNetwork = {
  publicNetworkAccess: 'Disabled'
  delegatedSubnetResourceId: delegatedSubnetId
  privateDnsZoneArmResourceId: privateDnsZoneId
}

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
    network: privateNetworking ? privateNetwork : publicNetwork
  }
}

resource db 'Microsoft.DBforPostgreSQL/flexibleServers/databases@2024-08-01' = {
  parent: pg
  name: databaseName
  properties: { charset: 'UTF8', collation: 'en_US.utf8' }
}

// Public access (dev): 0.0.0.0-0.0.0.0 means "Azure services", not the internet; Flex
// Consumption without a VNet has no fixed outbound address, so this is what admits the app.
resource azureServices 'Microsoft.DBforPostgreSQL/flexibleServers/firewallRules@2024-08-01' = if (!privateNetworking) {
  parent: pg
  name: 'AllowAllAzureServicesAndResourcesWithinAzureIps'
  properties: { startIpAddress: '0.0.0.0', endIpAddress: '0.0.0.0' }
  dependsOn: [ db ]
}

resource operatorIp 'Microsoft.DBforPostgreSQL/flexibleServers/firewallRules@2024-08-01' = if (!privateNetworking && !empty(developerIpAddress)) {
  parent: pg
  name: 'operator'
  properties: { startIpAddress: developerIpAddress, endIpAddress: developerIpAddress }
  dependsOn: [ azureServices ]
}

// Server parameters are written one at a time (parallel writes conflict).
resource extensions 'Microsoft.DBforPostgreSQL/flexibleServers/configurations@2024-08-01' = {
  parent: pg
  name: 'azure.extensions'
  properties: { value: 'PG_TRGM', source: 'user-override' }
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

// The app's identity logs in as the role named after it (DATABASE_URL's user).
resource appAdmin 'Microsoft.DBforPostgreSQL/flexibleServers/administrators@2024-08-01' = {
  parent: pg
  name: appIdentityPrincipalId
  properties: { principalName: appIdentityName, principalType: 'ServicePrincipal', tenantId: tenant().tenantId }
  dependsOn: [ logConnections ]
}

// The operator runs `kalimera migrate` (scripts/postdeploy.sh) with their own Entra token.
resource operatorAdmin 'Microsoft.DBforPostgreSQL/flexibleServers/administrators@2024-08-01' = if (!empty(operatorPrincipalId) && !empty(operatorPrincipalName)) {
  parent: pg
  name: empty(operatorPrincipalId) ? 'none' : operatorPrincipalId
  properties: { principalName: operatorPrincipalName, principalType: 'User', tenantId: tenant().tenantId }
  dependsOn: [ appAdmin ]
}

output name string = pg.name
output host string = pg.properties.fullyQualifiedDomainName
