package transport

import (
	"bytes"
	"encoding/json"
	"net/http"

	"github.com/connectors-gateway/connectors/internal/httpwire"
)

// OffboardResult is what an off-boarding did: the credentials the store
// held for the tenant when it began, all deleted, and the tenant's API
// keys it revoked. The tenant's key is destroyed whenever it succeeds.
type OffboardResult struct {
	CredentialsDeleted int
	APIKeysRevoked     int
}

// offboardFields are the fields of the body of POST
// /admin/tenants/{tenantId}/offboard.
var offboardFields = []string{"confirm"}

// handleOffboard handles the "POST /admin/tenants/{tenantId}/offboard"
// route (admins only): the tenant's API keys revoked, every credential and
// record of it deleted, its encryption key destroyed (crypto-shredding),
// the other replicas told, as "connectors tenant offboard" does (the one
// implementation of both is Credentials.Offboard). The body must name the
// tenant again, {"confirm": "<tenantId>"}, so that a mistyped path
// off-boards nobody. A tenant with nothing stored answers 200 with zeros,
// as the command does: off-boarding is idempotent. The store's audit
// record (offboard) names the admin; each key revoked is recorded too
// (apikey_revoke).
func (h adminRoutes) handleOffboard(w http.ResponseWriter, r *http.Request) {
	tenant, ok := h.adminTenant(w, r)
	if !ok {
		return
	}
	c := h.opts.Credentials
	if c.Offboard == nil {
		httpwire.WriteError(w, r, http.StatusNotFound, "NotConfigured", "this gateway cannot off-board tenants")
		return
	}
	raw, ok := h.jsonBody(w, r)
	if !ok {
		return
	}
	if err := checkOffboardBody(raw, tenant); err != nil {
		h.fail(w, r, err)
		return
	}
	res, err := c.Offboard(r.Context(), tenant)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	h.log.InfoContext(r.Context(), "tenant_offboarded", "tenantId", tenant, "credentialsDeleted", res.CredentialsDeleted,
		"apiKeysRevoked", res.APIKeysRevoked, "requestId", RequestID(r.Context()))
	httpwire.WriteJSON(w, http.StatusOK, map[string]any{
		"tenantId":           tenant,
		"offboarded":         true,
		"credentialsDeleted": res.CredentialsDeleted,
		"apiKeysRevoked":     res.APIKeysRevoked,
		"keyDestroyed":       true,
	})
}

// checkOffboardBody checks the body of POST
// /admin/tenants/{tenantId}/offboard: one JSON object whose only field,
// confirm, is a string equal to tenant, byte for byte. Errors are
// *FieldError naming confirm where it is at fault; none repeats a value.
func checkOffboardBody(raw []byte, tenant string) error {
	const must = "is required: the ID of the tenant to off-board, exactly as the path names it"
	if len(bytes.TrimSpace(raw)) == 0 {
		return &FieldError{Field: "confirm", Msg: must}
	}
	body, err := decodeObject(raw, offboardFields)
	if err != nil {
		return err
	}
	v, ok := body["confirm"]
	if !ok || string(v) == "null" {
		return &FieldError{Field: "confirm", Msg: must}
	}
	var confirm string
	if json.Unmarshal(v, &confirm) != nil {
		return &FieldError{Field: "confirm", Msg: "must be a string: the ID of the tenant to off-board"}
	}
	if confirm != tenant {
		return &FieldError{Field: "confirm", Msg: "does not name the tenant the path names: nothing was off-boarded"}
	}
	return nil
}
