// Log Analytics + workspace-based Application Insights, local (key) auth off: the app and the
// Functions host send telemetry with the identity (Monitoring Metrics Publisher, app/rbac.bicep).
// The workspace also receives every resource's diagnostic settings (audit and resource logs):
// each module declares its own, scoped to its resource, with this workspace's id.
param logAnalyticsName string
param applicationInsightsName string
param location string
param tags object

resource law 'Microsoft.OperationalInsights/workspaces@2023-09-01' = {
  name: logAnalyticsName
  location: location
  tags: tags
  properties: {
    sku: { name: 'PerGB2018' }
    retentionInDays: 90
  }
}

resource appi 'Microsoft.Insights/components@2020-02-02' = {
  name: applicationInsightsName
  location: location
  tags: tags
  kind: 'web'
  properties: {
    Application_Type: 'web'
    WorkspaceResourceId: law.id
    DisableLocalAuth: true
  }
}

output applicationInsightsName string = appi.name
output logAnalyticsName string = law.name
output logAnalyticsWorkspaceId string = law.id
