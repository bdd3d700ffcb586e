// Least-privilege role assignments, each scoped to the one resource it is for.
param storageAccountName string
param applicationInsightsName string
param keyVaultName string
param appPrincipalId string
@description('The operator, for uploading test recordings; empty: none.')
param operatorPrincipalId string

var roles = {
  storageBlobDataOwner: 'b7e6dc6d-f1e8-4753-8033-0f276bb0955b'
  storageBlobDataContributor: 'ba92f5b4-2d11-453d-a403-e96b0029c9fe'
  storageBlobDelegator: 'db58b8e5-c6ad-4a2a-8342-4190687cbf4a'
  storageQueueDataContributor: '974c5e8b-45b9-4653-ba55-5f855dd0fb88'
  storageTableDataContributor: '0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3'
  monitoringMetricsPublisher: '3913510d-42f4-4e42-8a64-420c390055eb'
  keyVaultSecretsUser: '4633458b-17de-408a-b874-0445c86b69e6'
}

resource stg 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: storageAccountName
}

resource appi 'Microsoft.Insights/components@2020-02-02' existing = {
  name: applicationInsightsName
}

resource kv 'Microsoft.KeyVault/vaults@2024-11-01' existing = {
  name: keyVaultName
}

// Owner (not Contributor): the Functions host manages blob leases and the Flex deployment container.
resource appBlob 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(stg.id, appPrincipalId, roles.storageBlobDataOwner)
  scope: stg
  properties: {
    principalId: appPrincipalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageBlobDataOwner)
  }
}

// User delegation keys (get_user_delegation_key), which sign the recordings' SAS URLs: the
// read-only download links and the create-only upload URLs of POST .../voice/upload-url. Blob
// Data Owner carries this action too; the SAS URLs keep working if that role is ever narrowed.
resource appDelegator 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(stg.id, appPrincipalId, roles.storageBlobDelegator)
  scope: stg
  properties: {
    principalId: appPrincipalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageBlobDelegator)
  }
}

// The blob trigger's poison-blob queue.
resource appQueue 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(stg.id, appPrincipalId, roles.storageQueueDataContributor)
  scope: stg
  properties: {
    principalId: appPrincipalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageQueueDataContributor)
  }
}

// The turns table.
resource appTable 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(stg.id, appPrincipalId, roles.storageTableDataContributor)
  scope: stg
  properties: {
    principalId: appPrincipalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageTableDataContributor)
  }
}

// Entra-authenticated telemetry (Application Insights local auth is off).
resource appTelemetry 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(appi.id, appPrincipalId, roles.monitoringMetricsPublisher)
  scope: appi
  properties: {
    principalId: appPrincipalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.monitoringMetricsPublisher)
  }
}

// Resolving the KALIMERA_ENCRYPTION_KEY Key Vault reference.
resource appSecrets 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(kv.id, appPrincipalId, roles.keyVaultSecretsUser)
  scope: kv
  properties: {
    principalId: appPrincipalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.keyVaultSecretsUser)
  }
}

// The operator uploads recordings to try the trigger (docs/deploy.md).
resource operatorBlob 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (!empty(operatorPrincipalId)) {
  name: guid(stg.id, operatorPrincipalId, roles.storageBlobDataContributor)
  scope: stg
  properties: {
    principalId: operatorPrincipalId
    principalType: 'User'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageBlobDataContributor)
  }
}
