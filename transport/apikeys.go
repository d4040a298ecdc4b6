package transport

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"maps"
	"mime"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/connectors-gateway/connectors/audit"
	"github.com/connectors-gateway/connectors/internal/httpwire"
	"github.com/connectors-gateway/connectors/tenants"
)

// APIKeyManager is what the API-key routes need of the gateway's API keys;
// *tenants.APIKeys is one. A gateway of several replicas gives one whose
// RevokeTenant also tells the other replicas, so that their caches forget
// the key at once.
type APIKeyManager interface {
	// CreateWith makes a key for tenant; the key is returned only now.
	CreateWith(ctx context.Context, tenant string, opts tenants.CreateOptions) (key string, info tenants.APIKey, err error)
	// ListTenant returns tenant's keys, newest first.
	ListTenant(ctx context.Context, tenant string) ([]tenants.APIKey, error)
	// RevokeTenant revokes tenant's key id. Another tenant's key is
	// tenants.ErrKeyNotFound, as one that does not exist, and stays; an
	// admin key is tenants.ErrAdminKey unless mayRevokeAdmin.
	RevokeTenant(ctx context.Context, tenant, id string, mayRevokeAdmin bool) error
}

// apiKeyRoutes serve a tenant's API keys (its agents' credentials):
// listing, creation (the key shown once) and revocation. Every creation
// and revocation is recorded in the audit trail (apikey_create,
// apikey_revoke), naming the key's ID, never the key.
type apiKeyRoutes struct{ *guards }

func (h apiKeyRoutes) register(mux *http.ServeMux) {
	mux.Handle("GET /tenants/{tenantId}/api-keys", h.api(h.handleList))
	mux.Handle("POST /tenants/{tenantId}/api-keys", h.api(h.handleCreate))
	mux.Handle("DELETE /tenants/{tenantId}/api-keys/{keyId}", h.api(h.handleRevoke))
}

// apiKeyView is a key as the routes show it: never its secret or hash.
// name is "" for a key without one.
type apiKeyView struct {
	ID        string    `json:"id"`
	Name      string    `json:"name"`
	Admin     bool      `json:"admin"`
	CreatedAt time.Time `json:"createdAt"`
}

func viewOf(k tenants.APIKey) apiKeyView {
	return apiKeyView{ID: k.ID, Name: k.Name, Admin: k.Admin, CreatedAt: k.CreatedAt.UTC()}
}

// handleList handles the "GET /tenants/{tenantId}/api-keys" route: the
// tenant's keys, newest first.
func (h apiKeyRoutes) handleList(w http.ResponseWriter, r *http.Request) {
	tenant, ok := h.tenantFor(w, r, r.PathValue("tenantId"))
	if !ok {
		return
	}
	keys, err := h.opts.APIKeys.ListTenant(r.Context(), tenant)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	httpwire.WriteJSON(w, http.StatusOK, APIKeyListing(tenant, keys))
}

// APIKeyListing is the body of GET /tenants/{tenantId}/api-keys for
// tenant's keys, in their order: what "connectors apikey list --json"
// prints too. It holds no secret and no hash.
func APIKeyListing(tenant string, keys []tenants.APIKey) any {
	list := make([]apiKeyView, 0, len(keys))
	for _, k := range keys {
		list = append(list, viewOf(k))
	}
	return map[string]any{"tenantId": tenant, "keys": list}
}

// handleCreate handles the "POST /tenants/{tenantId}/api-keys" route: a
// new key for the tenant, shown in this answer only. The body is optional
// ({"name": "claude-desktop"}); only an admin may ask for an admin key
// ("admin": true).
func (h apiKeyRoutes) handleCreate(w http.ResponseWriter, r *http.Request) {
	tenant, ok := h.tenantFor(w, r, r.PathValue("tenantId"))
	if !ok {
		return
	}
	raw, ok := h.jsonBody(w, r)
	if !ok {
		return
	}
	opts, err := decodeAPIKeyBody(raw)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	if opts.Admin && !h.adminKeyAllowed(w, r, tenant) {
		return
	}
	start := time.Now()
	key, info, err := h.opts.APIKeys.CreateWith(r.Context(), tenant, opts)
	h.opts.Audit.Record(r.Context(), audit.Record{TenantID: tenant, Operation: audit.OpAPIKeyCreate, APIKeyID: info.ID,
		Duration: time.Since(start), Success: err == nil, Err: err})
	if err != nil {
		h.fail(w, r, err)
		return
	}
	h.log.InfoContext(r.Context(), "api_key_created", "tenantId", tenant, "keyId", info.ID, "admin", info.Admin, "requestId", RequestID(r.Context()))
	w.Header().Set("Cache-Control", "no-store") // the answer holds the key
	httpwire.WriteJSON(w, http.StatusCreated, struct {
		apiKeyView
		TenantID string `json:"tenantId"`
		Key      string `json:"key"`
	}{viewOf(info), tenant, key})
}

// handleRevoke handles the "DELETE /tenants/{tenantId}/api-keys/{keyId}"
// route: the key stops authenticating at once, on every replica. Another
// tenant's key is answered exactly as one that does not exist (404
// APIKeyNotFound), and stays; only an admin may revoke an admin key.
func (h apiKeyRoutes) handleRevoke(w http.ResponseWriter, r *http.Request) {
	tenant, ok := h.tenantFor(w, r, r.PathValue("tenantId"))
	if !ok {
		return
	}
	caller, _ := tenants.FromContext(r.Context())
	id := r.PathValue("keyId")
	start := time.Now()
	err := h.opts.APIKeys.RevokeTenant(r.Context(), tenant, id, caller.Admin && h.hasAdminScopes(caller))
	if errors.Is(err, tenants.ErrAdminKey) {
		// Refused before anything changed: recorded as a refused attempt
		// (access_denied), not as a revocation.
		if h.adminKeyAllowed(w, r, tenant) {
			h.fail(w, r, err) // not reached: an admin with the scopes was allowed
		}
		return
	}
	rec := audit.Record{TenantID: tenant, Operation: audit.OpAPIKeyRevoke, Duration: time.Since(start), Success: err == nil, Err: err}
	if tenants.ValidKeyID(id) {
		rec.APIKeyID = id
	} else {
		// It names no key, and its error would repeat it: it may be a
		// key itself, pasted where its ID belongs.
		rec.Err = errMalformedKeyID
	}
	h.opts.Audit.Record(r.Context(), rec)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	h.log.InfoContext(r.Context(), "api_key_revoked", "tenantId", tenant, "keyId", id, "requestId", RequestID(r.Context()))
	httpwire.WriteJSON(w, http.StatusOK, map[string]any{
		"success":   true,
		"tenantId":  tenant,
		"id":        id,
		"revokedAt": time.Now().UTC().Truncate(time.Second),
	})
}

// errMalformedKeyID is the error an audit record gives for a revocation
// of something that is not a key ID: what was asked is not recorded.
var errMalformedKeyID = errors.New("revoking API key: not a key ID: " + tenants.ErrKeyNotFound.Error())

// adminKeyAllowed answers 403 (recorded as a refused attempt on tenant)
// unless the caller may create or revoke an admin key: an admin, whose
// token, if it is one, holds the scopes admin routes need. An admin key
// carries no scopes, so a token without them must not mint one.
func (h apiKeyRoutes) adminKeyAllowed(w http.ResponseWriter, r *http.Request, tenant string) bool {
	caller, _ := tenants.FromContext(r.Context())
	if !caller.Admin {
		h.denied(r, caller, tenant, reasonAdminOnly)
		httpwire.WriteError(w, r, http.StatusForbidden, "Forbidden", "admin: only an admin may create or revoke an admin key")
		return false
	}
	return h.adminScoped(w, r, caller, tenant)
}

// apiKeyFields are the fields of the body of POST
// /tenants/{tenantId}/api-keys.
var apiKeyFields = []string{"name", "admin"}

// fieldName is a field name an error may repeat; another unknown field
// is refused without its name.
var fieldName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_.-]{0,63}$`)

// decodeAPIKeyBody reads the body of POST /tenants/{tenantId}/api-keys:
// empty, or one JSON object with "name" (a string, see
// tenants.ValidateKeyName) and "admin" (a boolean), each optional (null:
// not given). Field names are exact: any other field, "Admin" included,
// is refused. Errors are *FieldError naming the field; none repeats a
// value.
func decodeAPIKeyBody(raw []byte) (tenants.CreateOptions, error) {
	var opts tenants.CreateOptions
	if len(bytes.TrimSpace(raw)) == 0 {
		return opts, nil
	}
	body, err := decodeObject(raw, apiKeyFields)
	if err != nil {
		return opts, err
	}
	if v, ok := body["name"]; ok && string(v) != "null" {
		if json.Unmarshal(v, &opts.Name) != nil {
			return opts, &FieldError{Field: "name", Msg: "must be a string"}
		}
		if !utf8.Valid(v) {
			return opts, &FieldError{Field: "name", Msg: "must be valid UTF-8"}
		}
		if err := tenants.ValidateKeyName(opts.Name); err != nil {
			msg := "is not an acceptable name"
			if ne, ok := errors.AsType[*tenants.KeyNameError](err); ok {
				msg = ne.Reason
			}
			return opts, &FieldError{Field: "name", Msg: msg}
		}
	}
	if v, ok := body["admin"]; ok && string(v) != "null" {
		if json.Unmarshal(v, &opts.Admin) != nil {
			return opts, &FieldError{Field: "admin", Msg: "must be true or false"}
		}
	}
	return opts, nil
}

// jsonBody reads r's body, which may be empty: 415 unless a body is sent
// as JSON (a form or text/plain body is what a page on another site can
// send without a preflight). On refusal it has answered.
func (h *guards) jsonBody(w http.ResponseWriter, r *http.Request) ([]byte, bool) {
	raw, err := httpwire.ReadAll(r.Body)
	if err != nil {
		h.fail(w, r, badBody(err, "could not read the body"))
		return nil, false
	}
	if len(bytes.TrimSpace(raw)) == 0 {
		return raw, true
	}
	if media, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || media != "application/json" {
		httpwire.WriteError(w, r, http.StatusUnsupportedMediaType, "UnsupportedMediaType", "the body must be JSON, sent with Content-Type: application/json")
		return nil, false
	}
	return raw, true
}

// decodeObject reads raw as one JSON object whose fields are all among
// fields, names exact (any other, one differing in case included, is
// refused), and returns its members as written. Errors are *FieldError;
// none repeats a value, and none a field name that is not a plain name.
func decodeObject(raw []byte, fields []string) (map[string]json.RawMessage, error) {
	var body map[string]json.RawMessage
	dec := json.NewDecoder(bytes.NewReader(raw))
	if err := dec.Decode(&body); err != nil || body == nil {
		return nil, &FieldError{Msg: "the body must be a JSON object"}
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, &FieldError{Msg: "the body must hold one JSON object"}
	}
	for _, name := range slices.Sorted(maps.Keys(body)) { // the same error for the same body
		if slices.Contains(fields, name) {
			continue
		}
		if !fieldName.MatchString(name) {
			return nil, &FieldError{Msg: "the body has a field that is not part of the request"}
		}
		return nil, &FieldError{Field: name, Msg: "is not part of the request (fields: " + strings.Join(fields, ", ") + ")"}
	}
	return body, nil
}
