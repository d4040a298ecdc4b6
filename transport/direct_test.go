package transport

import (
	"bytes"
	"encoding/json"
	"io"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/mark3labs/mcp-go/mcp"

	"github.com/connectors-gateway/connectors/server"
)

// directRequest is a tools/call as mcp-go's client writes it, and odd
// variants of it.
const directRequest = `{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"_meta":{"io.modelcontextprotocol/clientCapabilities":{"elicitation":{"form":{}}},"io.modelcontextprotocol/clientInfo":{"name":"agent","version":"1"},"io.modelcontextprotocol/protocolVersion":"2026-07-28","trace":"abc"},"name":"echo-http_echo","arguments":{"text":"hi"}}}`

var directSeeds = []string{
	directRequest,
	strings.Replace(directRequest, `"id":7`, `"id":"seven"`, 1),
	strings.Replace(directRequest, `"id":7`, `"id":-1.5e3`, 1),
	strings.Replace(directRequest, `"id":7`, `"id":null`, 1),
	strings.Replace(directRequest, `"arguments":{"text":"hi"}`, `"arguments":null`, 1),
	strings.Replace(directRequest, `,"arguments":{"text":"hi"}`, ``, 1),
	strings.Replace(directRequest, `"arguments":{"text":"hi"}`, `"arguments":[1]`, 1),
	strings.Replace(directRequest, `"name":"echo-http_echo"`, `"Name":"echo-http_echo"`, 1),
	strings.Replace(directRequest, `"name":"echo-http_echo"`, `"name":"echo-http\u005fecho"`, 1),
	strings.Replace(directRequest, `"method":"tools/call"`, `"METHOD":"tools/call"`, 1),
	strings.Replace(directRequest, `"trace":"abc"`, `"trace":"abc","trace":"def"`, 1),
	strings.Replace(directRequest, `"trace":"abc"`, `"progressToken":1`, 1),
	strings.Replace(directRequest, `"trace":"abc"`, `"io.modelcontextprotocol/logLevel":"debug"`, 1),
	strings.Replace(directRequest, `"trace":"abc"`, `"io.modelcontextprotocol\/logLevel":"debug"`, 1),
	strings.Replace(directRequest, `"2026-07-28"`, `"2025-11-25"`, 1),
	strings.Replace(directRequest, `"arguments"`, `"requestState":"s","inputResponses":{"a":{"action":"accept"}},"arguments"`, 1),
	strings.Replace(directRequest, `"arguments"`, `"requestState":1,"arguments"`, 1),
	strings.Replace(directRequest, `"arguments"`, `"other":1,"arguments"`, 1),
	directRequest + ` `,
	directRequest + `{}`,
	` ` + strings.ReplaceAll(directRequest, `,`, " ,\n\t"),
	`[` + directRequest + `]`,
	`{}`, `null`, `{"jsonrpc":"2.0"}`,
}

// TestParseDirectSeeds: the request as mcp-go writes it takes the direct
// path, and each odd one is read as the reference reads it, or declined.
func TestParseDirectSeeds(t *testing.T) {
	call, id, ok := parseDirect([]byte(directRequest), "echo-http_echo")
	want := server.DirectCall{
		Name: "echo-http_echo", Arguments: json.RawMessage(`{"text":"hi"}`),
		Capabilities: json.RawMessage(`{"elicitation":{"form":{}}}`),
		Meta:         map[string]json.RawMessage{"trace": json.RawMessage(`"abc"`)},
	}
	if !ok || string(id) != "7" {
		t.Fatalf("the request as mcp-go writes it: ok %v, id %s", ok, id)
	}
	if d := cmp.Diff(want, call); d != "" {
		t.Errorf("call (-want +got):\n%s", d)
	}
	accepted := 0
	for _, s := range directSeeds {
		if checkParseDirect(t, []byte(s)) {
			accepted++
		}
	}
	if accepted < 6 {
		t.Errorf("only %d of the seeds take the direct path", accepted)
	}
}

// FuzzParseDirect: whatever parseDirect accepts, encoding/json reads the
// same way.
func FuzzParseDirect(f *testing.F) {
	for _, s := range directSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) { checkParseDirect(t, body) })
}

// checkParseDirect fails t if parseDirect accepts body and the reference
// does not, or reads it otherwise. It reports whether parseDirect accepted.
func checkParseDirect(t *testing.T, body []byte) bool {
	t.Helper()
	call, id, ok := parseDirect(body, "echo-http_echo")
	if !ok {
		return false
	}
	refCall, refID, refOK := parseDirectReference(body, "echo-http_echo")
	if !refOK {
		t.Errorf("parseDirect accepts what encoding/json does not: %s", body)
		return true
	}
	if d := cmp.Diff(refCall, call); d != "" || !bytes.Equal(id, refID) {
		t.Errorf("%s\nread otherwise than encoding/json reads it: id %s vs %s (-reference +parseDirect):\n%s", body, refID, id, d)
	}
	return true
}

// parseDirectReference is parseDirect as it was written first, with
// encoding/json: the reference that parseDirect is held to. It reads a
// tools/call request of the direct path's shape: its
// arguments, the agent's capabilities and other _meta entries, and its ID
// (a JSON number or string, as sent). ok is false for anything else: a
// progress token or a log level (the answer would be a stream), other
// protocol metadata, other parameters, a name unlike the Mcp-Name header.
func parseDirectReference(body []byte, headerName string) (call server.DirectCall, id json.RawMessage, ok bool) {
	// One pass of the decoder over the body; any member it does not know
	// (exactly these, and the _meta object) declines the request.
	var msg struct {
		JSONRPC string          `json:"jsonrpc"`
		ID      json.RawMessage `json:"id"`
		Method  string          `json:"method"`
		Params  struct {
			Name           string          `json:"name"`
			Arguments      json.RawMessage `json:"arguments"`
			Meta           json.RawMessage `json:"_meta"` // the last of repeated members, as mcp-go reads it
			InputResponses json.RawMessage `json:"inputResponses"`
			RequestState   json.RawMessage `json:"requestState"`
		} `json:"params"`
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if dec.Decode(&msg) != nil || dec.More() || msg.JSONRPC != mcp.JSONRPC_VERSION || msg.Method != string(mcp.MethodToolsCall) ||
		len(msg.ID) == 0 || !(msg.ID[0] == '"' || msg.ID[0] == '-' || msg.ID[0] >= '0' && msg.ID[0] <= '9') {
		return call, nil, false
	}
	if _, err := dec.Token(); err != io.EOF { // nothing after the request
		return call, nil, false
	}
	p := &msg.Params
	if t := p.Arguments; len(t) > 0 && !bytes.Equal(t, []byte("null")) && t[0] != '{' {
		return call, nil, false
	}
	// The answers to an earlier input_required result, of the types mcp-go
	// would decode them into (or it refuses the request).
	if len(p.RequestState) > 0 && p.RequestState[0] != '"' {
		return call, nil, false
	}
	if len(p.InputResponses) > 0 {
		var responses mcp.InputResponses
		if p.InputResponses[0] != '{' || json.Unmarshal(p.InputResponses, &responses) != nil {
			return call, nil, false
		}
	}
	call.Name, call.Arguments, call.InputResponses, call.RequestState = p.Name, p.Arguments, p.InputResponses, p.RequestState
	if call.Name == "" || call.Name != headerName {
		return call, nil, false
	}
	var meta map[string]json.RawMessage
	if json.Unmarshal(p.Meta, &meta) != nil {
		return call, nil, false
	}
	var version string
	for k, v := range meta {
		switch {
		case k == mcp.MetaKeyProtocolVersion:
			if json.Unmarshal(v, &version) != nil {
				return call, nil, false
			}
		case k == mcp.MetaKeyClientCapabilities:
			if len(v) == 0 || v[0] != '{' {
				return call, nil, false
			}
			call.Capabilities = v
		case k == mcp.MetaKeyClientInfo:
			// The agent's; the upstream hears the gateway's.
		case strings.HasPrefix(k, "io.modelcontextprotocol/"), k == "progressToken":
			return call, nil, false
		default:
			if call.Meta == nil {
				call.Meta = map[string]json.RawMessage{}
			}
			call.Meta[k] = v
		}
	}
	if version != mcp.ProtocolVersion20260728 || call.Capabilities == nil {
		return call, nil, false
	}
	return call, msg.ID, true
}

func BenchmarkParseDirect(b *testing.B) {
	body := []byte(directRequest)
	for _, bc := range []struct {
		name  string
		parse func([]byte, string) (server.DirectCall, json.RawMessage, bool)
	}{{"encoding-json", parseDirectReference}, {"rawjson", parseDirect}} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, _, ok := bc.parse(body, "echo-http_echo"); !ok {
					b.Fatal("declined")
				}
			}
		})
	}
}
