package main

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/mcp"

	"github.com/connectors-gateway/connectors/internal/testenv"
)

// vaultBound is CONNECTORS_VAULT_TIMEOUT in these tests.
const vaultBound = 500 * time.Millisecond

// TestGatewayVaultUnreachable: with Vault refusing connections, or
// accepting them and never answering, the gateway answers every call that
// needs Vault with a 503 VaultError (its MCP equivalent in a session)
// within 1.5 times CONNECTORS_VAULT_TIMEOUT, fast enough to keep serving
// the rest; a credential it read within its cache TTL keeps serving;
// /readyz says not ready within the bound; a credential write is refused
// and did not land; and within 2s of Vault's return calls are served again.
func TestGatewayVaultUnreachable(t *testing.T) {
	addr, root := testenv.Vault(t)
	for _, fault := range []struct {
		name string
		f    testenv.Fault
	}{{"refused", testenv.Refuse}, {"blackholed", testenv.Blackhole}} {
		t.Run(fault.name, func(t *testing.T) {
			proxy := testenv.NewFaultProxy(t, strings.TrimPrefix(addr, "http://"))
			g := newGatewayWithEnv(t, map[string]string{
				"VAULT_ADDR": proxy.URL(), "VAULT_TOKEN": root,
				"CONNECTORS_VAULT_TIMEOUT": vaultBound.String(), "CONNECTORS_VAULT_CACHE_TTL": "1m",
			})
			g.serve()
			direct := func(tool, args string) (int, string, time.Duration) {
				return g.timed("tenant-a", "POST", "/mcp", callBody("1", tool, `"arguments":`+args), map[string]string{
					"Accept": "application/json, text/event-stream", "Mcp-Protocol-Version": "2026-07-28",
					"Mcp-Method": "tools/call", "Mcp-Name": tool,
				})
			}
			if status, body, _ := direct("notion_API-get-self", `{}`); status != http.StatusOK || !strings.Contains(body, "Acme Bot") {
				t.Fatalf("with Vault up: %d %s", status, body)
			}
			session := g.client("tenant-a") // initialized; its tools not listed, so everything's credential not read
			limit := vaultBound * 3 / 2

			proxy.Set(fault.f)
			// Read before the outage: served from memory (API key, settings
			// and credential are all within their TTLs).
			if status, body, d := direct("notion_API-get-self", `{}`); status != http.StatusOK || !strings.Contains(body, "Acme Bot") {
				t.Errorf("cached credential with Vault %s: %d %s (%v), want it served", fault.name, status, body, d)
			}
			// The everything credential was never read: it needs Vault.
			var calls int
			var slowest time.Duration
			start := time.Now()
			for time.Since(start) < 2*time.Second {
				status, body, d := direct("everything_echo", `{"message":"hi"}`)
				calls++
				slowest = max(slowest, d)
				if status != http.StatusServiceUnavailable || !strings.Contains(body, "VaultError") {
					t.Fatalf("call %d with Vault %s: %d %s, want 503 VaultError", calls, fault.name, status, body)
				}
				if d > limit {
					t.Errorf("call %d with Vault %s answered after %v, want within %v", calls, fault.name, d, limit)
				}
			}
			rate := float64(calls) / time.Since(start).Seconds()
			t.Logf("Vault %s: %d calls in 2s (%.0f/s), slowest %v", fault.name, calls, rate, slowest)
			if rate < 50 {
				t.Errorf("Vault %s: %.0f refused calls/s, want the gateway to fail fast (>= 50/s)", fault.name, rate)
			}
			t0 := time.Now()
			if _, err := session.CallTool(t.Context(), mcp.CallToolRequest{Params: mcp.CallToolParams{Name: "everything_echo", Arguments: map[string]any{"message": "old"}}}); err == nil || !strings.Contains(err.Error(), "VaultError") {
				t.Errorf("2025-11-25 session call with Vault %s: %v, want an error naming VaultError", fault.name, err)
			}
			if d := time.Since(t0); d > limit {
				t.Errorf("2025-11-25 session call answered after %v, want within %v", d, limit)
			}
			if status, body, d := g.timed("", "GET", "/readyz", "", nil); status != http.StatusServiceUnavailable || d > limit {
				t.Errorf("/readyz with Vault %s: %d %s after %v, want 503 within %v", fault.name, status, body, d, limit)
			}
			status, body, d := g.timed("tenant-a", "POST", "/tenants/tenant-a/integrations/notion/credentials", `{"accessToken": "ntn_while_down_planted"}`, nil)
			if status != http.StatusServiceUnavailable || !strings.Contains(body, "VaultError") || d > limit {
				t.Errorf("credential write with Vault %s: %d %s after %v, want 503 VaultError within %v", fault.name, status, body, d, limit)
			}

			proxy.Set(testenv.Forward)
			back := time.Now()
			for {
				status, body, _ := direct("everything_echo", `{"message":"back"}`)
				if status == http.StatusOK && strings.Contains(body, "back") {
					t.Logf("served again %v after Vault returned", time.Since(back))
					break
				}
				if time.Since(back) > 2*time.Second {
					t.Fatalf("2s after Vault returned: %d %s", status, body)
				}
				time.Sleep(20 * time.Millisecond)
			}
			if status, _, _ := g.timed("", "GET", "/readyz", "", nil); status != http.StatusOK {
				t.Errorf("/readyz after Vault returned: %d", status)
			}
			// The write refused during the outage did not land: notion
			// still answers with tenant-a's own token.
			if status, body, _ := direct("notion_API-get-self", `{}`); status != http.StatusOK || !strings.Contains(body, "Acme Bot") {
				t.Errorf("notion after the outage: %d %s, want the credential from before it", status, body)
			}
			g.assertNoSecretsIn(body, root)
			if strings.Contains(g.stderr.String(), root) {
				t.Error("the Vault token appears in the gateway's logs")
			}
		})
	}
}

// timed sends one request as tenant (none: no credentials) and returns
// the status, the body and how long the answer took. Its own bound keeps
// a gateway that waits for Vault from hanging the test.
func (g *gateway) timed(tenant, method, path, body string, headers map[string]string) (int, string, time.Duration) {
	g.t.Helper()
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req, _ := http.NewRequest(method, "http://"+g.addr+path, r)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if tenant != "" {
		req.Header.Set("Authorization", "Bearer "+g.keys[tenant])
	}
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	c := &http.Client{Timeout: 20 * time.Second}
	t0 := time.Now()
	resp, err := c.Do(req)
	if err != nil {
		return 0, err.Error(), time.Since(t0)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(raw), time.Since(t0)
}

// TestVaultTimeoutConfig: CONNECTORS_VAULT_TIMEOUT takes a positive Go
// duration; anything else stops the start, rather than leaving Vault
// unbounded or failing every call.
func TestVaultTimeoutConfig(t *testing.T) {
	for v, want := range map[string]time.Duration{"": 0, "250ms": 250 * time.Millisecond, "2s": 2 * time.Second} {
		c, err := configFromEnv(func(k string) string { return map[string]string{"CONNECTORS_VAULT_TIMEOUT": v}[k] })
		if err != nil || c.VaultTimeout != want {
			t.Errorf("CONNECTORS_VAULT_TIMEOUT=%q: %v, %v; want %v", v, c.VaultTimeout, err, want)
		}
	}
	for _, v := range []string{"0s", "-1s", "1", "soon"} {
		if _, err := configFromEnv(func(k string) string { return map[string]string{"CONNECTORS_VAULT_TIMEOUT": v}[k] }); err == nil {
			t.Errorf("CONNECTORS_VAULT_TIMEOUT=%q accepted", v)
		}
	}
}
