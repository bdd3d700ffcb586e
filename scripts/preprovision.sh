#!/bin/sh
# azd preprovision hook: values main.parameters.json reads that azd does not make itself.
# - KALIMERA_ENCRYPTION_KEY_SEED, KALIMERA_GATEWAY_SECRET_SEED: the first value of each secret,
#   set only while the environment's Key Vault lacks that secret (the first provision); empty
#   afterwards, so `azd provision` leaves the vault's value, and any rotation done there, alone.
# - AZURE_PRINCIPAL_NAME, KALIMERA_DEVELOPER_IP: the operator as Postgres Entra admin and the
#   firewall rule that lets `kalimera migrate` (postdeploy) reach the server.
set -eu

get() { azd env get-value "$1" 2>/dev/null || true; }
new_key() { python3 -c "import base64,secrets;print(base64.b64encode(secrets.token_bytes(32)).decode())"; }
new_token() { python3 -c "import secrets;print(secrets.token_urlsafe(48))"; }

VAULT=$(get AZURE_KEY_VAULT_NAME)

# vault_has NAME: 0 when the vault holds the secret, 1 when it does not (or there is no vault
# yet); stops the hook when the vault exists but cannot be read (guessing could overwrite a key).
vault_has() {
  [ -n "$VAULT" ] || return 1
  command -v az >/dev/null 2>&1 || { echo "preprovision needs the Azure CLI (az) to read ${VAULT}" >&2; exit 1; }
  az keyvault show -n "$VAULT" -o none 2>/dev/null || return 1
  count=$(az keyvault secret list --vault-name "$VAULT" --query "length([?name=='$1'])" -o tsv) || {
    echo "cannot list the secrets of ${VAULT}: you need Key Vault Secrets Officer on it" >&2; exit 1; }
  [ "$count" != "0" ]
}

# seed NAME VARIABLE VALUE: VARIABLE carries VALUE into provision only while NAME is missing.
seed() {
  if vault_has "$1"; then
    azd env set "$2" "" >/dev/null
  else
    azd env set "$2" "$3" >/dev/null
    echo "$1: a first value goes to Key Vault with this provision"
  fi
}

# An environment made before the key lived in Key Vault only keeps its key.
seed kalimera-encryption-key KALIMERA_ENCRYPTION_KEY_SEED "$(get KALIMERA_ENCRYPTION_KEY | grep . || new_key)"
seed kalimera-gateway-secret KALIMERA_GATEWAY_SECRET_SEED "$(new_token)"

if command -v az >/dev/null 2>&1; then
  if [ -z "$(get AZURE_PRINCIPAL_NAME)" ]; then
    upn=$(az ad signed-in-user show --query userPrincipalName -o tsv 2>/dev/null || true)
    [ -n "$upn" ] && azd env set AZURE_PRINCIPAL_NAME "$upn" >/dev/null
  fi
fi

if [ -z "$(get KALIMERA_DEVELOPER_IP)" ]; then
  ip=$(curl -fsS --max-time 5 https://api.ipify.org 2>/dev/null || true)
  [ -n "$ip" ] && azd env set KALIMERA_DEVELOPER_IP "$ip" >/dev/null
fi
exit 0
