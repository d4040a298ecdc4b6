package transport

import (
	"net/http"
	"slices"

	"github.com/connectors-gateway/connectors/internal/httpwire"
	"github.com/connectors-gateway/connectors/tenants"
)

// tenantFor decides which tenant an authenticated request acts on. A
// request that names none acts on the caller's own tenant. One that names
// a tenant must name the caller's own, unless the caller is an admin. A
// name outside the tenant-ID grammar is 400 before anything is looked up;
// another tenant's is 403, and the attempt is recorded. On refusal it has
// answered, and returns false.
func (h *guards) tenantFor(w http.ResponseWriter, r *http.Request, requested string) (string, bool) {
	id, ok := tenants.FromContext(r.Context())
	if !ok {
		httpwire.WriteError(w, r, http.StatusUnauthorized, "Unauthorized", "missing or invalid credentials")
		return "", false
	}
	if requested == "" {
		return id.Tenant, true
	}
	if tenants.ValidateID(requested) != nil {
		httpwire.WriteError(w, r, http.StatusBadRequest, "InvalidTenantId", tenants.ErrInvalidID.Error())
		return "", false
	}
	if requested != id.Tenant {
		if !id.Admin {
			h.denied(r, id, requested, reasonCrossTenant)
			httpwire.WriteError(w, r, http.StatusForbidden, "Forbidden", "this credential may not act on another tenant")
			return "", false
		}
		if !h.adminScoped(w, r, id, requested) {
			return "", false
		}
	}
	return requested, true
}

// adminScoped answers 403 insufficient_scope (recorded, as an attempt on
// target) when an admin's OAuth token lacks the scopes admin routes need
// (HTTPOptions.AdminScopes). API keys carry no scopes: an admin key is
// admin.
func (h *guards) adminScoped(w http.ResponseWriter, r *http.Request, id tenants.Identity, target string) bool {
	if h.hasAdminScopes(id) {
		return true
	}
	h.denied(r, id, target, reasonInsufficientScope)
	w.Header().Set("WWW-Authenticate", challenge(h.opts.Resource, `error="insufficient_scope"`, h.opts.AdminScopes))
	httpwire.WriteError(w, r, http.StatusForbidden, "InsufficientScope", "the token lacks a scope admin routes need")
	return false
}

// hasAdminScopes reports whether id holds every scope admin routes need
// (HTTPOptions.AdminScopes); an identity without scopes (an API key) does.
func (h *guards) hasAdminScopes(id tenants.Identity) bool {
	if id.Scopes == nil {
		return true
	}
	for _, s := range h.opts.AdminScopes {
		if !slices.Contains(id.Scopes, s) {
			return false
		}
	}
	return true
}

// requireAdmin answers 403 (recorded) unless the caller is an admin.
func (h *guards) requireAdmin(w http.ResponseWriter, r *http.Request) bool {
	id, ok := tenants.FromContext(r.Context())
	if !ok {
		httpwire.WriteError(w, r, http.StatusUnauthorized, "Unauthorized", "missing or invalid credentials")
		return false
	}
	target := targetTenant(r, id)
	if !id.Admin {
		h.denied(r, id, target, reasonAdminOnly)
		httpwire.WriteError(w, r, http.StatusForbidden, "Forbidden", "this route is for admins")
		return false
	}
	return h.adminScoped(w, r, id, target)
}

// targetTenant is the tenant an admin-only request would act on: the one
// its path names when that is a tenant ID, else the caller's own.
func targetTenant(r *http.Request, caller tenants.Identity) string {
	if t := r.PathValue("tenantId"); t != "" && tenants.ValidateID(t) == nil {
		return t
	}
	return caller.Tenant
}

// Why an attempt was refused, in its audit record and log line.
const (
	reasonCrossTenant       = "cross_tenant"       // named another tenant
	reasonAdminOnly         = "admin_only"         // an admin-only route
	reasonInsufficientScope = "insufficient_scope" // an admin's token lacks a scope
)

// denied records a refused attempt of caller on target (a tenant), once
// in the audit trail and once in the log: who, on which tenant, why, by
// which route.
func (h *guards) denied(r *http.Request, caller tenants.Identity, target, reason string) {
	httpwire.Denied(r, h.opts.Audit, h.log, caller, target, reason)
}
