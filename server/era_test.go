package server

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/mark3labs/mcp-go/mcp"
)

// initializeEraDecoded is initializeEraDirect by encoding/json: the meaning
// the byte surgery must keep.
func initializeEraDecoded(res []byte) any {
	var m map[string]any
	if json.Unmarshal(res, &m) != nil || m == nil {
		var v any
		_ = json.Unmarshal(res, &v)
		return v
	}
	if m["resultType"] == string(mcp.ResultTypeComplete) {
		delete(m, "resultType")
	}
	if meta, ok := m["_meta"].(map[string]any); ok {
		if _, has := meta[mcp.MetaKeyServerInfo]; has {
			delete(meta, mcp.MetaKeyServerInfo)
			if len(meta) == 0 {
				delete(m, "_meta")
			}
		}
	}
	return m
}

func TestInitializeEraRaw(t *testing.T) {
	tests := []struct{ in, want string }{
		{`{"content":[],"resultType":"complete","_meta":{"io.modelcontextprotocol/serverInfo":{"name":"u","version":"1"}}}`, `{"content":[]}`},
		{`{"_meta":{"io.modelcontextprotocol/serverInfo":{"name":"u"},"trace":"t"},"content":[]}`, `{"_meta":{"trace":"t"},"content":[]}`},
		{`{"resultType":"input_required","inputRequests":{}}`, `{"resultType":"input_required","inputRequests":{}}`},
		// Text that only mentions the fields is left alone.
		{`{"content":[{"type":"text","text":"\"resultType\":\"complete\""}]}`, `{"content":[{"type":"text","text":"\"resultType\":\"complete\""}]}`},
		{`{ "content" : [ ] , "resultType" : "complete" }`, `{"content":[ ]}`},
		{`{"content":[]}`, `{"content":[]}`},
	}
	for _, tt := range tests {
		if got := string(initializeEraDirect(json.RawMessage(tt.in))); got != tt.want {
			t.Errorf("initializeEraDirect(%s) = %s, want %s", tt.in, got, tt.want)
		}
	}
}

func FuzzInitializeEraRaw(f *testing.F) {
	for _, s := range []string{
		`{"content":[],"resultType":"complete","_meta":{"io.modelcontextprotocol/serverInfo":{}}}`,
		`{"_meta":{"io.modelcontextprotocol/serverInfo":1,"x":[1,{"a":"}"}]},"resultType":"complete"}`,
		`{"resultType":"other","_meta":null}`, `[1]`, `"resultType"`,
		`{"a":"\u0022resultType\u0022","_meta":"io.modelcontextprotocol/serverInfo"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		if !json.Valid(in) {
			return
		}
		out := initializeEraDirect(in)
		if !json.Valid(out) {
			t.Fatalf("initializeEraDirect(%s) = %s: not JSON", in, out)
		}
		var got any
		_ = json.Unmarshal(out, &got)
		// Keys written with escapes are not recognised by the walk (and
		// duplicates are read differently): outside the shape, as is.
		var members map[string]json.RawMessage
		if json.Unmarshal(in, &members) == nil && (hasEscapedKey(in)) {
			return
		}
		if diff := cmp.Diff(initializeEraDecoded(in), got); diff != "" {
			t.Fatalf("initializeEraDirect(%s) = %s (-want +got):\n%s", in, out, diff)
		}
	})
}

// hasEscapedKey reports whether in may hold a key whose spelling differs
// from its meaning, or a duplicate key: inputs the byte walk reads as
// written.
func hasEscapedKey(in []byte) bool {
	for _, c := range in {
		if c == '\\' {
			return true
		}
	}
	var seen func(json.RawMessage) bool
	seen = func(raw json.RawMessage) bool {
		dec := json.NewDecoder(bytesReader(raw))
		tok, err := dec.Token()
		if err != nil || tok != json.Delim('{') {
			return false
		}
		keys := map[string]bool{}
		for dec.More() {
			k, _ := dec.Token()
			ks, _ := k.(string)
			if keys[ks] {
				return true
			}
			keys[ks] = true
			var v json.RawMessage
			if dec.Decode(&v) != nil {
				return false
			}
			if ks == "_meta" && seen(v) {
				return true
			}
		}
		return false
	}
	return seen(in)
}

func bytesReader(b []byte) *bytes.Reader { return bytes.NewReader(b) }

// BenchmarkInitializeEraRaw is the direct lane's cost per call on a
// 2025-11-25 session of a 2026-07-28 upstream, whose results always carry
// both fields.
func BenchmarkInitializeEraRaw(b *testing.B) {
	res := json.RawMessage(`{"_meta":{"io.modelcontextprotocol/serverInfo":{"name":"upstream-echo","version":"1.0.0"}},"content":[{"type":"text","text":"` + strings.Repeat("x", 200) + `"}],"resultType":"complete"}`)
	b.ReportAllocs()
	for b.Loop() {
		initializeEraDirect(res)
	}
}
