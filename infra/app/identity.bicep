// The app's one user-assigned identity: storage, Postgres, Redis, Key Vault and telemetry all
// authenticate with it (no keys, no passwords in app settings).
param name string
param location string
param tags object

resource uami 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' = {
  name: name
  location: location
  tags: tags
}

output id string = uami.id
output name string = uami.name
output clientId string = uami.properties.clientId
output principalId string = uami.properties.principalId
