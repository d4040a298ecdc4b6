package transport

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/connectors-gateway/connectors/audit"
	"github.com/connectors-gateway/connectors/vault"
	"github.com/connectors-gateway/connectors/vault/embedded"
)

// offboardRegistry registers notion and github.
type offboardRegistry struct{}

func (offboardRegistry) Integration(name string) (Integration, bool) {
	for _, in := range (offboardRegistry{}).Integrations() {
		if in.Name == name {
			return in, true
		}
	}
	return Integration{}, false
}

func (offboardRegistry) Integrations() []Integration {
	return []Integration{{"github", "code"}, {"notion", "docs"}}
}

// offboardGateway is apiKeyGateway with the credential routes on the same
// embedded store, tenant-a and tenant-b holding notion and github
// credentials, and an Offboard that off-boards for real: the tenant's
// keys revoked through the same APIKeys that authenticates, then the
// store's OffboardTenant. calls counts the off-boardings asked for.
type offboardGateway struct {
	*apiKeyGateway
	store *embedded.Store
	calls *atomic.Int64
}

func newOffboardGateway(t *testing.T, configured bool) *offboardGateway {
	t.Helper()
	o := &offboardGateway{calls: new(atomic.Int64)}
	o.apiKeyGateway = newAPIKeyGateway(t, func(opts *HTTPOptions, st *embedded.Store) {
		o.store = st
		opts.Credentials = &Credentials{Store: st, Registry: offboardRegistry{}}
		if configured {
			opts.Credentials.Offboard = o.offboard
		}
	})
	for _, tenant := range []string{"tenant-a", "tenant-b"} {
		for _, in := range []string{"notion", "github"} {
			cred := vault.Credential{AccessToken: "planted-" + tenant + "-" + in, TokenType: "bearer"}
			if _, err := o.store.Put(t.Context(), tenant, in, cred, vault.AnyVersion); err != nil {
				t.Fatal(err)
			}
		}
	}
	return o
}

func (o *offboardGateway) offboard(ctx context.Context, tenant string) (OffboardResult, error) {
	o.calls.Add(1)
	held, err := o.store.Integrations(ctx, tenant)
	if err != nil {
		return OffboardResult{}, err
	}
	res := OffboardResult{CredentialsDeleted: len(held)}
	keys, err := o.keys.ListTenant(ctx, tenant)
	if err != nil {
		return res, err
	}
	for _, k := range keys {
		if err := o.keys.Revoke(ctx, k.ID); err != nil {
			return res, err
		}
		res.APIKeysRevoked++
	}
	return res, o.store.OffboardTenant(ctx, tenant)
}

// held is tenant's integrations with a credential in the store.
func (o *offboardGateway) held(t *testing.T, tenant string) []string {
	t.Helper()
	names, err := o.store.Integrations(t.Context(), tenant)
	if err != nil {
		t.Fatal(err)
	}
	return names
}

// TestOffboardRoute: an admin off-boards tenant-a, naming it in the body:
// the answer says what went, tenant-a's credentials are gone and its key
// refused at once, tenant-b is untouched; off-boarding again answers the
// same with zeros.
func TestOffboardRoute(t *testing.T) {
	o := newOffboardGateway(t, true)
	const path = "/admin/tenants/tenant-a/offboard"
	o.mustCall(t, 200, "tenant-a", "GET", "/tenants/tenant-a/api-keys", "") // tenant-a's key verified (and cached)

	a := o.mustCall(t, 200, "admin", "POST", path, `{"confirm": "tenant-a"}`)
	if got, want := keysOf(a.json), []string{"apiKeysRevoked", "credentialsDeleted", "keyDestroyed", "offboarded", "tenantId"}; strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("answer fields %v, want %v", got, want)
	}
	if a.json["tenantId"] != "tenant-a" || a.json["offboarded"] != true || a.json["keyDestroyed"] != true ||
		a.json["credentialsDeleted"] != float64(2) || a.json["apiKeysRevoked"] != float64(1) {
		t.Errorf("answer %s, want tenant-a off-boarded: 2 credentials, 1 API key", a.raw)
	}
	if held := o.held(t, "tenant-a"); len(held) != 0 {
		t.Errorf("tenant-a's credentials after off-boarding: %v", held)
	}
	if _, _, err := o.store.Get(t.Context(), "tenant-a", "notion"); !vault.IsNotFound(err) {
		t.Errorf("tenant-a's notion credential after off-boarding: %v, want not found", err)
	}
	if a := o.call(t, "tenant-a", "GET", "/tenants/tenant-a/api-keys", ""); a.status != 401 {
		t.Errorf("tenant-a's key after off-boarding: %d %s, want 401", a.status, a.raw)
	}
	if held := o.held(t, "tenant-b"); len(held) != 2 {
		t.Errorf("tenant-b's credentials after tenant-a's off-boarding: %v, want both", held)
	}
	o.mustCall(t, 200, "tenant-b", "GET", "/tenants/tenant-b/api-keys", "")
	if !strings.Contains(o.log.String(), `"msg":"tenant_offboarded"`) {
		t.Errorf("the log lacks tenant_offboarded:\n%s", o.log)
	}

	// Idempotent: nothing left to off-board is not an error.
	again := o.mustCall(t, 200, "admin", "POST", path, `{"confirm": "tenant-a"}`)
	if again.json["offboarded"] != true || again.json["credentialsDeleted"] != float64(0) || again.json["apiKeysRevoked"] != float64(0) {
		t.Errorf("off-boarding tenant-a again: %s, want 200 with zeros", again.raw)
	}
	never := o.mustCall(t, 200, "admin", "POST", "/admin/tenants/tenant-z/offboard", `{"confirm": "tenant-z"}`)
	if never.json["tenantId"] != "tenant-z" || never.json["credentialsDeleted"] != float64(0) {
		t.Errorf("off-boarding a tenant that never stored anything: %s, want 200 with zeros", never.raw)
	}
	for _, text := range []string{o.log.String(), o.trail.String()} {
		if strings.Contains(text, "planted-") {
			t.Errorf("a credential is logged or audited:\n%s", text)
		}
	}
}

// TestOffboardRouteBodies: a body that does not name the path's tenant
// exactly, in one JSON object of the request's shape, off-boards nobody,
// and the answer names the field at fault without repeating a value.
func TestOffboardRouteBodies(t *testing.T) {
	o := newOffboardGateway(t, true)
	const path = "/admin/tenants/tenant-a/offboard"
	o.checkBodies(t, "admin", path, []string{"tenant-b", "TENANT", "nnnn", "<x>"}, []bodyCase{
		{"no body", "", "", 400, "ValidationError", "confirm: is required"},
		{"an empty object", `{}`, "", 400, "ValidationError", "confirm: is required"},
		{"confirm null", `{"confirm": null}`, "", 400, "ValidationError", "confirm: is required"},
		{"another tenant", `{"confirm": "tenant-b"}`, "", 400, "ValidationError", "confirm: does not name the tenant"},
		{"another case", `{"confirm": "TENANT-A"}`, "", 400, "ValidationError", "confirm: does not name the tenant"},
		{"a trailing space", `{"confirm": "tenant-a "}`, "", 400, "ValidationError", "confirm: does not name the tenant"},
		{"a prefix", `{"confirm": "tenant-"}`, "", 400, "ValidationError", "confirm: does not name the tenant"},
		{"an empty string", `{"confirm": ""}`, "", 400, "ValidationError", "confirm: does not name the tenant"},
		{"a number", `{"confirm": 1}`, "", 400, "ValidationError", "confirm: must be a string"},
		{"true", `{"confirm": true}`, "", 400, "ValidationError", "confirm: must be a string"},
		{"an array", `{"confirm": ["tenant-a"]}`, "", 400, "ValidationError", "confirm: must be a string"},
		{"an unknown field", `{"confirm": "tenant-a", "force": true}`, "", 400, "ValidationError", "force: is not part of the request (fields: confirm)"},
		{"confirm in another case", `{"Confirm": "tenant-a"}`, "", 400, "ValidationError", "Confirm: is not part of the request"},
		{"an unknown field named hostilely", `{"confirm": "tenant-a", "<x>\n": 1}`, "", 400, "ValidationError", "the body has a field that is not part of the request"},
		{"two objects", `{"confirm": "tenant-a"} {"confirm": "tenant-a"}`, "", 400, "ValidationError", "the body must hold one JSON object"},
		{"trailing garbage", `{"confirm": "tenant-a"}}`, "", 400, "ValidationError", "the body must hold one JSON object"},
		{"a bare string", `"tenant-a"`, "", 400, "ValidationError", "the body must be a JSON object"},
		{"a JSON array", `[{"confirm": "tenant-a"}]`, "", 400, "ValidationError", "the body must be a JSON object"},
		{"null", `null`, "", 400, "ValidationError", "the body must be a JSON object"},
		{"malformed JSON", `{"confirm": `, "", 400, "ValidationError", "the body must be a JSON object"},
		{"a form", `confirm=tenant-a`, "application/x-www-form-urlencoded", 415, "UnsupportedMediaType", "the body must be JSON"},
		{"text/plain JSON", `{"confirm": "tenant-a"}`, "text/plain", 415, "UnsupportedMediaType", "the body must be JSON"},
		{"no content type", `{"confirm": "tenant-a"}`, "-", 415, "UnsupportedMediaType", "the body must be JSON"},
		{"beyond the body limit", `{"confirm": "tenant-a", "x": "` + strings.Repeat("n", DefaultMaxBodyBytes) + `"}`, "", 413, "PayloadTooLarge", "request body too large"},
	})
	if n := o.calls.Load(); n != 0 {
		t.Errorf("%d off-boardings asked for by refused bodies", n)
	}
	if held := o.held(t, "tenant-a"); len(held) != 2 {
		t.Errorf("tenant-a's credentials after refused bodies: %v, want both", held)
	}
	o.mustCall(t, 200, "tenant-a", "GET", "/tenants/tenant-a/api-keys", "") // its key still works
}

// TestOffboardRouteRefusals: only an admin (whose token holds the admin
// scopes) may off-board, and the refused attempts are audited; a tenant
// may not off-board itself, nor another tenant. Nothing is off-boarded.
func TestOffboardRouteRefusals(t *testing.T) {
	o := newOffboardGateway(t, true)
	for _, c := range []struct {
		name, as, path, body string
		status               int
		errName              string
	}{
		{"a tenant, itself", "tenant-a", "/admin/tenants/tenant-a/offboard", `{"confirm": "tenant-a"}`, 403, "Forbidden"},
		{"a tenant, another", "tenant-b", "/admin/tenants/tenant-a/offboard", `{"confirm": "tenant-a"}`, 403, "Forbidden"},
		{"an admin token without the admin scope", "admin-noscope", "/admin/tenants/tenant-a/offboard", `{"confirm": "tenant-a"}`, 403, "InsufficientScope"},
		{"no credentials", "", "/admin/tenants/tenant-a/offboard", `{"confirm": "tenant-a"}`, 401, "Unauthorized"},
		{"an unknown key", "cgw_0000000000000000_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "/admin/tenants/tenant-a/offboard", `{"confirm": "tenant-a"}`, 401, "Unauthorized"},
		{"a hostile tenant ID", "admin", "/admin/tenants/TENANT-A/offboard", `{"confirm": "TENANT-A"}`, 400, "InvalidTenantId"},
		{"a tenant ID too long", "admin", "/admin/tenants/" + strings.Repeat("a", 65) + "/offboard", `{"confirm": "` + strings.Repeat("a", 65) + `"}`, 400, "InvalidTenantId"},
	} {
		t.Run(c.name, func(t *testing.T) {
			if a := o.call(t, c.as, "POST", c.path, c.body); a.status != c.status || a.errName() != c.errName {
				t.Errorf("%d %s, want %d %s", a.status, a.raw, c.status, c.errName)
			}
		})
	}
	if a := o.call(t, "tenant-a", "GET", "/admin/tenants/tenant-a/offboard", ""); a.status != 405 {
		t.Errorf("GET: %d, want 405", a.status)
	}
	if n := o.calls.Load(); n != 0 {
		t.Errorf("%d off-boardings asked for by refused callers", n)
	}
	if held := o.held(t, "tenant-a"); len(held) != 2 {
		t.Errorf("tenant-a's credentials after refused attempts: %v, want both", held)
	}
	reasons := map[any]int{}
	for _, rec := range o.auditRecords(t, audit.OpAccessDenied) {
		if rec["tenantId"] != "tenant-a" {
			t.Errorf("a refused attempt recorded on %v, want tenant-a", rec["tenantId"])
		}
		reasons[rec["reason"]]++
	}
	if reasons["admin_only"] != 2 || reasons["insufficient_scope"] != 1 {
		t.Errorf("refused attempts audited by reason: %v, want 2 admin_only, 1 insufficient_scope", reasons)
	}
	id, err := o.keys.Verify(t.Context(), o.key["tenant-a"])
	if err != nil || id.Tenant != "tenant-a" {
		t.Errorf("tenant-a's key after refused attempts: %+v, %v", id, err)
	}
}

// TestOffboardRouteNotConfigured: without Credentials.Offboard the route
// answers 404 NotConfigured to an admin, and still 403 to a tenant.
func TestOffboardRouteNotConfigured(t *testing.T) {
	o := newOffboardGateway(t, false)
	if a := o.call(t, "admin", "POST", "/admin/tenants/tenant-a/offboard", `{"confirm": "tenant-a"}`); a.status != 404 || a.errName() != "NotConfigured" {
		t.Errorf("an admin: %d %s, want 404 NotConfigured", a.status, a.raw)
	}
	if a := o.call(t, "tenant-a", "POST", "/admin/tenants/tenant-a/offboard", `{"confirm": "tenant-a"}`); a.status != 403 {
		t.Errorf("a tenant: %d %s, want 403", a.status, a.raw)
	}
	if held := o.held(t, "tenant-a"); len(held) != 2 {
		t.Errorf("tenant-a's credentials: %v, want both", held)
	}
}
