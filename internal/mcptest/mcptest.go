// Package mcptest holds what the tests of the MCP endpoint (server) and of
// the HTTP routes around it (transport) share: small real mcp-go servers,
// a fixed table of API keys, and an MCP client's requests as
// 2025-11-25 and 2026-07-28 clients send them.
package mcptest

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/mcp"
	mcpserver "github.com/mark3labs/mcp-go/server"

	"github.com/connectors-gateway/connectors/tenants"
)

// InitBody is a 2025-11-25 initialize request.
const InitBody = `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}`

// Keys is a fixed table of API keys (bearer tokens), standing in for
// tenants.APIKeys (whose own tests cover verification).
type Keys map[string]tenants.Identity

// TestKeys are the keys of the tests: two identities of tenant-a, one of
// tenant-b.
var TestKeys = Keys{
	"key-a":  {Tenant: "tenant-a", Subject: "apikey:a"},
	"key-a2": {Tenant: "tenant-a", Subject: "apikey:a2"},
	"key-b":  {Tenant: "tenant-b", Subject: "apikey:b"},
}

// Authenticate returns the identity of r's bearer token.
func (k Keys) Authenticate(r *http.Request) (tenants.Identity, error) {
	scheme, token, _ := strings.Cut(r.Header.Get("Authorization"), " ")
	if id, ok := k[strings.TrimSpace(token)]; ok && strings.EqualFold(scheme, "Bearer") {
		return id, nil
	}
	return tenants.Identity{}, errors.New("bad key")
}

// Authenticated serves next with the identity of the request's key on its
// context and the Authorization header removed, as transport does; 401
// for a request without a known key.
func (k Keys) Authenticated(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, err := k.Authenticate(r)
		if err != nil {
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		r.Header.Del("Authorization")
		next.ServeHTTP(w, r.WithContext(tenants.NewContext(r.Context(), id)))
	})
}

// Counts are what the tools and hooks of a [NewServer] saw.
type Counts struct {
	Calls      atomic.Int64 // tool and prompt handlers run
	Cancelled  atomic.Int64 // sleeps ended by their context
	Forgotten  atomic.Int64 // sessions unregistered
	Registered atomic.Int64 // sessions registered
}

// NewServer returns an mcp-go server named name with the tools "whoami"
// (which answers the tenant on the context), "sleep" (which sleeps for its
// "ms" argument, or until its context ends) and "big" (whose answer is
// "bytes" long), and the prompt "greet", counting in c.
func NewServer(name string, c *Counts) *mcpserver.MCPServer {
	hooks := &mcpserver.Hooks{}
	hooks.AddOnRegisterSession(func(context.Context, mcpserver.ClientSession) { c.Registered.Add(1) })
	hooks.AddOnUnregisterSession(func(context.Context, mcpserver.ClientSession) { c.Forgotten.Add(1) })
	srv := mcpserver.NewMCPServer(name, "1", mcpserver.WithHooks(hooks), mcpserver.WithPromptCapabilities(false))
	srv.AddTool(mcp.NewTool("whoami"), func(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		c.Calls.Add(1)
		id, _ := tenants.FromContext(ctx)
		return mcp.NewToolResultText(id.Tenant), nil
	})
	srv.AddTool(mcp.NewTool("sleep", mcp.WithNumber("ms")), func(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		c.Calls.Add(1)
		select {
		case <-time.After(time.Duration(req.GetFloat("ms", 0)) * time.Millisecond):
			return mcp.NewToolResultText("slept"), nil
		case <-ctx.Done():
			c.Cancelled.Add(1)
			return nil, ctx.Err()
		}
	})
	srv.AddTool(mcp.NewTool("big", mcp.WithNumber("bytes")), func(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		c.Calls.Add(1)
		return mcp.NewToolResultText(strings.Repeat("x", int(req.GetFloat("bytes", 0)))), nil
	})
	srv.AddPrompt(mcp.NewPrompt("greet", mcp.WithArgument("who")), func(ctx context.Context, req mcp.GetPromptRequest) (*mcp.GetPromptResult, error) {
		c.Calls.Add(1)
		return mcp.NewGetPromptResult("hi", nil), nil
	})
	return srv
}

// NewWhoami returns an mcp-go server with one tool, "whoami", that
// answers the tenant on the context and any Authorization header it saw,
// as "tenant|header".
func NewWhoami() *mcpserver.MCPServer {
	srv := mcpserver.NewMCPServer("test", "1")
	srv.AddTool(mcp.NewTool("whoami"), func(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		id, _ := tenants.FromContext(ctx)
		return mcp.NewToolResultText(id.Tenant + "|" + req.Header.Get("Authorization")), nil
	})
	return srv
}

// Server is an MCP endpoint under test.
type Server struct{ *httptest.Server }

// Send is one request to path, as key, with the headers of a 2025-11-25
// client (more, or other, in header: an empty value removes one), and its
// answer.
func (s Server) Send(t testing.TB, method, path, key, session, body string, header map[string]string) (*http.Response, string) {
	t.Helper()
	base := s.URL
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	r, _ := http.NewRequestWithContext(ctx, method, base+path, strings.NewReader(body))
	r.Header.Set("Content-Type", "application/json")
	r.Header.Set("Accept", "application/json, text/event-stream")
	r.Header.Set("MCP-Protocol-Version", "2025-11-25")
	r.Header.Set("Authorization", "Bearer "+key)
	if session != "" {
		r.Header.Set("Mcp-Session-Id", session)
	}
	for k, v := range header {
		if v == "" {
			r.Header.Del(k)
		} else {
			r.Header.Set(k, v)
		}
	}
	resp, err := http.DefaultClient.Do(r)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	return resp, string(raw)
}

// Open initializes a session on path as key and returns its ID.
func (s Server) Open(t testing.TB, path, key string) string {
	t.Helper()
	resp, body := s.Send(t, "POST", path, key, "", InitBody, map[string]string{"MCP-Protocol-Version": ""})
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Mcp-Session-Id") == "" {
		t.Fatalf("initialize %s as %s: %d %s", path, key, resp.StatusCode, body)
	}
	id := resp.Header.Get("Mcp-Session-Id")
	s.Send(t, "POST", path, key, id, `{"jsonrpc":"2.0","method":"notifications/initialized"}`, nil)
	return id
}

// Req is a request of [Do] to /mcp: POST, JSON, by default.
type Req struct {
	Method, Body, Key, Session, Origin, ContentType string
}

// Do sends r to base's /mcp as a 2025-11-25 client and returns the answer.
func Do(t testing.TB, base string, r Req) (*http.Response, string) {
	t.Helper()
	if r.Method == "" {
		r.Method = http.MethodPost
	}
	hr, _ := http.NewRequest(r.Method, base+"/mcp", strings.NewReader(r.Body))
	if r.ContentType == "" {
		r.ContentType = "application/json"
	}
	hr.Header.Set("Content-Type", r.ContentType)
	hr.Header.Set("Accept", "application/json, text/event-stream")
	hr.Header.Set("MCP-Protocol-Version", "2025-11-25")
	if r.Key != "" {
		hr.Header.Set("Authorization", "Bearer "+r.Key)
	}
	if r.Session != "" {
		hr.Header.Set("Mcp-Session-Id", r.Session)
	}
	if r.Origin != "" {
		hr.Header.Set("Origin", r.Origin)
	}
	resp, err := http.DefaultClient.Do(hr)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

// Initialize opens a session of base's /mcp as key, with [Do], and
// returns its ID.
func Initialize(t testing.TB, base, key string) string {
	t.Helper()
	resp, body := Do(t, base, Req{Body: InitBody, Key: key})
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("initialize: %d %s", resp.StatusCode, body)
	}
	id := resp.Header.Get("Mcp-Session-Id")
	if id == "" {
		t.Fatal("initialize returned no session ID")
	}
	Do(t, base, Req{Body: `{"jsonrpc":"2.0","method":"notifications/initialized"}`, Key: key, Session: id})
	return id
}
