// Least-privilege role assignments, each scoped to the one resource it is for. The app's storage
// roles are on the containers, the queue and the table it uses, never on the account: a leaked
// token of the app's identity cannot read or write the dead-letter container or anything added
// to the account later. (The one account-level storage role, Storage Blob Delegator, grants no
// data access: it only lets the app get a user delegation key, and a SAS signed with it can do
// no more than the app's own container-scoped roles.)
param storageAccountName string
param deploymentContainerName string
param voiceContainerName string
param deadLetterContainerName string
param poisonQueueName string
param analysisQueueName string
param analysisPoisonQueueName string
param webhooksQueueName string
param webhooksPoisonQueueName string
param turnsTableName string
param applicationInsightsName string
param keyVaultName string
param appPrincipalId string
param systemTopicPrincipalId string
@description('The operator, for uploading test recordings and rotating keys; empty: none.')
param operatorPrincipalId string

var roles = {
  storageBlobDataOwner: 'b7e6dc6d-f1e8-4753-8033-0f276bb0955b'
  storageBlobDataContributor: 'ba92f5b4-2d11-453d-a403-e96b0029c9fe'
  storageBlobDelegator: 'db58b8e5-c6ad-4a2a-8342-4190687cbf4a'
  storageQueueDataContributor: '974c5e8b-45b9-4653-ba55-5f855dd0fb88'
  storageTableDataContributor: '0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3'
  monitoringMetricsPublisher: '3913510d-42f4-4e42-8a64-420c390055eb'
  keyVaultSecretsUser: '4633458b-17de-408a-b874-0445c86b69e6'
  keyVaultSecretsOfficer: 'b86a8fe4-44ce-4948-aee5-eccb2c155cd7'
}

// The Functions host's own containers (leases, timer schedule, function keys) and the Flex
// deployment package; storage.bicep creates all three.
var hostContainerNames = [ 'azure-webjobs-hosts', 'azure-webjobs-secrets', deploymentContainerName ]

resource stg 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: storageAccountName
}

resource blobService 'Microsoft.Storage/storageAccounts/blobServices@2023-05-01' existing = {
  parent: stg
  name: 'default'
}

resource voiceContainer 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' existing = {
  parent: blobService
  name: voiceContainerName
}

resource deadLetterContainer 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' existing = {
  parent: blobService
  name: deadLetterContainerName
}

resource hostContainers 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' existing = [for hostContainer in hostContainerNames: {
  parent: blobService
  name: hostContainer
}]

resource queueService 'Microsoft.Storage/storageAccounts/queueServices@2023-05-01' existing = {
  parent: stg
  name: 'default'
}

resource poisonQueue 'Microsoft.Storage/storageAccounts/queueServices/queues@2023-05-01' existing = {
  parent: queueService
  name: poisonQueueName
}

resource analysisQueue 'Microsoft.Storage/storageAccounts/queueServices/queues@2023-05-01' existing = {
  parent: queueService
  name: analysisQueueName
}

resource analysisPoisonQueue 'Microsoft.Storage/storageAccounts/queueServices/queues@2023-05-01' existing = {
  parent: queueService
  name: analysisPoisonQueueName
}

resource webhooksQueue 'Microsoft.Storage/storageAccounts/queueServices/queues@2023-05-01' existing = {
  parent: queueService
  name: webhooksQueueName
}

resource webhooksPoisonQueue 'Microsoft.Storage/storageAccounts/queueServices/queues@2023-05-01' existing = {
  parent: queueService
  name: webhooksPoisonQueueName
}

resource tableService 'Microsoft.Storage/storageAccounts/tableServices@2023-05-01' existing = {
  parent: stg
  name: 'default'
}

resource turnsTable 'Microsoft.Storage/storageAccounts/tableServices/tables@2023-05-01' existing = {
  parent: tableService
  name: turnsTableName
}

resource appi 'Microsoft.Insights/components@2020-02-02' existing = {
  name: applicationInsightsName
}

resource kv 'Microsoft.KeyVault/vaults@2024-11-01' existing = {
  name: keyVaultName
}

// Owner (as the Azure samples grant it): the host takes blob leases and writes its keys here.
resource appHostBlobs 'Microsoft.Authorization/roleAssignments@2022-04-01' = [for (hostContainer, i) in hostContainerNames: {
  name: guid(hostContainers[i].id, appPrincipalId, roles.storageBlobDataOwner)
  scope: hostContainers[i]
  properties: {
    principalId: appPrincipalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageBlobDataOwner)
  }
}]

// The recordings: uploads, the blob trigger's reads, the sweep's listing.
resource appVoice 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(voiceContainer.id, appPrincipalId, roles.storageBlobDataContributor)
  scope: voiceContainer
  properties: {
    principalId: appPrincipalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageBlobDataContributor)
  }
}

// User delegation keys for the recordings' signed URLs (no data access of its own; the blob
// service is the narrowest scope the key can be asked for at).
resource appDelegator 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(stg.id, appPrincipalId, roles.storageBlobDelegator)
  scope: stg
  properties: {
    principalId: appPrincipalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageBlobDelegator)
  }
}

// The blob trigger's poison queue: with the Event Grid source this is the only queue it uses
// (the polling source's scan queue does not exist on Flex Consumption).
resource appQueue 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(poisonQueue.id, appPrincipalId, roles.storageQueueDataContributor)
  scope: poisonQueue
  properties: {
    principalId: appPrincipalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageQueueDataContributor)
  }
}

// The analysis queue: the app sends to it (the outbox's relay) and its queue trigger reads and
// deletes from it (KALIMERA_STORAGE__queueServiceUri).
resource appAnalysisQueue 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(analysisQueue.id, appPrincipalId, roles.storageQueueDataContributor)
  scope: analysisQueue
  properties: {
    principalId: appPrincipalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageQueueDataContributor)
  }
}

// Where the Functions host moves an analysis message after its last failed try.
resource appAnalysisPoisonQueue 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(analysisPoisonQueue.id, appPrincipalId, roles.storageQueueDataContributor)
  scope: analysisPoisonQueue
  properties: {
    principalId: appPrincipalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageQueueDataContributor)
  }
}

// The webhook deliveries: the relay sends (a retry with a visibility delay), deliver_webhook
// receives and deletes.
resource appWebhooksQueue 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(webhooksQueue.id, appPrincipalId, roles.storageQueueDataContributor)
  scope: webhooksQueue
  properties: {
    principalId: appPrincipalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageQueueDataContributor)
  }
}

// Where the Functions host moves a webhook message after its last failed try.
resource appWebhooksPoisonQueue 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(webhooksPoisonQueue.id, appPrincipalId, roles.storageQueueDataContributor)
  scope: webhooksPoisonQueue
  properties: {
    principalId: appPrincipalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageQueueDataContributor)
  }
}

// The turns table.
resource appTable 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(turnsTable.id, appPrincipalId, roles.storageTableDataContributor)
  scope: turnsTable
  properties: {
    principalId: appPrincipalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageTableDataContributor)
  }
}

// Event Grid's system topic writes undeliverable events to the dead-letter container only.
resource topicDeadLetter 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(deadLetterContainer.id, systemTopicPrincipalId, roles.storageBlobDataContributor)
  scope: deadLetterContainer
  properties: {
    principalId: systemTopicPrincipalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageBlobDataContributor)
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

// Resolving the KALIMERA_ENCRYPTION_KEY(_OLD) and KALIMERA_GATEWAY_SECRET Key Vault references.
resource appSecrets 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(kv.id, appPrincipalId, roles.keyVaultSecretsUser)
  scope: kv
  properties: {
    principalId: appPrincipalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.keyVaultSecretsUser)
  }
}

// The operator uploads recordings to try the trigger and reads the dead-letter container.
resource operatorBlob 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (!empty(operatorPrincipalId)) {
  name: guid(stg.id, operatorPrincipalId, roles.storageBlobDataContributor)
  scope: stg
  properties: {
    principalId: operatorPrincipalId
    principalType: 'User'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageBlobDataContributor)
  }
}

// The operator checks whether the secrets exist (preprovision.sh) and rotates them.
resource operatorSecrets 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (!empty(operatorPrincipalId)) {
  name: guid(kv.id, operatorPrincipalId, roles.keyVaultSecretsOfficer)
  scope: kv
  properties: {
    principalId: operatorPrincipalId
    principalType: 'User'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.keyVaultSecretsOfficer)
  }
}
