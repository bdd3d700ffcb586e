// The Storage account: the Functions host's own storage and deployment container, the recordings
// container (blob trigger), the turns table, the analysis and webhooks queues and their poison
// queues, the Event Grid system topic that feeds the trigger
// and the container its undeliverable events go to. Shared keys are off: everything connects
// with an identity. Every container, queue and table the app uses is declared here, so its
// roles (app/rbac.bicep) can be scoped to each one instead of the account.
param name string
param location string
param tags object
param isProd bool
param privateNetworking bool
param privateEndpointSubnetId string
param deploymentContainerName string
param voiceContainerName string
param turnsTableName string
param deadLetterContainerName string
param systemTopicName string
param logAnalyticsWorkspaceId string

// Made by the Functions host when missing; declared here so the app's roles can be scoped to
// them (the host then finds them and never needs account-wide rights to create containers).
var hostContainerNames = [ 'azure-webjobs-hosts', 'azure-webjobs-secrets' ]
// Where the blob trigger moves a blob's message after its last failed try (identity-based
// KALIMERA_STORAGE needs __queueServiceUri for it).
var poisonQueueName = 'webjobs-blobtrigger-poison'
// The post-call analysis: the relay (kalimera/outbox.py) sends requests to the first, the queue
// trigger analyse_conversation reads them; Functions moves a message that failed
// maxDequeueCount times (host.json) to the second.
var analysisQueueName = 'kalimera-analysis'
var analysisPoisonQueueName = 'kalimera-analysis-poison'
// The webhook deliveries (docs/webhooks.md): the relay sends one message per attempt (a retry
// with its visibility delay), the queue trigger deliver_webhook sends it; the poison queue as
// the analysis one's.
var webhooksQueueName = 'kalimera-webhooks'
var webhooksPoisonQueueName = 'kalimera-webhooks-poison'

resource stg 'Microsoft.Storage/storageAccounts@2023-05-01' = {
  // checkov:skip=CKV_AZURE_35: dev: Flex Consumption without a VNet has no fixed outbound address, so default Deny would lock out the app; shared keys are off (identity only) and privateNetworking sets Deny with private endpoints
  // checkov:skip=CKV_AZURE_206: Standard_LRS in dev to stay cheapest; Standard_ZRS when environmentSize=prod (checkov cannot evaluate the parameter)
  name: name
  location: location
  tags: tags
  kind: 'StorageV2'
  sku: { name: isProd ? 'Standard_ZRS' : 'Standard_LRS' }
  properties: {
    accessTier: 'Hot'
    allowBlobPublicAccess: false
    allowSharedKeyAccess: false
    allowCrossTenantReplication: false
    defaultToOAuthAuthentication: true
    minimumTlsVersion: 'TLS1_2'
    supportsHttpsTrafficOnly: true
    publicNetworkAccess: privateNetworking ? 'Disabled' : 'Enabled'
    networkAcls: {
      bypass: 'AzureServices'
      defaultAction: privateNetworking ? 'Deny' : 'Allow'
    }
  }
}

resource blobService 'Microsoft.Storage/storageAccounts/blobServices@2023-05-01' = {
  parent: stg
  name: 'default'
  properties: {
    deleteRetentionPolicy: { enabled: true, days: 7 }
    containerDeleteRetentionPolicy: { enabled: true, days: 7 }
  }
}

resource deploymentContainer 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = {
  parent: blobService
  name: deploymentContainerName
  properties: { publicAccess: 'None' }
}

resource voiceContainer 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = {
  parent: blobService
  name: voiceContainerName
  properties: { publicAccess: 'None' }
}

// Event Grid writes here (with the system topic's identity) the BlobCreated events it could not
// deliver within the retry policy (infra/eventgrid.bicep): a recording is never lost silently.
resource deadLetterContainer 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = {
  parent: blobService
  name: deadLetterContainerName
  properties: { publicAccess: 'None' }
}

resource hostContainers 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = [for hostContainer in hostContainerNames: {
  parent: blobService
  name: hostContainer
  properties: { publicAccess: 'None' }
}]

resource queueService 'Microsoft.Storage/storageAccounts/queueServices@2023-05-01' = {
  parent: stg
  name: 'default'
}

resource poisonQueue 'Microsoft.Storage/storageAccounts/queueServices/queues@2023-05-01' = {
  parent: queueService
  name: poisonQueueName
}

resource analysisQueue 'Microsoft.Storage/storageAccounts/queueServices/queues@2023-05-01' = {
  parent: queueService
  name: analysisQueueName
}

resource analysisPoisonQueue 'Microsoft.Storage/storageAccounts/queueServices/queues@2023-05-01' = {
  parent: queueService
  name: analysisPoisonQueueName
}

resource webhooksQueue 'Microsoft.Storage/storageAccounts/queueServices/queues@2023-05-01' = {
  parent: queueService
  name: webhooksQueueName
}

resource webhooksPoisonQueue 'Microsoft.Storage/storageAccounts/queueServices/queues@2023-05-01' = {
  parent: queueService
  name: webhooksPoisonQueueName
}

resource tableService 'Microsoft.Storage/storageAccounts/tableServices@2023-05-01' = {
  parent: stg
  name: 'default'
}

resource turnsTable 'Microsoft.Storage/storageAccounts/tableServices/tables@2023-05-01' = {
  parent: tableService
  name: turnsTableName
}

// BlobCreated events of this account; the subscription to the function is infra/eventgrid.bicep.
// Its identity writes dead-lettered events (Blob Data Contributor on that container only).
resource systemTopic 'Microsoft.EventGrid/systemTopics@2025-02-15' = {
  name: systemTopicName
  location: location
  tags: tags
  identity: { type: 'SystemAssigned' }
  properties: {
    source: stg.id
    topicType: 'Microsoft.Storage.StorageAccounts'
  }
}

// Audit: every read, write and delete of blobs, queues and tables (who, from where, with which
// identity) goes to Log Analytics.
resource blobLogs 'Microsoft.Insights/diagnosticSettings@2021-05-01-preview' = {
  name: 'audit'
  scope: blobService
  properties: {
    workspaceId: logAnalyticsWorkspaceId
    logs: [ { categoryGroup: 'allLogs', enabled: true } ]
  }
}

resource queueLogs 'Microsoft.Insights/diagnosticSettings@2021-05-01-preview' = {
  name: 'audit'
  scope: queueService
  properties: {
    workspaceId: logAnalyticsWorkspaceId
    logs: [ { categoryGroup: 'allLogs', enabled: true } ]
  }
}

resource tableLogs 'Microsoft.Insights/diagnosticSettings@2021-05-01-preview' = {
  name: 'audit'
  scope: tableService
  properties: {
    workspaceId: logAnalyticsWorkspaceId
    logs: [ { categoryGroup: 'allLogs', enabled: true } ]
  }
}

// Delivery failures and dead-lettered events of the subscription that feeds the trigger.
resource topicLogs 'Microsoft.Insights/diagnosticSettings@2021-05-01-preview' = {
  name: 'audit'
  scope: systemTopic
  properties: {
    workspaceId: logAnalyticsWorkspaceId
    logs: [ { categoryGroup: 'allLogs', enabled: true } ]
  }
}

module blobEndpoint 'private-endpoint.bicep' = if (privateNetworking) {
  name: 'pe-blob'
  params: {
    name: 'pe-${name}-blob'
    location: location
    tags: tags
    subnetId: privateEndpointSubnetId
    targetId: stg.id
    groupId: 'blob'
    dnsZoneName: 'privatelink.blob.${environment().suffixes.storage}'
  }
}

module queueEndpoint 'private-endpoint.bicep' = if (privateNetworking) {
  name: 'pe-queue'
  params: {
    name: 'pe-${name}-queue'
    location: location
    tags: tags
    subnetId: privateEndpointSubnetId
    targetId: stg.id
    groupId: 'queue'
    dnsZoneName: 'privatelink.queue.${environment().suffixes.storage}'
  }
}

module tableEndpoint 'private-endpoint.bicep' = if (privateNetworking) {
  name: 'pe-table'
  params: {
    name: 'pe-${name}-table'
    location: location
    tags: tags
    subnetId: privateEndpointSubnetId
    targetId: stg.id
    groupId: 'table'
    dnsZoneName: 'privatelink.table.${environment().suffixes.storage}'
  }
}

output name string = stg.name
output blobEndpoint string = stg.properties.primaryEndpoints.blob
output systemTopicName string = systemTopic.name
output systemTopicPrincipalId string = systemTopic.identity.principalId
output poisonQueueName string = poisonQueue.name
output analysisQueueName string = analysisQueue.name
output analysisPoisonQueueName string = analysisPoisonQueue.name
output webhooksQueueName string = webhooksQueue.name
output webhooksPoisonQueueName string = webhooksPoisonQueue.name
