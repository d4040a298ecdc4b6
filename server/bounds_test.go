package server

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	mcpserver "github.com/mark3labs/mcp-go/server"

	"github.com/connectors-gateway/connectors/internal/mcptest"
)

const initBody = mcptest.InitBody

// boundsServer is the gateway's MCP endpoint over real mcp-go servers:
// /mcp and two single endpoints, /mcp/solo and /mcp/other, each with the
// tools of mcptest.NewServer, behind mcptest's keys (key-a, key-a2,
// key-b); calls counts the calls their handlers saw, cancelled the sleeps
// their context ended, and forgotten and registered the sessions mcp-go
// forgot (unregistered) and registered.
type boundsServer struct {
	mcptest.Server
	h                                       *Handler
	counts                                  mcptest.Counts
	calls, cancelled, forgotten, registered *atomic.Int64
}

func newBoundsServer(t *testing.T, opts HTTPOptions) *boundsServer {
	t.Helper()
	b := &boundsServer{}
	b.calls, b.cancelled, b.forgotten, b.registered = &b.counts.Calls, &b.counts.Cancelled, &b.counts.Forgotten, &b.counts.Registered
	b.h = NewHandler(mcptest.NewServer("test", &b.counts), map[string]*mcpserver.MCPServer{
		"solo": mcptest.NewServer("solo", &b.counts), "other": mcptest.NewServer("other", &b.counts),
	}, opts)
	b.Server = mcptest.Server{Server: httptest.NewServer(endpoints(b.h))}
	t.Cleanup(func() { b.Close(); _ = b.h.Close(context.Background()) })
	return b
}

// endpoints mounts h at /mcp and /mcp/{integration} as transport does,
// behind mcptest's keys.
func endpoints(h http.Handler) *http.ServeMux {
	mux := http.NewServeMux()
	for _, method := range []string{"POST", "GET", "DELETE"} {
		mux.Handle(method+" /mcp", mcptest.TestKeys.Authenticated(h))
		mux.Handle(method+" /mcp/{integration}", mcptest.TestKeys.Authenticated(h))
	}
	return mux
}

func (b *boundsServer) live() int {
	b.h.sessions.mu.Lock()
	defer b.h.sessions.mu.Unlock()
	return len(b.h.sessions.live)
}

// TestGetWithoutSession: a GET (or DELETE) without a session ID is refused
// (400, as the 2025-11-25 transport says of a server that requires
// sessions; a 2026-07-28 one gets mcp-go's 405) and creates nothing: no
// session, and no goroutine outlives the request.
func TestGetWithoutSession(t *testing.T) {
	b := newBoundsServer(t, HTTPOptions{})
	get := func(method, path string, header map[string]string) int {
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		defer cancel()
		r, _ := http.NewRequestWithContext(ctx, method, b.URL+path, nil)
		r.Header.Set("Accept", "text/event-stream")
		r.Header.Set("Authorization", "Bearer key-a")
		for k, v := range header {
			r.Header.Set(k, v)
		}
		resp, err := http.DefaultClient.Do(r)
		if err != nil {
			t.Fatalf("%s %s: %v", method, path, err)
		}
		_, _ = io.Copy(io.Discard, resp.Body) // a stream ends with ctx
		resp.Body.Close()
		return resp.StatusCode
	}
	get("GET", "/mcp", nil) // warm up the client's and the server's connection goroutines
	http.DefaultClient.CloseIdleConnections()
	before := runtime.NumGoroutine()
	for i := range 40 {
		for _, c := range []struct {
			method, path string
			header       map[string]string
			want         int
		}{
			{"GET", "/mcp", nil, http.StatusBadRequest},
			{"GET", "/mcp/solo", map[string]string{"MCP-Protocol-Version": "2025-11-25"}, http.StatusBadRequest},
			{"GET", "/mcp", map[string]string{"Last-Event-ID": "1"}, http.StatusBadRequest},
			{"DELETE", "/mcp", nil, http.StatusBadRequest},
			{"GET", "/mcp", map[string]string{"MCP-Protocol-Version": "2026-07-28"}, http.StatusMethodNotAllowed},
		} {
			if got := get(c.method, c.path, c.header); got != c.want && i == 0 {
				t.Errorf("%s %s %v: %d, want %d", c.method, c.path, c.header, got, c.want)
			}
		}
	}
	http.DefaultClient.CloseIdleConnections()
	if n := b.live(); n != 0 {
		t.Errorf("%d sessions after GETs without a session ID, want 0", n)
	}
	if n := b.registered.Load(); n != 0 {
		t.Errorf("mcp-go registered %d sessions", n)
	}
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before+2 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if after := runtime.NumGoroutine(); after > before+2 {
		t.Errorf("goroutines: %d before 200 GETs, %d after", before, after)
	}
}

// TestSessionBoundToEndpoint: a session is valid only on the endpoint that
// made it; elsewhere it is unknown (404), whatever the method, and the
// refusal leaves it working where it belongs.
func TestSessionBoundToEndpoint(t *testing.T) {
	b := newBoundsServer(t, HTTPOptions{})
	sessions := map[string]string{}
	for _, path := range []string{"/mcp", "/mcp/solo", "/mcp/other"} {
		sessions[path] = b.Open(t, path, "key-a")
	}
	const call = `{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"whoami"}}`
	for made, session := range sessions {
		for _, used := range []string{"/mcp", "/mcp/solo", "/mcp/other"} {
			if used == made {
				continue
			}
			for _, method := range []string{"POST", "GET", "DELETE"} {
				body := ""
				if method == "POST" {
					body = call
				}
				resp, raw := b.Send(t, method, used, "key-a", session, body, nil)
				if resp.StatusCode != http.StatusNotFound {
					t.Errorf("%s %s with a session of %s: %d %.200s, want 404", method, used, made, resp.StatusCode, raw)
				}
			}
		}
	}
	if b.calls.Load() != 0 {
		t.Errorf("%d calls reached a tool through another endpoint's session", b.calls.Load())
	}
	for made, session := range sessions {
		if resp, raw := b.Send(t, "POST", made, "key-a", session, call, nil); resp.StatusCode != http.StatusOK || !strings.Contains(raw, "tenant-a") {
			t.Errorf("the session of %s no longer serves there: %d %s", made, resp.StatusCode, raw)
		}
	}
}

// TestSessionCaps: past the bound per identity or per tenant (429) or in
// all (503) an initialize is refused with a message naming the bound, and
// nothing is created; ending a session frees its place; concurrent
// initializes cannot pass a bound together.
func TestSessionCaps(t *testing.T) {
	b := newBoundsServer(t, HTTPOptions{MaxSessionsPerIdentity: 2, MaxSessionsPerTenant: 3, MaxSessions: 4})
	initialize := func(path, key string) (*http.Response, string) {
		return b.Send(t, "POST", path, key, "", initBody, map[string]string{"MCP-Protocol-Version": ""})
	}
	refuse := func(what string, resp *http.Response, body string, status int, bound string) {
		t.Helper()
		if resp.StatusCode != status || !strings.Contains(body, bound) || resp.Header.Get("Mcp-Session-Id") != "" || !strings.Contains(body, `"id":1`) {
			t.Errorf("%s: %d %s (session %q), want %d naming %s", what, resp.StatusCode, body, resp.Header.Get("Mcp-Session-Id"), status, bound)
		}
	}
	first := b.Open(t, "/mcp", "key-a")
	b.Open(t, "/mcp/solo", "key-a")
	resp, body := initialize("/mcp", "key-a")
	refuse("a third session of one identity", resp, body, http.StatusTooManyRequests, "CONNECTORS_MAX_SESSIONS_PER_IDENTITY")
	// An initialize sent on one of its sessions makes a session too.
	resp, body = b.Send(t, "POST", "/mcp", "key-a", first, initBody, nil)
	refuse("a third session of one identity, initialized on its first", resp, body, http.StatusTooManyRequests, "CONNECTORS_MAX_SESSIONS_PER_IDENTITY")
	b.Open(t, "/mcp", "key-a2") // the same tenant, another identity
	resp, body = initialize("/mcp", "key-a2")
	refuse("a fourth session of one tenant", resp, body, http.StatusTooManyRequests, "CONNECTORS_MAX_SESSIONS_PER_TENANT")
	b.Open(t, "/mcp", "key-b")
	resp, body = initialize("/mcp", "key-b")
	refuse("a fifth session in all", resp, body, http.StatusServiceUnavailable, "CONNECTORS_MAX_SESSIONS)")
	if n := b.live(); n != 4 {
		t.Errorf("%d sessions, want 4", n)
	}
	if n := b.registered.Load(); n != 4 {
		t.Errorf("mcp-go registered %d sessions, want 4", n)
	}
	// Ending one frees its place, for its own identity.
	if resp, _ := b.Send(t, "DELETE", "/mcp", "key-a", first, "", nil); resp.StatusCode != http.StatusOK {
		t.Fatalf("DELETE: %d", resp.StatusCode)
	}
	b.Open(t, "/mcp", "key-a")

	// Concurrent initializes: exactly the bound's worth succeed.
	c := newBoundsServer(t, HTTPOptions{MaxSessionsPerIdentity: 5})
	var wg sync.WaitGroup
	var ok, refused atomic.Int64
	for range 30 {
		wg.Go(func() {
			resp, _ := c.Send(t, "POST", "/mcp", "key-b", "", initBody, map[string]string{"MCP-Protocol-Version": ""})
			switch resp.StatusCode {
			case http.StatusOK:
				ok.Add(1)
			case http.StatusTooManyRequests:
				refused.Add(1)
			}
		})
	}
	wg.Wait()
	if ok.Load() != 5 || refused.Load() != 25 || c.live() != 5 {
		t.Errorf("30 concurrent initializes, bound 5: %d made, %d refused, %d live", ok.Load(), refused.Load(), c.live())
	}
}

// TestIdleSweep: a session idle for the TTL is ended and forgotten (by the
// gateway and by mcp-go), but not while a call of it runs, however long:
// the call is answered.
func TestIdleSweep(t *testing.T) {
	const ttl = 300 * time.Millisecond
	b := newBoundsServer(t, HTTPOptions{SessionIdleTTL: ttl})
	busy := b.Open(t, "/mcp", "key-a")
	idle := b.Open(t, "/mcp/solo", "key-b")

	// A call lasting several TTLs (and mcp-go's sweep interval of a second).
	resp, raw := b.Send(t, "POST", "/mcp", "key-a", busy,
		`{"jsonrpc":"2.0","id":5,"method":"tools/call","params":{"name":"sleep","arguments":{"ms":1600}}}`, nil)
	if resp.StatusCode != http.StatusOK || !strings.Contains(raw, "slept") {
		t.Errorf("a call longer than the idle TTL: %d %s, want its answer", resp.StatusCode, raw)
	}
	if b.cancelled.Load() != 0 {
		t.Error("the sweep cancelled a running call")
	}
	// The idle session is gone by now; the busy one goes once idle.
	if resp, _ := b.Send(t, "POST", "/mcp/solo", "key-b", idle, `{"jsonrpc":"2.0","id":3,"method":"ping"}`, nil); resp.StatusCode != http.StatusNotFound {
		t.Errorf("a session idle for %v: %d, want 404", 5*ttl, resp.StatusCode)
	}
	deadline := time.Now().Add(5 * time.Second)
	for (b.live() > 0 || b.forgotten.Load() < 2) && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if n, f := b.live(), b.forgotten.Load(); n != 0 || f != 2 {
		t.Errorf("after the sweep: %d sessions live, %d forgotten by mcp-go; want 0 and 2", n, f)
	}
	if resp, _ := b.Send(t, "POST", "/mcp", "key-a", busy, `{"jsonrpc":"2.0","id":3,"method":"ping"}`, nil); resp.StatusCode != http.StatusNotFound {
		t.Errorf("a swept session: %d, want 404", resp.StatusCode)
	}
}

// TestMessageChecks: IDs that are not a string or a number, a request with
// a null ID, and non-object tools/call or prompts/get arguments are
// refused before any handler runs, on both endpoints and in both protocol
// eras; what the protocol allows passes.
func TestMessageChecks(t *testing.T) {
	b := newBoundsServer(t, HTTPOptions{})
	sessions := map[string]string{"/mcp": b.Open(t, "/mcp", "key-a"), "/mcp/solo": b.Open(t, "/mcp/solo", "key-a")}
	modern := func(id, method, params string) string {
		return fmt.Sprintf(`{"jsonrpc":"2.0","id":%s,"method":%q,"params":{"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{}}%s}}`, id, method, params)
	}
	legacy := func(id, method, params string) string {
		return fmt.Sprintf(`{"jsonrpc":"2.0","id":%s,"method":%q,"params":{%s}}`, id, method, strings.TrimPrefix(params, ","))
	}
	type want struct {
		Status int
		Code   float64 // the JSON-RPC error's; 0: a result
	}
	cases := []struct {
		name, id, method, params string
		want                     want
	}{
		{"object id", `{"a":1}`, "tools/call", `,"name":"whoami"`, want{400, -32600}},
		{"array id", `[1]`, "tools/call", `,"name":"whoami"`, want{400, -32600}},
		{"boolean id", `true`, "ping", ``, want{400, -32600}},
		{"null id on a request", `null`, "tools/call", `,"name":"whoami"`, want{400, -32600}},
		{"array arguments", `7`, "tools/call", `,"name":"whoami","arguments":[1,2]`, want{200, -32602}},
		{"string arguments", `"s"`, "tools/call", `,"name":"whoami","arguments":"x"`, want{200, -32602}},
		{"number arguments", `8`, "tools/call", `,"name":"whoami","arguments":5`, want{200, -32602}},
		{"boolean arguments", `9`, "tools/call", `,"name":"whoami","arguments":false`, want{200, -32602}},
		{"array prompt arguments", `10`, "prompts/get", `,"name":"greet","arguments":["x"]`, want{200, -32602}},
		{"object arguments", `11`, "tools/call", `,"name":"whoami","arguments":{}`, want{200, 0}},
		{"null arguments", `12`, "tools/call", `,"name":"whoami","arguments":null`, want{200, 0}},
		{"no arguments", `"id-13"`, "tools/call", `,"name":"whoami"`, want{200, 0}},
	}
	for path, session := range sessions {
		for _, era := range []string{"2025-11-25", "2026-07-28"} {
			for _, c := range cases {
				t.Run(path+"/"+era+"/"+c.name, func(t *testing.T) {
					before := b.calls.Load()
					body, header, s := legacy(c.id, c.method, c.params), map[string]string(nil), session
					if era == "2026-07-28" {
						body, s = modern(c.id, c.method, c.params), ""
						header = map[string]string{"MCP-Protocol-Version": era, "Mcp-Method": c.method, "Mcp-Name": map[string]string{"tools/call": "whoami", "prompts/get": "greet", "ping": ""}[c.method]}
					}
					resp, raw := b.Send(t, "POST", path, "key-a", s, body, header)
					var got struct {
						Error *struct{ Code float64 }
					}
					_ = json.Unmarshal([]byte(raw), &got)
					g := want{Status: resp.StatusCode}
					if got.Error != nil {
						g.Code = got.Error.Code
					}
					if diff := cmp.Diff(c.want, g); diff != "" {
						t.Errorf("%s: (-want +got)\n%s\n%s", body, diff, raw)
					}
					if c.want.Code != 0 && b.calls.Load() != before {
						t.Errorf("a refused request reached the handler")
					}
				})
			}
		}
	}
	// A response whose id is null (it could not name its request) is not a
	// request: it is left to mcp-go, which accepts it.
	resp, raw := b.Send(t, "POST", "/mcp", "key-a", sessions["/mcp"], `{"jsonrpc":"2.0","id":null,"error":{"code":-32700,"message":"parse error"}}`, nil)
	if resp.StatusCode >= 500 || strings.Contains(raw, "-32600") {
		t.Errorf("an error response with a null id: %d %s", resp.StatusCode, raw)
	}
}

// TestListenStreamsBounded: a 2026-07-28 subscriptions/listen stream holds
// a place under the bounds on sessions while it is open.
func TestListenStreamsBounded(t *testing.T) {
	b := newBoundsServer(t, HTTPOptions{MaxSessionsPerIdentity: 2})
	const listen = `{"jsonrpc":"2.0","id":1,"method":"subscriptions/listen","params":{"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{}},"notifications":{"toolsListChanged":true}}}`
	open := func() (status int, stop func()) {
		ctx, cancel := context.WithCancel(context.Background())
		r, _ := http.NewRequestWithContext(ctx, "POST", b.URL+"/mcp", strings.NewReader(listen))
		r.Header.Set("Content-Type", "application/json")
		r.Header.Set("Accept", "application/json, text/event-stream")
		r.Header.Set("MCP-Protocol-Version", "2026-07-28")
		r.Header.Set("Mcp-Method", "subscriptions/listen")
		r.Header.Set("Authorization", "Bearer key-a")
		resp, err := http.DefaultClient.Do(r)
		if err != nil {
			cancel()
			t.Fatal(err)
		}
		return resp.StatusCode, func() { cancel(); resp.Body.Close() }
	}
	s1, stop1 := open()
	s2, stop2 := open()
	defer stop2()
	s3, stop3 := open()
	stop3()
	if s1 != http.StatusOK || s2 != http.StatusOK || s3 != http.StatusTooManyRequests {
		t.Errorf("three listen streams, bound 2: %d %d %d, want 200 200 429", s1, s2, s3)
	}
	stop1()
	deadline := time.Now().Add(5 * time.Second)
	for {
		s, stop := open()
		stop()
		if s == http.StatusOK {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("a listen stream after another ended: %d", s)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestCloseEndsRunningRequests: stopping the gateway ends the requests
// sessions have running. A session's request outlives its connection
// (resumable), so without this a call waiting on its upstream held the
// HTTP server's shutdown to its deadline.
func TestCloseEndsRunningRequests(t *testing.T) {
	b := newBoundsServer(t, HTTPOptions{})
	session := b.Open(t, "/mcp", "key-a")
	go func() { // not b.send: that fails the test from another goroutine
		r, _ := http.NewRequest("POST", b.URL+"/mcp", strings.NewReader(
			`{"jsonrpc":"2.0","id":5,"method":"tools/call","params":{"name":"sleep","arguments":{"ms":60000}}}`))
		r.Header.Set("Content-Type", "application/json")
		r.Header.Set("Accept", "application/json, text/event-stream")
		r.Header.Set("MCP-Protocol-Version", "2025-11-25")
		r.Header.Set("Authorization", "Bearer key-a")
		r.Header.Set("Mcp-Session-Id", session)
		if resp, err := (&http.Client{Timeout: 30 * time.Second}).Do(r); err == nil {
			resp.Body.Close()
		}
	}()
	deadline := time.Now().Add(5 * time.Second)
	for b.calls.Load() == 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if b.calls.Load() == 0 {
		t.Fatal("the call never started")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = b.h.Close(ctx)
	for b.cancelled.Load() == 0 && ctx.Err() == nil {
		time.Sleep(10 * time.Millisecond)
	}
	if b.cancelled.Load() != 1 {
		t.Error("Close left a session's running call running")
	}
	if n := b.live(); n != 0 {
		t.Errorf("after Close: %d sessions live", n)
	}
}

// TestRequestsPerSessionBounded: one session has at most
// MaxRequestsPerSession requests running (they outlive their connections,
// so dropping each one would otherwise pile them up); one more is refused
// with 429, and once one ends the session takes requests again.
func TestRequestsPerSessionBounded(t *testing.T) {
	b := newBoundsServer(t, HTTPOptions{MaxRequestsPerSession: 2})
	session := b.Open(t, "/mcp", "key-a")
	sleep := func() {
		r, _ := http.NewRequest("POST", b.URL+"/mcp", strings.NewReader(
			`{"jsonrpc":"2.0","id":5,"method":"tools/call","params":{"name":"sleep","arguments":{"ms":1500}}}`))
		r.Header.Set("Content-Type", "application/json")
		r.Header.Set("Accept", "application/json, text/event-stream")
		r.Header.Set("MCP-Protocol-Version", "2025-11-25")
		r.Header.Set("Authorization", "Bearer key-a")
		r.Header.Set("Mcp-Session-Id", session)
		if resp, err := (&http.Client{Timeout: 30 * time.Second}).Do(r); err == nil {
			resp.Body.Close()
		}
	}
	var wg sync.WaitGroup
	for range 2 {
		wg.Go(sleep)
	}
	deadline := time.Now().Add(5 * time.Second)
	for b.calls.Load() < 2 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	resp, raw := b.Send(t, "POST", "/mcp", "key-a", session, `{"jsonrpc":"2.0","id":6,"method":"ping"}`, nil)
	if resp.StatusCode != http.StatusTooManyRequests || !strings.Contains(raw, "CONNECTORS_MAX_REQUESTS_PER_SESSION") {
		t.Errorf("a third request while two run: %d %s, want 429 naming the bound", resp.StatusCode, raw)
	}
	if resp, _ := b.Send(t, "POST", "/mcp", "key-b", b.Open(t, "/mcp", "key-b"), `{"jsonrpc":"2.0","id":6,"method":"ping"}`, nil); resp.StatusCode != http.StatusOK {
		t.Errorf("another session meanwhile: %d, want 200", resp.StatusCode)
	}
	wg.Wait()
	if resp, raw := b.Send(t, "POST", "/mcp", "key-a", session, `{"jsonrpc":"2.0","id":7,"method":"ping"}`, nil); resp.StatusCode != http.StatusOK {
		t.Errorf("after the two ended: %d %s, want 200", resp.StatusCode, raw)
	}
}
