package tools

import (
	"encoding/json"
	"maps"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/mark3labs/mcp-go/mcp"
)

// rawParamsReference is directParams as encoding/json writes it: the
// reference directParams is held to.
func rawParamsReference(c *Conn, call DirectCall) (json.RawMessage, error) {
	meta := make(map[string]json.RawMessage, len(call.Meta)+3)
	maps.Copy(meta, call.Meta)
	caps := call.Capabilities
	if len(caps) == 0 {
		caps = json.RawMessage("{}")
	}
	meta[mcp.MetaKeyClientCapabilities] = caps
	meta[mcp.MetaKeyProtocolVersion] = json.RawMessage(strconv.Quote(c.version()))
	meta[mcp.MetaKeyClientInfo] = c.clientInfoJSON
	params := struct {
		Meta           map[string]json.RawMessage `json:"_meta"`
		Name           string                     `json:"name"`
		Arguments      json.RawMessage            `json:"arguments,omitempty"`
		InputResponses json.RawMessage            `json:"inputResponses,omitempty"`
		RequestState   json.RawMessage            `json:"requestState,omitempty"`
	}{meta, call.Name, call.Arguments, call.InputResponses, call.RequestState}
	if strings.TrimSpace(string(params.Arguments)) == "null" {
		params.Arguments = nil
	}
	return json.Marshal(params)
}

func paramsConn() *Conn {
	c := &Conn{clientInfoJSON: mustJSON(mcp.Implementation{Name: "connectors-gateway", Version: "dev"})}
	c.negotiated.Store(mcp.ProtocolVersion20260728)
	return c
}

// checkDirectParams compares directParams with the reference: the same JSON
// value, or both refused.
func checkDirectParams(t *testing.T, c *Conn, call DirectCall) {
	t.Helper()
	got, err := c.directParams(call)
	want, wantErr := rawParamsReference(c, call)
	if (err != nil) != (wantErr != nil) {
		t.Fatalf("%+v: directParams %s, %v; encoding/json %s, %v", call, got, err, want, wantErr)
	}
	if err != nil {
		return
	}
	if !json.Valid(got) {
		t.Fatalf("%+v: invalid JSON %s", call, got)
	}
	var g, w any
	_ = json.Unmarshal(got, &g)
	_ = json.Unmarshal(want, &w)
	if diff := cmp.Diff(w, g); diff != "" {
		t.Fatalf("%+v: directParams differs from encoding/json (-want +got):\n%s\n%s", call, diff, got)
	}
}

func TestDirectParams(t *testing.T) {
	c := paramsConn()
	for _, call := range []DirectCall{
		{Name: "echo", Arguments: json.RawMessage(`{"text":"hi <b> & \u2028"}`), Capabilities: json.RawMessage(`{"elicitation":{}}`)},
		{Name: "echo"},
		{Name: "echo", Arguments: json.RawMessage(` null `)},
		{Name: "echo", Arguments: json.RawMessage(`{ "a" : [1, 2] }`)},
		{Name: `we"ird\name` + "\x01\u00e9", Arguments: json.RawMessage(`{}`)},
		{Name: "bad\xffutf8"},
		{Name: "echo", Meta: map[string]json.RawMessage{"trace": json.RawMessage(`"t"`), "ключ": json.RawMessage(`{"x":[]}`), `q"k`: json.RawMessage(`1`)}},
		// The gateway's own keys win over the agent's.
		{Name: "echo", Meta: map[string]json.RawMessage{mcp.MetaKeyProtocolVersion: json.RawMessage(`"1999"`), mcp.MetaKeyClientInfo: json.RawMessage(`{"name":"agent"}`)}},
		{Name: "echo", InputResponses: json.RawMessage(`{"r1":{"action":"accept"}}`), RequestState: json.RawMessage(`"opaque"`)},
		// Not JSON, or more than one value: refused, never spliced in.
		{Name: "echo", Arguments: json.RawMessage(`{"a":1},"name":"other"`)},
		{Name: "echo", Arguments: json.RawMessage(`1,"name":"other"`)},
		{Name: "echo", Meta: map[string]json.RawMessage{"m": json.RawMessage(`1},"name":"other","_meta":{`)}},
		{Name: "echo", Capabilities: json.RawMessage(`{`)},
		{Name: "echo", RequestState: json.RawMessage(`"a","name":"b"`)},
		{Name: "echo", InputResponses: json.RawMessage(`}`)},
	} {
		checkDirectParams(t, c, call)
	}
}

// FuzzDirectParams: whatever the caller gives, directParams writes the JSON
// encoding/json would, or refuses what encoding/json refuses.
func FuzzDirectParams(f *testing.F) {
	f.Add("echo", `{"text":"hi"}`, `{}`, "trace", `"t"`, ``, ``)
	f.Add(`n"\`, `null`, ``, `k"`, `1,"x":2`, `{"a":{}}`, `"s"`)
	c := paramsConn()
	f.Fuzz(func(t *testing.T, name, args, caps, metaKey, metaValue, inputs, state string) {
		call := DirectCall{Name: name, Arguments: json.RawMessage(args), Capabilities: json.RawMessage(caps),
			InputResponses: json.RawMessage(inputs), RequestState: json.RawMessage(state)}
		if metaKey != "" {
			call.Meta = map[string]json.RawMessage{metaKey: json.RawMessage(metaValue)}
		}
		checkDirectParams(t, c, call)
	})
}

func BenchmarkDirectParams(b *testing.B) {
	c := paramsConn()
	call := DirectCall{Name: "echo", Arguments: json.RawMessage(`{"text":"hello"}`),
		Capabilities: json.RawMessage(`{"elicitation":{},"roots":{"listChanged":true}}`)}
	for _, bc := range []struct {
		name string
		f    func(*Conn, DirectCall) (json.RawMessage, error)
	}{{"encoding-json", rawParamsReference}, {"append", (*Conn).directParams}} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := bc.f(c, call); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
