package main

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/mcp"

	"github.com/connectors-gateway/connectors/internal/fakeoauth"
)

// closableEcho starts testdata/upstream-echo over streamable HTTP behind a
// proxy the test can close (the upstream goes away: connections refused),
// and returns the proxy.
func closableEcho(t *testing.T) *httptest.Server {
	t.Helper()
	addr := startHTTPFixture(t, "upstream-echo")
	srv := httptest.NewServer(httputil.NewSingleHostReverseProxy(&url.URL{Scheme: "http", Host: addr}))
	t.Cleanup(srv.Close)
	return srv
}

// assertSaysWhat checks an answer names integration and kind, and nothing
// of where: no address, URL, port or path.
func assertSaysWhat(t *testing.T, answer, integration, kind string) {
	t.Helper()
	if !strings.Contains(answer, integration) || !strings.Contains(answer, kind) {
		t.Errorf("answer %q does not name %q and %q", answer, integration, kind)
	}
	for _, where := range []string{"127.0.0.1", "localhost", "http://", "https://", ".invalid", "/", "dial tcp", "transport error"} {
		if strings.Contains(answer, where) {
			t.Errorf("answer %q holds %q", answer, where)
		}
	}
	for _, f := range strings.FieldsFunc(answer, func(r rune) bool { return r < '0' || r > '9' }) {
		if len(f) >= 4 {
			t.Errorf("answer %q holds a number like a port: %s", answer, f)
		}
	}
}

// TestErrorsSayWhatNotWhere: tool calls to an upstream that went away (on
// the direct path and, with CONNECTORS_DIRECT_CALLS=off, the usual one),
// resources/read of an upstream that cannot be reached (refused, a host
// that does not resolve), and a call whose token cannot be refreshed
// because the token endpoint is unreachable, answer with the integration
// and what failed; the addresses are in the gateway's log. Before, the
// agent read `transport error: Post "http://127.0.0.1:PORT/mcp": dial
// tcp ...` and the token endpoint's URL.
func TestErrorsSayWhatNotWhere(t *testing.T) {
	for _, lane := range []struct {
		name string
		env  map[string]string
	}{{"direct", nil}, {"usual", map[string]string{"CONNECTORS_DIRECT_CALLS": "off"}}} {
		t.Run(lane.name, func(t *testing.T) {
			up := closableEcho(t)
			refused := freeAddr(t)
			tokenAddr := freeAddr(t)
			fake := fakeoauth.New(t, fakeoauth.GitHub, "gh-client", "gh-client-s3cret")
			gh := oauthIntegration(t, "gh", fake)
			gh["oauth"].(map[string]any)["tokenUrl"] = "http://" + tokenAddr + "/oauth/token"
			env := oauthEnv("gh", map[string]string{"GH_CLIENT_ID": "gh-client", "GH_CLIENT_SECRET": "gh-client-s3cret"})
			for k, v := range lane.env {
				env[k] = v
			}
			// The background refreshes that fail while the token endpoint
			// is down must not mark the credential for a new link first.
			env["CONNECTORS_REFRESH_MAX_FAILURES"] = "1000"
			g := newGatewayWithCredentials(t, env,
				map[string]any{"name": "echo", "upstream": map[string]any{"url": up.URL + "/mcp"}},
				map[string]any{"name": "refusing", "upstream": map[string]any{"url": "http://" + refused + "/mcp"}},
				map[string]any{"name": "nowhere", "upstream": map[string]any{"url": "http://no-such-host.invalid/mcp"}},
				gh)
			g.serve()
			access, refresh := fake.IssueToken()
			if status, _, raw := g.api("tenant-a", "POST", "/tenants/tenant-a/integrations/gh/credentials",
				fmt.Sprintf(`{"accessToken": %q, "refreshToken": %q, "expiresIn": 3600}`, access, refresh)); status != http.StatusCreated {
				t.Fatalf("POST credentials: %d %s", status, raw)
			}
			c := g.client("tenant-a")
			mustCall(t, c, "echo_echo", map[string]any{"text": "up"})
			probe(t, c, "gh_env")

			// The upstream goes away mid-session.
			upAddr := strings.TrimPrefix(up.URL, "http://")
			up.Close()
			res, err := call(t.Context(), c, "echo_echo", map[string]any{"text": "down"})
			if err != nil || !res.IsError {
				t.Fatalf("echo_echo to a gone upstream = %v, %v; want a tool error", res, err)
			}
			assertSaysWhat(t, toolText(t, res), "echo", "unreachable")

			// Upstreams that cannot be reached at all.
			for _, tc := range []struct{ integration, kind string }{{"refusing", "unreachable"}, {"nowhere", "unreachable"}} {
				sc := g.singleClient("tenant-a", tc.integration)
				ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
				_, err := sc.ReadResource(ctx, mcp.ReadResourceRequest{Params: mcp.ReadResourceParams{URI: "test://x"}})
				cancel()
				if err == nil {
					t.Fatalf("resources/read of %s succeeded", tc.integration)
				}
				assertSaysWhat(t, strings.TrimPrefix(err.Error(), "transport error: "), tc.integration, tc.kind)
			}

			// The token endpoint is down when the token has expired.
			access, refresh = fake.IssueToken()
			if status, _, raw := g.api("tenant-a", "POST", "/tenants/tenant-a/integrations/gh/credentials",
				fmt.Sprintf(`{"accessToken": %q, "refreshToken": %q, "expiresIn": 1}`, access, refresh)); status != http.StatusCreated {
				t.Fatalf("POST credentials: %d %s", status, raw)
			}
			// Past its expiry (a token close to it is used when its
			// refresh fails).
			time.Sleep(1100 * time.Millisecond)
			res, err = call(t.Context(), c, "gh_env", nil)
			if err != nil || !res.IsError {
				t.Fatalf("gh_env with an expired token and the provider down = %v, %v; want a tool error", res, err)
			}
			text := toolText(t, res)
			assertSaysWhat(t, text, "gh", "could not be refreshed")
			if !strings.Contains(text, "unreachable") {
				t.Errorf("answer %q does not say the token endpoint is unreachable", text)
			}

			logs := g.stderr.String()
			for _, detail := range []string{upAddr, refused, "no-such-host.invalid", tokenAddr} {
				if !strings.Contains(logs, detail) {
					t.Errorf("the log lacks %q", detail)
				}
			}
			g.assertNoSecretsIn(logs)
		})
	}
}
