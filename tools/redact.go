package tools

import (
	"bytes"
	"encoding/json"

	"github.com/mark3labs/mcp-go/mcp"
)

// redactResult replaces every credential value in an upstream's tool result
// with [redacted]. An upstream that quotes the credential it was given (an
// error message echoing its Authorization header, a debug tool printing its
// environment) must not hand the tenant's integration token to the agent:
// agents act with the gateway's tools, never with the credential itself.
func redactResult(res *mcp.CallToolResult, secrets []string) *mcp.CallToolResult {
	if res == nil || len(secrets) == 0 {
		return res
	}
	for i, c := range res.Content {
		switch v := c.(type) {
		case mcp.TextContent:
			if t := redact(v.Text, secrets); t != v.Text {
				v.Text = t
				res.Content[i] = v
			}
		case mcp.EmbeddedResource:
			if r, ok := v.Resource.(mcp.TextResourceContents); ok {
				if t := redact(r.Text, secrets); t != r.Text {
					r.Text = t
					v.Resource = r
					res.Content[i] = v
				}
			}
		}
	}
	if res.StructuredContent != nil {
		if b, err := json.Marshal(res.StructuredContent); err == nil && containsAny(b, secrets) {
			var clean any
			if json.Unmarshal([]byte(redact(string(b), secrets)), &clean) == nil {
				res.StructuredContent = clean
			} else {
				res.StructuredContent = map[string]any{"redacted": true}
			}
		}
	}
	if len(res.RawStructuredContent) > 0 && containsAny(res.RawStructuredContent, secrets) {
		res.RawStructuredContent = json.RawMessage(redact(string(res.RawStructuredContent), secrets))
	}
	return res
}

func containsAny(b []byte, secrets []string) bool {
	for _, s := range secrets {
		if bytes.Contains(b, []byte(s)) {
			return true
		}
	}
	return false
}
