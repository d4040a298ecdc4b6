package server

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/client/transport"
	"github.com/mark3labs/mcp-go/mcp"
	mcpserver "github.com/mark3labs/mcp-go/server"

	"github.com/connectors-gateway/connectors/internal/mcptest"
	"github.com/connectors-gateway/connectors/tenants"
)

// A replica is one gateway replica's MCP endpoint over mcp-go servers of
// its own (/mcp, and /mcp/solo), with the tools of replicaServer, behind
// mcptest's keys; replicas given one sealer share the key.
type replica struct {
	mcptest.Server
	h          *Handler
	registered atomic.Int64 // sessions mcp-go registered
	log        *logged
}

func newReplica(t *testing.T, opts HTTPOptions) *replica {
	t.Helper()
	r := &replica{log: &logged{}}
	opts.Logger = slog.New(r.log)
	r.h = NewHandler(r.mcpServer("test"), map[string]*mcpserver.MCPServer{"solo": r.mcpServer("solo")}, opts)
	r.Server = mcptest.Server{Server: httptest.NewServer(endpoints(r.h))}
	t.Cleanup(func() { r.Close(); _ = r.h.Close(context.Background()) })
	return r
}

// newSealer returns a sealer with a key of its own.
func newSealer(t testing.TB) Sealer {
	t.Helper()
	s, err := tenants.NewBrowserSessions(bytes.Repeat([]byte{byte(time.Now().UnixNano())}, tenants.BrowserSessionKeySize), nil)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// mcpServer is an mcp-go server whose tools tell what its session knows of
// the client ("client": capabilities, client info, protocol version, as
// JSON), and ask the client: "ask" (elicitation, on the call's stream),
// "sample" (sampling, on the GET stream), "roots".
func (r *replica) mcpServer(name string) *mcpserver.MCPServer {
	hooks := &mcpserver.Hooks{}
	hooks.AddOnRegisterSession(func(context.Context, mcpserver.ClientSession) { r.registered.Add(1) })
	srv := mcpserver.NewMCPServer(name, "1", mcpserver.WithHooks(hooks), mcpserver.WithToolCapabilities(true))
	srv.AddTool(mcp.NewTool("whoami"), func(ctx context.Context, _ mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		id, _ := tenants.FromContext(ctx)
		return mcp.NewToolResultText(id.Tenant), nil
	})
	srv.AddTool(mcp.NewTool("client"), func(ctx context.Context, _ mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		s, _ := mcpserver.ClientSessionFromContext(ctx).(mcpserver.SessionWithClientInfo)
		if s == nil {
			return mcp.NewToolResultError("no session"), nil
		}
		version := ""
		if v, ok := s.(interface{ ProtocolVersion() string }); ok {
			version = v.ProtocolVersion()
		}
		b, _ := json.Marshal(map[string]any{"capabilities": s.GetClientCapabilities(), "info": s.GetClientInfo(), "version": version})
		return mcp.NewToolResultText(string(b)), nil
	})
	srv.AddTool(mcp.NewTool("ask"), func(ctx context.Context, _ mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		res, err := srv.RequestElicitation(ctx, mcp.ElicitationRequest{Params: mcp.ElicitationParams{
			Message: "name?", RequestedSchema: map[string]any{"type": "object", "properties": map[string]any{"name": map[string]any{"type": "string"}}},
		}})
		if err != nil {
			return mcp.NewToolResultError(err.Error()), nil
		}
		return mcp.NewToolResultText("elicited " + res.Content.(map[string]any)["name"].(string)), nil
	})
	srv.AddTool(mcp.NewTool("sample"), func(ctx context.Context, _ mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		res, err := srv.RequestSampling(ctx, mcp.CreateMessageRequest{CreateMessageParams: mcp.CreateMessageParams{
			Messages: []mcp.SamplingMessage{{Role: mcp.RoleUser, Content: mcp.NewTextContent("capital?")}}, MaxTokens: 10,
		}})
		if err != nil {
			return mcp.NewToolResultError(err.Error()), nil
		}
		return mcp.NewToolResultText("sampled " + res.Content.(mcp.TextContent).Text), nil
	})
	srv.AddTool(mcp.NewTool("roots"), func(ctx context.Context, _ mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		res, err := srv.RequestRoots(ctx, mcp.ListRootsRequest{})
		if err != nil {
			return mcp.NewToolResultError(err.Error()), nil
		}
		return mcp.NewToolResultText("roots " + res.Roots[0].URI), nil
	})
	return srv
}

func (r *replica) live() int {
	r.h.sessions.mu.Lock()
	defer r.h.sessions.mu.Unlock()
	return len(r.h.sessions.live)
}

// logged is a replica's log: each record's message, and its reason if it
// has one.
type logged struct {
	mu   sync.Mutex
	seen []string
}

func (l *logged) Enabled(context.Context, slog.Level) bool { return true }
func (l *logged) WithAttrs([]slog.Attr) slog.Handler       { return l }
func (l *logged) WithGroup(string) slog.Handler            { return l }

func (l *logged) Handle(_ context.Context, r slog.Record) error {
	what := r.Message
	r.Attrs(func(a slog.Attr) bool {
		if a.Key == "reason" {
			what += " " + a.Value.String()
		}
		return true
	})
	l.mu.Lock()
	defer l.mu.Unlock()
	l.seen = append(l.seen, what)
	return nil
}

// count is how many records were what.
func (l *logged) count(what string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, s := range l.seen {
		if s == what {
			n++
		}
	}
	return n
}

// balancer sends an initialize to first and every other request to then:
// a load balancer without affinity at its worst.
type balancer struct {
	first, then *url.URL
	mu          sync.Mutex
	seen        map[string]int // host → requests
}

func (b *balancer) RoundTrip(r *http.Request) (*http.Response, error) {
	to := b.then
	if r.Body != nil {
		body, _ := io.ReadAll(r.Body)
		r.Body = io.NopCloser(bytes.NewReader(body))
		if strings.Contains(string(body), `"method":"initialize"`) {
			to = b.first
		}
	}
	r = r.Clone(r.Context())
	r.URL.Host, r.Host = to.Host, to.Host
	b.mu.Lock()
	b.seen[to.Host]++
	b.mu.Unlock()
	return http.DefaultTransport.RoundTrip(r)
}

// answers is an agent's answers to what a server may ask.
type answers struct{ asked atomic.Int64 }

func (a *answers) Elicit(context.Context, mcp.ElicitationRequest) (*mcp.ElicitationResult, error) {
	a.asked.Add(1)
	return &mcp.ElicitationResult{ElicitationResponse: mcp.ElicitationResponse{Action: mcp.ElicitationResponseActionAccept, Content: map[string]any{"name": "ada"}}}, nil
}

func (a *answers) CreateMessage(context.Context, mcp.CreateMessageRequest) (*mcp.CreateMessageResult, error) {
	a.asked.Add(1)
	return &mcp.CreateMessageResult{SamplingMessage: mcp.SamplingMessage{Role: mcp.RoleAssistant, Content: mcp.NewTextContent("Paris")}, Model: "m", StopReason: "endTurn"}, nil
}

func (a *answers) ListRoots(context.Context, mcp.ListRootsRequest) (*mcp.ListRootsResult, error) {
	a.asked.Add(1)
	return &mcp.ListRootsResult{Roots: []mcp.Root{{URI: "file:///ada"}}}, nil
}

// TestSealedSessionAdopted: an mcp-go agent initializes on replica A and
// sends everything else to replica B (its GET stream too): B adopts the
// session, lists and calls tools, knows the client's capabilities, info
// and protocol version, and its elicitation (on the call's stream),
// sampling (on the adopted session's GET stream) and roots reach the
// agent. B holds the session once, counted as live; A is not asked again.
func TestSealedSessionAdopted(t *testing.T) {
	sealer := newSealer(t)
	a, b := newReplica(t, HTTPOptions{Sealer: sealer}), newReplica(t, HTTPOptions{Sealer: sealer})
	ua, _ := url.Parse(a.URL)
	ub, _ := url.Parse(b.URL)
	lb := &balancer{first: ua, then: ub, seen: map[string]int{}}
	tr, err := transport.NewStreamableHTTP(a.URL+"/mcp", transport.WithContinuousListening(),
		transport.WithHTTPBasicClient(&http.Client{Transport: lb}),
		transport.WithHTTPHeaders(map[string]string{"Authorization": "Bearer key-a"}))
	if err != nil {
		t.Fatal(err)
	}
	agent := &answers{}
	c := client.NewClient(tr, client.WithElicitationHandler(agent), client.WithSamplingHandler(agent), client.WithRootsHandler(agent),
		client.WithProtocolVersion(mcp.ProtocolVersion20251125), client.WithLegacyProtocolOnly())
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	if err := c.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	if _, err := c.Initialize(ctx, mcp.InitializeRequest{Params: mcp.InitializeParams{
		ProtocolVersion: mcp.ProtocolVersion20251125, ClientInfo: mcp.Implementation{Name: "roaming-agent", Version: "7"},
		Capabilities: mcp.ClientCapabilities{Sampling: &mcp.SamplingCapability{}, Elicitation: &mcp.ElicitationCapability{},
			Roots: &struct {
				ListChanged bool `json:"listChanged,omitempty"`
			}{ListChanged: true}},
	}}); err != nil {
		t.Fatal(err)
	}
	session := tr.GetSessionId()
	if !strings.HasPrefix(session, sealedPrefix) {
		t.Fatalf("session ID %q is not sealed", session)
	}
	list, err := c.ListTools(ctx, mcp.ListToolsRequest{})
	if err != nil || len(list.Tools) != 5 {
		t.Fatalf("tools/list on B: %v %v", list, err)
	}
	call := func(tool string) string {
		t.Helper()
		res, err := c.CallTool(ctx, mcp.CallToolRequest{Params: mcp.CallToolParams{Name: tool}})
		if err != nil || res.IsError || len(res.Content) != 1 {
			t.Fatalf("tools/call %s on B: %+v %v", tool, res, err)
		}
		return res.Content[0].(mcp.TextContent).Text
	}
	if got := call("whoami"); got != "tenant-a" {
		t.Errorf("whoami on B: %q", got)
	}
	var known struct {
		Capabilities mcp.ClientCapabilities
		Info         mcp.Implementation
		Version      string
	}
	if err := json.Unmarshal([]byte(call("client")), &known); err != nil {
		t.Fatal(err)
	}
	if known.Capabilities.Sampling == nil || known.Capabilities.Elicitation == nil || known.Capabilities.Roots == nil || !known.Capabilities.Roots.ListChanged ||
		known.Info.Name != "roaming-agent" || known.Info.Version != "7" || known.Version != mcp.ProtocolVersion20251125 {
		t.Errorf("B knows of the client: %+v", known)
	}
	for tool, want := range map[string]string{"ask": "elicited ada", "sample": "sampled Paris", "roots": "roots file:///ada"} {
		if got := call(tool); got != want {
			t.Errorf("%s on B: %q, want %q", tool, got, want)
		}
	}
	if agent.asked.Load() != 3 {
		t.Errorf("the agent was asked %d times, want 3", agent.asked.Load())
	}
	lb.mu.Lock()
	onA := lb.seen[ua.Host]
	lb.mu.Unlock()
	if onA != 1 || a.live() != 1 || b.live() != 1 || b.registered.Load() != 1 {
		t.Errorf("%d requests on A (want the initialize), %d and %d sessions live on A and B (want 1 each), B's mcp-go registered %d (want 1)",
			onA, a.live(), b.live(), b.registered.Load())
	}
	if b.log.count("mcp_session_adopted") != 1 {
		t.Error("B did not log the adoption")
	}
}

// TestSealedSessionRefused: B answers 404, as for a session that never
// was, and adopts nothing, to a session of A presented by another tenant
// (recorded as a refused attempt) or another identity of its tenant, on
// another endpoint, altered, made up, oversized, or sealed with another
// key or for another purpose; its
// owner on its endpoint is served. (Another identity's attempt is recorded
// as it is for a session B holds.)
func TestSealedSessionRefused(t *testing.T) {
	sealer := newSealer(t)
	a, b := newReplica(t, HTTPOptions{Sealer: sealer}), newReplica(t, HTTPOptions{Sealer: sealer})
	other := newReplica(t, HTTPOptions{Sealer: newSealer(t)})
	session := a.Open(t, "/mcp", "key-a")
	foreign := other.Open(t, "/mcp", "key-a")
	tampered := []byte(session)
	tampered[len(tampered)/2] ^= 1
	// The claims of the session, sealed with the shared key for another
	// purpose (a browser session cookie, a bridged call's requestState).
	claims, err := sealer.OpenData(sessionPurpose, strings.TrimPrefix(session, sealedPrefix))
	if err != nil {
		t.Fatal(err)
	}
	otherPurpose, _ := sealer.SealData("cgw-browser-session/v1", claims, time.Hour)
	const ping = `{"jsonrpc":"2.0","id":2,"method":"ping"}`
	for _, c := range []struct{ what, path, key, session string }{
		{"another tenant", "/mcp", "key-b", session},
		{"another identity of the tenant", "/mcp", "key-a2", session},
		{"another endpoint", "/mcp/solo", "key-a", session},
		{"an altered ID", "/mcp", "key-a", string(tampered)},
		{"a made-up ID", "/mcp", "key-a", sealedPrefix + "bm90IHNlYWxlZA"},
		{"another key's ID", "/mcp", "key-a", foreign},
		{"its claims sealed for another purpose", "/mcp", "key-a", sealedPrefix + otherPurpose},
		{"an oversized ID", "/mcp", "key-a", session + strings.Repeat("A", maxSealedID)},
	} {
		for _, method := range []string{"POST", "GET", "DELETE"} {
			body := ""
			if method == "POST" {
				body = ping
			}
			if resp, raw := b.Send(t, method, c.path, c.key, c.session, body, nil); resp.StatusCode != http.StatusNotFound || !strings.Contains(raw, "SessionNotFound") {
				t.Errorf("%s %s: %d %.200s, want 404", c.what, method, resp.StatusCode, raw)
			}
		}
	}
	if b.live() != 0 || b.registered.Load() != 0 {
		t.Errorf("B adopted %d sessions (mcp-go registered %d), want none", b.live(), b.registered.Load())
	}
	if n := b.log.count("tenant_access_denied foreign_session"); n != 6 {
		t.Errorf("%d refused attempts recorded on B, want 6 (another identity's POST, GET, DELETE, of either tenant)", n)
	}
	if resp, raw := b.Send(t, "POST", "/mcp", "key-a", session, ping, nil); resp.StatusCode != http.StatusOK {
		t.Errorf("the session's owner on B: %d %s", resp.StatusCode, raw)
	}
}

// TestSealedSessionEnded: a DELETE ends the session on every replica told
// of it (A's SessionEnded calls B.EndSession), whichever replica it is
// sent to, and whether or not the other holds the session; an ended ID is
// not adopted again. Without a sealer, sessions are a replica's own, as
// before.
func TestSealedSessionEnded(t *testing.T) {
	sealer := newSealer(t)
	var a, b *replica
	var toldA, toldB atomic.Int64
	a = newReplica(t, HTTPOptions{Sealer: sealer, SessionEnded: func(id string) { toldA.Add(1); b.h.EndSession(id) }})
	b = newReplica(t, HTTPOptions{Sealer: sealer, SessionEnded: func(id string) { toldB.Add(1); a.h.EndSession(id) }})
	const ping = `{"jsonrpc":"2.0","id":2,"method":"ping"}`
	status := func(r *replica, session string) int {
		resp, _ := r.Send(t, "POST", "/mcp", "key-a", session, ping, nil)
		return resp.StatusCode
	}
	// Held by both, ended on A.
	s1 := a.Open(t, "/mcp", "key-a")
	if status(b, s1) != http.StatusOK {
		t.Fatal("B does not serve A's session")
	}
	if resp, _ := a.Send(t, "DELETE", "/mcp", "key-a", s1, "", nil); resp.StatusCode != http.StatusOK {
		t.Fatalf("DELETE on A: %d", resp.StatusCode)
	}
	if status(b, s1) != http.StatusNotFound || status(a, s1) != http.StatusNotFound {
		t.Error("a session ended on A is still served")
	}
	// Held by A only, ended on B (which adopts nothing for it).
	s2 := a.Open(t, "/mcp", "key-a")
	if resp, _ := b.Send(t, "DELETE", "/mcp", "key-a", s2, "", nil); resp.StatusCode != http.StatusOK {
		t.Fatalf("DELETE on B: %d", resp.StatusCode)
	}
	if status(a, s2) != http.StatusNotFound || status(b, s2) != http.StatusNotFound {
		t.Error("a session ended on B is still served")
	}
	if toldA.Load() != 1 || toldB.Load() != 1 {
		t.Errorf("SessionEnded told %d times on A, %d on B; want once each", toldA.Load(), toldB.Load())
	}
	if a.live() != 0 || b.live() != 0 {
		t.Errorf("%d and %d sessions live on A and B after the ends", a.live(), b.live())
	}
	// Without a sealer: a session made on one replica is unknown to another.
	c, d := newReplica(t, HTTPOptions{}), newReplica(t, HTTPOptions{})
	s3 := c.Open(t, "/mcp", "key-a")
	if strings.HasPrefix(s3, sealedPrefix) || status(d, s3) != http.StatusNotFound || status(c, s3) != http.StatusOK {
		t.Errorf("without a sealer: session %q served on another replica, or not on its own", s3)
	}
}

// TestSealedSessionExpiry: a sealed session ends at its absolute expiry on
// the replica that made it and on any other; a sweep of idle sessions
// drops a replica's copy only, and the session is adopted again there.
func TestSealedSessionExpiry(t *testing.T) {
	sealer := newSealer(t)
	const ping = `{"jsonrpc":"2.0","id":2,"method":"ping"}`
	a := newReplica(t, HTTPOptions{Sealer: sealer, SessionMaxAge: 600 * time.Millisecond})
	b := newReplica(t, HTTPOptions{Sealer: sealer, SessionMaxAge: 600 * time.Millisecond})
	expiring := a.Open(t, "/mcp", "key-a")
	if resp, _ := b.Send(t, "POST", "/mcp", "key-a", expiring, ping, nil); resp.StatusCode != http.StatusOK {
		t.Fatalf("B: %d", resp.StatusCode)
	}
	time.Sleep(700 * time.Millisecond)
	for name, r := range map[string]*replica{"A": a, "B": b} {
		if resp, _ := r.Send(t, "POST", "/mcp", "key-a", expiring, ping, nil); resp.StatusCode != http.StatusNotFound {
			t.Errorf("%s serves the session past its expiry: %d", name, resp.StatusCode)
		}
	}
	b.h.sessions.endAll() // B restarted: it does not adopt it again
	if resp, _ := b.Send(t, "POST", "/mcp", "key-a", expiring, ping, nil); resp.StatusCode != http.StatusNotFound {
		t.Errorf("B, restarted, adopts the session past its expiry: %d", resp.StatusCode)
	}

	const ttl = 200 * time.Millisecond
	c := newReplica(t, HTTPOptions{Sealer: sealer, SessionIdleTTL: ttl})
	swept := c.Open(t, "/mcp", "key-a")
	for deadline := time.Now().Add(3 * time.Second); c.live() > 0 && time.Now().Before(deadline); {
		time.Sleep(20 * time.Millisecond)
	}
	if c.live() != 0 {
		t.Fatal("the idle session was not swept")
	}
	if resp, _ := c.Send(t, "POST", "/mcp", "key-a", swept, ping, nil); resp.StatusCode != http.StatusOK || c.live() != 1 {
		t.Errorf("a swept sealed session used again: %d, %d live; want it adopted again", resp.StatusCode, c.live())
	}
}

// TestSealedSessionLimits: an adopted session takes a place under the
// bounds (past them, adoption is refused as an initialize is); the ended
// sessions remembered are bounded; an initialize too large to seal makes
// a session of this replica's alone.
func TestSealedSessionLimits(t *testing.T) {
	sealer := newSealer(t)
	a := newReplica(t, HTTPOptions{Sealer: sealer})
	b := newReplica(t, HTTPOptions{Sealer: sealer, MaxSessionsPerIdentity: 1})
	s1, s2 := a.Open(t, "/mcp", "key-a"), a.Open(t, "/mcp", "key-a")
	const ping = `{"jsonrpc":"2.0","id":2,"method":"ping"}`
	if resp, _ := b.Send(t, "POST", "/mcp", "key-a", s1, ping, nil); resp.StatusCode != http.StatusOK {
		t.Fatalf("first adoption: %d", resp.StatusCode)
	}
	if resp, raw := b.Send(t, "POST", "/mcp", "key-a", s2, ping, nil); resp.StatusCode != http.StatusTooManyRequests || !strings.Contains(raw, "CONNECTORS_MAX_SESSIONS_PER_IDENTITY") {
		t.Errorf("an adoption past the bound: %d %s, want 429", resp.StatusCode, raw)
	}
	if b.live() != 1 {
		t.Errorf("%d sessions live on B, want 1", b.live())
	}

	ss := a.h.sessions.sealed
	c := &sealedClaims{Created: time.Now().UnixMilli()}
	for i := range maxEndedSessions + 10 {
		ss.remember(string(rune(i))+"x", c)
	}
	if n := len(ss.gone); n > maxEndedSessions {
		t.Errorf("%d ended sessions remembered, bound %d", n, maxEndedSessions)
	}

	big := strings.Replace(initBody, `"capabilities":{}`, `"capabilities":{"experimental":{"x":"`+strings.Repeat("y", maxSealedSession)+`"}}`, 1)
	resp, raw := a.Send(t, "POST", "/mcp", "key-b", "", big, map[string]string{"MCP-Protocol-Version": ""})
	local := resp.Header.Get("Mcp-Session-Id")
	if resp.StatusCode != http.StatusOK || local == "" || strings.HasPrefix(local, sealedPrefix) {
		t.Errorf("an initialize too large to seal: %d %q %.100s; want a local session", resp.StatusCode, local, raw)
	}
}

// TestSealedSessionAdoptedOnce: concurrent first requests of a session on
// a replica that does not hold it adopt it once: one live session, one
// registration with mcp-go, every request served, none refused by a bound
// the one session fits in.
func TestSealedSessionAdoptedOnce(t *testing.T) {
	sealer := newSealer(t)
	a, b := newReplica(t, HTTPOptions{Sealer: sealer}), newReplica(t, HTTPOptions{Sealer: sealer, MaxSessionsPerIdentity: 1})
	session := a.Open(t, "/mcp", "key-a")
	var wg sync.WaitGroup
	var served atomic.Int64
	for range 20 {
		wg.Go(func() {
			resp, raw := b.Send(t, "POST", "/mcp", "key-a", session, `{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"whoami"}}`, nil)
			if resp.StatusCode == http.StatusOK && strings.Contains(raw, "tenant-a") {
				served.Add(1)
			}
		})
	}
	wg.Wait()
	if served.Load() != 20 || b.live() != 1 || b.registered.Load() != 1 || b.log.count("mcp_session_adopted") != 1 {
		t.Errorf("20 concurrent first requests on B: %d served, %d live, %d registered with mcp-go, %d adoptions; want 20, 1, 1, 1",
			served.Load(), b.live(), b.registered.Load(), b.log.count("mcp_session_adopted"))
	}
}
