// The Storage account: the Functions host's own storage and deployment container, the recordings
// container (blob trigger), the turns table, and the Event Grid system topic that feeds the
// trigger. Shared keys are off: everything connects with the identity.
param name string
param location string
param tags object
param isProd bool
param privateNetworking bool
param privateEndpointSubnetId string
param deploymentContainerName string
param voiceContainerName string
param turnsTableName string
param systemTopicName string

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

// The blob trigger's poison queue lives here (identity-based blob trigger needs __queueServiceUri).
resource queueService 'Microsoft.Storage/storageAccounts/queueServices@2023-05-01' = {
  parent: stg
  name: 'default'
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
resource systemTopic 'Microsoft.EventGrid/systemTopics@2025-02-15' = {
  name: systemTopicName
  location: location
  tags: tags
  properties: {
    source: stg.id
    topicType: 'Microsoft.Storage.StorageAccounts'
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
