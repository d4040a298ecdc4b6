package tools

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"
)

// goUpstream is a streamable-HTTP MCP server built with mcp-go's server
// package, in front of which the test sees every request.
type goUpstream struct {
	*httptest.Server

	// legacy makes it answer server/discover like a server that predates
	// 2026-07-28, so the client falls back to the initialize handshake and
	// a session.
	legacy bool

	mu       sync.Mutex
	headers  []http.Header // of every request
	methods  []string      // JSON-RPC method of every POST
	sessions []string      // session IDs handed out
	expired  map[string]bool

	blockStarted chan struct{} // a block call started
	blockEnded   chan error    // why it ended
	failWith     atomic.Pointer[func(w http.ResponseWriter, r *http.Request) bool]
}

func newGoUpstream(t *testing.T, legacy bool) *goUpstream {
	u := &goUpstream{legacy: legacy, expired: map[string]bool{}, blockStarted: make(chan struct{}, 10), blockEnded: make(chan error, 10)}
	s := server.NewMCPServer("go-upstream", "1.0.0")
	s.AddTool(mcp.NewTool("whoami", mcp.WithDescription("Echoes a header.")),
		func(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			// Hex: the gateway redacts credentials it sees in results.
			res := mcp.NewToolResultText("auth=" + hex.EncodeToString([]byte(req.Header.Get("Authorization"))))
			res.StructuredContent = map[string]any{"team": req.Header.Get("X-Team")}
			res.Meta = &mcp.Meta{AdditionalFields: map[string]any{"upstream": "go"}}
			return res, nil
		})
	s.AddTool(mcp.NewTool("block", mcp.WithDescription("Waits until cancelled.")),
		func(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			u.blockStarted <- struct{}{}
			select {
			case <-ctx.Done():
				u.blockEnded <- ctx.Err()
				return nil, ctx.Err()
			case <-time.After(20 * time.Second):
				u.blockEnded <- nil
				return mcp.NewToolResultText("not cancelled"), nil
			}
		})
	mcpHandler := server.NewStreamableHTTPServer(s)
	u.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if f := u.failWith.Load(); f != nil && (*f)(w, r) {
			return
		}
		body, _ := io.ReadAll(r.Body)
		r.Body = io.NopCloser(bytes.NewReader(body))
		var msg struct {
			ID     json.RawMessage `json:"id"`
			Method string          `json:"method"`
		}
		_ = json.Unmarshal(body, &msg)
		sid := r.Header.Get("Mcp-Session-Id")
		u.mu.Lock()
		u.headers = append(u.headers, r.Header.Clone())
		if r.Method == http.MethodPost {
			u.methods = append(u.methods, msg.Method)
		}
		expired := sid != "" && u.expired[sid]
		u.mu.Unlock()
		if expired {
			http.Error(w, "session expired", http.StatusNotFound)
			return
		}
		if u.legacy && msg.Method == "server/discover" {
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write([]byte(`{"jsonrpc":"2.0","id":` + string(msg.ID) + `,"error":{"code":-32601,"message":"Method not found"}}`))
			return
		}
		rec := &sessionRecorder{ResponseWriter: w, u: u}
		mcpHandler.ServeHTTP(rec, r)
	}))
	t.Cleanup(u.Close)
	return u
}

type sessionRecorder struct {
	http.ResponseWriter
	u *goUpstream
}

func (s *sessionRecorder) WriteHeader(code int) {
	if sid := s.Header().Get("Mcp-Session-Id"); sid != "" {
		s.u.mu.Lock()
		if len(s.u.sessions) == 0 || s.u.sessions[len(s.u.sessions)-1] != sid {
			s.u.sessions = append(s.u.sessions, sid)
		}
		s.u.mu.Unlock()
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *sessionRecorder) Flush() {
	if f, ok := s.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (u *goUpstream) integration(headers map[string]string) Integration {
	return Integration{Name: "goup", Category: "test", Upstream: Upstream{URL: u.URL + "/mcp", Headers: headers}}
}

func (u *goUpstream) snapshot() (headers []http.Header, methods, sessions []string) {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]http.Header(nil), u.headers...), append([]string(nil), u.methods...), append([]string(nil), u.sessions...)
}

func TestHTTPHeaderTemplates(t *testing.T) {
	t.Parallel()
	for _, legacy := range []bool{false, true} {
		name := map[bool]string{false: "2026-07-28", true: "legacy"}[legacy]
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			u := newGoUpstream(t, legacy)
			p := newTestPool(t, nil, nil)
			in := u.integration(map[string]string{"Authorization": "{{token_type}} {{access_token}}", "X-Team": "{{extra.team_id}}"})
			vars := map[string]string{"access_token": "tok-tenant-a-1", "token_type": "Bearer", "extra.team_id": "T42"}
			c := mustConn(t, p, "tenant-a", in, vars)

			// The agent's own header never goes upstream.
			req := callReq("whoami", nil, nil)
			req.Header = http.Header{"Authorization": {"Bearer agent-token"}, "X-Team": {"agent"}}
			res, err := c.CallTool(context.Background(), req, nil)
			if err != nil {
				t.Fatal(err)
			}
			if got := text(t, res); got != "auth="+hex.EncodeToString([]byte("Bearer tok-tenant-a-1")) {
				t.Errorf("whoami = %q", got)
			}
			if sc, _ := res.StructuredContent.(map[string]any); sc["team"] != "T42" {
				t.Errorf("structuredContent = %v, want team T42", res.StructuredContent)
			}
			if res.Meta == nil || res.Meta.AdditionalFields["upstream"] != "go" {
				t.Errorf("_meta lost: %+v", res.Meta)
			}
			if _, err := c.Tools(context.Background()); err != nil {
				t.Fatal(err)
			}
			headers, methods, _ := u.snapshot()
			if len(headers) < 3 {
				t.Fatalf("only %d requests: %v", len(headers), methods)
			}
			for i, h := range headers {
				if h.Get("Authorization") != "Bearer tok-tenant-a-1" || h.Get("X-Team") != "T42" {
					t.Errorf("request %d (%s): Authorization %q, X-Team %q", i, methods[min(i, len(methods)-1)], h.Get("Authorization"), h.Get("X-Team"))
				}
			}
		})
	}
}

func TestHTTPSessionExpired(t *testing.T) {
	t.Parallel()
	u := newGoUpstream(t, true)
	p := newTestPool(t, nil, nil)
	c := mustConn(t, p, "tenant-a", u.integration(map[string]string{"Authorization": "Bearer {{access_token}}"}), map[string]string{"access_token": "tok-123456"})
	if _, err := c.CallTool(context.Background(), callReq("whoami", nil, nil), nil); err != nil {
		t.Fatal(err)
	}
	_, _, sessions := u.snapshot()
	if len(sessions) != 1 {
		t.Fatalf("sessions = %v, want one (is the upstream legacy?)", sessions)
	}
	u.mu.Lock()
	u.expired[sessions[0]] = true
	u.mu.Unlock()

	res, err := c.CallTool(context.Background(), callReq("whoami", nil, nil), nil)
	if err != nil {
		t.Fatalf("call after the session expired: %v", err)
	}
	if text(t, res) != "auth="+hex.EncodeToString([]byte("Bearer tok-123456")) {
		t.Errorf("whoami = %q", text(t, res))
	}
	_, methods, sessions := u.snapshot()
	if len(sessions) != 2 {
		t.Errorf("sessions = %v, want a second one", sessions)
	}
	n := 0
	for _, m := range methods {
		if m == "initialize" {
			n++
		}
	}
	if n != 2 {
		t.Errorf("%d initialize requests, want 2: %v", n, methods)
	}
}

func TestHTTPCancelReachesUpstream(t *testing.T) {
	t.Parallel()
	for _, legacy := range []bool{false, true} {
		name := map[bool]string{false: "2026-07-28", true: "legacy"}[legacy]
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			u := newGoUpstream(t, legacy)
			p := newTestPool(t, nil, nil)
			c := mustConn(t, p, "tenant-a", u.integration(nil), nil)
			ctx, cancel := context.WithCancel(context.Background())
			errc := make(chan error, 1)
			go func() {
				_, err := c.CallTool(ctx, callReq("block", nil, nil), nil)
				errc <- err
			}()
			select {
			case <-u.blockStarted:
			case <-time.After(5 * time.Second):
				t.Fatal("block never started")
			}
			cancel()
			select {
			case err := <-errc:
				if err != context.Canceled {
					t.Errorf("CallTool = %v, want context.Canceled", err)
				}
			case <-time.After(2 * time.Second):
				t.Fatal("CallTool did not return after the cancel")
			}
			select {
			case err := <-u.blockEnded:
				if !errors.Is(err, context.Canceled) {
					t.Errorf("upstream handler ended with %v, want cancelled", err)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("upstream handler was not cancelled")
			}
			if legacy {
				waitFor(t, "notifications/cancelled", func() bool {
					_, methods, _ := u.snapshot()
					for _, m := range methods {
						if m == "notifications/cancelled" {
							return true
						}
					}
					return false
				})
			}
		})
	}
}

func TestHTTPErrorsHideTokens(t *testing.T) {
	t.Parallel()
	u := newGoUpstream(t, false)
	// An upstream that echoes the credential in its error.
	fail := func(w http.ResponseWriter, r *http.Request) bool {
		http.Error(w, "bad credential: "+r.Header.Get("Authorization"), http.StatusInternalServerError)
		return true
	}
	u.failWith.Store(&fail)
	var logs lockedBuffer
	p := newTestPool(t, nil, &logs)
	const token = "tok-very-secret-0123"
	_, err := p.Conn(context.Background(), "tenant-a", u.integration(map[string]string{"Authorization": "Bearer {{access_token}}"}), map[string]string{"access_token": token})
	if err == nil {
		t.Fatal("Conn to a failing upstream succeeded")
	}
	if strings.Contains(err.Error(), token) {
		t.Errorf("error leaks the token: %v", err)
	}
	if !strings.Contains(err.Error(), "[redacted]") {
		t.Logf("error: %v", err)
	}
	if strings.Contains(logs.String(), token) {
		t.Errorf("logs leak the token:\n%s", logs.String())
	}
}
