package server_test

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"

	"github.com/mark3labs/mcp-go/mcp"

	"github.com/connectors-gateway/connectors/internal/testenv"
	"github.com/connectors-gateway/connectors/server"
	"github.com/connectors-gateway/connectors/tenants"
	"github.com/connectors-gateway/connectors/tools"
	"github.com/connectors-gateway/connectors/transport"
	"github.com/connectors-gateway/connectors/vault"
	"github.com/connectors-gateway/connectors/vault/embedded"
)

// TestMain fails the run if an upstream process a test started outlives
// it.
func TestMain(m *testing.M) { os.Exit(testenv.RunMain(m)) }

// A harness is a real gateway, as the binary wires it: the embedded
// store, the registry, a pool of real upstream processes (the fixtures
// under testdata/, built once per test binary), and tenants holding
// credentials and API keys:
//
//   - tenant-a holds echo (upstream-echo over stdio, its token in
//     ECHO_TOKEN) and remote (upstream-echo over streamable HTTP, its token
//     in the Authorization header);
//   - tenant-b holds conformance (upstream-conformance, over stdio).
//
// Each holds nothing else; the registry also has env (upstream-env),
// which nobody holds.
type harness struct {
	g      *server.Gateway
	store  store
	keys   map[string]string // tenant → API key
	direct *directCounter    // nil: the direct lane is off
}

// store is what the harness needs of the credential store: credentials,
// API keys, tenants' settings.
type store interface {
	vault.Store
	tenants.KeyStore
	server.SettingsStore
}

// The credentials the tenants hold, by tenant and integration. The gateway
// redacts them wherever an upstream's answer quotes one.
var credentials = map[string]map[string]string{
	"tenant-a": {"echo": "tok-a-echo", "remote": "tok-a-remote"},
	"tenant-b": {"conformance": "tok-b-conformance"},
}

// newHarness starts a gateway; with direct, its HTTP endpoint serves the
// tools/call requests it can on the direct lane.
func newHarness(t *testing.T, direct bool) *harness {
	t.Helper()
	reg, err := tools.NewRegistry(
		tools.Integration{Name: "echo", Upstream: tools.Upstream{
			Command: testenv.Build(t, "./testdata/upstream-echo"),
			Env:     map[string]string{"ECHO_TOKEN": "{{access_token}}"},
		}},
		tools.Integration{Name: "remote", Upstream: tools.Upstream{
			URL:     "http://" + startHTTPEcho(t) + "/mcp",
			Headers: map[string]string{"Authorization": "Bearer {{access_token}}"},
		}},
		tools.Integration{Name: "conformance", Upstream: tools.Upstream{
			Command: testenv.Build(t, "./testdata/upstream-conformance"),
			Args:    []string{"stdio"},
		}},
		tools.Integration{Name: "env", Upstream: tools.Upstream{
			Command: testenv.Build(t, "./testdata/upstream-env"),
		}},
	)
	if err != nil {
		t.Fatal(err)
	}
	h := &harness{store: openStore(t), keys: map[string]string{}}
	var g *server.Gateway
	pool := tools.NewPool(&tools.PoolOptions{
		OnNotification: func(tenant, integration string, n mcp.JSONRPCNotification) {
			g.UpstreamNotification(tenant, integration, n)
		},
	})
	t.Cleanup(pool.Close)
	g = server.New(server.Options{
		Registry: reg, Store: h.store, Settings: h.store, Upstreams: pool, Version: "test",
	})
	h.g = g
	keys := tenants.NewAPIKeys(h.store)
	for tenant, creds := range credentials {
		for integration, token := range creds {
			if _, err := h.store.Put(t.Context(), tenant, integration, vault.Credential{AccessToken: token, TokenType: "Bearer"}, 0); err != nil {
				t.Fatal(err)
			}
		}
		key, _, err := keys.Create(t.Context(), tenant, false)
		if err != nil {
			t.Fatal(err)
		}
		h.keys[tenant] = key
	}
	if direct {
		h.direct = &directCounter{g: g}
	}
	return h
}

// startHTTPEcho starts upstream-echo serving streamable HTTP on a free
// loopback port until the test ends, and returns its address.
func startHTTPEcho(t *testing.T) string {
	t.Helper()
	cmd := exec.Command(testenv.Build(t, "./testdata/upstream-echo"), "--http", "127.0.0.1:0")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	// Once listening, it says where: {"addr": "127.0.0.1:PORT"}.
	var listening struct{ Addr string }
	if err := json.NewDecoder(stdout).Decode(&listening); err != nil || listening.Addr == "" {
		t.Fatalf("upstream-echo --http did not say where it listens: %v", err)
	}
	return listening.Addr
}

// openStore opens an embedded store in a temporary directory, closed when
// the test ends.
func openStore(t *testing.T) store {
	t.Helper()
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	st, err := embedded.Open(filepath.Join(t.TempDir(), "store.db"), &embedded.Options{MasterKey: key})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	return st
}

// httpHandler is the gateway's streamable-HTTP endpoint at /mcp and
// /mcp/{integration}, authenticating API keys from the store.
func (h *harness) httpHandler(t *testing.T) http.Handler {
	t.Helper()
	var o server.HTTPOptions
	if h.direct != nil {
		o.Direct = h.direct
	}
	mcp := h.g.Handler(o)
	hh := transport.NewHTTP(transport.HTTPOptions{MCP: mcp, Auth: transport.APIKeyAuth{Keys: tenants.NewAPIKeys(h.store)}})
	t.Cleanup(func() { _ = hh.Close(context.Background()) })
	return hh
}

// serveStdio serves the gateway over stdio to tenant until in closes or
// ctx ends.
func (h *harness) serveStdio(ctx context.Context, tenant string, in io.Reader, out io.Writer) error {
	id := tenants.Identity{Tenant: tenant, Subject: "stdio"}
	return h.g.ServeStdio(ctx, id, in, out)
}

// directCounter is the gateway's direct lane, noting the calls it served.
type directCounter struct {
	g      *server.Gateway
	mu     sync.Mutex
	served []string // the tools called, in order
}

func (d *directCounter) CallDirect(ctx context.Context, c server.DirectCall) (json.RawMessage, *tools.RPCError, bool) {
	res, refusal, ok := d.g.CallDirect(ctx, c)
	if ok {
		d.mu.Lock()
		d.served = append(d.served, c.Name)
		d.mu.Unlock()
	}
	return res, refusal, ok
}

func (d *directCounter) calls() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]string(nil), d.served...)
}
