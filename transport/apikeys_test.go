package transport

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/connectors-gateway/connectors/audit"
	"github.com/connectors-gateway/connectors/internal/mcptest"
	"github.com/connectors-gateway/connectors/server"
	"github.com/connectors-gateway/connectors/tenants"
	"github.com/connectors-gateway/connectors/vault/embedded"
)

// syncBuffer is a bytes.Buffer safe for the server's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// oidcStandIn verifies made-up access tokens as OIDCAuth's verifier: an
// admin of tenant ops whose token lacks the admin scope.
type oidcStandIn map[string]tenants.Identity

func (o oidcStandIn) Verify(_ context.Context, token string) (tenants.Identity, error) {
	if id, ok := o[token]; ok {
		return id, nil
	}
	return tenants.Identity{}, tenants.ErrInvalidAPIKey
}

// apiKeyGateway is NewHTTP with the API-key routes over the real
// tenants.APIKeys on an embedded store, the real APIKeyAuth (and an OIDC
// stand-in), an audit trail and a log to read: the keys of tenant-a,
// tenant-b and of an admin (tenant ops) are made beforehand. Each of more
// may add to the options, given the store.
type apiKeyGateway struct {
	url        string
	keys       *tenants.APIKeys
	trail, log *syncBuffer
	key        map[string]string // "tenant-a", "tenant-b", "admin" → key; "admin-noscope" → an OIDC token
}

func newAPIKeyGateway(t *testing.T, more ...func(*HTTPOptions, *embedded.Store)) *apiKeyGateway {
	t.Helper()
	st, err := embedded.Open(filepath.Join(t.TempDir(), "creds.db"), &embedded.Options{MasterKey: bytes.Repeat([]byte{7}, 32)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	g := &apiKeyGateway{keys: tenants.NewAPIKeys(st), trail: &syncBuffer{}, log: &syncBuffer{}, key: map[string]string{}}
	for name, c := range map[string]struct {
		tenant string
		admin  bool
	}{"tenant-a": {"tenant-a", false}, "tenant-b": {"tenant-b", false}, "admin": {"ops", true}} {
		key, _, err := g.keys.Create(t.Context(), c.tenant, c.admin)
		if err != nil {
			t.Fatal(err)
		}
		g.key[name] = key
	}
	g.key["admin-noscope"] = "oidc-admin-noscope"
	opts := HTTPOptions{
		MCP: server.NewHandler(mcptest.NewWhoami(), nil, server.HTTPOptions{}),
		Auth: Chain{APIKeyAuth{Keys: g.keys}, OIDCAuth{Verifier: oidcStandIn{
			"oidc-admin-noscope": {Tenant: "ops", Subject: "oidc:ops-admin", Admin: true, Scopes: []string{"mcp"}},
		}}},
		AdminScopes: []string{"admin"},
		APIKeys:     g.keys,
		Audit:       audit.New(g.trail),
		Logger:      slog.New(slog.NewJSONHandler(g.log, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
	for _, f := range more {
		f(&opts, st)
	}
	h := NewHTTP(opts)
	ts := httptest.NewServer(h)
	t.Cleanup(func() { ts.Close(); _ = h.Close(context.Background()) })
	g.url = ts.URL
	return g
}

// answer is one answer of the routes: its status, headers, raw body and
// the body as a JSON object.
type answer struct {
	status int
	header http.Header
	raw    string
	json   map[string]any
}

// errName is the answer's error name.
func (a answer) errName() string { s, _ := a.json["error"].(string); return s }

// call sends method path as key (a key, or a name of g.key) with body
// (JSON unless contentType says otherwise).
func (g *apiKeyGateway) call(t *testing.T, key, method, path, body string, contentType ...string) answer {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(t.Context(), method, g.url+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if len(contentType) > 0 {
		req.Header.Set("Content-Type", contentType[0])
	}
	if k, ok := g.key[key]; ok {
		key = k
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	a := answer{status: resp.StatusCode, header: resp.Header, raw: string(raw)}
	_ = json.Unmarshal(raw, &a.json)
	return a
}

// mustCall is call, failing unless the answer has status.
func (g *apiKeyGateway) mustCall(t *testing.T, status int, key, method, path, body string) answer {
	t.Helper()
	a := g.call(t, key, method, path, body)
	if a.status != status {
		t.Fatalf("%s %s as %.12s: %d %s, want %d", method, path, key, a.status, a.raw, status)
	}
	return a
}

// auditRecords are the records of the trail with operation op.
func (g *apiKeyGateway) auditRecords(t *testing.T, op string) []map[string]any {
	t.Helper()
	var out []map[string]any
	for line := range strings.Lines(g.trail.String()) {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("audit line %q: %v", line, err)
		}
		if rec["operation"] == op {
			delete(rec, "time")
			delete(rec, "duration")
			out = append(out, rec)
		}
	}
	return out
}

func keysOf(m map[string]any) []string { return slices.Sorted(maps.Keys(m)) }

// TestAPIKeyRoutes: a tenant creates a key (shown once, named), lists it
// (never its secret), the key authenticates REST and MCP requests, and
// once revoked it is refused at once; creation and revocation are in the
// audit trail and the log, and the key in neither.
func TestAPIKeyRoutes(t *testing.T) {
	g := newAPIKeyGateway(t)
	const keysA = "/tenants/tenant-a/api-keys"

	created := g.mustCall(t, 201, "tenant-a", "POST", keysA, `{"name": "claude-desktop"}`)
	if got, want := keysOf(created.json), []string{"admin", "createdAt", "id", "key", "name", "tenantId"}; !slices.Equal(got, want) {
		t.Errorf("POST answer fields %v, want %v", got, want)
	}
	id, _ := created.json["id"].(string)
	key, _ := created.json["key"].(string)
	if !strings.HasPrefix(key, "cgw_"+id+"_") || created.json["name"] != "claude-desktop" ||
		created.json["tenantId"] != "tenant-a" || created.json["admin"] != false {
		t.Errorf("POST answer %s", created.raw)
	}
	if cc := created.header.Get("Cache-Control"); cc != "no-store" {
		t.Errorf("the answer holding the key: Cache-Control %q, want no-store", cc)
	}
	second := g.mustCall(t, 201, "tenant-a", "POST", keysA, "") // no body: no name
	secondID, _ := second.json["id"].(string)
	if second.json["name"] != "" {
		t.Errorf("a key made without a body: name %v, want \"\"", second.json["name"])
	}

	list := g.mustCall(t, 200, "tenant-a", "GET", keysA, "")
	secret := key[len("cgw_"+id+"_"):]
	if strings.Contains(list.raw, secret) || strings.Contains(list.raw, `"key"`) || strings.Contains(list.raw, "hash") {
		t.Errorf("the listing shows a secret: %s", list.raw)
	}
	var listed struct {
		TenantID string           `json:"tenantId"`
		Keys     []map[string]any `json:"keys"`
	}
	if err := json.Unmarshal([]byte(list.raw), &listed); err != nil || listed.TenantID != "tenant-a" {
		t.Fatalf("GET %s: %s", keysA, list.raw)
	}
	var ids []string
	for _, k := range listed.Keys {
		if got, want := keysOf(k), []string{"admin", "createdAt", "id", "name"}; !slices.Equal(got, want) {
			t.Errorf("a listed key has fields %v, want %v", got, want)
		}
		ids = append(ids, k["id"].(string))
	}
	// Newest first: the two made here, then the one made beforehand.
	if len(ids) != 3 || ids[0] != secondID || ids[1] != id {
		t.Errorf("tenant-a's keys %v, want %s, %s, then the older one", ids, secondID, id)
	}
	if listed.Keys[1]["name"] != "claude-desktop" || listed.Keys[1]["createdAt"] != created.json["createdAt"] {
		t.Errorf("the listed key %v, want it as created %s", listed.Keys[1], created.raw)
	}

	// The new key authenticates, on the API and on the MCP endpoint.
	g.mustCall(t, 200, key, "GET", keysA, "")
	if session := mcptest.Initialize(t, g.url, key); session == "" {
		t.Error("the new key opened no MCP session")
	}

	revoked := g.mustCall(t, 200, "tenant-a", "DELETE", keysA+"/"+id, "")
	if got, want := keysOf(revoked.json), []string{"id", "revokedAt", "success", "tenantId"}; !slices.Equal(got, want) ||
		revoked.json["success"] != true || revoked.json["id"] != id || revoked.json["tenantId"] != "tenant-a" {
		t.Errorf("DELETE answer %s", revoked.raw)
	}
	if a := g.call(t, key, "GET", keysA, ""); a.status != 401 || a.errName() != "Unauthorized" {
		t.Errorf("the revoked key on the API: %d %s, want 401", a.status, a.raw)
	}
	if resp, body := mcptest.Do(t, g.url, mcptest.Req{Body: mcptest.InitBody, Key: key}); resp.StatusCode != 401 {
		t.Errorf("the revoked key on the MCP endpoint: %d %s, want 401", resp.StatusCode, body)
	}
	if a := g.mustCall(t, 200, "tenant-a", "GET", keysA, ""); strings.Contains(a.raw, id) {
		t.Errorf("the revoked key is still listed: %s", a.raw)
	}
	if a := g.call(t, "tenant-a", "DELETE", keysA+"/"+id, ""); a.status != 404 || a.errName() != "APIKeyNotFound" {
		t.Errorf("revoking it again: %d %s, want 404 APIKeyNotFound", a.status, a.raw)
	}

	// Audited as operations of tenant-a by the caller, naming the key's ID.
	caller := "apikey:" + strings.SplitN(strings.TrimPrefix(g.key["tenant-a"], "cgw_"), "_", 2)[0]
	creates, revokes := g.auditRecords(t, audit.OpAPIKeyCreate), g.auditRecords(t, audit.OpAPIKeyRevoke)
	if len(creates) != 2 || creates[0]["apiKeyId"] != id || creates[0]["tenantId"] != "tenant-a" ||
		creates[0]["subject"] != caller || creates[0]["success"] != true || creates[0]["requestId"] == nil {
		t.Errorf("apikey_create records %v, want two, the first of %s by %s", creates, id, caller)
	}
	if len(revokes) != 2 || revokes[0]["apiKeyId"] != id || revokes[0]["success"] != true ||
		revokes[1]["success"] != false || revokes[1]["error"] == nil {
		t.Errorf("apikey_revoke records %v, want the revocation of %s and the failed second one", revokes, id)
	}
	for _, event := range []string{`"msg":"api_key_created"`, `"msg":"api_key_revoked"`} {
		if !strings.Contains(g.log.String(), event) {
			t.Errorf("the log lacks %s:\n%s", event, g.log)
		}
	}
	for _, text := range []string{g.log.String(), g.trail.String()} {
		if strings.Contains(text, secret) {
			t.Errorf("a created key's secret is logged or audited:\n%s", text)
		}
	}
}

// TestAPIKeyRoutesTenantIsolation: tenant-b can neither list, create nor
// revoke tenant-a's keys; tenant-a's key ID under tenant-b's own path is
// answered as an unknown ID, word for word, and the key keeps working.
// An admin acts on any tenant's keys.
func TestAPIKeyRoutesTenantIsolation(t *testing.T) {
	g := newAPIKeyGateway(t)
	created := g.mustCall(t, 201, "tenant-a", "POST", "/tenants/tenant-a/api-keys", `{"name": "a's agent"}`)
	id, key := created.json["id"].(string), created.json["key"].(string)

	for _, c := range []struct{ method, path, body string }{
		{"GET", "/tenants/tenant-a/api-keys", ""},
		{"POST", "/tenants/tenant-a/api-keys", `{"name": "planted"}`},
		{"DELETE", "/tenants/tenant-a/api-keys/" + id, ""},
	} {
		if a := g.call(t, "tenant-b", c.method, c.path, c.body); a.status != 403 || a.errName() != "Forbidden" {
			t.Errorf("tenant-b: %s %s: %d %s, want 403 Forbidden", c.method, c.path, a.status, a.raw)
		}
	}
	if n := len(g.auditRecords(t, audit.OpAccessDenied)); n != 3 {
		t.Errorf("%d refused attempts audited, want 3", n)
	}

	// Under its own path: tenant-a's ID, an unknown one, a malformed one.
	strip := func(a answer) string { // all but the request's ID
		delete(a.json, "requestId")
		b, _ := json.Marshal(a.json)
		h := a.header.Clone()
		h.Del("Date")
		h.Del("X-Request-Id")
		return fmt.Sprintf("%d %v %s", a.status, h, b)
	}
	foreign := g.call(t, "tenant-b", "DELETE", "/tenants/tenant-b/api-keys/"+id, "")
	unknown := g.call(t, "tenant-b", "DELETE", "/tenants/tenant-b/api-keys/0123456789abcdef", "")
	malformed := g.call(t, "tenant-b", "DELETE", "/tenants/tenant-b/api-keys/..%2F..%2Fx", "")
	if foreign.status != 404 || foreign.errName() != "APIKeyNotFound" {
		t.Errorf("tenant-a's key ID under tenant-b's path: %d %s, want 404 APIKeyNotFound", foreign.status, foreign.raw)
	}
	if strip(foreign) != strip(unknown) || strip(unknown) != strip(malformed) {
		t.Errorf("another tenant's key %s, an unknown one %s, a malformed one %s: want the same answer",
			strip(foreign), strip(unknown), strip(malformed))
	}
	if strings.Contains(g.mustCall(t, 200, "tenant-b", "GET", "/tenants/tenant-b/api-keys", "").raw, id) {
		t.Error("tenant-b's listing shows tenant-a's key")
	}
	g.mustCall(t, 200, key, "GET", "/tenants/tenant-a/api-keys", "") // still works

	// A key acts on its own tenant by that path only.
	if a := g.call(t, key, "GET", "/tenants/tenant-b/api-keys", ""); a.status != 403 {
		t.Errorf("tenant-a's new key on tenant-b's keys: %d, want 403", a.status)
	}
	if a := g.call(t, "tenant-a", "GET", "/tenants/TENANT-A/api-keys", ""); a.status != 400 || a.errName() != "InvalidTenantId" {
		t.Errorf("a hostile tenant ID: %d %s, want 400 InvalidTenantId", a.status, a.raw)
	}
	if a := g.call(t, "", "GET", "/tenants/tenant-a/api-keys", ""); a.status != 401 {
		t.Errorf("no credentials: %d, want 401", a.status)
	}

	// An admin lists, creates and revokes any tenant's keys.
	if a := g.mustCall(t, 200, "admin", "GET", "/tenants/tenant-a/api-keys", ""); !strings.Contains(a.raw, id) {
		t.Errorf("the admin's listing of tenant-a: %s", a.raw)
	}
	byAdmin := g.mustCall(t, 201, "admin", "POST", "/tenants/tenant-b/api-keys", `{"name": "made by ops"}`)
	if byAdmin.json["tenantId"] != "tenant-b" || byAdmin.json["admin"] != false {
		t.Errorf("a key the admin made for tenant-b: %s", byAdmin.raw)
	}
	g.mustCall(t, 200, "admin", "DELETE", "/tenants/tenant-a/api-keys/"+id, "")
	if a := g.call(t, key, "GET", "/tenants/tenant-a/api-keys", ""); a.status != 401 {
		t.Errorf("tenant-a's key revoked by the admin: %d, want 401", a.status)
	}
}

// bodyCase is a request body and the refusal it must get.
type bodyCase struct {
	name, body  string
	contentType string // "": application/json; "-": none
	status      int
	errName     string
	message     string // the answer's message begins so
}

// checkBodies POSTs each case's body to path as key, and checks that it
// is refused as the case says, with a message that holds none of values.
func (g *apiKeyGateway) checkBodies(t *testing.T, key, path string, values []string, cases []bodyCase) {
	t.Helper()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var ct []string
			switch c.contentType {
			case "":
			case "-":
				ct = []string{""}
			default:
				ct = []string{c.contentType}
			}
			a := g.call(t, key, "POST", path, c.body, ct...)
			msg, _ := a.json["message"].(string)
			if a.status != c.status || a.errName() != c.errName || !strings.HasPrefix(msg, c.message) {
				t.Errorf("%d %.300s, want %d %s %q", a.status, a.raw, c.status, c.errName, c.message)
			}
			for _, value := range values {
				if strings.Contains(msg, value) {
					t.Errorf("the message repeats a value (%q): %s", value, msg)
				}
			}
		})
	}
}

// TestAPIKeyRoutesHostileBodies: every body that is not one JSON object
// of the request's shape is refused, naming the field where there is one
// and never repeating a value; a tenant asking for an admin key is
// refused (403, audited); nothing is created by any of them.
func TestAPIKeyRoutesHostileBodies(t *testing.T) {
	g := newAPIKeyGateway(t)
	const keysA = "/tenants/tenant-a/api-keys"
	count := func() int {
		keys, err := g.keys.List(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		return len(keys)
	}
	before := count()
	g.checkBodies(t, "tenant-a", keysA, []string{"nnnnnnnn", "admin=true", "gnp.exe", "script", "red", "cgw_0000"}, []bodyCase{
		{"a number for name", `{"name": 5}`, "", 400, "ValidationError", "name: must be a string"},
		{"an array for name", `{"name": ["x"]}`, "", 400, "ValidationError", "name: must be a string"},
		{"an object for name", `{"name": {"first": "x"}}`, "", 400, "ValidationError", "name: must be a string"},
		{"a string for admin", `{"admin": "true"}`, "", 400, "ValidationError", "admin: must be true or false"},
		{"a number for admin", `{"admin": 1}`, "", 400, "ValidationError", "admin: must be true or false"},
		{"a name of 65 characters", `{"name": "` + strings.Repeat("n", 65) + `"}`, "", 400, "ValidationError", "name: must be at most 64 characters"},
		{"a name of a MiB", `{"name": "` + strings.Repeat("n", 1<<20) + `"}`, "", 400, "ValidationError", "name: must be at most 64 characters"},
		{"a line break", `{"name": "ok\nadmin=true"}`, "", 400, "ValidationError", "name: must hold printable characters only"},
		{"a NUL", `{"name": "nul\u0000"}`, "", 400, "ValidationError", "name: must hold printable characters only"},
		{"an escape sequence", `{"name": "\u001b[31mred"}`, "", 400, "ValidationError", "name: must hold printable characters only"},
		{"a bidirectional override", `{"name": "abc\u202egnp.exe"}`, "", 400, "ValidationError", "name: must hold printable characters only"},
		{"invalid UTF-8", "{\"name\": \"bad\xff\"}", "", 400, "ValidationError", "name: must be valid UTF-8"},
		{"an unknown field", `{"name": "x", "tenantId": "tenant-b"}`, "", 400, "ValidationError", "tenantId: is not part of the request"},
		{"admin in another case", `{"Admin": true}`, "", 400, "ValidationError", "Admin: is not part of the request"},
		{"an unknown field named hostilely", `{"<script>\n": 1}`, "", 400, "ValidationError", "the body has a field that is not part of the request"},
		{"the key itself", `{"key": "cgw_0000000000000000_chosen"}`, "", 400, "ValidationError", "key: is not part of the request"},
		{"two objects", `{"name": "a"} {"name": "b"}`, "", 400, "ValidationError", "the body must hold one JSON object"},
		{"trailing garbage", `{"name": "a"}}`, "", 400, "ValidationError", "the body must hold one JSON object"},
		{"an array", `[{"name": "a"}]`, "", 400, "ValidationError", "the body must be a JSON object"},
		{"a string", `"claude-desktop"`, "", 400, "ValidationError", "the body must be a JSON object"},
		{"null", `null`, "", 400, "ValidationError", "the body must be a JSON object"},
		{"malformed JSON", `{"name": `, "", 400, "ValidationError", "the body must be a JSON object"},
		{"a form", `name=claude`, "application/x-www-form-urlencoded", 415, "UnsupportedMediaType", "the body must be JSON"},
		{"text/plain JSON", `{"name": "x"}`, "text/plain", 415, "UnsupportedMediaType", "the body must be JSON"},
		{"no content type", `{"name": "x"}`, "-", 415, "UnsupportedMediaType", "the body must be JSON"},
		{"beyond the body limit", `{"name": "` + strings.Repeat("n", DefaultMaxBodyBytes) + `"}`, "", 413, "PayloadTooLarge", "request body too large"},
		{"an admin key, asked by a tenant", `{"name": "root", "admin": true}`, "", 403, "Forbidden", "admin: only an admin may create or revoke an admin key"},
	})
	if n := count(); n != before {
		t.Errorf("%d keys made by refused bodies", n-before)
	}
	denied := g.auditRecords(t, audit.OpAccessDenied)
	if len(denied) != 1 || denied[0]["reason"] != "admin_only" || denied[0]["tenantId"] != "tenant-a" {
		t.Errorf("refused attempts audited: %v, want the admin key asked by tenant-a (admin_only)", denied)
	}
	if n := len(g.auditRecords(t, audit.OpAPIKeyCreate)); n != 0 {
		t.Errorf("%d apikey_create records of refused bodies", n)
	}

	// What is acceptable: nothing, nulls, admin false, a name at the limit.
	for _, body := range []string{"", "  \n", `{}`, `{"name": null, "admin": null}`, `{"admin": false}`,
		`{"name": "` + strings.Repeat("é", 64) + `"}`, `{"name": "Zoë's 🔑 (CI)"}`} {
		a := g.call(t, "tenant-a", "POST", keysA, body)
		if a.status != 201 || a.json["admin"] != false {
			t.Errorf("POST %q: %d %.300s, want 201, not an admin key", body, a.status, a.raw)
		}
	}
}

// TestAPIKeyRoutesAdminKeys: an admin key may be made and revoked by an
// admin only, and only by one whose token holds the admin scopes: a
// tenant's key can neither mint one nor revoke its own tenant's.
func TestAPIKeyRoutesAdminKeys(t *testing.T) {
	g := newAPIKeyGateway(t)
	admin := g.mustCall(t, 201, "admin", "POST", "/tenants/tenant-a/api-keys", `{"name": "tenant-a's operator", "admin": true}`)
	id, key := admin.json["id"].(string), admin.json["key"].(string)
	if admin.json["admin"] != true {
		t.Fatalf("an admin's admin key: %s", admin.raw)
	}
	if id, err := g.keys.Verify(t.Context(), key); err != nil || !id.Admin || id.Tenant != "tenant-a" {
		t.Errorf("the admin key verifies as %+v, %v", id, err)
	}
	// tenant-a's own (non-admin) key may not revoke it.
	if a := g.call(t, "tenant-a", "DELETE", "/tenants/tenant-a/api-keys/"+id, ""); a.status != 403 || a.errName() != "Forbidden" {
		t.Errorf("tenant-a revoking its admin key: %d %s, want 403 Forbidden", a.status, a.raw)
	}
	g.mustCall(t, 200, key, "GET", "/tenants/tenant-b/api-keys", "") // still works, as an admin

	// An admin whose token lacks the admin scope: plain keys of its own
	// tenant, no admin key, no revoking one, not even its own tenant's, no
	// acting on another tenant.
	g.mustCall(t, 201, "admin-noscope", "POST", "/tenants/ops/api-keys", `{"name": "plain"}`)
	opsAdmin := g.mustCall(t, 201, "admin", "POST", "/tenants/ops/api-keys", `{"admin": true}`)
	for _, c := range []struct{ method, path, body string }{
		{"POST", "/tenants/ops/api-keys", `{"admin": true}`},
		{"DELETE", "/tenants/ops/api-keys/" + opsAdmin.json["id"].(string), ""},
		{"DELETE", "/tenants/tenant-a/api-keys/" + id, ""},
	} {
		if a := g.call(t, "admin-noscope", c.method, c.path, c.body); a.status != 403 || a.errName() != "InsufficientScope" ||
			!strings.Contains(a.header.Get("WWW-Authenticate"), "insufficient_scope") {
			t.Errorf("an admin token without the scope: %s %s: %d %s, want 403 InsufficientScope", c.method, c.path, a.status, a.raw)
		}
	}
	reasons := map[any]int{}
	for _, rec := range g.auditRecords(t, audit.OpAccessDenied) {
		reasons[rec["reason"]]++
	}
	if reasons["admin_only"] != 1 || reasons["insufficient_scope"] != 3 {
		t.Errorf("refused attempts audited by reason: %v, want 1 admin_only, 3 insufficient_scope", reasons)
	}
	if n := len(g.auditRecords(t, audit.OpAPIKeyRevoke)); n != 0 {
		t.Errorf("%d apikey_revoke records of refused revocations, want none (they are access_denied)", n)
	}
	if _, err := g.keys.Verify(t.Context(), opsAdmin.json["key"].(string)); err != nil {
		t.Errorf("ops's admin key after a refused revocation: %v", err)
	}
	g.mustCall(t, 200, "admin", "DELETE", "/tenants/tenant-a/api-keys/"+id, "")
	if _, err := g.keys.Verify(t.Context(), key); err == nil {
		t.Error("the admin key revoked by an admin still verifies")
	}
}

// TestAPIKeyRoutesNotConfigured: without HTTPOptions.APIKeys, no route.
func TestAPIKeyRoutesNotConfigured(t *testing.T) {
	ts := newTestHTTP(t, HTTPOptions{})
	for _, method := range []string{"GET", "POST"} {
		req, _ := http.NewRequest(method, ts.URL+"/tenants/tenant-a/api-keys", nil)
		req.Header.Set("Authorization", "Bearer key-a")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 404 {
			t.Errorf("%s without APIKeys: %d, want 404", method, resp.StatusCode)
		}
	}
}

// TestAPIKeyRevokePastedKey: a key pasted where its ID belongs is not
// revoked (404, as any unknown ID), and neither its answer, the audit
// trail nor the log repeats it; the key keeps working.
func TestAPIKeyRevokePastedKey(t *testing.T) {
	g := newAPIKeyGateway(t)
	key := g.key["tenant-a"]
	if a := g.call(t, "tenant-a", "DELETE", "/tenants/tenant-a/api-keys/"+key, ""); a.status != 404 || a.errName() != "APIKeyNotFound" {
		t.Errorf("revoking by the key itself: %d %s, want 404 APIKeyNotFound", a.status, a.raw)
	} else if strings.Contains(a.raw, key) {
		t.Errorf("the answer repeats the key: %s", a.raw)
	}
	revokes := g.auditRecords(t, audit.OpAPIKeyRevoke)
	if len(revokes) != 1 || revokes[0]["success"] != false || revokes[0]["apiKeyId"] != nil {
		t.Errorf("apikey_revoke records %v, want one failure naming no key", revokes)
	}
	secret := key[len("cgw_0123456789abcdef_"):]
	for _, text := range []string{g.trail.String(), g.log.String()} {
		if strings.Contains(text, secret) {
			t.Errorf("the pasted key is audited or logged:\n%s", text)
		}
	}
	g.mustCall(t, 200, "tenant-a", "GET", "/tenants/tenant-a/api-keys", "")
}
