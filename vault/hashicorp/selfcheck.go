package hashicorp

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"

	"github.com/hashicorp/vault/api"

	"github.com/connectors-gateway/connectors/vault"
)

// Need is one kind of call the store makes to Vault: an example of its
// path under the store's mounts, the capabilities a token needs there
// (policies/gateway-service-policy.hcl grants them), and what for.
type Need struct {
	Path         string
	Capabilities []string
	For          string
}

// Needs returns every kind of call the store makes, under its mounts; the
// tenant and integration in the paths are examples.
func (h *Store) Needs() []Need {
	const tenant, integration = "example-tenant", "example"
	t := func(op string) string { return h.transitPath(op, tenant) }
	return []Need{
		{h.kv.data(tenant, integration), []string{"create", "read", "update"}, "credential records"},
		{h.kv.data(apiKeysDir, "example"), []string{"create", "read", "update"}, "API keys"},
		{h.kv.metadata(tenant, integration), []string{"read", "delete"}, "deleting records"},
		{h.kv.root(), []string{"list"}, "listing tenants"},
		{h.kv.tenantDir(tenant), []string{"list"}, "listing a tenant's integrations"},
		{t("keys"), []string{"read", "update"}, "per-tenant Transit keys"},
		{t("keys") + "/rotate", []string{"update"}, "key rotation"},
		{t("encrypt"), []string{"update"}, "sealing secrets"},
		{t("decrypt"), []string{"update"}, "opening secrets"},
		{t("rewrap"), []string{"update"}, "rewrapping after rotation"},
	}
}

// Lack is a Need the store's token does not fully have: Missing are the
// capabilities it lacks at Need.Path.
type Lack struct {
	Need
	Missing []string
}

// MissingCapabilities asks Vault (sys/capabilities-self, which the gateway
// policy and Vault's default policy grant) which of the store's Needs its
// token lacks; none is nil.
func (h *Store) MissingCapabilities(ctx context.Context) ([]Lack, error) {
	needs := h.Needs()
	paths := make([]string, len(needs))
	for i, n := range needs {
		paths[i] = n.Path
	}
	s, err := h.client.Logical().WriteWithContext(ctx, "sys/capabilities-self", map[string]any{"paths": paths})
	if err != nil {
		return nil, h.vaultErr(ctx, "reading the token's capabilities", err)
	}
	if s == nil || s.Data == nil {
		return nil, &vault.VaultError{Err: errors.New("reading the token's capabilities: empty answer")}
	}
	var lacks []Lack
	for _, n := range needs {
		raw, _ := s.Data[n.Path].([]any)
		have := make([]string, 0, len(raw))
		for _, c := range raw {
			if c, ok := c.(string); ok {
				have = append(have, c)
			}
		}
		if slices.Contains(have, "root") {
			continue
		}
		var missing []string
		for _, c := range n.Capabilities {
			if !slices.Contains(have, c) {
				missing = append(missing, c)
			}
		}
		if len(missing) > 0 {
			lacks = append(lacks, Lack{Need: n, Missing: missing})
		}
	}
	return lacks, nil
}

// ErrWrongMount is returned by [Store.CheckMounts] for a mount that is
// missing, out of the token's reach, or of another kind.
var ErrWrongMount = errors.New("wrong mount")

// CheckMounts checks that the store's KV mount is KV version 2 and its
// Transit mount is Transit, as Vault tells a token with access to them
// (sys/internal/ui/mounts, which needs no policy of its own). The error
// names the mount and what is wrong with it.
func (h *Store) CheckMounts(ctx context.Context) error {
	var errs []error
	for _, m := range []struct{ path, kind, version string }{
		{h.kv.mount, "kv", "2"},
		{h.transitMount, "transit", ""},
	} {
		s, err := h.client.Logical().ReadWithContext(ctx, "sys/internal/ui/mounts/"+m.path)
		var re *api.ResponseError
		switch {
		case errors.As(err, &re) && re.StatusCode == http.StatusForbidden && ctx.Err() == nil,
			err == nil && (s == nil || s.Data == nil):
			errs = append(errs, fmt.Errorf("mount %s/: %w: not found, or this token has no access to it", m.path, ErrWrongMount))
			continue
		case err != nil:
			errs = append(errs, fmt.Errorf("mount %s/: %w", m.path, h.vaultErr(ctx, "reading the mount", err)))
			continue
		}
		kind, _ := s.Data["type"].(string)
		version := ""
		if opts, ok := s.Data["options"].(map[string]any); ok {
			version, _ = opts["version"].(string)
		}
		if kind != m.kind || (m.version != "" && version != m.version) {
			errs = append(errs, fmt.Errorf("mount %s/: %w: it is %s (version %q), not %s%s", m.path, ErrWrongMount, kind, version, m.kind, m.version))
		}
	}
	return errors.Join(errs...)
}
