package transport

import (
	"fmt"
	"net/http"
	"slices"

	"github.com/connectors-gateway/connectors/audit"
	"github.com/connectors-gateway/connectors/tenants"
)

// tenantFor decides which tenant an authenticated request acts on. A
// request that names none acts on the caller's own tenant. One that names
// a tenant must name the caller's own, unless the caller is an admin. A
// name outside the tenant-ID grammar is 400 before anything is looked up;
// another tenant's is 403, and the attempt is recorded. On refusal it has
// answered, and returns false.
func (h *HTTP) tenantFor(w http.ResponseWriter, r *http.Request, requested string) (string, bool) {
	id, ok := tenants.FromContext(r.Context())
	if !ok {
		writeError(w, r, http.StatusUnauthorized, "Unauthorized", "missing or invalid credentials")
		return "", false
	}
	if requested == "" {
		return id.Tenant, true
	}
	if tenants.ValidateID(requested) != nil {
		writeError(w, r, http.StatusBadRequest, "InvalidTenantId", tenants.ErrInvalidID.Error())
		return "", false
	}
	if requested != id.Tenant {
		if !id.Admin {
			h.denied(r, id, requested)
			writeError(w, r, http.StatusForbidden, "Forbidden", "this credential may not act on another tenant")
			return "", false
		}
		if !h.adminScoped(w, r, id) {
			return "", false
		}
	}
	return requested, true
}

// adminScoped answers 403 insufficient_scope (recorded) when an admin's
// OAuth token lacks the scopes admin routes need (HTTPOptions.AdminScopes).
// API keys carry no scopes: an admin key is admin.
func (h *HTTP) adminScoped(w http.ResponseWriter, r *http.Request, id tenants.Identity) bool {
	if id.Scopes == nil {
		return true
	}
	for _, s := range h.opts.AdminScopes {
		if !slices.Contains(id.Scopes, s) {
			h.denied(r, id, "")
			w.Header().Set("WWW-Authenticate", h.challenge(`error="insufficient_scope"`, h.opts.AdminScopes))
			writeError(w, r, http.StatusForbidden, "InsufficientScope", "the token lacks a scope admin routes need")
			return false
		}
	}
	return true
}

// requireAdmin answers 403 (recorded) unless the caller is an admin.
func (h *HTTP) requireAdmin(w http.ResponseWriter, r *http.Request) bool {
	id, ok := tenants.FromContext(r.Context())
	if !ok {
		writeError(w, r, http.StatusUnauthorized, "Unauthorized", "missing or invalid credentials")
		return false
	}
	if !id.Admin {
		h.denied(r, id, "")
		writeError(w, r, http.StatusForbidden, "Forbidden", "this route is for admins")
		return false
	}
	return h.adminScoped(w, r, id)
}

// denied records a refused cross-tenant or admin-only attempt, in the log
// and the audit trail.
func (h *HTTP) denied(r *http.Request, caller tenants.Identity, requested string) {
	h.opts.Audit.Record(r.Context(), audit.Record{
		TenantID:  requested,
		Operation: audit.OpAccessDenied,
		Err:       fmt.Errorf("%s %s by tenant %s", r.Method, r.Pattern, caller.Tenant),
	})
	h.log.WarnContext(r.Context(), "tenant_access_denied",
		"tenantId", requested,
		"callerTenantId", caller.Tenant,
		"subject", caller.Subject,
		"method", r.Method,
		"route", r.Pattern,
		"requestId", RequestID(r.Context()),
	)
}
