#!/bin/sh
# Gives the compose file's gateway replicas their AppRole on the dev Vault:
# role "gateway" with the least-privilege policy gateway-service (written
# by init-vault.sh), with the role ID and secret ID of replicas.env, so
# every replica logs in with the same, known credentials. Idempotent.
# Needs VAULT_ADDR, a VAULT_TOKEN that may configure auth methods, and
# VAULT_ROLE_ID and VAULT_SECRET_ID.
set -eu
vault auth list -format=json | grep -q '"approle/"' || vault auth enable approle
vault write auth/approle/role/gateway token_policies=gateway-service token_ttl=1h token_max_ttl=24h secret_id_num_uses=0
vault write auth/approle/role/gateway/role-id role_id="$VAULT_ROLE_ID"
# A custom secret ID can be registered once: log in first to see whether it is.
if vault write -field=token auth/approle/login role_id="$VAULT_ROLE_ID" secret_id="$VAULT_SECRET_ID" >/dev/null 2>&1; then
  echo "The secret ID is registered already."
else
  vault write auth/approle/role/gateway/custom-secret-id secret_id="$VAULT_SECRET_ID" >/dev/null
fi
echo "AppRole gateway ready (policy gateway-service)."
