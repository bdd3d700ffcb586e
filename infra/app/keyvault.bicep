// Key Vault holding the agents' secrets encryption key; the app reads it through a Key Vault
// reference resolved with the identity (Key Vault Secrets User, app/rbac.bicep).
param name string
param location string
param tags object
param privateNetworking bool
param privateEndpointSubnetId string
@secure()
param encryptionKey string

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
    }
  }
}

// A new value would orphan every stored ciphertext: preprovision.sh makes it once per environment.
resource encKey 'Microsoft.KeyVault/vaults/secrets@2024-11-01' = {
  // checkov:skip=CKV_AZURE_41: the data-encryption key must not expire (an expired reference would stop the app); it is rotated deliberately via KALIMERA_ENCRYPTION_KEY_OLD
  parent: kv
  name: 'kalimera-encryption-key'
  properties: {
    value: encryptionKey
    contentType: 'base64'
    attributes: { enabled: true }
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
output encryptionKeySecretUri string = encKey.properties.secretUri
