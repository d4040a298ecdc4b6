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
			res.StructuredContent = map[string]any{"redacted": true}
			if clean, ok := redactJSON(b, secrets); ok {
				res.StructuredContent = clean
			}
		}
	}
	if len(res.RawStructuredContent) > 0 && containsAny(res.RawStructuredContent, secrets) {
		clean, ok := redactJSON(res.RawStructuredContent, secrets)
		if !ok {
			clean = json.RawMessage(`{"redacted":true}`)
		}
		res.RawStructuredContent = clean
	}
	return res
}

// redactJSON redacts every string and number of the JSON value b (a
// credential may be numeric); ok is false when b is not JSON.
func redactJSON(b []byte, secrets []string) (json.RawMessage, bool) {
	var v any
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	if dec.Decode(&v) != nil {
		return nil, false
	}
	out, err := marshalPlain(redactValue(v, secrets))
	return out, err == nil
}

func containsAny(b []byte, secrets []string) bool {
	for _, s := range secrets {
		if bytes.Contains(b, []byte(s)) {
			return true
		}
	}
	return false
}
