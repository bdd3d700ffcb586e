// Azure OpenAI for the post-call analysis (docs/analysis.md, "Choosing a model"), created only with
// deployOpenAi: an account with key authentication off, one model deployment, and the app's
// identity given "Cognitive Services OpenAI User" on this account alone (inference only: it can
// neither read keys nor change deployments). The app reaches it with an Entra token
// (KALIMERA_LLM_ENDPOINT, KALIMERA_LLM_MODEL = the deployment's name).
param name string
param location string
param tags object
param deploymentName string
@description('The model and its version, as Azure OpenAI lists them for the region.')
param modelName string
param modelVersion string
@description('GlobalStandard (pay per token, routed worldwide), DataZoneStandard (within the EU or US data zone) or Standard (in the region).')
param deploymentSku string
@description('The deployment\'s rate limit, in thousands of tokens per minute.')
param capacity int
param privateNetworking bool
param privateEndpointSubnetId string
param appPrincipalId string
param logAnalyticsWorkspaceId string

var roles = {
  cognitiveServicesOpenAiUser: '5e0bd9bd-7b93-4f28-af87-19fc36ad61bd'
}

resource account 'Microsoft.CognitiveServices/accounts@2024-10-01' = {
  // checkov:skip=CKV_AZURE_134: public network access only without privateNetworking (dev); key authentication is off, so only an Entra token of an identity given the role on this account gets in, and privateNetworking (always in prod) disables it with a private endpoint
  name: name
  location: location
  tags: tags
  kind: 'OpenAI'
  sku: { name: 'S0' }
  identity: { type: 'SystemAssigned' }
  properties: {
    // Entra tokens need the account's own subdomain (https://<name>.openai.azure.com/).
    customSubDomainName: name
    disableLocalAuth: true
    publicNetworkAccess: privateNetworking ? 'Disabled' : 'Enabled'
    networkAcls: { defaultAction: privateNetworking ? 'Deny' : 'Allow' }
  }
}

resource deployment 'Microsoft.CognitiveServices/accounts/deployments@2024-10-01' = {
  parent: account
  name: deploymentName
  sku: {
    name: deploymentSku
    capacity: capacity
  }
  properties: {
    model: {
      format: 'OpenAI'
      name: modelName
      version: modelVersion
    }
    versionUpgradeOption: 'OnceNewDefaultVersionAvailable'
  }
}

resource appOpenAiUser 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(account.id, appPrincipalId, roles.cognitiveServicesOpenAiUser)
  scope: account
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.cognitiveServicesOpenAiUser)
    principalId: appPrincipalId
    principalType: 'ServicePrincipal'
  }
}

// Audit: who called the account, to Log Analytics like every other resource.
resource accountLogs 'Microsoft.Insights/diagnosticSettings@2021-05-01-preview' = {
  name: 'audit'
  scope: account
  properties: {
    workspaceId: logAnalyticsWorkspaceId
    logs: [ { categoryGroup: 'allLogs', enabled: true } ]
  }
}

module endpoint 'private-endpoint.bicep' = if (privateNetworking) {
  name: 'pe-openai'
  params: {
    name: 'pe-${name}'
    location: location
    tags: tags
    subnetId: privateEndpointSubnetId
    targetId: account.id
    groupId: 'account'
    dnsZoneName: 'privatelink.openai.azure.com'
  }
}

output endpoint string = account.properties.endpoint
output deploymentName string = deployment.name
