package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/connectors-gateway/connectors/internal/fakeoauth"
	"github.com/connectors-gateway/connectors/internal/testenv"
)

// The direct path (server.Gateway.CallDirect) forwards a 2026-07-28
// tools/call of a 2026-07-28 upstream as bytes. These tests hold it to
// the usual path's behaviour: same answers, same credentials, same
// redaction, same refusals.

// startHTTPFixture starts testdata/{name} serving streamable HTTP on a
// free loopback port, with args, until the test ends, and returns its
// address (the fixture prints {"addr": ...} when ready).
func startHTTPFixture(t *testing.T, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(testenv.Build(t, "./testdata/"+name), append([]string{"--http", "127.0.0.1:0"}, args...)...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	var ready struct{ Addr string }
	sc := bufio.NewScanner(out)
	if !sc.Scan() || json.Unmarshal(sc.Bytes(), &ready) != nil {
		t.Fatalf("%s did not start", name)
	}
	return ready.Addr
}

// recordedEcho starts testdata/upstream-echo over streamable HTTP with
// args, behind a proxy that records every request, and returns the
// proxy's URL of its MCP endpoint.
func recordedEcho(t *testing.T, args ...string) (string, *upstreamLog) {
	t.Helper()
	addr := startHTTPFixture(t, "upstream-echo", args...)
	log := &upstreamLog{}
	proxy := httputil.NewSingleHostReverseProxy(&url.URL{Scheme: "http", Host: addr})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		r.Body = io.NopCloser(bytes.NewReader(body))
		log.add(upstreamRequest{Authorization: r.Header.Get("Authorization"), Method: r.Header.Get("Mcp-Method"), Body: string(body), Traceparent: r.Header.Get("Traceparent")})
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv.URL + "/mcp", log
}

type upstreamRequest struct{ Authorization, Method, Body, Traceparent string }

type upstreamLog struct {
	mu   sync.Mutex
	reqs []upstreamRequest
}

func (l *upstreamLog) add(r upstreamRequest) { l.mu.Lock(); l.reqs = append(l.reqs, r); l.mu.Unlock() }

// calls returns the tools/call requests seen so far.
func (l *upstreamLog) calls() []upstreamRequest {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []upstreamRequest
	for _, r := range l.reqs {
		if r.Method == "tools/call" {
			out = append(out, r)
		}
	}
	return out
}

// directSince returns the tools/call requests the direct path made since
// the first n.
func (l *upstreamLog) directSince(n int) []upstreamRequest {
	var out []upstreamRequest
	for _, r := range l.calls()[n:] {
		if r.direct() {
			out = append(out, r)
		}
	}
	return out
}

// direct reports whether an upstream request was made by the direct path:
// its JSON-RPC ID is the gateway's own string, where mcp-go's client
// numbers its requests.
func (r upstreamRequest) direct() bool { return strings.Contains(r.Body, `"id":"gw-`) }

// post sends body to the gateway's path as tenant with the headers of a
// 2026-07-28 tools/call of tool (name), and more headers from extra.
func (g *gateway) post(tenant, path, name, body string, extra map[string]string) (int, string) {
	g.t.Helper()
	req, _ := http.NewRequest("POST", "http://"+g.addr+path, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+g.keys[tenant])
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	req.Header.Set("Mcp-Protocol-Version", "2026-07-28")
	req.Header.Set("Mcp-Method", "tools/call")
	req.Header.Set("Mcp-Name", name)
	for k, v := range extra {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		g.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(raw)
}

// callBody is a 2026-07-28 tools/call request body; params are the
// members after name (JSON text, may be empty).
func callBody(id, name, params string) string {
	meta := `"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{}}`
	if params != "" {
		params = "," + params
	}
	return fmt.Sprintf(`{"jsonrpc":"2.0","id":%s,"method":"tools/call","params":{%s,"name":%q%s}}`, id, meta, name, params)
}

// TestDirectPathAnswersAsMCPGo sends the same requests, ordinary and odd,
// to a gateway with the direct path and to one without: the answers are
// the same, and the direct path took exactly the ordinary ones.
func TestDirectPathAnswersAsMCPGo(t *testing.T) {
	upURL, up := recordedEcho(t)
	in := map[string]any{"name": "echo", "upstream": map[string]any{
		"url": upURL, "headers": map[string]string{"Authorization": "Bearer {{access_token}}"}}}
	// An upstream that refuses every call (401): the error is the
	// gateway's to word.
	refusingURL, _ := recordedEcho(t, "--reject", "xtok_")
	refusing := map[string]any{"name": "refusing", "upstream": map[string]any{
		"url": refusingURL, "headers": map[string]string{"Authorization": "Bearer {{access_token}}"}}}
	on := newGatewayWithCredentials(t, nil, in, refusing)
	off := newGatewayWithCredentials(t, map[string]string{"CONNECTORS_DIRECT_CALLS": "off"}, in, refusing)
	for _, g := range []*gateway{on, off} {
		g.serve()
		toolNames(t, g.client("tenant-a")) // discovers the catalogues
		toolNames(t, g.dialPath("tenant-a", "/mcp/echo", nil))
	}

	cases := []struct {
		name, tool, body string
		headers          map[string]string
		direct           bool   // the direct path serves it
		path             string // default /mcp
	}{
		{"single integration", "echo", callBody("100", "echo", `"arguments":{"text":"alone"}`), nil, true, "/mcp/echo"},
		{"single integration, credential", "whoami", callBody("101", "whoami", ""), nil, true, "/mcp/echo"},
		{"single integration, aggregate name", "echo_echo", callBody("102", "echo_echo", ""), nil, false, "/mcp/echo"},
		{"unknown integration", "echo", callBody("103", "echo", ""), nil, false, "/mcp/nope"},
		{"upstream refuses the credential", "refusing_echo", callBody("104", "refusing_echo", ""), nil, false, ""},
		{"repeated _meta", "echo_echo", strings.Replace(callBody("105", "echo_echo", ""), `"name"`, `"_meta":{"x":1},"name"`, 1), nil, false, ""},
		{"requestState not a string", "echo_echo", callBody("106", "echo_echo", `"requestState":5`), nil, false, ""},
		{"inputResponses not an object", "echo_echo", callBody("107", "echo_echo", `"inputResponses":[1]`), nil, false, ""},
		{"ordinary", "echo_echo", callBody("1", "echo_echo", `"arguments":{"text":"hello"}`), nil, true, ""},
		{"string id", "echo_echo", callBody(`"abc"`, "echo_echo", `"arguments":{"text":"hi"}`), nil, true, ""},
		{"no arguments", "echo_echo", callBody("2", "echo_echo", ""), nil, true, ""},
		{"null arguments", "echo_echo", callBody("3", "echo_echo", `"arguments":null`), nil, true, ""},
		{"result holding the credential", "echo_whoami", callBody("4", "echo_whoami", ""), nil, true, ""},
		{"escaped credential", "echo_whoami", callBody("5", "echo_whoami", `"arguments":{"wrap":true}`), nil, true, ""},
		{"unknown tool", "echo_nope", callBody("6", "echo_nope", ""), nil, false, ""},
		{"another tenant's name for a tool", "notion_x", callBody("7", "notion_x", ""), nil, false, ""},
		{"name unlike Mcp-Name", "echo_whoami", callBody("8", "echo_echo", ""), nil, false, ""},
		{"unknown parameter", "echo_echo", callBody("9", "echo_echo", `"arguments":{"text":"x"},"extra":1`), nil, false, ""},
		{"arguments not an object", "echo_echo", callBody("10", "echo_echo", `"arguments":["x"]`), nil, false, ""},
		{"progress token", "echo_echo", strings.Replace(callBody("11", "echo_echo", ""), `"_meta":{`, `"_meta":{"progressToken":"p1",`, 1), nil, false, ""},
		{"log level", "echo_echo", strings.Replace(callBody("12", "echo_echo", ""), `"_meta":{`, `"_meta":{"io.modelcontextprotocol/logLevel":"debug",`, 1), nil, false, ""},
		{"older protocol in _meta", "echo_echo", strings.Replace(callBody("13", "echo_echo", ""), `"2026-07-28"`, `"2025-11-25"`, 1), nil, false, ""},
		{"null id", "echo_echo", callBody("null", "echo_echo", ""), nil, false, ""},
		{"trailing data", "echo_echo", callBody("14", "echo_echo", "") + `{"jsonrpc":"2.0"}`, nil, false, ""},
		{"batch", "echo_echo", "[" + callBody("15", "echo_echo", "") + "]", nil, false, ""},
		{"malformed", "echo_echo", `{"jsonrpc":"2.0","id":16,"method":"tools/call","params":{`, nil, false, ""},
		{"session header", "echo_echo", callBody("17", "echo_echo", ""), map[string]string{"Mcp-Session-Id": "made-up"}, false, ""},
		{"older protocol header", "echo_echo", callBody("18", "echo_echo", ""), map[string]string{"Mcp-Protocol-Version": "2025-11-25"}, false, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			path := c.path
			if path == "" {
				path = "/mcp"
			}
			before := len(up.calls())
			onStatus, onBody := on.post("tenant-a", path, c.tool, c.body, c.headers)
			directCalls := len(up.directSince(before))
			offStatus, offBody := off.post("tenant-a", path, c.tool, c.body, c.headers)
			if onStatus != offStatus || !sameJSON(onBody, offBody) {
				t.Errorf("with the direct path: %d %s\nwithout: %d %s", onStatus, onBody, offStatus, offBody)
			}
			if got := directCalls == 1; got != c.direct {
				t.Errorf("direct path taken: %v, want %v (%d direct upstream calls)", got, c.direct, directCalls)
			}
			on.assertNoSecretsIn(onBody)
		})
	}
	for _, r := range up.calls() {
		if r.direct() && strings.Contains(r.Body, "connectors-test") {
			t.Errorf("the agent's client info reached the upstream: %s", r.Body)
		}
	}
}

// sameJSON reports whether a and b are the same JSON value (but for an
// error's requestId, which names one request), or the same text when
// either is not JSON.
func sameJSON(a, b string) bool {
	var va, vb any
	if json.Unmarshal([]byte(a), &va) != nil || json.Unmarshal([]byte(b), &vb) != nil {
		return strings.TrimSpace(a) == strings.TrimSpace(b)
	}
	for _, v := range []any{va, vb} {
		if m, ok := v.(map[string]any); ok {
			delete(m, "requestId")
		}
	}
	return cmp.Equal(va, vb)
}

// TestDirectPathCredentials: on the direct path each tenant's calls carry
// its own credential only, results never hand it over, an admin's narrowing
// and a revocation apply at once.
func TestDirectPathCredentials(t *testing.T) {
	upURL, up := recordedEcho(t)
	g := newGatewayWith(t, map[string]any{"name": "echo", "upstream": map[string]any{
		"url": upURL, "headers": map[string]string{"Authorization": "Bearer {{access_token}}"}}})
	g.withAdmin()
	g.serve()
	for _, tenant := range []string{"tenant-a", "tenant-b"} {
		toolNames(t, g.client(tenant)) // discovers the catalogue
	}

	// Both tenants at once: every upstream call carries the caller's token.
	var wg sync.WaitGroup
	for _, tenant := range []string{"tenant-a", "tenant-b"} {
		for i := range 20 {
			wg.Go(func() {
				status, body := g.post(tenant, "/mcp", "echo_whoami", callBody(fmt.Sprint(i+1), "echo_whoami", ""), nil)
				if status != http.StatusOK || !strings.Contains(body, "[redacted]") {
					t.Errorf("%s echo_whoami: %d %s", tenant, status, body)
				}
				g.assertNoSecretsIn(body)
			})
		}
	}
	wg.Wait()
	calls := up.calls()
	if len(calls) < 40 {
		t.Fatalf("%d upstream calls, want 40", len(calls))
	}
	seen := map[string]int{}
	for _, r := range calls {
		if !r.direct() {
			t.Errorf("an upstream call not made by the direct path: %.200s", r.Body)
		}
		seen[r.Authorization]++
	}
	want := map[string]int{"Bearer " + extraToken("tenant-a", "echo"): 20, "Bearer " + extraToken("tenant-b", "echo"): 20}
	if diff := cmp.Diff(want, seen); diff != "" {
		t.Errorf("credentials upstream (-want +got):\n%s", diff)
	}
	for _, r := range calls {
		for _, key := range g.keys {
			if strings.Contains(r.Authorization+r.Body, key) {
				t.Error("an agent's API key reached the upstream")
			}
		}
	}

	// An admin narrows tenant-a's echo to the echo tool: whoami is gone for
	// tenant-a at once (mcp-go's answer: no such tool), not for tenant-b.
	if status, _, raw := g.api("admin", "PUT", "/tenants/tenant-a/integrations/echo", `{"tools": ["echo"]}`); status != http.StatusOK {
		t.Fatalf("narrowing: %d %s", status, raw)
	}
	if status, body := g.post("tenant-a", "/mcp", "echo_whoami", callBody("50", "echo_whoami", ""), nil); status == http.StatusOK && !strings.Contains(body, `"error"`) {
		t.Errorf("tenant-a calls a tool narrowed away: %d %s", status, body)
	}
	if status, body := g.post("tenant-a", "/mcp", "echo_echo", callBody("51", "echo_echo", `"arguments":{"text":"still"}`), nil); status != http.StatusOK || !strings.Contains(body, "still") {
		t.Errorf("tenant-a echo_echo after narrowing: %d %s", status, body)
	}
	if status, body := g.post("tenant-b", "/mcp", "echo_whoami", callBody("52", "echo_whoami", ""), nil); status != http.StatusOK || !strings.Contains(body, "[redacted]") {
		t.Errorf("tenant-b echo_whoami after tenant-a's narrowing: %d %s", status, body)
	}

	// An admin turns echo off for tenant-a: no call reaches the upstream
	// until it is turned on again.
	if status, _, raw := g.api("admin", "DELETE", "/tenants/tenant-a/integrations/echo", ""); status != http.StatusOK && status != http.StatusNoContent {
		t.Fatalf("disabling: %d %s", status, raw)
	}
	before := len(up.calls())
	if status, body := g.post("tenant-a", "/mcp", "echo_echo", callBody("54", "echo_echo", `"arguments":{"text":"off"}`), nil); status == http.StatusOK && !strings.Contains(body, `"error"`) {
		t.Errorf("tenant-a calls a disabled integration: %d %s", status, body)
	}
	if n := len(up.calls()) - before; n != 0 {
		t.Errorf("%d upstream calls for a disabled integration, want 0", n)
	}
	if status, _, raw := g.api("admin", "PUT", "/tenants/tenant-a/integrations/echo", `{}`); status != http.StatusOK {
		t.Fatalf("enabling: %d %s", status, raw)
	}
	if status, body := g.post("tenant-a", "/mcp", "echo_whoami", callBody("55", "echo_whoami", ""), nil); status != http.StatusOK || !strings.Contains(body, "[redacted]") {
		t.Errorf("tenant-a echo_whoami once enabled with every tool again: %d %s", status, body)
	}

	// tenant-b's credential is revoked: its next call does not reach the
	// upstream.
	if status, _, raw := g.api("admin", "DELETE", "/tenants/tenant-b/integrations/echo/credentials", ""); status != http.StatusNoContent && status != http.StatusOK {
		t.Fatalf("revoking: %d %s", status, raw)
	}
	before = len(up.calls())
	if status, body := g.post("tenant-b", "/mcp", "echo_echo", callBody("53", "echo_echo", `"arguments":{"text":"x"}`), nil); status == http.StatusOK && strings.Contains(body, `"x"`) {
		t.Errorf("tenant-b calls after revocation: %d %s", status, body)
	}
	if n := len(up.calls()) - before; n != 0 {
		t.Errorf("%d upstream calls after revocation, want 0", n)
	}
}

// TestDirectPathRefreshOn401: the upstream refuses the tenant's token with
// 401 on the direct path; the gateway refreshes it once and retries, and
// the agent gets the result.
func TestDirectPathRefreshOn401(t *testing.T) {
	upURL, up := recordedEcho(t, "--reject", "stale-")
	fake := fakeoauth.New(t, fakeoauth.GitHub, "gh-client", "gh-client-s3cret")
	in := map[string]any{"name": "gh", "upstream": map[string]any{
		"url": upURL, "headers": map[string]string{"Authorization": "Bearer {{access_token}}"}}}
	o := fake.OAuth()
	in["oauth"] = map[string]any{"kind": o.Kind, "authorizeUrl": o.AuthorizeURL, "tokenUrl": o.TokenURL, "scopes": o.Scopes}
	g := newGatewayWithEnv(t, oauthEnv("gh", map[string]string{"GH_CLIENT_ID": "gh-client", "GH_CLIENT_SECRET": "gh-client-s3cret"}), in)
	_, refresh := fake.IssueToken()
	g.mustRun(fmt.Sprintf(`{"accessToken": "stale-token-0123456789", "refreshToken": %q}`, refresh),
		"credential", "put", "--tenant", "tenant-a", "--integration", "gh")
	g.serve()
	toolNames(t, g.client("tenant-a"))

	status, body := g.post("tenant-a", "/mcp", "gh_echo", callBody("1", "gh_echo", `"arguments":{"text":"after a refresh"}`), nil)
	if status != http.StatusOK || !strings.Contains(body, "after a refresh") {
		t.Fatalf("gh_echo: %d %s", status, body)
	}
	if n := fake.Refreshes(); n != 1 {
		t.Errorf("%d refreshes, want 1", n)
	}
	calls := up.calls()
	if len(calls) != 2 || !calls[0].direct() || !calls[1].direct() ||
		calls[0].Authorization != "Bearer stale-token-0123456789" || !fake.Valid(strings.TrimPrefix(calls[1].Authorization, "Bearer ")) {
		t.Errorf("upstream calls: %+v", calls)
	}
	g.assertNoSecretsIn(body)
}

// TestDirectPathStdio: over a stdio upstream the direct path writes its
// own request lines and takes its response lines off the process's
// stdout; the answers are the usual path's, each concurrent call gets its
// own, and the session's other traffic is untouched.
func TestDirectPathStdio(t *testing.T) {
	echoBin := testenv.Build(t, "./testdata/upstream-echo")
	stdio := func(record string) map[string]any {
		return map[string]any{"name": "echos", "upstream": map[string]any{
			"command": echoBin, "args": []string{"--record", record}, "env": map[string]string{"ECHO_TOKEN": "{{access_token}}"}}}
	}
	onRecord, offRecord := filepath.Join(t.TempDir(), "on"), filepath.Join(t.TempDir(), "off")
	on := newGatewayWithCredentials(t, nil, stdio(onRecord))
	off := newGatewayWithCredentials(t, map[string]string{"CONNECTORS_DIRECT_CALLS": "off"}, stdio(offRecord))
	for _, g := range []*gateway{on, off} {
		g.serve()
		toolNames(t, g.client("tenant-a"))
	}
	// direct counts the requests of the direct path the process has read.
	direct := func(record string) int {
		b, _ := os.ReadFile(record)
		return strings.Count(string(b), `"id":"gw-`)
	}

	cases := []struct {
		name, tool, body string
		direct           bool
	}{
		{"ordinary", "echos_echo", callBody("1", "echos_echo", `"arguments":{"text":"hello"}`), true},
		{"string id", "echos_echo", callBody(`"x"`, "echos_echo", `"arguments":{"text":"hi"}`), true},
		{"result holding the credential", "echos_whoami", callBody("2", "echos_whoami", ""), true},
		{"escaped credential", "echos_whoami", callBody("3", "echos_whoami", `"arguments":{"wrap":true}`), true},
		{"unknown tool", "echos_nope", callBody("4", "echos_nope", ""), false},
		{"progress token", "echos_echo", strings.Replace(callBody("5", "echos_echo", ""), `"_meta":{`, `"_meta":{"progressToken":"p1",`, 1), false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			before := direct(onRecord)
			onStatus, onBody := on.post("tenant-a", "/mcp", c.tool, c.body, nil)
			offStatus, offBody := off.post("tenant-a", "/mcp", c.tool, c.body, nil)
			if onStatus != offStatus || !sameJSON(onBody, offBody) {
				t.Errorf("with the direct path: %d %s\nwithout: %d %s", onStatus, onBody, offStatus, offBody)
			}
			if got := direct(onRecord) - before; (got == 1) != c.direct {
				t.Errorf("%d direct requests read by the process, want direct %v", got, c.direct)
			}
			on.assertNoSecretsIn(onBody)
		})
	}
	if n := direct(offRecord); n != 0 {
		t.Errorf("%d direct requests with the direct path off", n)
	}

	// Concurrent calls, each answered with its own text, while the usual
	// path's session lists tools on the same pipes.
	var wg sync.WaitGroup
	for i := range 24 {
		wg.Go(func() {
			text := fmt.Sprintf("call-%d-%s", i, strings.Repeat("x", i*500))
			status, body := on.post("tenant-a", "/mcp", "echos_echo", callBody(fmt.Sprint(100+i), "echos_echo", fmt.Sprintf(`"arguments":{"text":%q}`, text)), nil)
			var resp struct {
				ID     int `json:"id"`
				Result struct {
					Content []struct{ Text string } `json:"content"`
				} `json:"result"`
			}
			if status != http.StatusOK || json.Unmarshal([]byte(body), &resp) != nil || resp.ID != 100+i ||
				len(resp.Result.Content) != 1 || resp.Result.Content[0].Text != text {
				t.Errorf("call %d: %d %.300s", i, status, body)
			}
		})
	}
	for range 4 {
		wg.Go(func() {
			if names := toolNames(t, on.client("tenant-a")); !slices.Contains(names, "echos_echo") {
				t.Errorf("tools/list beside the direct calls: %v", names)
			}
		})
	}
	wg.Wait()
}
