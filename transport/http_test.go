package transport

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/mark3labs/mcp-go/mcp"
	mcpserver "github.com/mark3labs/mcp-go/server"

	"github.com/connectors-gateway/connectors/tenants"
)

// keyAuth is a fixed table of keys, standing in for tenants.APIKeys (whose
// own tests cover verification) so these tests see only the transport.
type keyAuth map[string]tenants.Identity

func (k keyAuth) Authenticate(r *http.Request) (tenants.Identity, error) {
	if id, ok := k[bearer(r)]; ok {
		return id, nil
	}
	return tenants.Identity{}, errors.New("bad key")
}

const initBody = `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}`

// newTestHTTP serves a real mcp-go server with one tool, "whoami", that
// answers the tenant on the context and any Authorization header it saw.
func newTestHTTP(t *testing.T, opts HTTPOptions) *httptest.Server {
	t.Helper()
	srv := mcpserver.NewMCPServer("test", "1")
	srv.AddTool(mcp.NewTool("whoami"), func(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		id, _ := tenants.FromContext(ctx)
		return mcp.NewToolResultText(id.Tenant + "|" + req.Header.Get("Authorization")), nil
	})
	opts.MCP = srv
	opts.Auth = keyAuth{
		"key-a": {Tenant: "tenant-a", Subject: "apikey:a"},
		"key-b": {Tenant: "tenant-b", Subject: "apikey:b"},
	}
	h := NewHTTP(opts)
	ts := httptest.NewServer(h)
	t.Cleanup(func() { ts.Close(); _ = h.Close(context.Background()) })
	return ts
}

type req struct {
	method, body, key, session, origin, contentType string
}

func do(t *testing.T, ts *httptest.Server, r req) (*http.Response, string) {
	t.Helper()
	if r.method == "" {
		r.method = http.MethodPost
	}
	hr, _ := http.NewRequest(r.method, ts.URL+"/mcp", strings.NewReader(r.body))
	if r.contentType == "" {
		r.contentType = "application/json"
	}
	hr.Header.Set("Content-Type", r.contentType)
	hr.Header.Set("Accept", "application/json, text/event-stream")
	hr.Header.Set("MCP-Protocol-Version", "2025-11-25")
	if r.key != "" {
		hr.Header.Set("Authorization", "Bearer "+r.key)
	}
	if r.session != "" {
		hr.Header.Set("Mcp-Session-Id", r.session)
	}
	if r.origin != "" {
		hr.Header.Set("Origin", r.origin)
	}
	resp, err := http.DefaultClient.Do(hr)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

// initialize opens a session as key and returns its ID.
func initialize(t *testing.T, ts *httptest.Server, key string) string {
	t.Helper()
	resp, body := do(t, ts, req{body: initBody, key: key})
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("initialize: %d %s", resp.StatusCode, body)
	}
	id := resp.Header.Get("Mcp-Session-Id")
	if id == "" {
		t.Fatal("initialize returned no session ID")
	}
	do(t, ts, req{body: `{"jsonrpc":"2.0","method":"notifications/initialized"}`, key: key, session: id})
	return id
}

const callWhoami = `{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"whoami"}}`

func TestRefusals(t *testing.T) {
	ts := newTestHTTP(t, HTTPOptions{MaxBodyBytes: 1024})
	session := initialize(t, ts, "key-a")
	ended := initialize(t, ts, "key-a")
	if resp, _ := do(t, ts, req{method: http.MethodDelete, key: "key-a", session: ended}); resp.StatusCode != http.StatusOK {
		t.Fatalf("DELETE session: %d", resp.StatusCode)
	}

	tests := []struct {
		name       string
		req        req
		wantStatus int
		wantBody   string
	}{
		{"no credentials", req{body: initBody}, 401, `"error":"Unauthorized"`},
		{"wrong key", req{body: initBody, key: "key-x"}, 401, `"error":"Unauthorized"`},
		{"foreign origin", req{body: initBody, key: "key-a", origin: "http://evil.example.com"}, 403, `"error":"ForbiddenOrigin"`},
		{"look-alike origin", req{body: initBody, key: "key-a", origin: "http://localhost.evil.example.com"}, 403, `"error":"ForbiddenOrigin"`},
		{"null origin", req{body: initBody, key: "key-a", origin: "null"}, 403, `"error":"ForbiddenOrigin"`},
		{"body over limit", req{body: `{"jsonrpc":"2.0","id":1,"method":"ping","params":{"x":"` + strings.Repeat("a", 2048) + `"}}`, key: "key-a", session: session}, 413, `"error":"PayloadTooLarge"`},
		{"batch", req{body: `[` + callWhoami + `]`, key: "key-a", session: session}, 400, `"code":-32600`},
		{"malformed JSON", req{body: `{"jsonrpc":`, key: "key-a", session: session}, 400, `"code":-32700`},
		{"wrong content type", req{body: callWhoami, key: "key-a", session: session, contentType: "text/plain"}, 400, "content type"},
		{"made-up session", req{body: callWhoami, key: "key-a", session: "made-up"}, 404, ""},
		{"another tenant's session", req{body: callWhoami, key: "key-b", session: session}, 404, ""},
		{"deleted session", req{body: callWhoami, key: "key-a", session: ended}, 404, ""},
		{"GET on another tenant's session", req{method: http.MethodGet, key: "key-b", session: session}, 404, ""},
		{"DELETE of another tenant's session", req{method: http.MethodDelete, key: "key-b", session: session}, 404, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := do(t, ts, tt.req)
			if resp.StatusCode != tt.wantStatus || !strings.Contains(body, tt.wantBody) {
				t.Errorf("got %d %s, want %d with %q", resp.StatusCode, body, tt.wantStatus, tt.wantBody)
			}
		})
	}

	// After all that, the session still serves its owner.
	resp, body := do(t, ts, req{body: callWhoami, key: "key-a", session: session})
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, `tenant-a|`) {
		t.Fatalf("session no longer serves its owner: %d %s", resp.StatusCode, body)
	}
}

// TestAgentTokenGoesNoFurther: the tool handler (and so anything upstream)
// never sees the agent's Authorization header.
func TestAgentTokenGoesNoFurther(t *testing.T) {
	ts := newTestHTTP(t, HTTPOptions{})
	session := initialize(t, ts, "key-a")
	_, body := do(t, ts, req{body: callWhoami, key: "key-a", session: session})
	if !strings.Contains(body, `tenant-a|\"`) && !strings.Contains(body, `"text":"tenant-a|"`) {
		t.Fatalf("tool saw the agent's Authorization header, or not tenant-a: %s", body)
	}
	if strings.Contains(body, "key-a") {
		t.Fatalf("agent key leaked into the tool: %s", body)
	}
}

func TestLoopbackOriginAllowed(t *testing.T) {
	ts := newTestHTTP(t, HTTPOptions{AllowedOrigins: []string{"https://app.example.com"}})
	for _, origin := range []string{"http://localhost:6274", "http://127.0.0.1:6274", "https://app.example.com"} {
		if resp, body := do(t, ts, req{body: initBody, key: "key-a", origin: origin}); resp.StatusCode != http.StatusOK {
			t.Errorf("origin %s: %d %s", origin, resp.StatusCode, body)
		}
	}
}

func TestHealthz(t *testing.T) {
	ts := newTestHTTP(t, HTTPOptions{})
	resp, err := http.Get(ts.URL + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	var body map[string]string
	_ = json.NewDecoder(resp.Body).Decode(&body)
	resp.Body.Close()
	if resp.StatusCode != 200 || body["status"] != "ok" {
		t.Fatalf("healthz: %d %v", resp.StatusCode, body)
	}
}

// TestDNSRebinding: on a loopback connection only loopback Host names and
// the allowed ones (a local reverse proxy's public name) are served.
func TestDNSRebinding(t *testing.T) {
	ts := newTestHTTP(t, HTTPOptions{AllowedHosts: []string{"gateway.example.com"}})
	for host, want := range map[string]int{
		"evil.example.com":           403,
		"evil.example.com:80":        403,
		"localhost.evil.example.com": 403,
		"127.0.0.1.nip.io":           403,
		"gateway.example.com":        200,
		"gateway.example.com:443":    200,
		"localhost:3000":             200,
		"127.0.0.1":                  200,
		"[::1]:3000":                 200,
	} {
		hr, _ := http.NewRequest(http.MethodPost, ts.URL+"/mcp", strings.NewReader(initBody))
		hr.Host = host
		hr.Header.Set("Content-Type", "application/json")
		hr.Header.Set("Accept", "application/json, text/event-stream")
		hr.Header.Set("Authorization", "Bearer key-a")
		resp, err := http.DefaultClient.Do(hr)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("Host %s: %d, want %d", host, resp.StatusCode, want)
		}
	}
}
