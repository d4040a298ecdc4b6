package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"slices"
	"time"

	"github.com/connectors-gateway/connectors/tenants"
	"github.com/connectors-gateway/connectors/vault"
)

// socketOps carries an operator command to the gateway that holds the
// embedded store, over its admin socket (adminsock.go), through the same
// HTTP routes an admin's API key reaches: the gateway does the work, its
// caches and sessions see the change at once, and its audit trail records
// it naming the operator (cli:<user>). Each method prints what the command
// prints when it works on the store itself.
type socketOps struct {
	m   *Main
	c   *apiClient
	err error // why the gateway cannot be reached: every method returns it
}

// viaGateway returns the operations of the gateway on the admin socket in
// cfg's data directory, for an operator command that found the store
// locked (the error locked). A socket that is missing, not the gateway
// user's own, or silent is refused, with locked and why.
func (m *Main) viaGateway(cfg Config, locked error) *socketOps {
	path := cfg.adminSocketPath()
	if err := checkAdminSocket(path); err != nil {
		return &socketOps{err: fmt.Errorf("%w; the admin socket %s: %v", locked, path, err)}
	}
	if !gatewayAnswers(cfg) {
		return &socketOps{err: fmt.Errorf("%w; no gateway answers on %s (another command may hold the store: try again)", locked, path)}
	}
	dial := func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", path)
	}
	c := &apiClient{base: "http://localhost", name: path, http: &http.Client{
		Timeout:   60 * time.Second,
		Transport: &http.Transport{DialContext: dial, DisableKeepAlives: true},
	}}
	return &socketOps{m: m, c: c}
}

// credential runs "credential put|get|delete|list" on the gateway; body
// is put's JSON.
func (s *socketOps) credential(ctx context.Context, verb, tenant, integration string, body []byte) error {
	if s.err != nil {
		return s.err
	}
	path := "/tenants/" + tenant + "/integrations"
	one := path + "/" + url.PathEscape(integration)
	switch verb {
	case "put":
		var out struct {
			ExpiresAt *time.Time `json:"expiresAt"`
		}
		if _, err := s.c.do(ctx, http.MethodPost, one+"/credentials", body, &out); err != nil {
			return err
		}
		var expires time.Time
		if out.ExpiresAt != nil {
			expires = *out.ExpiresAt
		}
		s.m.printStored(tenant, integration, expires)
	case "get":
		return s.credentialGet(ctx, tenant, integration, one)
	case "delete":
		if _, err := s.c.do(ctx, http.MethodDelete, one+"/credentials", nil, nil); err != nil {
			return err
		}
		fmt.Fprintf(s.m.Stdout, "deleted %s/%s\n", tenant, integration)
	case "list":
		var out struct {
			Integrations []struct {
				Name           string `json:"name"`
				HasCredentials bool   `json:"hasCredentials"`
			} `json:"integrations"`
		}
		if _, err := s.c.do(ctx, http.MethodGet, path, nil, &out); err != nil {
			return err
		}
		var names []string
		for _, in := range out.Integrations {
			if in.HasCredentials {
				names = append(names, in.Name)
			}
		}
		slices.Sort(names)
		for _, n := range names {
			fmt.Fprintln(s.m.Stdout, n)
		}
	}
	return nil
}

// credentialGet prints what the gateway shows of one credential (GET
// /tenants/{tenantId}/integrations/{integration}) in the shape of
// "credential get": the API shows no part of a token, no extra, no version.
func (s *socketOps) credentialGet(ctx context.Context, tenant, integration, path string) error {
	var in struct {
		HasCredentials bool            `json:"hasCredentials"`
		TokenType      string          `json:"tokenType"`
		Scopes         []string        `json:"scopes"`
		CreatedAt      *time.Time      `json:"createdAt"`
		UpdatedAt      *time.Time      `json:"updatedAt"`
		ExpiresAt      json.RawMessage `json:"expiresAt"`
	}
	if _, err := s.c.do(ctx, http.MethodGet, path, nil, &in); err != nil {
		return err
	}
	if !in.HasCredentials {
		return &vault.CredentialNotFoundError{Tenant: tenant, Integration: integration}
	}
	if in.ExpiresAt == nil {
		in.ExpiresAt = json.RawMessage("null")
	}
	out := map[string]any{
		"tenantId": tenant, "integration": integration, "tokenType": in.TokenType, "scopes": in.Scopes,
		"createdAt": in.CreatedAt, "updatedAt": in.UpdatedAt, "expiresAt": in.ExpiresAt,
	}
	enc := json.NewEncoder(s.m.Stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(out)
}

// apiKeyCreate runs "apikey create" on the gateway: the key on stdout,
// shown once; its ID on stderr.
func (s *socketOps) apiKeyCreate(ctx context.Context, tenant string, opts tenants.CreateOptions) error {
	if s.err != nil {
		return s.err
	}
	body, _ := json.Marshal(map[string]any{"name": opts.Name, "admin": opts.Admin})
	if opts.Name == "" {
		body, _ = json.Marshal(map[string]any{"admin": opts.Admin})
	}
	var out struct{ ID, Key string }
	if _, err := s.c.do(ctx, http.MethodPost, "/tenants/"+tenant+"/api-keys", body, &out); err != nil {
		return err
	}
	fmt.Fprintf(s.m.Stderr, "API key %s created for tenant %s; it is shown once:\n", out.ID, tenant)
	fmt.Fprintln(s.m.Stdout, out.Key)
	return nil
}

// apiKeys lists the API keys of tenant, or of every tenant (tenant ""),
// from the gateway.
func (s *socketOps) apiKeys(ctx context.Context, tenant string) ([]tenants.APIKey, error) {
	if s.err != nil {
		return nil, s.err
	}
	type listing struct {
		TenantID string `json:"tenantId"`
		Keys     []struct {
			ID        string    `json:"id"`
			Name      string    `json:"name"`
			Admin     bool      `json:"admin"`
			CreatedAt time.Time `json:"createdAt"`
		} `json:"keys"`
	}
	var all struct{ Tenants []listing }
	var err error
	if tenant == "" {
		_, err = s.c.do(ctx, http.MethodGet, "/admin/api-keys", nil, &all)
	} else {
		all.Tenants = make([]listing, 1)
		_, err = s.c.do(ctx, http.MethodGet, "/tenants/"+tenant+"/api-keys", nil, &all.Tenants[0])
	}
	if err != nil {
		return nil, err
	}
	var keys []tenants.APIKey
	for _, l := range all.Tenants {
		for _, k := range l.Keys {
			keys = append(keys, tenants.APIKey{ID: k.ID, Tenant: l.TenantID, Name: k.Name, Admin: k.Admin, CreatedAt: k.CreatedAt})
		}
	}
	return keys, nil
}

// apiKeyRevoke runs "apikey revoke ID" on the gateway: the key's tenant
// found in the listing, then its DELETE route.
func (s *socketOps) apiKeyRevoke(ctx context.Context, id string) error {
	keys, err := s.apiKeys(ctx, "")
	if err != nil {
		return err
	}
	i := slices.IndexFunc(keys, func(k tenants.APIKey) bool { return k.ID == id })
	if i < 0 {
		return tenants.ErrKeyNotFound
	}
	if _, err := s.c.do(ctx, http.MethodDelete, "/tenants/"+keys[i].Tenant+"/api-keys/"+id, nil, nil); err != nil {
		return err
	}
	fmt.Fprintf(s.m.Stdout, "revoked %s\n", id)
	return nil
}

// rotateKey runs "key rotate" on the gateway. Retiring the older key
// versions has no route: it needs the store itself.
func (s *socketOps) rotateKey(ctx context.Context, tenant string, retire bool) error {
	if s.err != nil {
		return s.err
	}
	if retire {
		return fmt.Errorf("key rotate --retire-old: the gateway serving %s has no route for it: stop the gateway, then run it again", s.c.name)
	}
	if _, err := s.c.do(ctx, http.MethodPost, "/admin/tenants/"+tenant+"/rotate-key", nil, nil); err != nil {
		return err
	}
	fmt.Fprintf(s.m.Stdout, "rotated the data key of %s\n", tenant)
	return nil
}

// offboard runs "tenant offboard" on the gateway.
func (s *socketOps) offboard(ctx context.Context, tenant string) error {
	if s.err != nil {
		return s.err
	}
	body, _ := json.Marshal(map[string]string{"confirm": tenant})
	var out struct{ APIKeysRevoked int }
	if _, err := s.c.do(ctx, http.MethodPost, "/admin/tenants/"+tenant+"/offboard", body, &out); err != nil {
		return err
	}
	fmt.Fprintf(s.m.Stdout, "offboarded %s: credentials deleted, key destroyed, %d API keys revoked\n", tenant, out.APIKeysRevoked)
	return nil
}
