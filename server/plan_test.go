package server

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	mcptransport "github.com/mark3labs/mcp-go/client/transport"
	"github.com/mark3labs/mcp-go/mcp"
	mcpserver "github.com/mark3labs/mcp-go/server"

	"github.com/connectors-gateway/connectors/oauth"
	"github.com/connectors-gateway/connectors/tenants"
	"github.com/connectors-gateway/connectors/tools"
	"github.com/connectors-gateway/connectors/vault"
	"github.com/connectors-gateway/connectors/vault/embedded"
)

// whoamiUpstream serves one tool, whoami, over streamable HTTP (mcp-go's
// server, in process): it answers with the call's Authorization header,
// and a tools/call whose bearer token starts with "stale" gets HTTP 401.
func whoamiUpstream(t *testing.T) string {
	t.Helper()
	s := mcpserver.NewMCPServer("whoami", "1.0.0", mcpserver.WithToolCapabilities(false))
	s.AddTool(mcp.NewTool("whoami"), func(_ context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		return mcp.NewToolResultText(req.Header.Get("Authorization")), nil
	})
	h := mcpserver.NewStreamableHTTPServer(s)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		r.Body = io.NopCloser(bytes.NewReader(body))
		if strings.HasPrefix(r.Header.Get("Authorization"), "Bearer stale") && bytes.Contains(body, []byte(`"tools/call"`)) {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

// countingRefresher answers every refresh with fresh and err, and counts
// them.
type countingRefresher struct {
	mu    sync.Mutex
	n     int
	stale []string
	fresh vault.Credential
	err   error
}

func (r *countingRefresher) Refresh(_ context.Context, _, _, stale string) (vault.Credential, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.n++
	r.stale = append(r.stale, stale)
	return r.fresh, r.err
}

func (r *countingRefresher) calls() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.n
}

// planFixture is a Gateway on a real embedded store and a real pool, with
// one integration (whoami) and tenant-a's credential cred.
func planFixture(t *testing.T, cred vault.Credential, r *countingRefresher) (*Gateway, context.Context) {
	t.Helper()
	g, _ := whoamiGateway(t, cred, Options{Refresher: r})
	return g, tenants.NewContext(t.Context(), tenants.Identity{Tenant: "tenant-a"})
}

// whoamiGateway is planFixture's Gateway, made with opts (its registry,
// store and pool set here), and its store.
func whoamiGateway(t *testing.T, cred vault.Credential, opts Options) (*Gateway, vault.Store) {
	t.Helper()
	st, err := embedded.Open(filepath.Join(t.TempDir(), "s.db"), &embedded.Options{MasterKey: make([]byte, 32)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if _, err := st.Put(t.Context(), "tenant-a", "whoami", cred, vault.AnyVersion); err != nil {
		t.Fatal(err)
	}
	reg, err := tools.NewRegistry(tools.Integration{Name: "whoami", Category: "test", Upstream: tools.Upstream{
		URL: whoamiUpstream(t) + "/mcp", Headers: map[string]string{"Authorization": "Bearer {{access_token}}"},
	}})
	if err != nil {
		t.Fatal(err)
	}
	pool := tools.NewPool(&tools.PoolOptions{})
	t.Cleanup(pool.Close)
	opts.Registry, opts.Store, opts.Upstreams = reg, st, pool
	return New(opts), st
}

// callWhoami runs the plan of a whoami call and counts the attempts.
func callWhoami(t *testing.T, g *Gateway, ctx context.Context) (string, int, error) {
	t.Helper()
	p, err := g.newPlan(ctx, "whoami")
	if err != nil {
		t.Fatal(err)
	}
	conn, err := p.connect(ctx)
	if err != nil {
		return "", 0, err
	}
	attempts := 0
	res, err := run(ctx, p, conn, func(ctx context.Context, conn *tools.Conn) (*mcp.CallToolResult, error) {
		attempts++
		var req mcp.CallToolRequest
		req.Params.Name = "whoami"
		return conn.CallTool(ctx, req, nil)
	}, refused)
	if err != nil {
		return "", attempts, err
	}
	return res.Content[0].(mcp.TextContent).Text, attempts, nil
}

// An expired token is refreshed once, before the call, which is made with
// the fresh token; a valid one is used as it is.
func TestPlanRefreshesExpiredBeforeCall(t *testing.T) {
	r := &countingRefresher{fresh: vault.Credential{AccessToken: "fresh-1", RefreshToken: "r2"}}
	g, ctx := planFixture(t, vault.Credential{AccessToken: "old", RefreshToken: "r1", ExpiresAt: time.Now().Add(-time.Minute)}, r)
	who, attempts, err := callWhoami(t, g, ctx)
	if err != nil || who != "Bearer fresh-1" || attempts != 1 {
		t.Fatalf("call with an expired token = %q after %d attempts, %v; want Bearer fresh-1 after 1", who, attempts, err)
	}
	if r.calls() != 1 || r.stale[0] != "old" {
		t.Errorf("refreshes = %d of %q, want 1 of the expired token", r.calls(), r.stale)
	}

	r = &countingRefresher{fresh: vault.Credential{AccessToken: "unused"}}
	g, ctx = planFixture(t, vault.Credential{AccessToken: "valid", RefreshToken: "r1", ExpiresAt: time.Now().Add(time.Hour)}, r)
	if who, _, err := callWhoami(t, g, ctx); err != nil || who != "Bearer valid" || r.calls() != 0 {
		t.Errorf("call with a valid token = %q, %v after %d refreshes; want Bearer valid, none", who, err, r.calls())
	}
}

// A token the upstream refuses is renewed once and the call made once
// more, with the fresh token; a fresh token refused too is not renewed
// again: the refusal is the answer.
func TestPlanRenewsRefusedOnce(t *testing.T) {
	r := &countingRefresher{fresh: vault.Credential{AccessToken: "fresh-1", RefreshToken: "r2"}}
	g, ctx := planFixture(t, vault.Credential{AccessToken: "stale-1", RefreshToken: "r1"}, r)
	who, attempts, err := callWhoami(t, g, ctx)
	if err != nil || who != "Bearer fresh-1" || attempts != 2 || r.calls() != 1 {
		t.Fatalf("refused call = %q, %v after %d attempts, %d refreshes; want Bearer fresh-1 after 2 attempts, 1 refresh", who, err, attempts, r.calls())
	}
	if r.stale[0] != "stale-1" {
		t.Errorf("renewed %q, want the refused token", r.stale[0])
	}

	r = &countingRefresher{fresh: vault.Credential{AccessToken: "stale-2", RefreshToken: "r2"}}
	g, ctx = planFixture(t, vault.Credential{AccessToken: "stale-1", RefreshToken: "r1"}, r)
	_, attempts, err = callWhoami(t, g, ctx)
	if !errors.Is(err, mcptransport.ErrAuthorizationRequired) || attempts != 2 || r.calls() != 1 {
		t.Errorf("call refused twice = %v after %d attempts, %d refreshes; want the refusal after 2 attempts, 1 refresh", err, attempts, r.calls())
	}

	// Without a refresh token there is nothing to renew with.
	r = &countingRefresher{fresh: vault.Credential{AccessToken: "fresh-1"}}
	g, ctx = planFixture(t, vault.Credential{AccessToken: "stale-1"}, r)
	_, attempts, err = callWhoami(t, g, ctx)
	if !errors.Is(err, mcptransport.ErrAuthorizationRequired) || attempts != 1 || r.calls() != 0 {
		t.Errorf("refused call without a refresh token = %v after %d attempts, %d refreshes; want the refusal after 1, none", err, attempts, r.calls())
	}
}

// A credential only a new link can renew, before the call or after a
// refusal, is errNeedsLink: the lanes offer the link.
func TestPlanNeedsReauthIsLink(t *testing.T) {
	r := &countingRefresher{err: oauth.ErrNeedsReauth}
	g, ctx := planFixture(t, vault.Credential{AccessToken: "stale-1", RefreshToken: "r1"}, r)
	_, attempts, err := callWhoami(t, g, ctx)
	if !errors.Is(err, errNeedsLink) || attempts != 1 || r.calls() != 1 {
		t.Errorf("refused call, refresh needs a link = %v after %d attempts, %d refreshes; want errNeedsLink after 1, 1", err, attempts, r.calls())
	}

	r = &countingRefresher{err: oauth.ErrNeedsReauth}
	g, ctx = planFixture(t, vault.Credential{AccessToken: "old", RefreshToken: "r1", ExpiresAt: time.Now().Add(-time.Minute)}, r)
	if _, attempts, err := callWhoami(t, g, ctx); !errors.Is(err, errNeedsLink) || attempts != 0 {
		t.Errorf("expired token, refresh needs a link = %v after %d attempts; want errNeedsLink before any", err, attempts)
	}

	// On the usual path the link is the answer: with no linker, the
	// credential is reported missing.
	r = &countingRefresher{err: oauth.ErrNeedsReauth}
	g, ctx = planFixture(t, vault.Credential{AccessToken: "stale-1", RefreshToken: "r1"}, r)
	var req mcp.CallToolRequest
	_, err = g.forward(func() *mcpserver.MCPServer { return g.aggregate.mcp }, "whoami", "whoami")(ctx, req)
	if !vault.IsNotFound(err) {
		t.Errorf("usual path, refresh needs a link, no linker: %v, want a CredentialNotFoundError", err)
	}
}
