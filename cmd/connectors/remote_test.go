package main

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestRemoteCLI: the operator commands that go through a running
// gateway's API work beside it (the embedded store is locked while it
// serves), print tables or the API's JSON, and report refusals.
func TestRemoteCLI(t *testing.T) {
	g := newGateway(t)
	g.withAdmin()
	addr := g.serve()
	g.env["CONNECTORS_GATEWAY_URL"] = "http://" + addr
	g.env["CONNECTORS_API_KEY"] = g.keys["admin"]

	out := g.mustRun(`{"accessToken": "ghp_remote_planted_1", "expiresIn": 3600}`, "remote", "put", "--tenant", "tenant-c", "--integration", "github")
	if !strings.HasPrefix(out, "stored tenant-c/github (expires 20") {
		t.Errorf("remote put = %q", out)
	}
	out = g.mustRun("", "remote", "integrations", "--tenant", "tenant-c")
	if !strings.Contains(out, "INTEGRATION") || !strings.Contains(out, "github       code") && !strings.Contains(out, "github") {
		t.Errorf("remote integrations = %q", out)
	}
	for line := range strings.Lines(out) {
		f := strings.Fields(line)
		if len(f) > 0 && f[0] == "github" && (f[2] != "yes" || f[3] != "active") {
			t.Errorf("github line = %q", line)
		}
		if len(f) > 0 && f[0] == "notion" && f[2] != "no" {
			t.Errorf("notion line = %q", line)
		}
	}
	out = g.mustRun("", "remote", "tenants")
	for _, want := range []string{"tenant-a", "tenant-b", "tenant-c", "github (healthy)", "notion (healthy)"} {
		if !strings.Contains(out, want) {
			t.Errorf("remote tenants lacks %q:\n%s", want, out)
		}
	}
	// All well: one line saying so, no empty table.
	if out = g.mustRun("", "remote", "health"); out != "all 5 integrations healthy (3 tenants)\n" {
		t.Errorf("remote health = %q, want all 5 integrations healthy", out)
	}
	out = g.mustRun("", "remote", "health", "--json")
	var health map[string]any
	if err := json.Unmarshal([]byte(out), &health); err != nil || health["totalTenants"] != float64(3) {
		t.Errorf("remote health --json = %q", out)
	}
	if out = g.mustRun("", "remote", "rotate", "--tenant", "tenant-c"); out != "rotated the encryption key of tenant-c\n" {
		t.Errorf("remote rotate = %q", out)
	}
	if out = g.mustRun("", "remote", "delete", "--tenant", "tenant-c", "--integration", "github"); !strings.HasPrefix(out, "revoked tenant-c/github") {
		t.Errorf("remote delete = %q", out)
	}

	// Refusals come back with the API's error name.
	g.env["CONNECTORS_API_KEY"] = g.keys["tenant-a"]
	if _, err := g.run("", "remote", "health"); err == nil || !strings.Contains(err.Error(), "403 Forbidden") {
		t.Errorf("remote health with a tenant's key: %v, want 403 Forbidden", err)
	}
	if _, err := g.run("", "remote", "integrations", "--tenant", "tenant-b"); err == nil || !strings.Contains(err.Error(), "403 Forbidden") {
		t.Errorf("remote integrations of another tenant: %v", err)
	}
	if _, err := g.run(`{"accessToken": 5}`, "remote", "put", "--tenant", "tenant-a", "--integration", "github"); err == nil || !strings.Contains(err.Error(), "ValidationError: accessToken") {
		t.Errorf("remote put of a bad body: %v", err)
	}
	if _, err := g.run("", "remote", "integrations", "--tenant", "../tenant-b"); err == nil || exitCode(err) != 2 {
		t.Errorf("remote with a hostile tenant: %v, want a usage error before any request", err)
	}
	delete(g.env, "CONNECTORS_API_KEY")
	if _, err := g.run("", "remote", "health"); err == nil || !strings.Contains(err.Error(), "CONNECTORS_API_KEY") {
		t.Errorf("remote without a key: %v", err)
	}
	g.assertNoSecretsIn()
}

// TestRemoteHealthOutput: "remote health" prints one line when every
// integration is healthy, one when none is stored, and otherwise the table
// of the unhealthy ones and the totals (the answers of GET
// /admin/tenants/health as the gateway gives them).
func TestRemoteHealthOutput(t *testing.T) {
	for _, tc := range []struct{ name, answer, want string }{
		{"all healthy", `{"totalTenants": 2, "details": [{"tenantId": "a", "integrations": {"notion": "healthy"}}, {"tenantId": "b", "integrations": {"github": "healthy", "slack": "healthy"}}]}`,
			"all 3 integrations healthy (2 tenants)\n"},
		{"nothing stored", `{"totalTenants": 0, "details": []}`, "no credentials stored (0 tenants)\n"},
		{"one unhealthy", `{"totalTenants": 2, "details": [{"tenantId": "a", "integrations": {"notion": "healthy"}}, {"tenantId": "b", "integrations": {"github": "refresh_failed"}}]}`,
			"TENANT  INTEGRATION  STATUS\nb       github       refresh_failed\n2 tenants, 2 credentials: 1 healthy, 1 unhealthy\n"},
	} {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write([]byte(tc.answer))
		}))
		var stdout bytes.Buffer
		env := map[string]string{"CONNECTORS_GATEWAY_URL": srv.URL, "CONNECTORS_API_KEY": "cgw_x"}
		m := &Main{Stdin: strings.NewReader(""), Stdout: &stdout, Stderr: io.Discard, Getenv: func(k string) string { return env[k] }}
		if err := m.Run(t.Context(), []string{"remote", "health"}); err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		srv.Close()
		if diff := cmp.Diff(tc.want, stdout.String()); diff != "" {
			t.Errorf("%s: remote health (-want +got):\n%s", tc.name, diff)
		}
	}
}
