package transport

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"

	"github.com/connectors-gateway/connectors/internal/httpwire"
	"github.com/connectors-gateway/connectors/tenants"
	"github.com/connectors-gateway/connectors/vault"
)

// SettingsStore keeps each tenant's settings record (tenants.Settings)
// with check-and-set.
type SettingsStore interface {
	GetTenantSettings(ctx context.Context, tenant string) ([]byte, int64, error)
	PutTenantSettings(ctx context.Context, tenant string, rec []byte, version int64) (int64, error)
}

// integrationSettings is the body of PUT
// /tenants/{tenantId}/integrations/{integration}.
type integrationSettings struct {
	Enabled *bool     `json:"enabled"` // default true
	Tools   *[]string `json:"tools"`   // null or absent: every tool
}

// handleEnableIntegration handles the "PUT
// /tenants/{tenantId}/integrations/{integration}" route (admins only):
// turn the integration on for the tenant, optionally narrowed to some
// tools, whether or not it holds a credential.
func (h credentialRoutes) handleEnableIntegration(w http.ResponseWriter, r *http.Request) {
	if !h.requireAdmin(w, r) {
		return
	}
	var body integrationSettings
	if r.ContentLength != 0 {
		dec := json.NewDecoder(r.Body)
		dec.DisallowUnknownFields()
		if err := dec.Decode(&body); err != nil {
			h.fail(w, r, badBody(err, jsonFieldError(err)))
			return
		}
	}
	enabled := body.Enabled == nil || *body.Enabled
	var tools []string
	if body.Tools != nil {
		tools = *body.Tools
		if tools == nil {
			tools = []string{}
		}
		for _, t := range tools {
			if t == "" || len(t) > 128 {
				httpwire.WriteError(w, r, http.StatusBadRequest, "ValidationError", "tools: each tool name must be 1 to 128 characters")
				return
			}
		}
	}
	h.changeSettings(w, r, enabled, tools)
}

// handleDisableIntegration handles the "DELETE
// /tenants/{tenantId}/integrations/{integration}" route (admins only):
// turn the integration off for the tenant; its credential, if any, stays.
func (h credentialRoutes) handleDisableIntegration(w http.ResponseWriter, r *http.Request) {
	if !h.requireAdmin(w, r) {
		return
	}
	h.changeSettings(w, r, false, nil)
}

// changeSettings applies one integration's change to the tenant's
// settings (check-and-set, retried) and answers with its new state.
func (h credentialRoutes) changeSettings(w http.ResponseWriter, r *http.Request, enabled bool, tools []string) {
	tenant, in, ok := h.tenantAndIntegration(w, r)
	if !ok {
		return
	}
	c := h.opts.Credentials
	if c.Settings == nil {
		httpwire.WriteError(w, r, http.StatusNotFound, "NotConfigured", "this gateway keeps no tenant settings")
		return
	}
	err := updateSettings(r.Context(), c.Settings, tenant, func(s *tenants.Settings) { s.Set(in.Name, enabled, tools) })
	if err != nil {
		h.fail(w, r, err)
		return
	}
	h.log.InfoContext(r.Context(), "tenant_integration_settings", "tenantId", tenant, "integration", in.Name,
		"enabled", enabled, "tools", tools, "requestId", RequestID(r.Context()))
	if c.SettingsChanged != nil {
		c.SettingsChanged(tenant)
	}
	h.writeIntegration(w, r, tenant, in.Name)
}

// updateSettings applies change to tenant's settings record, with
// check-and-set: a write that lost to another is read and changed again
// (three times at most).
func updateSettings(ctx context.Context, st SettingsStore, tenant string, change func(*tenants.Settings)) error {
	for attempt := 0; ; attempt++ {
		rec, version, err := st.GetTenantSettings(ctx, tenant)
		var s tenants.Settings
		if err == nil {
			s, err = tenants.ParseSettings(rec)
		}
		if err != nil {
			return err
		}
		change(&s)
		_, err = st.PutTenantSettings(ctx, tenant, s.Marshal(), version)
		if errors.Is(err, vault.ErrSettingsChanged) && attempt < 3 {
			continue
		}
		return err
	}
}
