// The Event Grid subscription that feeds the blob trigger. Not part of `azd provision`: the
// webhook needs the `blobs_extension` system key, which exists only once the code is deployed and
// the host has started, so scripts/postdeploy.sh deploys this file after `azd deploy`.
// functionName must name the blob-trigger function exactly (a wrong name drops events silently);
// tests/infra checks the hook's value against function_app.app.get_functions().
//
// Nothing is lost silently: an event the webhook has not accepted after the retry policy (30
// tries over up to 24 hours, Event Grid's backoff) is written, with the system topic's identity,
// to the dead-letter container, where the operator (or the app's sweep) finds it.
targetScope = 'resourceGroup'

param functionAppName string
param systemTopicName string
param storageAccountName string
param containerName string = 'kalimera-voice'
param deadLetterContainerName string = 'kalimera-deadletter'
param functionName string = 'ingest_recording'

resource func 'Microsoft.Web/sites@2024-04-01' existing = {
  name: functionAppName
}

resource topic 'Microsoft.EventGrid/systemTopics@2025-02-15' existing = {
  name: systemTopicName
}

resource stg 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: storageAccountName
}

var blobsKey = listKeys('${func.id}/host/default', '2024-04-01').systemKeys.blobs_extension

resource subscription 'Microsoft.EventGrid/systemTopics/eventSubscriptions@2025-02-15' = {
  parent: topic
  name: 'kalimera-recording-created'
  properties: {
    destination: {
      endpointType: 'WebHook'
      properties: {
        endpointUrl: 'https://${func.properties.defaultHostName}/runtime/webhooks/blobs?functionName=Host.Functions.${functionName}&code=${blobsKey}'
      }
    }
    filter: {
      includedEventTypes: [ 'Microsoft.Storage.BlobCreated' ]
      subjectBeginsWith: '/blobServices/default/containers/${containerName}/blobs/'
    }
    eventDeliverySchema: 'EventGridSchema'
    retryPolicy: { maxDeliveryAttempts: 30, eventTimeToLiveInMinutes: 1440 }
    deadLetterWithResourceIdentity: {
      identity: { type: 'SystemAssigned' }
      deadLetterDestination: {
        endpointType: 'StorageBlob'
        properties: { resourceId: stg.id, blobContainerName: deadLetterContainerName }
      }
    }
  }
}
