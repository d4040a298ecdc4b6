# Tenant off-boarding for the Connectors Gateway's HashiCorp Vault
# credential store ((*vault.HashiCorp).OffboardTenant): what it needs beyond
# gateway-service-policy.hcl. Give it to an operator's token, not to the
# serving gateway: it can destroy a tenant's key, and with it every copy of
# the tenant's ciphertext (crypto-shredding). Mount names are the defaults
# (VAULT_KV_ENGINE=secret, VAULT_TRANSIT_ENGINE=transit).
#
#   vault policy write gateway-admin vault/hashicorp/policies/gateway-admin-policy.hcl
#   vault token create -policy=gateway-service -policy=gateway-admin

# List the tenant's records (including folders written by hand) and delete
# each one's metadata, so no version can be undeleted.
path "secret/metadata/*" {
  capabilities = ["read", "list", "delete"]
}

# Read the tenant's key to learn whether it exists, and delete it.
path "transit/keys/*" {
  capabilities = ["read", "delete"]
}

# Allow the key's deletion (Transit refuses to delete a key until its
# configuration says deletion_allowed=true), and retiring old key versions
# after a rotation (min_decryption_version, `key rotate --retire-old`);
# nothing else of its configuration may change.
path "transit/keys/+/config" {
  capabilities = ["update"]
  allowed_parameters = {
    "deletion_allowed"       = [true]
    "min_decryption_version" = []
  }
}
