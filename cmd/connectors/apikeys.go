package main

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/connectors-gateway/connectors/audit"
	"github.com/connectors-gateway/connectors/cluster"
	"github.com/connectors-gateway/connectors/tenants"
	"github.com/connectors-gateway/connectors/transport"
	"github.com/connectors-gateway/connectors/vault/embedded"
)

// apiKeyManager serves the API-key routes (transport.HTTPOptions.APIKeys)
// from the API keys this replica verifies, so that a key revoked here is
// refused here at once, and tells the other replicas of each revocation
// (cluster.KindAPIKeyRevoked, as "connectors apikey revoke" does), so that
// theirs forget it at once too rather than within their cache's TTL.
type apiKeyManager struct {
	*tenants.APIKeys
	peers *peers
}

// apiKeyRoutes is the value of transport.HTTPOptions.APIKeys: keys, whose
// revocations changes tells the other replicas of.
func apiKeyRoutes(keys *tenants.APIKeys, changes *credentialChanges) transport.APIKeyManager {
	return apiKeyManager{APIKeys: keys, peers: &changes.peers}
}

// RevokeTenant revokes tenant's key id and tells the other replicas. They
// are told of a store failure too (the key may be gone: a needless cache
// miss costs one read), never of a refusal (no such key of the tenant, or
// an admin key the caller may not revoke), which changed nothing.
func (k apiKeyManager) RevokeTenant(ctx context.Context, tenant, id string, mayRevokeAdmin bool) error {
	err := k.APIKeys.RevokeTenant(ctx, tenant, id, mayRevokeAdmin)
	if !errors.Is(err, tenants.ErrKeyNotFound) && !errors.Is(err, tenants.ErrAdminKey) {
		k.peers.tell(cluster.Change{Kind: cluster.KindAPIKeyRevoked, Key: id})
	}
	return err
}

// apikey runs the "apikey" operator commands: create, revoke and list.
// Creations and revocations are audited as the API-key routes' are
// (apikey_create, apikey_revoke, naming the key's ID, never the key).
func (m *Main) apikey(ctx context.Context, cfg Config, args []string) error {
	if len(args) == 0 {
		return usageError{"apikey: want create, revoke or list"}
	}
	switch verb, args := args[0], args[1:]; verb {
	case "create":
		return m.apikeyCreate(ctx, cfg, args)
	case "revoke":
		return m.apikeyRevoke(ctx, cfg, args)
	case "list":
		return m.apikeyList(ctx, cfg, args)
	default:
		return usageError{fmt.Sprintf("apikey: unknown verb %q", verb)}
	}
}

// apikeyCreate runs "apikey create --tenant T [--admin] [--name NAME]":
// the key on stdout, shown once; its ID on stderr.
func (m *Main) apikeyCreate(ctx context.Context, cfg Config, args []string) error {
	fs := m.flags("apikey create")
	tenant := fs.String("tenant", "", "tenant ID the key acts for (required)")
	admin := fs.Bool("admin", false, "the key may administer every tenant")
	name := fs.String("name", "", "a label for people (claude-desktop): at most 64 printable characters")
	if err := parse(fs, args); err != nil {
		return err
	}
	if err := tenants.ValidateID(*tenant); err != nil {
		return usageError{fmt.Sprintf("--tenant: %v", err)}
	}
	if err := tenants.ValidateKeyName(*name); err != nil {
		return usageError{"--" + err.Error()} // "--name: why", never the name
	}
	opts := tenants.CreateOptions{Admin: *admin, Name: *name}
	st, err := m.openStore(cfg, m.quietLogger())
	if errors.Is(err, embedded.ErrLocked) {
		return m.viaGateway(cfg, err).apiKeyCreate(ctx, *tenant, opts)
	}
	if err != nil {
		return err
	}
	start := time.Now()
	key, info, err := tenants.NewAPIKeys(st).CreateWith(ctx, *tenant, opts)
	m.audit.Record(ctx, audit.Record{TenantID: *tenant, Operation: audit.OpAPIKeyCreate, APIKeyID: info.ID,
		Duration: time.Since(start), Success: err == nil, Err: err})
	if err != nil {
		return err
	}
	fmt.Fprintf(m.Stderr, "API key %s created for tenant %s; it is shown once:\n", info.ID, *tenant)
	fmt.Fprintln(m.Stdout, key)
	return nil
}

// apikeyRevoke runs "apikey revoke ID". Something that is not a key ID
// is refused before the store is opened, and not repeated: it may be the
// key itself, pasted where its ID belongs.
func (m *Main) apikeyRevoke(ctx context.Context, cfg Config, args []string) error {
	if len(args) != 1 {
		return usageError{"apikey revoke: want the key ID"}
	}
	id := args[0]
	if !tenants.ValidKeyID(id) {
		return usageError{"apikey revoke: not a key ID (16 hex digits, as \"apikey list\" shows; a key reads cgw_<ID>_…)"}
	}
	st, err := m.openStore(cfg, m.quietLogger())
	if errors.Is(err, embedded.ErrLocked) {
		return m.viaGateway(cfg, err).apiKeyRevoke(ctx, id)
	}
	if err != nil {
		return err
	}
	keys := tenants.NewAPIKeys(st)
	rec := audit.Record{Operation: audit.OpAPIKeyRevoke, APIKeyID: id}
	if all, err := keys.List(ctx); err == nil { // the key's tenant, for the record; Revoke reports a failing store
		if i := slices.IndexFunc(all, func(k tenants.APIKey) bool { return k.ID == id }); i >= 0 {
			rec.TenantID = all[i].Tenant
		}
	}
	start := time.Now()
	err = keys.Revoke(ctx, id)
	rec.Duration, rec.Success, rec.Err = time.Since(start), err == nil, err
	m.audit.Record(ctx, rec)
	if !errors.Is(err, tenants.ErrKeyNotFound) {
		// As apiKeyManager.RevokeTenant: a store failure too (the key may be gone).
		m.announce(cfg, cluster.Change{Kind: cluster.KindAPIKeyRevoked, Key: id})
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(m.Stdout, "revoked %s\n", id)
	return nil
}

// apikeyList runs "apikey list [--tenant T] [--json]": every key (or
// tenant T's), by tenant, newest first, as a table; with --json, the body
// of GET /tenants/{tenantId}/api-keys (for every tenant: {"tenants": [one
// such body per tenant]}). No secret, no hash: the store keeps neither.
func (m *Main) apikeyList(ctx context.Context, cfg Config, args []string) error {
	fs := m.flags("apikey list")
	tenant := fs.String("tenant", "", "only this tenant's keys")
	asJSON := fs.Bool("json", false, "print the API's JSON instead of a table")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *tenant != "" {
		if err := tenants.ValidateID(*tenant); err != nil {
			return usageError{fmt.Sprintf("--tenant: %v", err)}
		}
	}
	st, err := m.openStore(cfg, m.quietLogger())
	var keys []tenants.APIKey
	switch {
	case errors.Is(err, embedded.ErrLocked):
		keys, err = m.viaGateway(cfg, err).apiKeys(ctx, *tenant)
	case err == nil:
		keys, err = tenants.NewAPIKeys(st).List(ctx)
	}
	if err != nil {
		return err
	}
	keys = slices.DeleteFunc(keys, func(k tenants.APIKey) bool { return *tenant != "" && k.Tenant != *tenant })
	keys = sortKeys(keys)
	if *asJSON {
		raw, err := json.Marshal(keysListing(*tenant, keys))
		return m.printJSON(raw, err)
	}
	return m.printKeysTable(keys)
}

// sortKeys sorts keys by tenant, newest first, and returns them.
func sortKeys(keys []tenants.APIKey) []tenants.APIKey {
	slices.SortFunc(keys, func(a, b tenants.APIKey) int {
		return cmp.Or(strings.Compare(a.Tenant, b.Tenant), b.CreatedAt.Compare(a.CreatedAt), strings.Compare(a.ID, b.ID))
	})
	return keys
}

// printKeysTable prints keys as "apikey list" does: one line a key.
func (m *Main) printKeysTable(keys []tenants.APIKey) error {
	tw := tabwriter.NewWriter(m.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tTENANT\tNAME\tADMIN\tCREATED")
	for _, k := range keys {
		name := k.Name
		switch {
		case name == "":
			name = "-"
		case tenants.ValidateKeyName(name) != nil: // a record not written by this gateway
			name = "(unprintable)"
		}
		admin := "no"
		if k.Admin {
			admin = "yes"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", k.ID, k.Tenant, name, admin, k.CreatedAt.UTC().Format(time.RFC3339))
	}
	return tw.Flush()
}

// keysListing is keys (sorted by tenant) as the API lists them: tenant's
// listing, or, for every tenant (tenant ""), {"tenants": [...]}, one
// listing per tenant.
func keysListing(tenant string, keys []tenants.APIKey) any {
	if tenant != "" {
		return transport.APIKeyListing(tenant, keys)
	}
	listings := []any{}
	for i := 0; i < len(keys); {
		j := i
		for j < len(keys) && keys[j].Tenant == keys[i].Tenant {
			j++
		}
		listings = append(listings, transport.APIKeyListing(keys[i].Tenant, keys[i:j]))
		i = j
	}
	return map[string]any{"tenants": listings}
}
