package tools

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/mark3labs/mcp-go/mcp"
)

func TestRedactResult(t *testing.T) {
	secrets := []string{"tok-secret-123"}
	res := &mcp.CallToolResult{
		Content: []mcp.Content{
			mcp.NewTextContent("401: Bearer tok-secret-123 rejected"),
			mcp.NewImageContent("aGVsbG8=", "image/png"),
			mcp.EmbeddedResource{Type: "resource", Resource: mcp.TextResourceContents{URI: "x://y", Text: "token=tok-secret-123"}},
		},
		StructuredContent: map[string]any{"auth": "tok-secret-123", "n": 1.0},
		IsError:           true,
	}
	b, _ := json.Marshal(redactResult(res, secrets))
	if strings.Contains(string(b), "tok-secret-123") {
		t.Fatalf("a credential survived redaction: %s", b)
	}
	for _, want := range []string{`401: Bearer [redacted] rejected`, `token=[redacted]`, `"auth":"[redacted]"`, `"n":1`, `"isError":true`, `aGVsbG8=`} {
		if !strings.Contains(string(b), want) {
			t.Errorf("redacted result lacks %s: %s", want, b)
		}
	}
	clean := &mcp.CallToolResult{Content: []mcp.Content{mcp.NewTextContent("nothing to hide")}}
	if got := redactResult(clean, secrets); got.Content[0].(mcp.TextContent).Text != "nothing to hide" {
		t.Errorf("clean result changed: %v", got)
	}
}
