package main

import (
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/mark3labs/mcp-go/mcp"

	"github.com/connectors-gateway/connectors/internal/testenv"
)

// stdioEcho is integration name: testdata/upstream-echo over stdio, run
// with args, its token in ECHO_TOKEN.
func stdioEcho(t *testing.T, name string, args ...string) map[string]any {
	t.Helper()
	return map[string]any{"name": name, "upstream": map[string]any{
		"command": testenv.Build(t, "./testdata/upstream-echo"), "args": args,
		"env": map[string]string{"ECHO_TOKEN": "{{access_token}}"}}}
}

// TestPrefixedToolNames: an upstream tool whose name starts with its
// integration's prefix already is exposed under its own name, never with
// the prefix twice (Slack servers name their tools slack_…); a tool
// without it whose exposed name would be the same is exposed marked. Each
// name reaches its own tool, over MCP and over POST /api/v1/tools/invoke.
func TestPrefixedToolNames(t *testing.T) {
	g := newGatewayWithCredentials(t, nil, stdioEcho(t, "echos", "--also", "echos_echo"))
	g.serve()
	c := g.client("tenant-a")
	names := toolNames(t, c)
	marked := slices.IndexFunc(names, regexp.MustCompile(`^echos_echo_[0-9a-f]{8}$`).MatchString)
	if !slices.Contains(names, "echos_echo") || !slices.Contains(names, "echos_whoami") || marked < 0 || containsPrefix(names, "echos_echos_") {
		t.Fatalf("tools/list: %q, want echos_echo (the upstream's), echos_whoami and a marked echos_echo_… (the upstream's echo)", names)
	}
	for name, want := range map[string]string{"echos_echo": "echos_echo: hi", names[marked]: "hi"} {
		res, err := c.CallTool(t.Context(), mcp.CallToolRequest{Params: mcp.CallToolParams{Name: name, Arguments: map[string]any{"text": "hi"}}})
		if err != nil || res.IsError || toolText(t, res) != want {
			t.Errorf("tools/call %s: %v %v, want %q", name, res, err, want)
		}
	}
	for tool, want := range map[string]string{"echos_echo": "echos_echo: hi", "echo": `"hi"`} {
		status, _, raw := g.api("tenant-a", "POST", "/api/v1/tools/invoke", `{"toolId": "echos.`+tool+`", "parameters": {"text": "hi"}}`)
		if status != 200 || !strings.Contains(raw, want) {
			t.Errorf("invoke echos.%s: %d %s, want %s in it", tool, status, raw, want)
		}
	}
}
