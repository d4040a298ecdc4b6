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

// TestRedactRaw: a raw result is redacted however its JSON spells the
// credential (plainly, with \u escapes, with \/), in any string, and a
// result without it is returned as is.
func TestRedactRaw(t *testing.T) {
	secrets := []string{"tok/secret&123"}
	encoded := encodedStrings(secrets)
	for _, raw := range []string{
		`{"content":[{"type":"text","text":"Bearer tok/secret&123"}]}`,
		`{"content":[{"type":"text","text":"Bearer \u0074ok/secret\u0026123"}]}`,
		`{"content":[{"type":"text","text":"Bearer tok\/secret&123"}]}`,
		`{"content":[],"structuredContent":{"deep":[{"tok/secret&123":1}]},"_meta":{"x":"tok/secret&123"}}`,
	} {
		got := redactRaw(json.RawMessage(raw), secrets, encoded)
		var v any
		if err := json.Unmarshal(got, &v); err != nil {
			t.Fatalf("redactRaw(%s) = %s: not JSON", raw, got)
		}
		plain, _ := json.Marshal(v)
		if strings.Contains(string(got), "secret") || strings.Contains(string(plain), "tok/secret&123") || !strings.Contains(string(got), "[redacted]") {
			t.Errorf("redactRaw(%s) = %s", raw, got)
		}
	}
	clean := `{"content":[{"type":"text","text":"nothing \u0074o hide"}],"isError":false}`
	if got := redactRaw(json.RawMessage(clean), secrets, encoded); !strings.Contains(string(got), "nothing to hide") {
		t.Errorf("clean result: %s", got)
	}
	same := `{"content":[{"type":"text","text":"nothing to hide"}]}`
	if got := redactRaw(json.RawMessage(same), secrets, encoded); string(got) != same {
		t.Errorf("a result without the credential changed: %s", got)
	}
}

// TestRedactNumericCredential: a credential that is a number is redacted
// where a result carries it as a JSON number, on both paths, and the
// result stays JSON.
func TestRedactNumericCredential(t *testing.T) {
	secrets := []string{"98765432"}
	raw := redactRaw(json.RawMessage(`{"content":[],"structuredContent":{"account":98765432,"n":1}}`), secrets, encodedStrings(secrets))
	if strings.Contains(string(raw), "98765432") || !json.Valid(raw) || !strings.Contains(string(raw), `"n":1`) {
		t.Errorf("redactRaw: %s", raw)
	}
	res := redactResult(&mcp.CallToolResult{RawStructuredContent: json.RawMessage(`{"account":98765432,"n":1}`)}, secrets)
	if s := string(res.RawStructuredContent); strings.Contains(s, "98765432") || !json.Valid(res.RawStructuredContent) || !strings.Contains(s, `"n":1`) {
		t.Errorf("redactResult raw structured content: %s", s)
	}
	res = redactResult(&mcp.CallToolResult{StructuredContent: map[string]any{"account": 98765432, "n": 1}}, secrets)
	if b, _ := json.Marshal(res.StructuredContent); strings.Contains(string(b), "98765432") || !strings.Contains(string(b), `"n":1`) {
		t.Errorf("redactResult structured content: %s", b)
	}
}
