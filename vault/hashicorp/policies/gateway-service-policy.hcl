# Least privilege for the Connectors Gateway's HashiCorp Vault credential
# store (vault/hashicorp.go): exactly the calls it makes, no more. Mount
# names are the defaults (VAULT_KV_ENGINE=secret, VAULT_TRANSIT_ENGINE=transit);
# change the path prefixes if yours differ.
#
#   vault policy write gateway-service vault/hashicorp/policies/gateway-service-policy.hcl
#   vault token create -policy=gateway-service

# Credential records: secret/data/{tenant}/{integration}. Get reads (also an
# older version, for Put's created_at); Put writes with check-and-set
# ("create" for a new record, "update" for an existing one).
path "secret/data/*" {
  capabilities = ["create", "read", "update"]
}

# Metadata: Tenants lists secret/metadata/, Integrations lists
# secret/metadata/{tenant}/, Delete reads then deletes a record's metadata
# (every version, so a revoked credential cannot be undeleted), and a lost
# check-and-set reads the current version.
path "secret/metadata/*" {
  capabilities = ["read", "list", "delete"]
}

# Per-tenant Transit keys: read to learn whether it exists and whether it is
# derived, create on the tenant's first write, only as a derived aes256-gcm96
# key, never exportable. Transit's
# keys endpoint has no existence check, so Vault treats creating a key as an
# "update" (the seed's "create" alone is denied); the allowed parameters
# keep that from reaching the key's configuration (keys/{tenant}/config
# takes neither parameter).
path "transit/keys/*" {
  capabilities = ["read", "update"]
  allowed_parameters = {
    "type"       = ["aes256-gcm96"]
    "derived"    = [true]
    "exportable" = [false]
  }
}

# Key rotation (RotateTenantKey).
path "transit/keys/+/rotate" {
  capabilities = ["update"]
}

# One batch call per record to seal, open or rewrap its secrets.
path "transit/encrypt/*" {
  capabilities = ["update"]
}

path "transit/decrypt/*" {
  capabilities = ["update"]
}

path "transit/rewrap/*" {
  capabilities = ["update"]
}

# What this token may do, for `connectors doctor` (Vault's default policy
# grants it too; a token made without that policy needs it here).
path "sys/capabilities-self" {
  capabilities = ["update"]
}
