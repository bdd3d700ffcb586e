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

@description('Private endpoints for Storage, Key Vault and Redis, no public data-plane access (always on with environmentSize prod). Postgres is private in every environment.')
param privateNetworking bool = false

@description('API Management publisher email (shown in the developer portal, gets notices).')
param publisherEmail string

@secure()
@description('First value of the AES-256-GCM key for agent secrets (base64 of 32 bytes). Empty (every provision after the first): Key Vault keeps its current key. scripts/preprovision.sh decides.')
param encryptionKey string = ''

@secure()
@description('First value of the secret API Management sends in X-Kalimera-Gateway. Empty: Key Vault keeps its current one.')
param gatewaySecret string = ''

@description('True while rotating the encryption key: the app gets KALIMERA_ENCRYPTION_KEY_OLD from the vault (docs/deploy.md).')
param encryptionKeyRotating bool = false

@description('Create an Azure OpenAI account and model deployment for the post-call analysis (docs/analysis.md), reached with the app\'s identity. False: no model from infra (analyses are skipped unless another OpenAI-compatible server is set by hand).')
param deployOpenAi bool = false

@description('The model to deploy (one Azure OpenAI offers in the region); also the deployment\'s name, KALIMERA_LLM_MODEL.')
param openAiModelName string = 'gpt-4.1-mini'

@description('The model\'s version.')
param openAiModelVersion string = '2025-04-14'

@allowed([
  'GlobalStandard'
  'DataZoneStandard'
  'Standard'
])
@description('GlobalStandard: pay per token, served from any region. DataZoneStandard: within the EU or US data zone. Standard: in this region.')
param openAiDeploymentSku string = 'GlobalStandard'

@minValue(1)
@description('The deployment\'s rate limit, in thousands of tokens per minute (an analysis takes a few thousand).')
param openAiCapacity int = 100

@description('Browser origins allowed to call the API through API Management, comma-separated (KALIMERA_CORS_ORIGINS); none by default.')
param corsOrigins string = ''

var resourceToken = toLower(uniqueString(subscription().id, environmentName, location))
var tags = { 'azd-env-name': environmentName }
var isProd = environmentSize == 'prod'
// The production size always gets private endpoints: no public data plane for its data.
var privateData = privateNetworking || isProd
var functionAppName = 'func-${resourceToken}'
var deploymentContainerName = 'app-package-${take(functionAppName, 32)}-${take(resourceToken, 7)}'
var voiceContainerName = 'kalimera-voice'
var turnsTableName = 'kalimeraturns'
var databaseName = 'kalimera'
var deadLetterContainerName = 'kalimera-deadletter'

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

module network 'app/network.bicep' = {
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
    privateNetworking: privateData
    privateEndpointSubnetId: network.outputs.privateEndpointSubnetId
    deploymentContainerName: deploymentContainerName
    voiceContainerName: voiceContainerName
    turnsTableName: turnsTableName
    deadLetterContainerName: deadLetterContainerName
    systemTopicName: 'evgt-${resourceToken}'
    logAnalyticsWorkspaceId: monitoring.outputs.logAnalyticsWorkspaceId
  }
}

module keyVault 'app/keyvault.bicep' = {
  name: 'keyvault'
  scope: rg
  params: {
    name: 'kv-${resourceToken}'
    location: location
    tags: tags
    privateNetworking: privateData
    privateEndpointSubnetId: network.outputs.privateEndpointSubnetId
    logAnalyticsWorkspaceId: monitoring.outputs.logAnalyticsWorkspaceId
    developerIpAddress: developerIpAddress
    encryptionKey: encryptionKey
    gatewaySecret: gatewaySecret
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
    privateEndpointSubnetId: network.outputs.privateEndpointSubnetId
    databaseName: databaseName
    operatorPrincipalId: principalId
    operatorPrincipalName: principalName
    developerIpAddress: developerIpAddress
    logAnalyticsWorkspaceId: monitoring.outputs.logAnalyticsWorkspaceId
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
    privateNetworking: privateData
    privateEndpointSubnetId: network.outputs.privateEndpointSubnetId
    appIdentityPrincipalId: identity.outputs.principalId
  }
}

module openAi 'app/openai.bicep' = if (deployOpenAi) {
  name: 'openai'
  scope: rg
  params: {
    name: 'oai-${resourceToken}'
    location: location
    tags: tags
    deploymentName: openAiModelName
    modelName: openAiModelName
    modelVersion: openAiModelVersion
    deploymentSku: openAiDeploymentSku
    capacity: openAiCapacity
    privateNetworking: privateData
    privateEndpointSubnetId: network.outputs.privateEndpointSubnetId
    appPrincipalId: identity.outputs.principalId
    logAnalyticsWorkspaceId: monitoring.outputs.logAnalyticsWorkspaceId
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
    postgresPort: postgres.outputs.appPort
    databaseName: databaseName
    redisHost: redis.outputs.host
    redisPort: redis.outputs.port
    keyVaultName: keyVault.outputs.name
    encryptionKeyName: keyVault.outputs.encryptionKeyName
    gatewaySecretName: keyVault.outputs.gatewaySecretName
    encryptionKeyRotating: encryptionKeyRotating
    // API Management Consumption has no fixed egress and is not in the ApiManagement tag.
    frontDoorServiceTag: 'AzureCloud.${location}'
    virtualNetworkSubnetId: network.outputs.appSubnetId
    logAnalyticsWorkspaceId: monitoring.outputs.logAnalyticsWorkspaceId
    llmEndpoint: deployOpenAi ? openAi.outputs.endpoint : ''
    llmModel: deployOpenAi ? openAi.outputs.deploymentName : ''
  }
}

module rbac 'app/rbac.bicep' = {
  name: 'rbac'
  scope: rg
  params: {
    storageAccountName: storage.outputs.name
    deploymentContainerName: deploymentContainerName
    voiceContainerName: voiceContainerName
    deadLetterContainerName: deadLetterContainerName
    poisonQueueName: storage.outputs.poisonQueueName
    analysisQueueName: storage.outputs.analysisQueueName
    analysisPoisonQueueName: storage.outputs.analysisPoisonQueueName
    webhooksQueueName: storage.outputs.webhooksQueueName
    webhooksPoisonQueueName: storage.outputs.webhooksPoisonQueueName
    turnsTableName: turnsTableName
    applicationInsightsName: monitoring.outputs.applicationInsightsName
    keyVaultName: keyVault.outputs.name
    appPrincipalId: identity.outputs.principalId
    systemTopicPrincipalId: storage.outputs.systemTopicPrincipalId
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
    keyVaultName: keyVault.outputs.name
    gatewaySecretName: keyVault.outputs.gatewaySecretName
    logAnalyticsWorkspaceId: monitoring.outputs.logAnalyticsWorkspaceId
    corsOrigins: corsOrigins
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
output KALIMERA_DEADLETTER_CONTAINER string = deadLetterContainerName
output AZURE_KEY_VAULT_NAME string = keyVault.outputs.name
output POSTGRES_HOST string = postgres.outputs.host
output POSTGRES_DATABASE string = databaseName
output POSTGRES_APP_ROLE string = identity.outputs.name
output POSTGRES_APP_PRINCIPAL_ID string = identity.outputs.principalId
output APIM_NAME string = apim.outputs.name
output APIM_GATEWAY_URL string = apim.outputs.gatewayUrl
// The operator console through API Management (no subscription key for the page itself).
output KALIMERA_CONSOLE_URL string = apim.outputs.consoleUrl
output APPLICATIONINSIGHTS_NAME string = monitoring.outputs.applicationInsightsName
// Empty without deployOpenAi: for a developer's .env to reach the same model (with az login).
output KALIMERA_LLM_ENDPOINT string = deployOpenAi ? openAi.outputs.endpoint : ''
output KALIMERA_LLM_MODEL string = deployOpenAi ? openAi.outputs.deploymentName : ''
