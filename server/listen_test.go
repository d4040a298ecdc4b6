package server_test

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/mcp"
)

// modernMeta is the _meta of a 2026-07-28 request.
const modernMeta = `"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{}}`

// post2026 sends the 2026-07-28 request body of method to url as key.
func post2026(ctx context.Context, url, key, method, body string) (*http.Response, error) {
	r, err := http.NewRequestWithContext(ctx, "POST", url, strings.NewReader(body))
	if err != nil {
		return nil, err
	}
	r.Header.Set("Content-Type", "application/json")
	r.Header.Set("Accept", "application/json, text/event-stream")
	r.Header.Set("MCP-Protocol-Version", "2026-07-28")
	r.Header.Set("Mcp-Method", method)
	r.Header.Set("Authorization", "Bearer "+key)
	return http.DefaultClient.Do(r)
}

// listenStream is an open 2026-07-28 subscriptions/listen request: the
// methods of the notifications it carried, in order.
type listenStream struct {
	methods chan string
}

// listen opens a subscriptions/listen stream on base+path as key, asking
// for notifications (the request's "notifications" member), and returns
// once the gateway acknowledged it. It is closed when the test ends.
func listen(t *testing.T, base, path, key, notifications string) *listenStream {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	body := `{"jsonrpc":"2.0","id":"l","method":"subscriptions/listen","params":{` + modernMeta + `,"notifications":` + notifications + `}}`
	resp, err := post2026(ctx, base+path, key, "subscriptions/listen", body)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	t.Cleanup(func() { cancel(); resp.Body.Close() })
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("subscriptions/listen on %s: %d", path, resp.StatusCode)
	}
	s := &listenStream{methods: make(chan string, 16)}
	go func() {
		defer close(s.methods)
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			data, ok := strings.CutPrefix(sc.Text(), "data: ")
			if !ok {
				continue
			}
			var m struct{ Method string }
			if json.Unmarshal([]byte(data), &m) == nil && m.Method != "" {
				s.methods <- m.Method
			}
		}
	}()
	select {
	case m := <-s.methods:
		if m != mcp.MethodNotificationSubscriptionsAcknowledged {
			t.Fatalf("subscriptions/listen on %s: first %q, want the acknowledgement", path, m)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("subscriptions/listen on %s: no acknowledgement", path)
	}
	return s
}

// next returns the method of the stream's next notification, or "" when
// none comes within wait.
func (s *listenStream) next(wait time.Duration) string {
	select {
	case m := <-s.methods:
		return m
	case <-time.After(wait):
		return ""
	}
}

// TestListenListChanged: a change of a tenant's tools reaches its
// 2026-07-28 subscriptions/listen streams that asked for tools list
// changes, on the aggregate and on an integration's own endpoint, and no
// stream of another tenant or one that did not ask for them.
func TestListenListChanged(t *testing.T) {
	h := newHarness(t, false)
	srv := httptest.NewServer(h.httpHandler(t))
	t.Cleanup(srv.Close) // after the streams' own cleanups have closed them
	a, b := h.keys["tenant-a"], h.keys["tenant-b"]
	const tools, prompts = `{"toolsListChanged":true}`, `{"promptsListChanged":true}`
	aggregateA := listen(t, srv.URL, "/mcp", a, tools)
	singleA := listen(t, srv.URL, "/mcp/echo", a, tools)
	promptsA := listen(t, srv.URL, "/mcp/echo", a, prompts)
	aggregateB := listen(t, srv.URL, "/mcp", b, tools)
	singleB := listen(t, srv.URL, "/mcp/conformance", b, tools)

	h.g.NotifyToolsChanged("tenant-a")
	for name, s := range map[string]*listenStream{"/mcp": aggregateA, "/mcp/echo": singleA} {
		if got := s.next(5 * time.Second); got != mcp.MethodNotificationToolsListChanged {
			t.Errorf("tenant-a's stream on %s: %q, want %s", name, got, mcp.MethodNotificationToolsListChanged)
		}
	}
	for name, s := range map[string]*listenStream{
		"tenant-a's prompts-only stream": promptsA,
		"tenant-b's stream on /mcp":      aggregateB,
		"tenant-b's on /mcp/conformance": singleB,
	} {
		if got := s.next(500 * time.Millisecond); got != "" {
			t.Errorf("%s: %q, want nothing", name, got)
		}
	}
}

// TestCatalogueCacheHints: a 2026-07-28 tools/list (and prompts/list) answer
// is a tenant's own catalogue: private, fresh for the catalogue's relist
// interval.
func TestCatalogueCacheHints(t *testing.T) {
	h := newHarness(t, false)
	srv := httptest.NewServer(h.httpHandler(t))
	defer srv.Close()
	for _, tc := range []struct{ path, method string }{
		{"/mcp", "tools/list"},
		{"/mcp/echo", "tools/list"},
		{"/mcp/conformance", "prompts/list"},
	} {
		key := h.keys["tenant-a"]
		if tc.path == "/mcp/conformance" {
			key = h.keys["tenant-b"]
		}
		body := `{"jsonrpc":"2.0","id":1,"method":"` + tc.method + `","params":{` + modernMeta + `}}`
		resp, err := post2026(t.Context(), srv.URL+tc.path, key, tc.method, body)
		if err != nil {
			t.Fatal(err)
		}
		var answer struct {
			Result struct {
				TTLMs      *int64 `json:"ttlMs"`
				CacheScope string `json:"cacheScope"`
			}
		}
		err = json.NewDecoder(resp.Body).Decode(&answer)
		resp.Body.Close()
		if err != nil {
			t.Fatalf("%s %s: %v", tc.method, tc.path, err)
		}
		if ttl := answer.Result.TTLMs; ttl == nil || *ttl != 1000 || answer.Result.CacheScope != string(mcp.CacheScopePrivate) {
			t.Errorf("%s %s: ttlMs %s, cacheScope %q; want 1000, private", tc.method, tc.path, raw(ttl), answer.Result.CacheScope)
		}
	}
}

// raw is n as JSON: null when absent.
func raw(n *int64) string {
	b, _ := json.Marshal(n)
	return string(b)
}
