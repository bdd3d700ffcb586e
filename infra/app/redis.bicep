// Azure Managed Redis (new Azure Cache for Redis instances can no longer be created): TLS only,
// access keys off, the app's identity authorised through an access policy assignment.
param name string
param location string
param tags object
param isProd bool
param privateNetworking bool
param privateEndpointSubnetId string
param appIdentityPrincipalId string

resource cluster 'Microsoft.Cache/redisEnterprise@2025-07-01' = {
  name: name
  location: location
  tags: tags
  sku: { name: isProd ? 'Balanced_B1' : 'Balanced_B0' }
  properties: {
    minimumTlsVersion: '1.2'
    highAvailability: isProd ? 'Enabled' : 'Disabled'
    publicNetworkAccess: privateNetworking ? 'Disabled' : 'Enabled'
  }
}

// EnterpriseCluster gives one endpoint that a non-cluster-aware client (redis-py Redis) can use.
resource database 'Microsoft.Cache/redisEnterprise/databases@2025-07-01' = {
  parent: cluster
  name: 'default'
  properties: {
    clientProtocol: 'Encrypted'
    port: 10000
    clusteringPolicy: 'EnterpriseCluster'
    evictionPolicy: 'VolatileLRU'
    accessKeysAuthentication: 'Disabled'
  }
}

resource appAccess 'Microsoft.Cache/redisEnterprise/databases/accessPolicyAssignments@2025-07-01' = {
  parent: database
  name: 'kalimerafunc'
  properties: {
    accessPolicyName: 'default'
    user: { objectId: appIdentityPrincipalId }
  }
}

module endpoint 'private-endpoint.bicep' = if (privateNetworking) {
  name: 'pe-redis'
  params: {
    name: 'pe-${name}'
    location: location
    tags: tags
    subnetId: privateEndpointSubnetId
    targetId: cluster.id
    groupId: 'redisEnterprise'
    dnsZoneName: 'privatelink.redis.azure.net'
  }
}

output host string = cluster.properties.hostName
output port int = database.properties.port
