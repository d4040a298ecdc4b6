package main

import (
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
