package main

import (
	"encoding/json"
	"strings"
	"testing"
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
	out = g.mustRun("", "remote", "health")
	if !strings.Contains(out, "3 tenants, 5 credentials: 5 healthy, 0 unhealthy") {
		t.Errorf("remote health = %q", out)
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
