#!/bin/sh
# azd postdeploy hook, after the code is deployed:
#  1. create the Event Grid subscription that feeds the blob trigger (infra/eventgrid.bicep): it
#     needs the blobs_extension key, which exists only once the host has started with the code;
#  2. apply the database migrations, as the operator (a Postgres Entra admin) with an Entra token.
set -eu

# The blob-trigger function's name: tests/infra/test_eventgrid_hook.py checks it equals the name
# function_app.app.get_functions() reports (a wrong name loses every event silently).
FUNCTION_NAME="ingest_recording"

command -v az >/dev/null 2>&1 || { echo "postdeploy needs the Azure CLI (az): https://aka.ms/azcli" >&2; exit 1; }

eval "$(azd env get-values | sed 's/^/export /')"

# 1. The Event Grid subscription, retried while the host has not published its key yet.
echo "waiting for the blobs_extension key of ${AZURE_FUNCTION_APP_NAME}"
tries=0
until key=$(az functionapp keys list -n "$AZURE_FUNCTION_APP_NAME" -g "$RESOURCE_GROUP" \
              --query systemKeys.blobs_extension -o tsv 2>/dev/null) && [ -n "$key" ]; do
  tries=$((tries + 1))
  [ "$tries" -ge 30 ] && { echo "no blobs_extension key after 5 minutes: is the blob trigger deployed?" >&2; exit 1; }
  sleep 10
done

az deployment group create -g "$RESOURCE_GROUP" -n kalimera-eventgrid \
  -f infra/eventgrid.bicep \
  -p functionAppName="$AZURE_FUNCTION_APP_NAME" \
     systemTopicName="$KALIMERA_SYSTEM_TOPIC_NAME" \
     containerName="$KALIMERA_VOICE_CONTAINER" \
     functionName="$FUNCTION_NAME" \
  -o none
echo "Event Grid subscription ready: uploads to ${KALIMERA_VOICE_CONTAINER} now fire ${FUNCTION_NAME}"

# 2. Migrations. Objects are owned by azure_pg_admin, the group both Entra admins (the operator
#    and the app's identity) belong to, so the app can use what the operator created.
PY=.venv/bin/python; [ -x "$PY" ] || PY=python3
if [ -n "${AZURE_PRINCIPAL_NAME:-}" ]; then
  echo "applying database migrations on ${POSTGRES_HOST}"
  PGPASSWORD=$(az account get-access-token --resource-type oss-rdbms --query accessToken -o tsv) \
  KALIMERA_ENV=production \
  DATABASE_URL="postgresql://${AZURE_PRINCIPAL_NAME}@${POSTGRES_HOST}:5432/${POSTGRES_DATABASE}?sslmode=require&options=-c%20role%3Dazure_pg_admin" \
  REDIS_URL="rediss://unused:10000/0" \
  KALIMERA_STORAGE__blobServiceUri="https://${AZURE_STORAGE_ACCOUNT_NAME}.blob.core.windows.net/" \
  KALIMERA_ENCRYPTION_KEY="${KALIMERA_ENCRYPTION_KEY}" \
    "$PY" -m kalimera migrate || {
    echo "migrations failed: run them by hand (docs/deploy.md, 'Call the API')" >&2; exit 1; }
else
  echo "AZURE_PRINCIPAL_NAME is not set: run 'kalimera migrate' yourself (docs/deploy.md)" >&2
fi
