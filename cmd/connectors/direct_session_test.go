package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/mcp"
)

// The direct path for initialize-era sessions (protocol 2025-11-25): a
// tools/call on a session is forwarded as bytes too, when nothing about
// the session needs mcp-go (no log level asked for, no progress token).

// oldSession opens a 2025-11-25 session on path as tenant with the given
// client capabilities (JSON), the way an agent does: initialize, then
// notifications/initialized. It returns the session ID.
func (g *gateway) oldSession(tenant, path, caps string) string {
	g.t.Helper()
	init := fmt.Sprintf(`{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":%s,"clientInfo":{"name":"connectors-test","version":"1"}}}`, caps)
	status, hdr, body := g.postOld(tenant, path, "", init)
	session := hdr.Get("Mcp-Session-Id")
	if status != 200 || session == "" || !strings.Contains(body, `"protocolVersion":"2025-11-25"`) {
		g.t.Fatalf("initialize: %d %q %s", status, session, body)
	}
	if status, _, body := g.postOld(tenant, path, session, `{"jsonrpc":"2.0","method":"notifications/initialized"}`); status != 202 {
		g.t.Fatalf("notifications/initialized: %d %s", status, body)
	}
	return session
}

// postOld posts body on session (none if empty) with the headers of a
// 2025-11-25 agent, and returns the answer: a JSON body as it is, an SSE
// stream as the data of its last event.
func (g *gateway) postOld(tenant, path, session, body string) (int, http.Header, string) {
	g.t.Helper()
	req, _ := http.NewRequest("POST", "http://"+g.addr+path, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+g.keys[tenant])
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	if session != "" {
		req.Header.Set("Mcp-Session-Id", session)
		req.Header.Set("Mcp-Protocol-Version", "2025-11-25")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		g.t.Fatal(err)
	}
	defer resp.Body.Close()
	if !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		raw, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, resp.Header, string(raw)
	}
	var last string
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		if data, ok := strings.CutPrefix(sc.Text(), "data: "); ok && json.Valid([]byte(data)) {
			last = data
		}
	}
	return resp.StatusCode, resp.Header, last
}

func oldCall(id, name, params string) string {
	if params != "" {
		params = "," + params
	}
	return fmt.Sprintf(`{"jsonrpc":"2.0","id":%s,"method":"tools/call","params":{"name":%q%s}}`, id, name, params)
}

// TestDirectPathSessions sends the same requests on 2025-11-25 sessions
// of a gateway with the direct path and of one without: the answers are
// the same (JSON on the direct path, an SSE stream from mcp-go), and the
// direct path took exactly the ordinary ones.
func TestDirectPathSessions(t *testing.T) {
	upURL, up := recordedEcho(t)
	in := map[string]any{"name": "echo", "upstream": map[string]any{
		"url": upURL, "headers": map[string]string{"Authorization": "Bearer {{access_token}}"}}}
	on := newGatewayWithCredentials(t, nil, in)
	off := newGatewayWithCredentials(t, map[string]string{"CONNECTORS_DIRECT_CALLS": "off"}, in)
	type sessions struct{ plain, single, asking, logging, otherTenant, ended string }
	open := map[*gateway]sessions{}
	for _, g := range []*gateway{on, off} {
		g.serve()
		toolNames(t, g.client("tenant-a")) // discovers the catalogues
		toolNames(t, g.dialPath("tenant-a", "/mcp/echo", nil))
		s := sessions{
			plain:       g.oldSession("tenant-a", "/mcp", `{"roots":{"listChanged":true}}`),
			single:      g.oldSession("tenant-a", "/mcp/echo", `{}`),
			asking:      g.oldSession("tenant-a", "/mcp", `{"elicitation":{"form":{}},"sampling":{}}`),
			logging:     g.oldSession("tenant-a", "/mcp", `{}`),
			otherTenant: g.oldSession("tenant-b", "/mcp", `{}`),
			ended:       g.oldSession("tenant-a", "/mcp", `{}`),
		}
		if status, _, body := g.postOld("tenant-a", "/mcp", s.logging, `{"jsonrpc":"2.0","id":9,"method":"logging/setLevel","params":{"level":"info"}}`); status != 200 {
			t.Fatalf("logging/setLevel: %d %s", status, body)
		}
		req, _ := http.NewRequest("DELETE", "http://"+g.addr+"/mcp", nil)
		req.Header.Set("Authorization", "Bearer "+g.keys["tenant-a"])
		req.Header.Set("Mcp-Session-Id", s.ended)
		if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != 200 {
			t.Fatalf("DELETE: %v %v", resp, err)
		}
		open[g] = s
	}

	cases := []struct {
		name    string
		session func(sessions) string
		body    string
		direct  bool
		path    string // default /mcp
	}{
		{"ordinary", func(s sessions) string { return s.plain }, oldCall("1", "echo_echo", `"arguments":{"text":"hello"}`), true, ""},
		{"string id", func(s sessions) string { return s.plain }, oldCall(`"abc"`, "echo_echo", `"arguments":{"text":"hi"}`), true, ""},
		{"no arguments", func(s sessions) string { return s.plain }, oldCall("2", "echo_echo", ""), true, ""},
		{"null arguments", func(s sessions) string { return s.plain }, oldCall("3", "echo_echo", `"arguments":null`), true, ""},
		{"_meta entry", func(s sessions) string { return s.plain }, oldCall("4", "echo_echo", `"arguments":{"text":"m"},"_meta":{"trace":"t1"}`), true, ""},
		{"result holding the credential", func(s sessions) string { return s.plain }, oldCall("5", "echo_whoami", ""), true, ""},
		{"escaped credential", func(s sessions) string { return s.plain }, oldCall("6", "echo_whoami", `"arguments":{"wrap":true}`), true, ""},
		{"single integration", func(s sessions) string { return s.single }, oldCall("7", "echo", `"arguments":{"text":"alone"}`), true, "/mcp/echo"},
		{"agent that can be asked", func(s sessions) string { return s.asking }, oldCall("8", "echo_echo", `"arguments":{"text":"ask"}`), true, ""},
		{"log level asked for", func(s sessions) string { return s.logging }, oldCall("9", "echo_echo", `"arguments":{"text":"log"}`), false, ""},
		{"progress token", func(s sessions) string { return s.plain }, oldCall("10", "echo_echo", `"_meta":{"progressToken":"p"}`), false, ""},
		{"protocol _meta", func(s sessions) string { return s.plain }, oldCall("11", "echo_echo", `"_meta":{"io.modelcontextprotocol/logLevel":"debug"}`), false, ""},
		{"unknown parameter", func(s sessions) string { return s.plain }, oldCall("12", "echo_echo", `"extra":1`), false, ""},
		{"arguments not an object", func(s sessions) string { return s.plain }, oldCall("13", "echo_echo", `"arguments":[1]`), false, ""},
		{"unknown tool", func(s sessions) string { return s.plain }, oldCall("14", "echo_nope", ""), false, ""},
		{"null id", func(s sessions) string { return s.plain }, oldCall("null", "echo_echo", ""), false, ""},
		{"malformed", func(s sessions) string { return s.plain }, `{"jsonrpc":"2.0","id":15,"method":"tools/call","params":{`, false, ""},
		{"session of another view", func(s sessions) string { return s.single }, oldCall("16", "echo_echo", ""), false, ""},
		{"another tenant's session", func(s sessions) string { return s.otherTenant }, oldCall("17", "echo_echo", ""), false, ""},
		{"ended session", func(s sessions) string { return s.ended }, oldCall("18", "echo_echo", ""), false, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			path := c.path
			if path == "" {
				path = "/mcp"
			}
			before := len(up.calls())
			onStatus, _, onBody := on.postOld("tenant-a", path, c.session(open[on]), c.body)
			direct := up.directSince(before)
			offStatus, _, offBody := off.postOld("tenant-a", path, c.session(open[off]), c.body)
			if onStatus != offStatus || !sameJSON(onBody, offBody) {
				t.Errorf("with the direct path: %d %s\nwithout: %d %s", onStatus, onBody, offStatus, offBody)
			}
			if got := len(direct) == 1; got != c.direct {
				t.Errorf("direct path taken: %v, want %v (%d direct upstream calls)", got, c.direct, len(direct))
			}
			on.assertNoSecretsIn(onBody)
			if len(direct) != 1 {
				return
			}
			// The upstream hears what the agent can be asked (of what the
			// gateway relays), and the agent's own _meta; never its
			// client info.
			var sent struct {
				Params struct {
					Meta map[string]json.RawMessage `json:"_meta"`
				}
			}
			if err := json.Unmarshal([]byte(direct[0].Body), &sent); err != nil {
				t.Fatal(err)
			}
			caps := string(sent.Params.Meta["io.modelcontextprotocol/clientCapabilities"])
			if want := map[bool]string{true: `{"elicitation":{"form":{}},"sampling":{}}`, false: `{}`}[c.name == "agent that can be asked"]; !sameJSON(caps, want) {
				t.Errorf("capabilities told the upstream: %s, want %s", caps, want)
			}
			if c.name == "_meta entry" && string(sent.Params.Meta["trace"]) != `"t1"` {
				t.Errorf("the agent's _meta did not reach the upstream: %s", direct[0].Body)
			}
			if strings.Contains(direct[0].Body, "connectors-test") {
				t.Errorf("the agent's client info reached the upstream: %s", direct[0].Body)
			}
		})
	}
}

type elicitFunc func(context.Context, mcp.ElicitationRequest) (*mcp.ElicitationResult, error)

func (f elicitFunc) Elicit(ctx context.Context, r mcp.ElicitationRequest) (*mcp.ElicitationResult, error) {
	return f(ctx, r)
}

// TestDirectPathSessionAsked: an upstream that answers a direct call of a
// 2025-11-25 session with input_required (it asks the agent to confirm)
// has the call served the usual way instead, where the question reaches
// the agent as an elicitation/create request on the call's stream, and its
// answer reaches the upstream: the agent sees one call and one question,
// as without the direct path.
func TestDirectPathSessionAsked(t *testing.T) {
	upURL, up := recordedEcho(t, "--ask")
	in := map[string]any{"name": "echo", "upstream": map[string]any{
		"url": upURL, "headers": map[string]string{"Authorization": "Bearer {{access_token}}"}}}
	for _, env := range []map[string]string{nil, {"CONNECTORS_DIRECT_CALLS": "off"}} {
		g := newGatewayWithCredentials(t, env, in)
		g.serve()
		var asked atomic.Int32
		c := g.dialPath("tenant-a", "/mcp", nil,
			client.WithProtocolVersion(mcp.ProtocolVersion20251125), client.WithLegacyProtocolOnly(),
			client.WithElicitationHandler(elicitFunc(func(_ context.Context, r mcp.ElicitationRequest) (*mcp.ElicitationResult, error) {
				asked.Add(1)
				if r.Params.Message != "Go ahead?" {
					t.Errorf("question: %+v", r.Params)
				}
				return &mcp.ElicitationResult{ElicitationResponse: mcp.ElicitationResponse{
					Action: mcp.ElicitationResponseActionAccept, Content: map[string]any{"ok": true}}}, nil
			})))
		toolNames(t, c)
		before := len(up.calls())
		res, err := c.CallTool(t.Context(), mcp.CallToolRequest{Params: mcp.CallToolParams{Name: "echo_ask"}})
		if err != nil || res.IsError || len(res.Content) != 1 {
			t.Fatalf("%v: %+v %v", env, res, err)
		}
		if text := res.Content[0].(mcp.TextContent).Text; text != "confirmed: accept map[ok:true]" || asked.Load() != 1 {
			t.Errorf("%v: %q after %d questions", env, text, asked.Load())
		}
		direct := up.directSince(before)
		for _, r := range direct {
			if !strings.Contains(r.Body, `"elicitation":{`) {
				t.Errorf("the upstream was not told the agent can be asked: %s", r.Body)
			}
		}
		if want := map[bool]int{true: 1, false: 0}[env == nil]; len(direct) != want {
			t.Errorf("%v: %d direct upstream calls, want %d", env, len(direct), want)
		}
	}
}
