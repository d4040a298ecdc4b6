#!/bin/sh
# Initialises a Vault for the Connectors Gateway, like the setup guide's
# init-vault.sh: KV v2 at secret/, Transit at transit/, and the gateway's
# policies. Idempotent. Needs VAULT_ADDR and a VAULT_TOKEN that may mount
# engines and write policies. Run from docker-compose.yml, or by hand with
# POLICIES pointing at vault/hashicorp/policies.
set -eu
POLICIES=${POLICIES:-/gateway-vault/policies}

if ! vault secrets list -format=json | grep -q '"secret/"'; then
  vault secrets enable -path=secret -version=2 kv
elif ! vault secrets list -format=json | grep -A8 '"secret/"' | grep -q '"version": "2"'; then
  vault secrets tune -options=version=2 secret/ # upgrade a KV v1 mount
fi
vault secrets list -format=json | grep -q '"transit/"' || vault secrets enable -path=transit transit

vault policy write gateway-service "$POLICIES/gateway-service-policy.hcl"
vault policy write gateway-admin "$POLICIES/gateway-admin-policy.hcl"
echo "Vault ready: KV v2 at secret/, Transit at transit/, policies gateway-service and gateway-admin."
echo "A token for the gateway: vault token create -policy=gateway-service"
