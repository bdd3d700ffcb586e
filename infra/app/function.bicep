// The Function App on Flex Consumption (Python 3.11, the version the tests run on). Every
// connection is identity-based: no key, password or secret-bearing connection string is set here.
param name string
param planName string
param location string
param tags object
param isProd bool
param identityId string
param identityClientId string
param identityName string
param storageAccountName string
param deploymentContainerName string
param voiceContainerName string
param turnsTableName string
param applicationInsightsName string
param postgresHost string
param databaseName string
param redisHost string
param redisPort int
param encryptionKeySecretUri string
param virtualNetworkSubnetId string

resource stg 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: storageAccountName
}

resource appi 'Microsoft.Insights/components@2020-02-02' existing = {
  name: applicationInsightsName
}

var blobUri = stg.properties.primaryEndpoints.blob
var queueUri = stg.properties.primaryEndpoints.queue
var tableUri = stg.properties.primaryEndpoints.table

// Names the app reads are in kalimera/settings.py; tests/infra checks both directions.
var appSettings = [
  { name: 'AzureWebJobsStorage__credential', value: 'managedidentity' }
  { name: 'AzureWebJobsStorage__clientId', value: identityClientId }
  { name: 'AzureWebJobsStorage__blobServiceUri', value: blobUri }
  { name: 'AzureWebJobsStorage__queueServiceUri', value: queueUri }
  { name: 'AzureWebJobsStorage__tableServiceUri', value: tableUri }
  { name: 'KALIMERA_STORAGE__credential', value: 'managedidentity' }
  { name: 'KALIMERA_STORAGE__clientId', value: identityClientId }
  { name: 'KALIMERA_STORAGE__blobServiceUri', value: blobUri }
  { name: 'KALIMERA_STORAGE__queueServiceUri', value: queueUri }
  { name: 'KALIMERA_STORAGE__tableServiceUri', value: tableUri }
  { name: 'AZURE_CLIENT_ID', value: identityClientId }
  { name: 'APPLICATIONINSIGHTS_CONNECTION_STRING', value: appi.properties.ConnectionString }
  { name: 'APPLICATIONINSIGHTS_AUTHENTICATION_STRING', value: 'ClientId=${identityClientId};Authorization=AAD' }
  { name: 'KALIMERA_ENV', value: 'production' }
  { name: 'DATABASE_URL', value: 'postgresql://${identityName}@${postgresHost}:5432/${databaseName}?sslmode=require' }
  { name: 'KALIMERA_DB_ENTRA_AUTH', value: 'true' }
  { name: 'KALIMERA_DB_POOL_MAX', value: isProd ? '4' : '1' }
  { name: 'REDIS_URL', value: 'rediss://${redisHost}:${redisPort}/0' }
  { name: 'KALIMERA_REDIS_ENTRA_AUTH', value: 'true' }
  { name: 'KALIMERA_REDIS_TIMEOUT_MS', value: '250' }
  { name: 'KALIMERA_ENCRYPTION_KEY', value: '@Microsoft.KeyVault(SecretUri=${encryptionKeySecretUri})' }
  { name: 'KALIMERA_VOICE_CONTAINER', value: voiceContainerName }
  { name: 'KALIMERA_TURNS_TABLE', value: turnsTableName }
  { name: 'KALIMERA_TIMER_SCHEDULE', value: '0 5 0 * * *' }
]

resource plan 'Microsoft.Web/serverfarms@2024-04-01' = {
  // checkov:skip=CKV_AZURE_225: zone redundant when environmentSize=prod (zoneRedundant: isProd); dev is single-zone to stay cheapest, and checkov cannot evaluate the parameter
  name: planName
  location: location
  tags: tags
  kind: 'functionapp'
  sku: { name: 'FC1', tier: 'FlexConsumption' }
  properties: {
    reserved: true
    zoneRedundant: isProd
  }
}

resource func 'Microsoft.Web/sites@2024-04-01' = {
  // checkov:skip=CKV_AZURE_222: API Management Consumption has no VNet, so it reaches the app over its public endpoint; with privateNetworking the app's outbound traffic goes through the VNet
  // checkov:skip=CKV_AZURE_17: callers authenticate with the API's own Bearer tokens (checked by the app); client certificates would add nothing APIM Consumption can use
  // checkov:skip=CKV_AZURE_212: Flex Consumption scales from zero per event; always-ready instances would be paid around the clock
  // checkov:skip=CKV_AZURE_213: the App Service health check (instance eviction) does not apply to Flex Consumption; /kalimera/health is the app's own health endpoint
  name: name
  location: location
  kind: 'functionapp,linux'
  tags: union(tags, { 'azd-service-name': 'api' })
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: { '${identityId}': {} }
  }
  properties: {
    serverFarmId: plan.id
    httpsOnly: true
    clientCertEnabled: false
    publicNetworkAccess: 'Enabled'
    keyVaultReferenceIdentity: identityId
    virtualNetworkSubnetId: empty(virtualNetworkSubnetId) ? null : virtualNetworkSubnetId
    functionAppConfig: {
      deployment: {
        storage: {
          type: 'blobContainer'
          value: '${blobUri}${deploymentContainerName}'
          authentication: { type: 'UserAssignedIdentity', userAssignedIdentityResourceId: identityId }
        }
      }
      scaleAndConcurrency: {
        maximumInstanceCount: isProd ? 100 : 40
        instanceMemoryMB: 2048
      }
      runtime: { name: 'python', version: '3.11' }
    }
    siteConfig: {
      minTlsVersion: '1.2'
      scmMinTlsVersion: '1.2'
      ftpsState: 'Disabled'
      http20Enabled: true
      appSettings: appSettings
    }
  }
}

output name string = func.name
output uri string = 'https://${func.properties.defaultHostName}'
