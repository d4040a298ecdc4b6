package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// Protocol hygiene: the gateway advertises only server capabilities, an
// initialize-era answer holds no 2026-only field, and a 2026-07-28
// request's stream carries no notification the agent did not ask for.

// rpc posts one JSON-RPC message to path as tenant with headers, and
// returns the HTTP status and every message of the answer (one JSON body,
// or the data of each SSE event).
func (g *gateway) rpc(tenant, path, body string, header map[string]string) (int, http.Header, []json.RawMessage) {
	g.t.Helper()
	req, _ := http.NewRequest("POST", "http://"+g.addr+path, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+g.keys[tenant])
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := (&http.Client{Timeout: 60 * time.Second}).Do(req)
	if err != nil {
		g.t.Fatal(err)
	}
	defer resp.Body.Close()
	var msgs []json.RawMessage
	if strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			if data, ok := strings.CutPrefix(sc.Text(), "data: "); ok {
				msgs = append(msgs, json.RawMessage(data))
			}
		}
	} else if raw, _ := io.ReadAll(resp.Body); len(strings.TrimSpace(string(raw))) > 0 {
		msgs = append(msgs, json.RawMessage(raw))
	}
	return resp.StatusCode, resp.Header, msgs
}

// result returns the result member of the response among msgs, failing t
// when there is none.
func result(t *testing.T, what string, msgs []json.RawMessage) map[string]json.RawMessage {
	t.Helper()
	for _, m := range msgs {
		var r struct {
			ID     json.RawMessage
			Result map[string]json.RawMessage
			Error  json.RawMessage
		}
		if json.Unmarshal(m, &r) == nil && r.ID != nil {
			if r.Result == nil {
				t.Fatalf("%s: %s, want a result", what, m)
			}
			return r.Result
		}
	}
	t.Fatalf("%s: no response among %d messages", what, len(msgs))
	return nil
}

// compact re-encodes JSON without spaces and with sorted keys.
func compact(t *testing.T, raw json.RawMessage) string {
	t.Helper()
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		t.Fatalf("%s: %v", raw, err)
	}
	b, _ := json.Marshal(v)
	return string(b)
}

const modernMeta = `"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{"sampling":{},"elicitation":{}},"io.modelcontextprotocol/clientInfo":{"name":"t","version":"1"}}`

// TestCapabilitiesAreTheServers: initialize (2025-11-25) and
// server/discover (2026-07-28) on both endpoints list the capabilities the
// gateway serves, and neither of the client capabilities sampling and
// elicitation (which the gateway relays, but does not offer).
func TestCapabilitiesAreTheServers(t *testing.T) {
	upURL, _ := recordedEcho(t)
	g := newGatewayWith(t, map[string]any{"name": "echo", "upstream": map[string]any{
		"url": upURL, "headers": map[string]string{"Authorization": "Bearer {{access_token}}"}}})
	g.serve()
	want := map[string]string{
		"/mcp":      `{"logging":{},"tools":{"listChanged":true}}`,
		"/mcp/echo": `{"completions":{},"logging":{},"prompts":{"listChanged":true},"resources":{"listChanged":true,"subscribe":true},"tools":{"listChanged":true}}`,
	}
	for path, caps := range want {
		init := `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{"sampling":{},"elicitation":{}},"clientInfo":{"name":"t","version":"1"}}}`
		_, _, msgs := g.rpc("tenant-a", path, init, nil)
		res := result(t, path+" initialize", msgs)
		if diff := cmp.Diff(caps, compact(t, res["capabilities"])); diff != "" {
			t.Errorf("%s initialize capabilities (-want +got):\n%s", path, diff)
		}
		for _, k := range []string{"resultType", "_meta"} {
			if _, ok := res[k]; ok {
				t.Errorf("%s initialize (2025-11-25) answer has the 2026-only %s", path, k)
			}
		}

		discover := `{"jsonrpc":"2.0","id":2,"method":"server/discover","params":{` + modernMeta + `}}`
		_, _, msgs = g.rpc("tenant-a", path, discover, map[string]string{"Mcp-Protocol-Version": "2026-07-28", "Mcp-Method": "server/discover"})
		res = result(t, path+" server/discover", msgs)
		if diff := cmp.Diff(caps, compact(t, res["capabilities"])); diff != "" {
			t.Errorf("%s server/discover capabilities (-want +got):\n%s", path, diff)
		}
	}
}

// TestInitializeEraAnswers: a tools/call on a 2025-11-25 session, on the
// usual lane and the direct lane, answers the upstream's result without
// the resultType and serverInfo a 2026-07-28 upstream puts in it; a
// 2026-07-28 request keeps both.
func TestInitializeEraAnswers(t *testing.T) {
	upURL, up := recordedEcho(t)
	g := newGatewayWith(t, map[string]any{"name": "echo", "upstream": map[string]any{
		"url": upURL, "headers": map[string]string{"Authorization": "Bearer {{access_token}}"}}})
	g.serve()
	for _, path := range []string{"/mcp", "/mcp/echo"} {
		tool := "echo"
		if path == "/mcp" {
			tool = "echo_echo"
		}
		init := `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}`
		_, h, _ := g.rpc("tenant-a", path, init, nil)
		session := map[string]string{"Mcp-Session-Id": h.Get("Mcp-Session-Id"), "Mcp-Protocol-Version": "2025-11-25"}
		g.rpc("tenant-a", path, `{"jsonrpc":"2.0","method":"notifications/initialized"}`, session)
		before := len(up.calls())
		for i := range 4 { // the first discovers the catalogue; later ones take the direct lane
			call := fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"method":"tools/call","params":{"name":%q,"arguments":{"text":"era"}}}`, 10+i, tool)
			_, _, msgs := g.rpc("tenant-a", path, call, session)
			got := compact(t, mustMarshal(result(t, path+" tools/call", msgs)))
			if diff := cmp.Diff(`{"content":[{"text":"era","type":"text"}]}`, got); diff != "" {
				t.Errorf("%s tools/call %d on a 2025-11-25 session (-want +got):\n%s", path, i, diff)
			}
		}
		if len(up.directSince(before)) == 0 {
			t.Errorf("%s: no call on the session took the direct lane; the test does not cover it", path)
		}

		call := `{"jsonrpc":"2.0","id":20,"method":"tools/call","params":{` + modernMeta + `,"name":"` + tool + `","arguments":{"text":"modern"}}}`
		_, _, msgs := g.rpc("tenant-a", path, call, map[string]string{"Mcp-Protocol-Version": "2026-07-28", "Mcp-Method": "tools/call", "Mcp-Name": tool})
		res := result(t, path+" 2026-07-28 tools/call", msgs)
		if string(res["resultType"]) != `"complete"` || !strings.Contains(string(res["_meta"]), "io.modelcontextprotocol/serverInfo") {
			t.Errorf("%s 2026-07-28 tools/call answer lost its resultType or serverInfo: %s", path, mustMarshal(res))
		}
	}
}

func mustMarshal(v any) json.RawMessage {
	b, _ := json.Marshal(v)
	return b
}

// TestModernStreamIsTheRequests: a 2026-07-28 tools/call whose answer is a
// stream (it asked for progress) carries its own progress notifications
// and its response, and nothing else, while tenant-a's credentials change
// beside it (which tells tenant-a's sessions their tools changed) and its
// first tools/list discovers catalogues.
func TestModernStreamIsTheRequests(t *testing.T) {
	upURL, _ := recordedEcho(t)
	g := newGatewayWith(t, map[string]any{"name": "echo", "upstream": map[string]any{
		"url": upURL, "headers": map[string]string{"Authorization": "Bearer {{access_token}}"}}})
	g.serve()
	// An initialize-era session of tenant-a, which list_changed is for.
	g.client("tenant-a")

	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			case <-time.After(50 * time.Millisecond):
			}
			body := fmt.Sprintf(`{"accessToken": %q}`, extraToken("tenant-a", "echo"))
			if status, _, raw := g.api("tenant-a", "POST", "/tenants/tenant-a/integrations/echo/credentials", body); status >= 300 {
				t.Errorf("changing tenant-a's credential: %d %s", status, raw)
				return
			}
		}
	})
	call := `{"jsonrpc":"2.0","id":"lro","method":"tools/call","params":{` + strings.Replace(modernMeta, `"_meta":{`, `"_meta":{"progressToken":"tok-1",`, 1) +
		`,"name":"everything_trigger-long-running-operation","arguments":{"duration":1,"steps":4}}}`
	_, _, msgs := g.rpc("tenant-a", "/mcp", call, map[string]string{"Mcp-Protocol-Version": "2026-07-28", "Mcp-Method": "tools/call", "Mcp-Name": "everything_trigger-long-running-operation"})
	list := `{"jsonrpc":"2.0","id":"list","method":"tools/list","params":{` + modernMeta + `}}`
	_, _, listMsgs := g.rpc("tenant-a", "/mcp", list, map[string]string{"Mcp-Protocol-Version": "2026-07-28", "Mcp-Method": "tools/list"})
	close(stop)
	wg.Wait()

	progress := 0
	for _, m := range append(msgs, listMsgs...) {
		var n struct {
			ID     json.RawMessage
			Method string
			Params struct {
				ProgressToken any `json:"progressToken"`
			}
		}
		_ = json.Unmarshal(m, &n)
		switch {
		case n.ID != nil:
		case n.Method == "notifications/progress" && n.Params.ProgressToken == "tok-1":
			progress++
		default:
			t.Errorf("a 2026-07-28 answer carries a notification nobody asked for: %s", m)
		}
	}
	if progress == 0 {
		t.Errorf("no progress notification on the call's stream (%d messages): the test saw no stream", len(msgs))
	}
	result(t, "the long-running call", msgs)
	result(t, "tools/list", listMsgs)
}

// TestInitializeEraAnswersOfEveryMethod: prompts/get, resources/read,
// resources/list and completion/complete forwarded from a 2026-07-28
// upstream to a 2025-11-25 session carry no 2026-only field either.
func TestInitializeEraAnswersOfEveryMethod(t *testing.T) {
	fixture := startConformanceFixture(t)
	g := newGatewayWith(t, map[string]any{"name": "conformance", "category": "testing",
		"upstream": map[string]any{"url": fixture, "headers": map[string]string{"X-Upstream-Token": "{{access_token}}"}}})
	g.serve()
	const path = "/mcp/conformance"
	init := `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}`
	_, h, _ := g.rpc("tenant-a", path, init, nil)
	session := map[string]string{"Mcp-Session-Id": h.Get("Mcp-Session-Id"), "Mcp-Protocol-Version": "2025-11-25"}
	g.rpc("tenant-a", path, `{"jsonrpc":"2.0","method":"notifications/initialized"}`, session)
	for i, req := range []string{
		`"method":"prompts/list","params":{}`,
		`"method":"prompts/get","params":{"name":"test_simple_prompt"}`,
		`"method":"resources/list","params":{}`,
		`"method":"resources/read","params":{"uri":"test://static-text"}`,
		`"method":"tools/list","params":{}`,
		`"method":"completion/complete","params":{"ref":{"type":"ref/prompt","name":"test_prompt_with_arguments"},"argument":{"name":"arg1","value":"a"}}`,
	} {
		_, _, msgs := g.rpc("tenant-a", path, fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,%s}`, 10+i, req), session)
		res := result(t, req, msgs)
		if _, ok := res["resultType"]; ok {
			t.Errorf("%s on a 2025-11-25 session: resultType in %s", req, mustMarshal(res))
		}
		if strings.Contains(string(res["_meta"]), "io.modelcontextprotocol/serverInfo") {
			t.Errorf("%s on a 2025-11-25 session: serverInfo in %s", req, mustMarshal(res))
		}
		for _, k := range []string{"ttlMs", "cacheScope"} {
			if _, ok := res[k]; ok {
				t.Errorf("%s on a 2025-11-25 session: %s in %s", req, k, mustMarshal(res))
			}
		}
	}
}
