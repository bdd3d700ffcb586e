// Key Vault holding the agents' secrets encryption key and the API Management gateway secret;
// the app reads both through Key Vault references resolved with its identity (Key Vault Secrets
// User, app/rbac.bicep), API Management reads the gateway secret with its own (app/apim.bicep).
//
// Key Vault is where each secret lives, not the azd environment: a secret is written here only
// when its parameter is not empty, which scripts/preprovision.sh makes so only while the vault
// lacks it (the first provision). Every later `azd provision` leaves the vault's current value,
// so a rotation done in the vault (docs/deploy.md) is kept.
param name string
param location string
param tags object
param privateNetworking bool
param privateEndpointSubnetId string
param logAnalyticsWorkspaceId string
@description('The operator\'s address: with privateNetworking the vault admits it (the hooks read and rotate the secrets). Empty: none.')
param developerIpAddress string = ''
@secure()
@description('First value of the encryption key; empty: keep the vault\'s current secret.')
param encryptionKey string = ''
@secure()
@description('First value of the gateway secret; empty: keep the vault\'s current secret.')
param gatewaySecret string = ''

var encryptionKeyName = 'kalimera-encryption-key'
var gatewaySecretName = 'kalimera-gateway-secret'

resource kv 'Microsoft.KeyVault/vaults@2024-11-01' = {
  // checkov:skip=CKV_AZURE_109: Flex Consumption without a VNet has no fixed outbound address to allow; access is RBAC-only (Key Vault Secrets User for the app's identity) and privateNetworking sets defaultAction Deny with a private endpoint
  // checkov:skip=CKV_AZURE_189: public network access is needed in dev for the same reason; with privateNetworking the firewall denies all but the private endpoint (publicNetworkAccess is left unset: checkov 3.3.30 crashes on a conditional value there)
  name: name
  location: location
  tags: tags
  properties: {
    tenantId: tenant().tenantId
    sku: { family: 'A', name: 'standard' }
    enableRbacAuthorization: true
    enableSoftDelete: true
    softDeleteRetentionInDays: 90
    enablePurgeProtection: true
    networkAcls: {
      bypass: 'AzureServices'
      defaultAction: privateNetworking ? 'Deny' : 'Allow'
      ipRules: empty(developerIpAddress) ? [] : [ { value: developerIpAddress } ]
    }
  }
}

// A new value would orphan every stored ciphertext: written once, rotated only on purpose.
resource encKey 'Microsoft.KeyVault/vaults/secrets@2024-11-01' = if (!empty(encryptionKey)) {
  // checkov:skip=CKV_AZURE_41: the data-encryption key must not expire (an expired reference would stop the app); it is rotated deliberately via KALIMERA_ENCRYPTION_KEY_OLD
  // checkov:skip=CKV_AZURE_114: contentType is set below; checkov 3.3.30 does not read the properties of a conditional (if) resource
  parent: kv
  name: encryptionKeyName
  properties: {
    value: encryptionKey
    contentType: 'base64'
    attributes: { enabled: true }
  }
}

// API Management sends it in X-Kalimera-Gateway; the app refuses requests without it.
resource gwSecret 'Microsoft.KeyVault/vaults/secrets@2024-11-01' = if (!empty(gatewaySecret)) {
  // checkov:skip=CKV_AZURE_41: an expired gateway secret would cut API Management off the app; it is rotated deliberately (docs/deploy.md)
  // checkov:skip=CKV_AZURE_114: contentType is set below; checkov 3.3.30 does not read the properties of a conditional (if) resource
  parent: kv
  name: gatewaySecretName
  properties: {
    value: gatewaySecret
    contentType: 'text/plain'
    attributes: { enabled: true }
  }
}

// Audit: who read or changed which secret, and when.
resource kvLogs 'Microsoft.Insights/diagnosticSettings@2021-05-01-preview' = {
  name: 'audit'
  scope: kv
  properties: {
    workspaceId: logAnalyticsWorkspaceId
    logs: [ { categoryGroup: 'allLogs', enabled: true } ]
  }
}

module endpoint 'private-endpoint.bicep' = if (privateNetworking) {
  name: 'pe-vault'
  params: {
    name: 'pe-${name}'
    location: location
    tags: tags
    subnetId: privateEndpointSubnetId
    targetId: kv.id
    groupId: 'vault'
    dnsZoneName: 'privatelink.vaultcore.azure.net'
  }
}

output name string = kv.name
output encryptionKeyName string = encryptionKeyName
output gatewaySecretName string = gatewaySecretName
