#!/bin/sh
# azd preprovision hook: values main.parameters.json reads that azd does not make itself.
# - KALIMERA_ENCRYPTION_KEY: made ONCE per environment (a new one would orphan every ciphertext).
# - AZURE_PRINCIPAL_NAME, KALIMERA_DEVELOPER_IP: the operator as Postgres Entra admin and the
#   firewall rule that lets `kalimera migrate` (postdeploy) reach the server.
set -eu

if [ -z "$(azd env get-value KALIMERA_ENCRYPTION_KEY 2>/dev/null || true)" ]; then
  key=$(python3 -c "import base64,secrets;print(base64.b64encode(secrets.token_bytes(32)).decode())")
  azd env set KALIMERA_ENCRYPTION_KEY "$key" >/dev/null
  echo "made a new KALIMERA_ENCRYPTION_KEY for this environment (kept in .azure/, and in Key Vault)"
fi

if command -v az >/dev/null 2>&1; then
  if [ -z "$(azd env get-value AZURE_PRINCIPAL_NAME 2>/dev/null || true)" ]; then
    upn=$(az ad signed-in-user show --query userPrincipalName -o tsv 2>/dev/null || true)
    [ -n "$upn" ] && azd env set AZURE_PRINCIPAL_NAME "$upn" >/dev/null
  fi
fi

if [ -z "$(azd env get-value KALIMERA_DEVELOPER_IP 2>/dev/null || true)" ]; then
  ip=$(curl -fsS --max-time 5 https://api.ipify.org 2>/dev/null || true)
  [ -n "$ip" ] && azd env set KALIMERA_DEVELOPER_IP "$ip" >/dev/null
fi
exit 0
