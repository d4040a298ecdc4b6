package main

import (
	"net/http"
	"strings"
	"testing"

	"github.com/mark3labs/mcp-go/mcp"
)

// TestOperatorCommands drives the credential, apikey and key commands the
// way an operator would, and checks that no secret is ever printed.
func TestOperatorCommands(t *testing.T) {
	g := newGateway(t)

	got := g.mustRun("", "credential", "get", "--tenant", "tenant-a", "--integration", "notion")
	if strings.Contains(got, tokenA) || !strings.Contains(got, `"hasRefreshToken": false`) {
		t.Errorf("credential get printed a secret, or not the record:\n%s", got)
	}
	if got := g.mustRun("", "credential", "list", "--tenant", "tenant-a"); got != "everything\nnotion\n" {
		t.Errorf("credential list = %q", got)
	}
	if got := g.mustRun("", "key", "rotate", "--tenant", "tenant-a"); !strings.Contains(got, "rotated") {
		t.Errorf("key rotate = %q", got)
	}
	for _, bad := range []struct {
		stdin string
		args  []string
		want  string
	}{
		{`{"accessToken": ""}`, []string{"credential", "put", "--tenant", "tenant-c", "--integration", "notion"}, "accessToken is required"},
		{`{"accessToken": "x", "expiresIn": -1}`, []string{"credential", "put", "--tenant", "tenant-c", "--integration", "notion"}, "expiresIn"},
		{`{"accessToken": "x", "bogus": 1}`, []string{"credential", "put", "--tenant", "tenant-c", "--integration", "notion"}, "bogus"},
		{`not json`, []string{"credential", "put", "--tenant", "tenant-c", "--integration", "notion"}, "reading credential JSON"},
		{"", []string{"credential", "get", "--tenant", "tenant-c", "--integration", "notion"}, "Credentials not found for tenant-c/notion"},
		{"", []string{"apikey", "revoke", "0000000000000000"}, "not found"},
		{"", []string{"frobnicate"}, "unknown subcommand"},
	} {
		_, err := g.run(bad.stdin, bad.args...)
		if err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("connectors %s: err = %v, want it to mention %q", strings.Join(bad.args, " "), err, bad.want)
		}
	}

	// Still readable after rotation: the gateway serves tenant-a's token.
	g.serve()
	res, err := g.client("tenant-a").CallTool(t.Context(), mcp.CallToolRequest{Params: mcp.CallToolParams{Name: "notion_API-get-self"}})
	if err != nil || !strings.Contains(toolText(t, res), "Acme Bot") {
		t.Fatalf("call after key rotation: %v, %v", res, err)
	}

}

// TestOffboard: after "tenant offboard", the tenant has no credentials, no
// API key, and no tools; the other tenant is untouched.
func TestOffboard(t *testing.T) {
	g := newGateway(t)
	out := g.mustRun("", "tenant", "offboard", "--tenant", "tenant-a")
	if !strings.Contains(out, "1 API keys revoked") {
		t.Errorf("tenant offboard = %q", out)
	}
	if got := g.mustRun("", "credential", "list", "--tenant", "tenant-a"); got != "" {
		t.Errorf("tenant-a's credentials after offboarding: %q", got)
	}
	if got := g.mustRun("", "credential", "list", "--tenant", "tenant-b"); got != "everything\nnotion\n" {
		t.Errorf("tenant-b's credentials after offboarding tenant-a: %q", got)
	}
	g.serve()
	resp, _ := post(t, g, "POST", initializeBody, http.Header{"Authorization": {"Bearer " + g.keys["tenant-a"]}})
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("tenant-a's API key after offboarding: %d, want 401", resp.StatusCode)
	}
	if _, err := g.run("", "tenant", "offboard", "--tenant", "../x"); err == nil {
		t.Error("offboarding a hostile tenant ID succeeded")
	}
}
