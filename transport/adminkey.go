package transport

import (
	"net/http"
	"time"

	"github.com/connectors-gateway/connectors/internal/httpwire"
)

// handleRotateKey handles the "POST /admin/tenants/{tenantId}/rotate-key"
// route (admins only): rotate the tenant's encryption key. New writes use
// the new version; existing records are re-encrypted on their next write
// (or by the store's rewrap, where it has one).
func (h adminRoutes) handleRotateKey(w http.ResponseWriter, r *http.Request) {
	tenant, ok := h.adminTenant(w, r)
	if !ok {
		return
	}
	c := h.opts.Credentials
	if c.RotateKey == nil {
		httpwire.WriteError(w, r, http.StatusNotFound, "NotConfigured", "this gateway cannot rotate keys")
		return
	}
	if err := c.RotateKey(r.Context(), tenant); err != nil {
		h.fail(w, r, err)
		return
	}
	h.log.InfoContext(r.Context(), "tenant_key_rotated", "tenantId", tenant, "requestId", RequestID(r.Context()))
	httpwire.WriteJSON(w, http.StatusOK, map[string]any{
		"success":   true,
		"tenantId":  tenant,
		"rotatedAt": c.now().UTC().Truncate(time.Second),
	})
}

// adminTenant is the tenant an admin's route under
// /admin/tenants/{tenantId}/ acts on: 403 (recorded) unless the caller is
// an admin, 400 for a path that names no tenant ID. On refusal it has
// answered.
func (h adminRoutes) adminTenant(w http.ResponseWriter, r *http.Request) (string, bool) {
	if !h.requireAdmin(w, r) {
		return "", false
	}
	return h.tenantFor(w, r, r.PathValue("tenantId"))
}
