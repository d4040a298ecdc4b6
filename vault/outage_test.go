package vault_test

import (
	"errors"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/connectors-gateway/connectors/vault"
)

// switchProxy forwards TCP connections to a target until it is cut: then
// every open connection is closed and new ones are refused at once, as
// when Vault goes down; restore brings it back.
type switchProxy struct {
	ln     net.Listener
	target string

	mu    sync.Mutex
	cut   bool
	conns map[net.Conn]struct{}
}

func newSwitchProxy(t *testing.T, target string) *switchProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &switchProxy{ln: ln, target: target, conns: map[net.Conn]struct{}{}}
	t.Cleanup(func() { ln.Close(); p.setCut(true) })
	go p.serve()
	return p
}

func (p *switchProxy) addr() string { return "http://" + p.ln.Addr().String() }

func (p *switchProxy) serve() {
	for {
		in, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		if p.cut {
			p.mu.Unlock()
			in.Close()
			continue
		}
		out, err := net.Dial("tcp", p.target)
		if err != nil {
			p.mu.Unlock()
			in.Close()
			continue
		}
		p.conns[in], p.conns[out] = struct{}{}, struct{}{}
		p.mu.Unlock()
		go func() { _, _ = io.Copy(out, in); out.Close() }()
		go func() { _, _ = io.Copy(in, out); in.Close() }()
	}
}

func (p *switchProxy) setCut(cut bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cut = cut
	if cut {
		for c := range p.conns {
			c.Close()
		}
		clear(p.conns)
	}
}

// TestVaultOutage: with Vault unreachable, reads and writes fail with a
// clear VaultError that holds no token; when Vault returns, the store
// recovers on its own and nothing was lost.
func TestVaultOutage(t *testing.T) {
	v := startVault(t)
	token := v.token(t, "gateway-service")
	target := strings.TrimPrefix(v.addr, "http://")
	proxy := newSwitchProxy(t, target)
	s := v.open(t, token, func(c *vault.HashiCorpConfig) { c.Addr = proxy.addr(); c.CacheTTL = -1 })
	cached := v.open(t, token, func(c *vault.HashiCorpConfig) { c.Addr = proxy.addr(); c.CacheTTL = time.Minute })
	ctx := t.Context()

	want := vault.Credential{AccessToken: "ntn_outage_secret_1", TokenType: "bearer", Scopes: []string{"read"}}
	if _, err := s.Put(ctx, "tenant-1", "notion", want, 0); err != nil {
		t.Fatal(err)
	}
	if _, _, err := cached.Get(ctx, "tenant-1", "notion"); err != nil {
		t.Fatal(err)
	}

	proxy.setCut(true)
	_, _, err := s.Get(ctx, "tenant-1", "notion")
	var ve *vault.VaultError
	if !errors.As(err, &ve) || !strings.HasPrefix(err.Error(), "Failed to connect to Vault") {
		t.Fatalf("Get with Vault down: error = %v, want a VaultError saying it failed to connect", err)
	}
	for _, secret := range []string{token, v.root, want.AccessToken} {
		if strings.Contains(err.Error(), secret) {
			t.Errorf("the error names a secret: %v", err)
		}
	}
	changed := want
	changed.AccessToken = "ntn_outage_secret_2"
	if _, err := s.Put(ctx, "tenant-1", "notion", changed, vault.AnyVersion); !errors.As(err, &ve) {
		t.Errorf("Put with Vault down: error = %v, want a VaultError", err)
	}
	if _, err := s.Integrations(ctx, "tenant-1"); !errors.As(err, &ve) {
		t.Errorf("Integrations with Vault down: error = %v, want a VaultError", err)
	}
	// A store with a cache keeps serving what it read, for up to its TTL.
	if got, _, err := cached.Get(ctx, "tenant-1", "notion"); err != nil || got.AccessToken != want.AccessToken {
		t.Errorf("cached Get with Vault down = %v, %v; want the cached credential", got.AccessToken, err)
	}

	proxy.setCut(false)
	got, version, err := s.Get(ctx, "tenant-1", "notion")
	if err != nil {
		t.Fatalf("Get after Vault returned: %v", err)
	}
	if diff := cmp.Diff(want, got, cmpopts.IgnoreFields(vault.Credential{}, "CreatedAt", "UpdatedAt")); diff != "" || version != 1 {
		t.Errorf("after the outage (version %d), mismatch (-want +got):\n%s", version, diff)
	}
	if _, err := s.Put(ctx, "tenant-1", "notion", changed, version); err != nil {
		t.Errorf("Put after Vault returned: %v", err)
	}
}
