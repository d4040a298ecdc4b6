package transport

import (
	"errors"
	"net/http"

	"github.com/connectors-gateway/connectors/internal/httpwire"
	"github.com/connectors-gateway/connectors/limits"
	"github.com/connectors-gateway/connectors/tenants"
)

// tenantLimits is the answer of the limits routes: the limits in force.
type tenantLimits struct {
	TenantID string `json:"tenantId"`
	limits.Effective
}

// handleGetLimits handles the "GET /admin/tenants/{tenantId}/limits" route
// (admins only): the tenant's limits in force, the defaults with its
// override applied, and its integrations' own.
func (h adminRoutes) handleGetLimits(w http.ResponseWriter, r *http.Request) {
	tenant, ok := h.adminTenant(w, r)
	if !ok {
		return
	}
	s, err := credentialRoutes(h).tenantSettings(r.Context(), tenant)
	var o *limits.Override
	if err == nil {
		o, err = limits.ParseOverride(s.Limits)
	}
	if err != nil {
		h.fail(w, r, err)
		return
	}
	h.writeLimits(w, tenant, o)
}

// handlePutLimits handles the "PUT /admin/tenants/{tenantId}/limits" route
// (admins only): the tenant's override of the default limits, replaced
// whole (a field left out takes the default), kept in its settings and so
// in force at once on every replica (SettingsChanged). A body that is not
// acceptable is refused naming the field, and nothing is stored.
func (h adminRoutes) handlePutLimits(w http.ResponseWriter, r *http.Request) {
	tenant, ok := h.adminTenant(w, r)
	if !ok {
		return
	}
	raw, ok := h.jsonBody(w, r)
	if !ok {
		return
	}
	c := h.opts.Credentials
	o, err := limits.DecodeOverride(raw, func(name string) bool { _, ok := c.Registry.Integration(name); return ok })
	if fe, ok := errors.AsType[*limits.FieldError](err); ok {
		h.fail(w, r, &FieldError{Field: fe.Field, Msg: fe.Msg})
		return
	}
	if err == nil {
		err = updateSettings(r.Context(), c.Settings, tenant, func(s *tenants.Settings) { s.Limits = o.Marshal() })
	}
	if err != nil {
		h.fail(w, r, err)
		return
	}
	h.log.InfoContext(r.Context(), "tenant_limits_changed", "tenantId", tenant, "requestId", RequestID(r.Context()))
	if c.SettingsChanged != nil {
		c.SettingsChanged(tenant)
	}
	h.writeLimits(w, tenant, o)
}

// writeLimits answers with tenant's limits in force under o.
func (h adminRoutes) writeLimits(w http.ResponseWriter, tenant string, o *limits.Override) {
	httpwire.WriteJSON(w, http.StatusOK, tenantLimits{TenantID: tenant, Effective: limits.EffectiveOf(h.opts.Credentials.Limits.Defaults(), o)})
}
