// The Function App on Flex Consumption (Python 3.11, the version the tests run on). Every
// connection is identity-based: no key, password or secret-bearing connection string is set here
// (the two secrets are Key Vault references).
//
// The front door: the site answers only the addresses of Azure's datacentres in its region
// (where API Management Consumption and Event Grid call from) and refuses the rest of the
// internet with 403; API Management proves itself with the gateway secret in X-Kalimera-Gateway,
// which the app checks (kalimera/gateway.py). The Event Grid webhook (/runtime/webhooks/blobs) is
// the Functions host's, not the app's: it is let through by the AzureEventGrid service tag and
// authenticated by the blobs_extension key in its URL.
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
@description('5432, or 6432 for the built-in PgBouncer (transaction mode; the app then prepares no statements).')
param postgresPort int
param databaseName string
param redisHost string
param redisPort int
param keyVaultName string
param encryptionKeyName string
param gatewaySecretName string
@description('During a key rotation: KALIMERA_ENCRYPTION_KEY_OLD refers to the vault\'s kalimera-encryption-key-old.')
param encryptionKeyRotating bool
@description('The service tag API Management calls from: AzureCloud.<region> for Consumption (no fixed or tagged egress).')
param frontDoorServiceTag string
param virtualNetworkSubnetId string
param logAnalyticsWorkspaceId string
@description('The Azure OpenAI endpoint for the post-call analysis (app/openai.bicep); empty: none.')
param llmEndpoint string = ''
@description('Its deployment\'s name.')
param llmModel string = ''

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
  // Port 6432 (prod): PgBouncer in transaction mode, which KALIMERA_DB_TRANSACTION_POOLING detects.
  { name: 'DATABASE_URL', value: 'postgresql://${identityName}@${postgresHost}:${postgresPort}/${databaseName}?sslmode=require' }
  { name: 'KALIMERA_DB_ENTRA_AUTH', value: 'true' }
  { name: 'KALIMERA_DB_POOL_MAX', value: isProd ? '4' : '1' }
  { name: 'REDIS_URL', value: 'rediss://${redisHost}:${redisPort}/0' }
  { name: 'KALIMERA_REDIS_ENTRA_AUTH', value: 'true' }
  { name: 'KALIMERA_REDIS_TIMEOUT_MS', value: '250' }
  { name: 'KALIMERA_ENCRYPTION_KEY', value: '@Microsoft.KeyVault(VaultName=${keyVaultName};SecretName=${encryptionKeyName})' }
  { name: 'KALIMERA_GATEWAY_SECRET', value: '@Microsoft.KeyVault(VaultName=${keyVaultName};SecretName=${gatewaySecretName})' }
  { name: 'KALIMERA_VOICE_CONTAINER', value: voiceContainerName }
  { name: 'KALIMERA_TURNS_TABLE', value: turnsTableName }
  { name: 'KALIMERA_TIMER_SCHEDULE', value: '0 5 0 * * *' }
]

// Only while rotating (docs/deploy.md): a reference to a secret that does not exist would not
// resolve, and the app refuses to start on a malformed key.
var rotationSettings = [
  { name: 'KALIMERA_ENCRYPTION_KEY_OLD', value: '@Microsoft.KeyVault(VaultName=${keyVaultName};SecretName=${encryptionKeyName}-old)' }
]

// Only with an Azure OpenAI deployment (main.bicep, deployOpenAi): the app then reaches it with
// its identity's Entra token; without them, analyses are skipped (docs/analysis.md).
var llmSettings = [
  { name: 'KALIMERA_LLM_ENDPOINT', value: llmEndpoint }
  { name: 'KALIMERA_LLM_MODEL', value: llmModel }
]

// Evaluated in priority order; anything else gets 403 (ipSecurityRestrictionsDefaultAction).
var accessRestrictions = [
  {
    name: 'api-management'
    description: 'API Management (Consumption calls from the region\'s Azure datacentre addresses); the app also checks X-Kalimera-Gateway'
    action: 'Allow'
    priority: 100
    tag: 'ServiceTag'
    ipAddress: frontDoorServiceTag
  }
  {
    name: 'event-grid'
    description: 'Event Grid deliveries to the blob trigger webhook (/runtime/webhooks/blobs, which checks its blobs_extension key)'
    action: 'Allow'
    priority: 110
    tag: 'ServiceTag'
    ipAddress: 'AzureEventGrid'
  }
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
  // checkov:skip=CKV_AZURE_222: API Management Consumption has no VNet, so it reaches the app over its public endpoint; access restrictions deny all but Azure's regional addresses and Event Grid, and the app checks the gateway secret
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
    virtualNetworkSubnetId: virtualNetworkSubnetId
    functionAppConfig: {
      deployment: {
        storage: {
          type: 'blobContainer'
          value: '${blobUri}${deploymentContainerName}'
          authentication: { type: 'UserAssignedIdentity', userAssignedIdentityResourceId: identityId }
        }
      }
      scaleAndConcurrency: {
        // dev: B1ms has 35 user connections and no PgBouncer; 15 instances of 2 pools of 1 fit.
        maximumInstanceCount: isProd ? 100 : 15
        instanceMemoryMB: 2048
      }
      runtime: { name: 'python', version: '3.11' }
    }
    siteConfig: {
      minTlsVersion: '1.2'
      scmMinTlsVersion: '1.2'
      ftpsState: 'Disabled'
      http20Enabled: true
      ipSecurityRestrictionsDefaultAction: 'Deny'
      ipSecurityRestrictions: accessRestrictions
      // Deployments (azd deploy) go to the scm site with an Entra token: basic auth is off below.
      scmIpSecurityRestrictionsUseMain: false
      scmIpSecurityRestrictionsDefaultAction: 'Allow'
      appSettings: concat(appSettings, encryptionKeyRotating ? rotationSettings : [], empty(llmEndpoint) ? [] : llmSettings)
    }
  }
}

// No publishing user names and passwords: deployments authenticate with Entra only.
resource ftpBasicAuth 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2024-04-01' = {
  parent: func
  name: 'ftp'
  properties: { allow: false }
}

resource scmBasicAuth 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2024-04-01' = {
  parent: func
  name: 'scm'
  properties: { allow: false }
}

// Audit: the host's and the functions' logs, to Log Analytics (beside Application Insights).
resource funcLogs 'Microsoft.Insights/diagnosticSettings@2021-05-01-preview' = {
  name: 'audit'
  scope: func
  properties: {
    workspaceId: logAnalyticsWorkspaceId
    logs: [ { categoryGroup: 'allLogs', enabled: true } ]
  }
}

output name string = func.name
output uri string = 'https://${func.properties.defaultHostName}'
