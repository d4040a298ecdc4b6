package transport

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"time"

	"github.com/connectors-gateway/connectors/internal/httpwire"
	"github.com/connectors-gateway/connectors/limits"
	"github.com/connectors-gateway/connectors/oauth"
	"github.com/connectors-gateway/connectors/tenants"
	"github.com/connectors-gateway/connectors/vault"
)

// CredentialStore is what the credential routes need of the store.
type CredentialStore interface {
	Get(ctx context.Context, tenant, integration string) (vault.Credential, int64, error)
	Put(ctx context.Context, tenant, integration string, cred vault.Credential, version int64) (int64, error)
	Delete(ctx context.Context, tenant, integration string) error
	Integrations(ctx context.Context, tenant string) ([]string, error)
	Tenants(ctx context.Context) ([]string, error)
}

// Integration is a registered integration, as the routes show it.
type Integration struct{ Name, Category string }

// Registry is what the routes need of the integrations the gateway
// serves.
type Registry interface {
	// Integration returns the integration registered as name.
	Integration(name string) (Integration, bool)
	// Integrations returns every registered integration, in order.
	Integrations() []Integration
}

// Credentials are the credential routes' parts. Store and Registry are
// required.
type Credentials struct {
	Store    CredentialStore
	Registry Registry
	// Health reports a credential's health (cred nil: none stored); nil
	// derives it from the credential alone.
	Health func(tenant, integration string, cred *vault.Credential) oauth.Health
	// Changed is told after a credential is stored (cred) or deleted
	// (nil): schedule or forget its refresh, tell the tenant's sessions.
	Changed func(tenant, integration string, cred *vault.Credential)
	// Revoke revokes tenant's cred at integration's provider, if it can;
	// nil: never.
	Revoke func(ctx context.Context, tenant, integration string, cred vault.Credential) (revoked bool, err error)
	// Settings, if set, keeps tenants' settings: PUT and DELETE
	// /tenants/{tenantId}/integrations/{integration} turn integrations on
	// and off; SettingsChanged is told after each change.
	Settings        SettingsStore
	SettingsChanged func(tenant string)
	// RotateKey, if set, rotates a tenant's encryption key (POST
	// /admin/tenants/{tenantId}/rotate-key).
	RotateKey func(ctx context.Context, tenant string) error
	// Limits, if set with Settings, serves GET and PUT
	// /admin/tenants/{tenantId}/limits (adminlimits.go): the defaults
	// come from it, a tenant's override is kept in its settings.
	Limits *limits.Limiter
	// Offboard, if set, off-boards a tenant (POST
	// /admin/tenants/{tenantId}/offboard, adminoffboard.go): its API keys
	// revoked, every credential and record deleted, its key destroyed,
	// the other replicas told. A tenant with nothing stored is off-boarded
	// already: zeros, not an error.
	Offboard func(ctx context.Context, tenant string) (OffboardResult, error)
	Now      func() time.Time // nil: time.Now
}

func (c *Credentials) now() time.Time {
	if c.Now != nil {
		return c.Now()
	}
	return time.Now()
}

// health is c.Health, or the credential's own state.
func (c *Credentials) health(tenant, integration string, cred *vault.Credential) oauth.Health {
	if c.Health != nil {
		return c.Health(tenant, integration, cred)
	}
	switch {
	case cred == nil:
		return oauth.Health{}
	case cred.Status == vault.StatusNeedsReauth:
		return oauth.Health{State: oauth.HealthNeedsReauth}
	case !cred.ExpiresAt.IsZero() && c.now().After(cred.ExpiresAt.Add(-5*time.Minute)):
		return oauth.Health{State: oauth.HealthExpiring}
	}
	return oauth.Health{State: oauth.HealthActive}
}

// credentialRoutes serve a tenant's integrations: their state, their
// credentials, and (settings.go) whether they are on.
type credentialRoutes struct{ *guards }

func (h credentialRoutes) register(mux *http.ServeMux) {
	mux.Handle("GET /tenants/{tenantId}/integrations", h.api(h.handleListIntegrations))
	mux.Handle("GET /tenants/{tenantId}/integrations/{integration}", h.api(h.handleGetIntegration))
	mux.Handle("PUT /tenants/{tenantId}/integrations/{integration}", h.api(h.handleEnableIntegration))
	mux.Handle("DELETE /tenants/{tenantId}/integrations/{integration}", h.api(h.handleDisableIntegration))
	mux.Handle("POST /tenants/{tenantId}/integrations/{integration}/credentials", h.api(h.handlePutCredential))
	mux.Handle("DELETE /tenants/{tenantId}/integrations/{integration}/credentials", h.api(h.handleDeleteCredential))
}

// tenantAndIntegration resolves the {tenantId} and {integration} path
// values: 400 or 403 for the tenant (tenantFor), 404 for an integration
// that is not registered. On refusal it has answered.
func (h credentialRoutes) tenantAndIntegration(w http.ResponseWriter, r *http.Request) (string, Integration, bool) {
	tenant, ok := h.tenantFor(w, r, r.PathValue("tenantId"))
	if !ok {
		return "", Integration{}, false
	}
	in, ok := h.opts.Credentials.Registry.Integration(r.PathValue("integration"))
	if !ok {
		httpwire.WriteError(w, r, http.StatusNotFound, "IntegrationNotFound", "no integration by that name")
		return "", Integration{}, false
	}
	return tenant, in, true
}

// handlePutCredential handles the "POST
// /tenants/{tenantId}/integrations/{integration}/credentials" route: store
// a credential given directly (the seed's Option A step 3).
func (h credentialRoutes) handlePutCredential(w http.ResponseWriter, r *http.Request) {
	tenant, in, ok := h.tenantAndIntegration(w, r)
	if !ok {
		return
	}
	c := h.opts.Credentials
	now := c.now()
	cred, err := DecodeCredential(r.Body, now)
	if err != nil {
		h.fail(w, r, badBody(err, err.Error()))
		return
	}
	if _, err := c.Store.Put(r.Context(), tenant, in.Name, cred, vault.AnyVersion); err != nil {
		h.fail(w, r, err)
		return
	}
	h.log.InfoContext(r.Context(), "credential_stored", "tenantId", tenant, "integration", in.Name, "requestId", RequestID(r.Context()))
	if c.Changed != nil {
		c.Changed(tenant, in.Name, &cred)
	}
	httpwire.WriteJSON(w, http.StatusCreated, map[string]any{
		"success":     true,
		"tenantId":    tenant,
		"integration": in.Name,
		"encryptedAt": now.UTC().Truncate(time.Second),
		"expiresAt":   timeOrNull(cred.ExpiresAt),
	})
}

// handleDeleteCredential handles the "DELETE
// /tenants/{tenantId}/integrations/{integration}/credentials" route:
// revoke at the provider where it can, then delete.
func (h credentialRoutes) handleDeleteCredential(w http.ResponseWriter, r *http.Request) {
	tenant, in, ok := h.tenantAndIntegration(w, r)
	if !ok {
		return
	}
	c := h.opts.Credentials
	cred, _, err := c.Store.Get(r.Context(), tenant, in.Name)
	_, unreadable := errors.AsType[*vault.VaultEncryptionError](err)
	if err != nil && !unreadable {
		h.fail(w, r, err)
		return
	}
	revoked := false
	// A record that no longer decrypts holds no token to revoke with; the
	// tenant may still delete it.
	if c.Revoke != nil && !unreadable {
		if revoked, err = c.Revoke(r.Context(), tenant, in.Name, cred); err != nil {
			// The tenant asked for the credential to go: it goes, even if
			// the provider could not be told.
			h.log.WarnContext(r.Context(), "provider_revoke_failed", "tenantId", tenant, "integration", in.Name, "error", err)
		}
	}
	if err := c.Store.Delete(r.Context(), tenant, in.Name); err != nil {
		h.fail(w, r, err)
		return
	}
	h.log.InfoContext(r.Context(), "credential_revoked", "tenantId", tenant, "integration", in.Name, "providerRevoked", revoked, "requestId", RequestID(r.Context()))
	if c.Changed != nil {
		c.Changed(tenant, in.Name, nil)
	}
	httpwire.WriteJSON(w, http.StatusOK, map[string]any{
		"success":         true,
		"tenantId":        tenant,
		"integration":     in.Name,
		"revokedAt":       c.now().UTC().Truncate(time.Second),
		"providerRevoked": revoked,
	})
}

// integrationStatus is one integration in the listing routes. The seed's
// shape: createdAt and expiresAt only when hasCredentials (expiresAt null
// for a credential that never expires).
type integrationStatus struct {
	Name           string          `json:"name"`
	Category       string          `json:"category"`
	HasCredentials bool            `json:"hasCredentials"`
	CreatedAt      *time.Time      `json:"createdAt,omitempty"`
	UpdatedAt      *time.Time      `json:"updatedAt,omitempty"`
	ExpiresAt      json.RawMessage `json:"expiresAt,omitempty"`
	Scopes         []string        `json:"scopes,omitempty"`
	TokenType      string          `json:"tokenType,omitempty"`
	Status         string          `json:"status,omitempty"`
	Health         *oauth.Health   `json:"health,omitempty"`
	Enabled        bool            `json:"enabled"`
	Tools          []string        `json:"tools,omitzero"` // the allowlist, if narrowed ([]: no tool)
}

func (h credentialRoutes) status(tenant string, in Integration, cred *vault.Credential, settings tenants.Settings) integrationStatus {
	c := h.opts.Credentials
	s := integrationStatus{Name: in.Name, Category: in.Category, Enabled: settings.Enabled(in.Name), Tools: settings.Tools[in.Name]}
	health := c.health(tenant, in.Name, cred)
	s.Status = health.State
	if health.State != "" {
		s.Health = &health
	}
	if cred == nil {
		return s
	}
	s.HasCredentials = true
	created, updated := cred.CreatedAt.UTC(), cred.UpdatedAt.UTC()
	if !created.IsZero() {
		s.CreatedAt = &created
	}
	if !updated.IsZero() {
		s.UpdatedAt = &updated
	}
	s.ExpiresAt, _ = json.Marshal(timeOrNull(cred.ExpiresAt))
	s.Scopes = cred.Scopes
	s.TokenType = cred.TokenType
	return s
}

// handleListIntegrations handles the "GET /tenants/{tenantId}/integrations"
// route: every registered integration, with the tenant's credential state.
func (h credentialRoutes) handleListIntegrations(w http.ResponseWriter, r *http.Request) {
	tenant, ok := h.tenantFor(w, r, r.PathValue("tenantId"))
	if !ok {
		return
	}
	c := h.opts.Credentials
	held, err := c.Store.Integrations(r.Context(), tenant)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	settings, err := h.tenantSettings(r.Context(), tenant)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	has := map[string]bool{}
	for _, n := range held {
		has[n] = true
	}
	list := []integrationStatus{}
	for _, in := range c.Registry.Integrations() {
		var cred *vault.Credential
		if has[in.Name] {
			got, _, err := c.Store.Get(r.Context(), tenant, in.Name)
			switch {
			case err == nil:
				cred = &got
			case !vault.IsNotFound(err): // deleted since the listing: no credential
				h.fail(w, r, err)
				return
			}
		}
		list = append(list, h.status(tenant, in, cred, settings))
	}
	httpwire.WriteJSON(w, http.StatusOK, map[string]any{"tenantId": tenant, "integrations": list})
}

// handleGetIntegration handles the "GET
// /tenants/{tenantId}/integrations/{integration}" route: one integration's
// state for the tenant, never a secret.
func (h credentialRoutes) handleGetIntegration(w http.ResponseWriter, r *http.Request) {
	tenant, in, ok := h.tenantAndIntegration(w, r)
	if !ok {
		return
	}
	h.writeIntegration(w, r, tenant, in.Name)
}

// writeIntegration answers with one integration's state for tenant.
func (h credentialRoutes) writeIntegration(w http.ResponseWriter, r *http.Request, tenant, integration string) {
	in, _ := h.opts.Credentials.Registry.Integration(integration)
	var cred *vault.Credential
	got, _, err := h.opts.Credentials.Store.Get(r.Context(), tenant, in.Name)
	switch {
	case err == nil:
		cred = &got
	case !vault.IsNotFound(err):
		h.fail(w, r, err)
		return
	}
	settings, err := h.tenantSettings(r.Context(), tenant)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	s := h.status(tenant, in, cred, settings)
	httpwire.WriteJSON(w, http.StatusOK, struct {
		TenantID string `json:"tenantId"`
		integrationStatus
	}{tenant, s})
}

// tenantSettings reads tenant's settings (none when not kept).
func (h credentialRoutes) tenantSettings(ctx context.Context, tenant string) (tenants.Settings, error) {
	c := h.opts.Credentials
	if c.Settings == nil {
		return tenants.Settings{}, nil
	}
	rec, _, err := c.Settings.GetTenantSettings(ctx, tenant)
	if err != nil {
		return tenants.Settings{}, err
	}
	return tenants.ParseSettings(rec)
}

// timeOrNull is t in UTC, or nil (JSON null) for the zero time.
func timeOrNull(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UTC()
}
