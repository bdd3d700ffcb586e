// API Management in front of the Function App: imports the committed OpenAPI document
// (infra/apim/openapi.json, kept equal to the app's by tests/infra) and applies
// infra/apim/policy.xml (rate-limit per subscription; the caller's Authorization header is passed
// through untouched, the app checks the Bearer token itself; X-Kalimera-Gateway is set from the
// gateway secret, which the app requires, so a caller who skips API Management is refused).
param name string
param location string
param tags object
param publisherEmail string
param functionAppName string
param keyVaultName string
param gatewaySecretName string
param logAnalyticsWorkspaceId string
@description('Browser origins (scheme://host[:port]) allowed to call the API, comma-separated; none by default.')
param corsOrigins string = ''
@allowed([
  'Consumption'
  'BasicV2'
  'StandardV2'
])
param sku string = 'Consumption'

resource func 'Microsoft.Web/sites@2024-04-01' existing = {
  name: functionAppName
}

resource kv 'Microsoft.KeyVault/vaults@2024-11-01' existing = {
  name: keyVaultName
}

resource gatewaySecret 'Microsoft.KeyVault/vaults/secrets@2024-11-01' existing = {
  parent: kv
  name: gatewaySecretName
}

resource apim 'Microsoft.ApiManagement/service@2024-05-01' = {
  // checkov:skip=CKV_AZURE_107: the Consumption tier (the default) has no VNet integration
  // checkov:skip=CKV_AZURE_174: API Management is the public front door of the API by design; the backend checks every request's Bearer token
  name: name
  location: location
  tags: tags
  sku: { name: sku, capacity: sku == 'Consumption' ? 0 : 1 }
  identity: { type: 'SystemAssigned' }
  properties: {
    publisherEmail: publisherEmail
    publisherName: 'Kalimera'
    customProperties: {
      'Microsoft.WindowsAzure.ApiManagement.Gateway.Security.Protocols.Tls10': 'false'
      'Microsoft.WindowsAzure.ApiManagement.Gateway.Security.Protocols.Tls11': 'false'
      'Microsoft.WindowsAzure.ApiManagement.Gateway.Security.Backend.Protocols.Tls10': 'false'
      'Microsoft.WindowsAzure.ApiManagement.Gateway.Security.Backend.Protocols.Tls11': 'false'
      'Microsoft.WindowsAzure.ApiManagement.Gateway.Security.Backend.Protocols.Ssl30': 'false'
    }
  }
}

// API Management reads the gateway secret, and only that secret (Key Vault Secrets User on it).
resource apimSecretReader 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(gatewaySecret.id, apim.id, '4633458b-17de-408a-b874-0445c86b69e6')
  scope: gatewaySecret
  properties: {
    principalId: apim.identity.principalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', '4633458b-17de-408a-b874-0445c86b69e6')
  }
}

// {{kalimera-gateway-secret}} in policy.xml; refreshed from Key Vault within four hours of a
// rotation (or at once with a refresh, docs/deploy.md).
resource gatewayNamedValue 'Microsoft.ApiManagement/service/namedValues@2024-05-01' = {
  parent: apim
  name: 'kalimera-gateway-secret'
  properties: {
    displayName: 'kalimera-gateway-secret'
    secret: true
    keyVault: { secretIdentifier: '${kv.properties.vaultUri}secrets/${gatewaySecretName}' }
  }
  dependsOn: [ apimSecretReader ]
}

// Audit: every gateway request (caller address, subscription, status), to Log Analytics.
resource apimLogs 'Microsoft.Insights/diagnosticSettings@2021-05-01-preview' = {
  name: 'audit'
  scope: apim
  properties: {
    workspaceId: logAnalyticsWorkspaceId
    logs: [ { categoryGroup: 'allLogs', enabled: true } ]
  }
}

resource backend 'Microsoft.ApiManagement/service/backends@2024-05-01' = {
  parent: apim
  name: 'kalimera-func'
  properties: {
    protocol: 'http'
    url: 'https://${func.properties.defaultHostName}'
    resourceId: '${environment().resourceManager}${substring(func.id, 1)}'
    tls: { validateCertificateChain: true, validateCertificateName: true }
  }
}

// Clients call https://<apim>.azure-api.net/v1/kalimera/...; APIM forwards /kalimera/... .
resource api 'Microsoft.ApiManagement/service/apis@2024-05-01' = {
  parent: apim
  name: 'kalimera'
  properties: {
    displayName: 'Kalimera'
    path: 'v1'
    protocols: [ 'https' ]
    format: 'openapi+json'
    // loadJsonContent: up to 1,048,576 characters (loadTextContent stops at 131,072).
    value: string(loadJsonContent('../apim/openapi.json'))
    subscriptionRequired: true
  }
}

// One <origin> per origin (spaces dropped: an origin has none), as kalimera/cors.py allows them.
var corsOriginList = replace(corsOrigins, ' ', '')
var corsOriginElements = '<origin>${replace(corsOriginList, ',', '</origin><origin>')}</origin>'
var corsRule = replace(loadTextContent('../apim/cors.xml'), '__ORIGINS__', corsOriginElements)
var corsPolicy = empty(corsOriginList) ? '' : corsRule

resource apiPolicy 'Microsoft.ApiManagement/service/apis/policies@2024-05-01' = {
  parent: api
  name: 'policy'
  properties: {
    format: 'rawxml'
    value: replace(loadTextContent('../apim/policy.xml'), '<!-- cors -->', corsPolicy)
  }
  dependsOn: [ backend, gatewayNamedValue ]
}

// The operator console (infra/README.md, "The operator console"): its static files at
// https://<apim>.azure-api.net/v1/kalimera/console/ without a subscription key, so a browser can
// load the page before anyone types one. The path sits inside the `kalimera` API's (v1): API
// Management picks the API with the longest matching path, and the page, which calls the API at
// the path before its own /kalimera/console/, then calls /v1/kalimera/... on the same origin
// (connect-src 'self', no CORS). GET only; forwarded to the Function App's /kalimera/console.
resource consoleBackend 'Microsoft.ApiManagement/service/backends@2024-05-01' = {
  parent: apim
  name: 'kalimera-console'
  properties: {
    protocol: 'http'
    url: 'https://${func.properties.defaultHostName}/kalimera/console'
    resourceId: '${environment().resourceManager}${substring(func.id, 1)}'
    tls: { validateCertificateChain: true, validateCertificateName: true }
  }
}

resource consoleApi 'Microsoft.ApiManagement/service/apis@2024-05-01' = {
  parent: apim
  name: 'kalimera-console'
  properties: {
    displayName: 'Kalimera operator console'
    description: 'The static page and assets of the operator console (no API data: the page calls the Kalimera API with a token and a subscription key)'
    path: 'v1/kalimera/console'
    protocols: [ 'https' ]
    subscriptionRequired: false
  }
}

resource consoleIndex 'Microsoft.ApiManagement/service/apis/operations@2024-05-01' = {
  parent: consoleApi
  name: 'index'
  properties: {
    displayName: 'The console page'
    method: 'GET'
    urlTemplate: '/'
  }
}

resource consoleFiles 'Microsoft.ApiManagement/service/apis/operations@2024-05-01' = {
  parent: consoleApi
  name: 'files'
  properties: {
    displayName: 'The files of the console (index.html, hashed assets)'
    method: 'GET'
    urlTemplate: '/{*path}'
    templateParameters: [ { name: 'path', type: 'string', required: true } ]
  }
}

resource consolePolicy 'Microsoft.ApiManagement/service/apis/policies@2024-05-01' = {
  parent: consoleApi
  name: 'policy'
  properties: {
    format: 'rawxml'
    value: loadTextContent('../apim/console-policy.xml')
  }
  dependsOn: [ consoleBackend, gatewayNamedValue ]
}

output name string = apim.name
output gatewayUrl string = apim.properties.gatewayUrl
output consoleUrl string = '${apim.properties.gatewayUrl}/v1/kalimera/console/'

