#!/bin/sh
# azd postdeploy hook, after the code is deployed:
#  1. the database roles (scripts/postgres_roles.py) and the migrations, as the operator (the
#     server's Entra admin) with an Entra token: the schema is owned by kalimera_owner, the app's
#     identity is a plain role that reads and writes rows;
#  2. the Event Grid subscription that feeds the blob trigger (infra/eventgrid.bicep), with its
#     dead-letter container: it needs the blobs_extension key, which exists only once the host has
#     started with the code.
set -eu

# The blob-trigger function's name: tests/infra/test_eventgrid_hook.py checks it equals the name
# function_app.app.get_functions() reports (a wrong name loses every event silently).
FUNCTION_NAME="ingest_recording"

command -v az >/dev/null 2>&1 || { echo "postdeploy needs the Azure CLI (az): https://aka.ms/azcli" >&2; exit 1; }

eval "$(azd env get-values | sed 's/^/export /')"

# 1. Roles, then migrations as the owner. Any valid key satisfies the settings check of
#    `kalimera migrate` (it decrypts nothing); the vault's own key is used so none is copied.
PY=.venv/bin/python; [ -x "$PY" ] || PY=python3
if [ -n "${AZURE_PRINCIPAL_NAME:-}" ]; then
  echo "database roles and migrations on ${POSTGRES_HOST}"
  PGPASSWORD=$(az account get-access-token --resource-type oss-rdbms --query accessToken -o tsv)
  export PGPASSWORD
  # Postgres itself (5432), never the app's PgBouncer (6432): the migrations hold a session
  # advisory lock and set the role for the session, which a transaction pooler does not keep.
  DATABASE_URL="postgresql://${AZURE_PRINCIPAL_NAME}@${POSTGRES_HOST}:5432/${POSTGRES_DATABASE}?sslmode=require" \
    "$PY" scripts/postgres_roles.py --app "$POSTGRES_APP_ROLE" --app-object-id "$POSTGRES_APP_PRINCIPAL_ID"
  KALIMERA_ENV=production \
  DATABASE_URL="postgresql://${AZURE_PRINCIPAL_NAME}@${POSTGRES_HOST}:5432/${POSTGRES_DATABASE}?sslmode=require&options=-c%20role%3Dkalimera_owner" \
  REDIS_URL="rediss://unused:10000/0" \
  KALIMERA_STORAGE__blobServiceUri="https://${AZURE_STORAGE_ACCOUNT_NAME}.blob.core.windows.net/" \
  KALIMERA_ENCRYPTION_KEY="$(az keyvault secret show --vault-name "$AZURE_KEY_VAULT_NAME" --name kalimera-encryption-key --query value -o tsv)" \
    "$PY" -m kalimera migrate || {
    echo "migrations failed: run them by hand (docs/deploy.md, 'Call the API')" >&2; exit 1; }
else
  echo "AZURE_PRINCIPAL_NAME is not set: make the roles and run 'kalimera migrate' yourself (docs/deploy.md)" >&2
fi

# 2. The Event Grid subscription, retried while the host has not published its key yet.
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
     storageAccountName="$AZURE_STORAGE_ACCOUNT_NAME" \
     containerName="$KALIMERA_VOICE_CONTAINER" \
     deadLetterContainerName="$KALIMERA_DEADLETTER_CONTAINER" \
     functionName="$FUNCTION_NAME" \
  -o none
echo "Event Grid subscription ready: uploads to ${KALIMERA_VOICE_CONTAINER} now fire ${FUNCTION_NAME}; undeliverable events go to ${KALIMERA_DEADLETTER_CONTAINER}"
