// Kalimera on Azure: everything `azd provision` creates, in one resource group.
// One module per concern under app/; the Event Grid subscription is infra/eventgrid.bicep, run by
// scripts/postdeploy.sh once the code (and so the blob trigger's key) exists.
// Written in the Bicep subset that both checkov and tree-sitter-bicep parse (see infra/README.md).
targetScope = 'subscription'

@minLength(1)
@maxLength(64)
@description('Name of the azd environment; makes the resource names unique.')
param environmentName string

@minLength(1)
@description('Region of every resource (one where Flex Consumption is offered).')
@metadata({ azd: { type: 'location' } })
param location string

@description('Object id of the signed-in operator: data roles for debugging and Postgres Entra admin (for migrations). Empty: none.')
param principalId string = ''

@description('User principal name of that operator (the Postgres role name it logs in with).')
param principalName string = ''

@description('The operator\'s public IP, allowed through the Postgres firewall for `kalimera migrate`. Empty: none.')
param developerIpAddress string = ''

@allowed([
  'dev'
  'prod'
])
@description('dev: the cheapest SKUs, no redundancy. prod: zone redundancy, larger SKUs.')
param environmentSize string = 'dev'

@description('Private networking (VNet integration, private endpoints, no public data-plane access).')
param privateNetworking bool = false

@description('API Management publisher email (shown in the developer portal, gets notices).')
param publisherEmail string

@secure()
@description('Base64 of 32 random bytes: the AES-256-GCM key for agent secrets (made once by scripts/preprovision.sh).')
param encryptionKey string

var resourceToken = toLower(uniqueString(subscription().id, environmentName, location))
var tags = { 'azd-env-name': environmentName }
var isProd = environmentSize == 'prod'
var functionAppName = 'func-${resourceToken}'
var deploymentContainerName = 'app-package-${take(functionAppName, 32)}-${take(resourceToken, 7)}'
var voiceContainerName = 'kalimera-voice'
var turnsTableName = 'kalimeraturns'
var databaseName = 'kalimera'

resource rg 'Microsoft.Resources/resourceGroups@2024-03-01' = {
  name: 'rg-${environmentName}'
  location: location
  tags: tags
}

module identity 'app/identity.bicep' = {
  name: 'identity'
  scope: rg
  params: {
    name: 'id-func-${resourceToken}'
    location: location
    tags: tags
  }
}

module network 'app/network.bicep' = if (privateNetworking) {
  name: 'network'
  scope: rg
  params: {
    name: 'vnet-${resourceToken}'
    location: location
    tags: tags
  }
}

module monitoring 'app/monitoring.bicep' = {
  name: 'monitoring'
  scope: rg
  params: {
    logAnalyticsName: 'log-${resourceToken}'
    applicationInsightsName: 'appi-${resourceToken}'
    location: location
    tags: tags
  }
}

module storage 'app/storage.bicep' = {
  name: 'storage'
  scope: rg
  params: {
    name: 'st${resourceToken}'
    location: location
    tags: tags
    isProd: isProd
    privateNetworking: privateNetworking
    privateEndpointSubnetId: privateNetworking ? network.outputs.privateEndpointSubnetId : ''
    deploymentContainerName: deploymentContainerName
    voiceContainerName: voiceContainerName
    turnsTableName: turnsTableName
    systemTopicName: 'evgt-${resourceToken}'
  }
}

module keyVault 'app/keyvault.bicep' = {
  name: 'keyvault'
  scope: rg
  params: {
    name: 'kv-${resourceToken}'
    location: location
    tags: tags
    privateNetworking: privateNetworking
    privateEndpointSubnetId: privateNetworking ? network.outputs.privateEndpointSubnetId : ''
    encryptionKey: encryptionKey
  }
}

module postgres 'app/postgres.bicep' = {
  name: 'postgres'
  scope: rg
  params: {
    name: 'psql-${resourceToken}'
    location: location
    tags: tags
    isProd: isProd
    privateNetworking: privateNetworking
    delegatedSubnetId: privateNetworking ? network.outputs.postgresSubnetId : ''
    privateDnsZoneId: privateNetworking ? network.outputs.postgresDnsZoneId : ''
    databaseName: databaseName
    appIdentityName: identity.outputs.name
    appIdentityPrincipalId: identity.outputs.principalId
    operatorPrincipalId: principalId
    operatorPrincipalName: principalName
    developerIpAddress: developerIpAddress
  }
}

module redis 'app/redis.bicep' = {
  name: 'redis'
  scope: rg
  params: {
    name: 'redis-${resourceToken}'
    location: location
    tags: tags
    isProd: isProd
    privateNetworking: privateNetworking
    privateEndpointSubnetId: privateNetworking ? network.outputs.privateEndpointSubnetId : ''
    appIdentityPrincipalId: identity.outputs.principalId
  }
}

module function 'app/function.bicep' = {
  name: 'function'
  scope: rg
  params: {
    name: functionAppName
    planName: 'plan-${resourceToken}'
    location: location
    tags: tags
    isProd: isProd
    identityId: identity.outputs.id
    identityClientId: identity.outputs.clientId
    identityName: identity.outputs.name
    storageAccountName: storage.outputs.name
    deploymentContainerName: deploymentContainerName
    voiceContainerName: voiceContainerName
    turnsTableName: turnsTableName
    applicationInsightsName: monitoring.outputs.applicationInsightsName
    postgresHost: postgres.outputs.host
    databaseName: databaseName
    redisHost: redis.outputs.host
    redisPort: redis.outputs.port
    encryptionKeySecretUri: keyVault.outputs.encryptionKeySecretUri
    virtualNetworkSubnetId: privateNetworking ? network.outputs.appSubnetId : ''
  }
}

module rbac 'app/rbac.bicep' = {
  name: 'rbac'
  scope: rg
  params: {
    storageAccountName: storage.outputs.name
    applicationInsightsName: monitoring.outputs.applicationInsightsName
    keyVaultName: keyVault.outputs.name
    appPrincipalId: identity.outputs.principalId
    operatorPrincipalId: principalId
  }
}

module apim 'app/apim.bicep' = {
  name: 'apim'
  scope: rg
  params: {
    name: 'apim-${resourceToken}'
    location: location
    tags: tags
    publisherEmail: publisherEmail
    functionAppName: function.outputs.name
  }
}

// Read by azd (`azd env get-values`) and by the hooks in scripts/.
output AZURE_LOCATION string = location
output AZURE_TENANT_ID string = tenant().tenantId
output RESOURCE_GROUP string = rg.name
output AZURE_FUNCTION_APP_NAME string = function.outputs.name
output SERVICE_API_NAME string = function.outputs.name
output SERVICE_API_URI string = function.outputs.uri
output AZURE_STORAGE_ACCOUNT_NAME string = storage.outputs.name
output KALIMERA_VOICE_CONTAINER string = voiceContainerName
output KALIMERA_SYSTEM_TOPIC_NAME string = storage.outputs.systemTopicName
output POSTGRES_HOST string = postgres.outputs.host
output POSTGRES_DATABASE string = databaseName
output POSTGRES_APP_ROLE string = identity.outputs.name
output APIM_NAME string = apim.outputs.name
output APIM_GATEWAY_URL string = apim.outputs.gatewayUrl
output APPLICATIONINSIGHTS_NAME string = monitoring.outputs.applicationInsightsName
