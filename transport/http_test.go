package transport

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/connectors-gateway/connectors/internal/mcptest"
	"github.com/connectors-gateway/connectors/server"
)

// newTestHTTP serves mcptest.NewWhoami's MCP endpoint, with mcptest's
// keys.
func newTestHTTP(t *testing.T, opts HTTPOptions) *httptest.Server {
	t.Helper()
	opts.MCP = server.NewHandler(mcptest.NewWhoami(), nil, server.HTTPOptions{})
	opts.Auth = mcptest.TestKeys
	h := NewHTTP(opts)
	ts := httptest.NewServer(h)
	t.Cleanup(func() { ts.Close(); _ = h.Close(context.Background()) })
	return ts
}

type req = mcptest.Req

const initBody = mcptest.InitBody

func do(t *testing.T, ts *httptest.Server, r req) (*http.Response, string) {
	t.Helper()
	return mcptest.Do(t, ts.URL, r)
}

// initialize opens a session as key and returns its ID.
func initialize(t *testing.T, ts *httptest.Server, key string) string {
	t.Helper()
	return mcptest.Initialize(t, ts.URL, key)
}

const callWhoami = `{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"whoami"}}`

func TestRefusals(t *testing.T) {
	ts := newTestHTTP(t, HTTPOptions{MaxBodyBytes: 1024})
	session := initialize(t, ts, "key-a")
	ended := initialize(t, ts, "key-a")
	if resp, _ := do(t, ts, req{Method: http.MethodDelete, Key: "key-a", Session: ended}); resp.StatusCode != http.StatusOK {
		t.Fatalf("DELETE session: %d", resp.StatusCode)
	}

	tests := []struct {
		name       string
		req        req
		wantStatus int
		wantBody   string
	}{
		{"no credentials", req{Body: initBody}, 401, `"error":"Unauthorized"`},
		{"wrong key", req{Body: initBody, Key: "key-x"}, 401, `"error":"Unauthorized"`},
		{"foreign origin", req{Body: initBody, Key: "key-a", Origin: "http://evil.example.com"}, 403, `"error":"ForbiddenOrigin"`},
		{"look-alike origin", req{Body: initBody, Key: "key-a", Origin: "http://localhost.evil.example.com"}, 403, `"error":"ForbiddenOrigin"`},
		{"null origin", req{Body: initBody, Key: "key-a", Origin: "null"}, 403, `"error":"ForbiddenOrigin"`},
		{"body over limit", req{Body: `{"jsonrpc":"2.0","id":1,"method":"ping","params":{"x":"` + strings.Repeat("a", 2048) + `"}}`, Key: "key-a", Session: session}, 413, `"error":"PayloadTooLarge"`},
		{"batch", req{Body: `[` + callWhoami + `]`, Key: "key-a", Session: session}, 400, `"code":-32600`},
		{"malformed JSON", req{Body: `{"jsonrpc":`, Key: "key-a", Session: session}, 400, `"code":-32700`},
		{"wrong content type", req{Body: callWhoami, Key: "key-a", Session: session, ContentType: "text/plain"}, 400, "content type"},
		{"made-up session", req{Body: callWhoami, Key: "key-a", Session: "made-up"}, 404, ""},
		{"another tenant's session", req{Body: callWhoami, Key: "key-b", Session: session}, 404, ""},
		{"deleted session", req{Body: callWhoami, Key: "key-a", Session: ended}, 404, ""},
		{"GET on another tenant's session", req{Method: http.MethodGet, Key: "key-b", Session: session}, 404, ""},
		{"DELETE of another tenant's session", req{Method: http.MethodDelete, Key: "key-b", Session: session}, 404, ""},
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
	resp, body := do(t, ts, req{Body: callWhoami, Key: "key-a", Session: session})
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, `tenant-a|`) {
		t.Fatalf("session no longer serves its owner: %d %s", resp.StatusCode, body)
	}
}

// TestAgentTokenGoesNoFurther: the tool handler (and so anything upstream)
// never sees the agent's Authorization header.
func TestAgentTokenGoesNoFurther(t *testing.T) {
	ts := newTestHTTP(t, HTTPOptions{})
	session := initialize(t, ts, "key-a")
	_, body := do(t, ts, req{Body: callWhoami, Key: "key-a", Session: session})
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
		if resp, body := do(t, ts, req{Body: initBody, Key: "key-a", Origin: origin}); resp.StatusCode != http.StatusOK {
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
