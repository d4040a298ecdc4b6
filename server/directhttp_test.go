package server

import (
	"bytes"
	"context"
	"encoding/json"
	"github.com/connectors-gateway/connectors/tools"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/mark3labs/mcp-go/mcp"

	"github.com/connectors-gateway/connectors/internal/mcptest"
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
	want := DirectCall{
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
func parseDirectReference(body []byte, headerName string) (call DirectCall, id json.RawMessage, ok bool) {
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
		parse func([]byte, string) (DirectCall, json.RawMessage, bool)
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

const whoamiCall = `{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"whoami"}}`

// newTestHTTP serves mcptest.NewWhoami at /mcp, behind mcptest's keys.
func newTestHTTP(t *testing.T, opts HTTPOptions) *httptest.Server {
	t.Helper()
	h := NewHandler(mcptest.NewWhoami(), nil, opts)
	ts := httptest.NewServer(endpoints(h))
	t.Cleanup(func() { ts.Close(); _ = h.Close(context.Background()) })
	return ts
}

// countingDirector serves every call on the direct path with a fixed
// result, and counts them.
type countingDirector struct {
	mu    sync.Mutex
	calls []DirectCall
}

func (d *countingDirector) CallDirect(_ context.Context, c DirectCall) (json.RawMessage, *tools.RPCError, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.calls = append(d.calls, c)
	return json.RawMessage(`{"content":[{"type":"text","text":"direct"}]}`), nil, true
}

func (d *countingDirector) count() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.calls)
}

// TestDirectSessionStaysAlive: a 2025-11-25 session whose calls all take
// the direct path still looks in use to mcp-go's idle sweeper, because a
// call goes through mcp-go once a quarter of the idle TTL has passed
// without one; the session outlives several TTLs of calls.
func TestDirectSessionStaysAlive(t *testing.T) {
	d := &countingDirector{}
	const ttl = 400 * time.Millisecond
	ts := newTestHTTP(t, HTTPOptions{Direct: d, SessionIdleTTL: ttl})
	session := mcptest.Initialize(t, ts.URL, "key-a")
	var direct, usual int
	for end := time.Now().Add(5 * ttl); time.Now().Before(end); time.Sleep(20 * time.Millisecond) {
		before := d.count()
		resp, body := mcptest.Do(t, ts.URL, mcptest.Req{Body: whoamiCall, Key: "key-a", Session: session})
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("after %d direct and %d usual calls: %d %s", direct, usual, resp.StatusCode, body)
		}
		if d.count() > before {
			direct++
			if !strings.Contains(body, `"text":"direct"`) {
				t.Fatalf("direct answer: %s", body)
			}
		} else {
			usual++
			if !strings.Contains(body, "tenant-a|") {
				t.Fatalf("mcp-go's answer: %s", body)
			}
		}
	}
	// 2 s of calls every 20 ms, one through mcp-go per 100 ms.
	if usual < 10 || usual > 40 || direct < 3*usual {
		t.Errorf("%d direct calls, %d through mcp-go", direct, usual)
	}
	if c := d.calls[0]; c.Session != session || c.Name != "whoami" {
		t.Errorf("direct call %+v", c)
	}
}

// TestDirectSessionShape: which requests on a session the direct path is
// offered at all (the Director decides the rest).
func TestDirectSessionShape(t *testing.T) {
	d := &countingDirector{}
	ts := newTestHTTP(t, HTTPOptions{Direct: d})
	session := mcptest.Initialize(t, ts.URL, "key-a")
	other := mcptest.Initialize(t, ts.URL, "key-b")
	for _, tc := range []struct {
		name, body, session, key string
		direct                   bool
	}{
		{"ordinary", whoamiCall, session, "key-a", true},
		{"_meta entry", `{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"whoami","_meta":{"trace":"x"}}}`, session, "key-a", true},
		{"progress token", `{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"whoami","_meta":{"progressToken":1}}}`, session, "key-a", false},
		{"protocol _meta", `{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"whoami","_meta":{"io.modelcontextprotocol/logLevel":"debug"}}}`, session, "key-a", false},
		{"2026-07-28 members", `{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"whoami","requestState":"s"}}`, session, "key-a", false},
		{"another method", `{"jsonrpc":"2.0","id":2,"method":"tools/list"}`, session, "key-a", false},
		{"another tenant's session", whoamiCall, other, "key-a", false},
		{"made-up session", whoamiCall, "made-up", "key-a", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := d.count()
			resp, body := mcptest.Do(t, ts.URL, mcptest.Req{Body: tc.body, Key: tc.key, Session: tc.session})
			if got := d.count() > before; got != tc.direct {
				t.Errorf("offered to the direct path: %v, want %v (%d %s)", got, tc.direct, resp.StatusCode, body)
			}
		})
	}
}

var sessionSeeds = []string{
	`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo_echo","arguments":{"text":"hi"}}}`,
	`{"jsonrpc":"2.0","id":"a","method":"tools/call","params":{"name":"echo_echo","_meta":{"trace":"t","n":[1]}}}`,
	`{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"x","arguments":null,"_meta":{}}}`,
	`{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"x","_meta":{"progressToken":1}}}`,
	`{"jsonrpc":"2.0","id":4,"method":"tools/call","params":{"name":"x","NAME":"y"}}`,
	`{"jsonrpc":"2.0","id":5,"method":"tools/call","params":{"name":"x","_meta":{"a":1,"a":2}}}`,
	`{"jsonrpc":"2.0","id":6,"method":"tools/call","params":{"name":"\u0078"}}`,
	`{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"x","_meta":null}}`,
}

// FuzzParseSessionCall: whatever parseSessionCall accepts, encoding/json
// reads the same way (name, arguments, _meta entries, ID).
func FuzzParseSessionCall(f *testing.F) {
	for _, s := range sessionSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		call, id, ok := parseSessionCall(body)
		if !ok {
			return
		}
		var msg struct {
			JSONRPC string          `json:"jsonrpc"`
			ID      json.RawMessage `json:"id"`
			Method  string          `json:"method"`
			Params  struct {
				Name      string                     `json:"name"`
				Arguments json.RawMessage            `json:"arguments"`
				Meta      map[string]json.RawMessage `json:"_meta"`
			} `json:"params"`
		}
		dec := json.NewDecoder(bytes.NewReader(body))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&msg); err != nil || dec.More() || msg.JSONRPC != "2.0" || msg.Method != "tools/call" {
			t.Fatalf("parseSessionCall accepts what encoding/json does not (%v): %s", err, body)
		}
		if len(msg.Params.Meta) == 0 {
			msg.Params.Meta = nil
		}
		want := DirectCall{Name: msg.Params.Name, Arguments: msg.Params.Arguments, Meta: msg.Params.Meta}
		if d := cmp.Diff(want, call); d != "" || !bytes.Equal(id, msg.ID) {
			t.Errorf("%s\nread otherwise than encoding/json reads it: id %s vs %s (-encoding/json +parseSessionCall):\n%s", body, msg.ID, id, d)
		}
		if _, progress := msg.Params.Meta["progressToken"]; progress {
			t.Errorf("a progress token taken: %s", body)
		}
	})
}

func TestParseSessionCallSeeds(t *testing.T) {
	var accepted []int
	for i, s := range sessionSeeds {
		if _, _, ok := parseSessionCall([]byte(s)); ok {
			accepted = append(accepted, i)
		}
	}
	if d := cmp.Diff([]int{0, 1, 2}, accepted); d != "" {
		t.Errorf("seeds taken (-want +got):\n%s", d)
	}
}
