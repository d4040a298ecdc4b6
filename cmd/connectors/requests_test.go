package main

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestMalformedCallsReachNoUpstream: a tools/call whose id is not a string
// or a number (or is null), or whose arguments are not an object, is
// refused (-32600, -32602) and never reaches the upstream: on the direct
// path and the usual one, on /mcp and /mcp/{integration}, as a 2026-07-28
// request and on a 2025-11-25 session.
func TestMalformedCallsReachNoUpstream(t *testing.T) {
	upURL, up := recordedEcho(t)
	in := map[string]any{"name": "echo", "upstream": map[string]any{
		"url": upURL, "headers": map[string]string{"Authorization": "Bearer {{access_token}}"}}}
	on := newGatewayWithCredentials(t, nil, in)
	off := newGatewayWithCredentials(t, map[string]string{"CONNECTORS_DIRECT_CALLS": "off"}, in)
	cases := []struct {
		name, id, params string
		code             float64
	}{
		{"array arguments", "1", `"arguments":["x"]`, -32602},
		{"string arguments", "2", `"arguments":"x"`, -32602},
		{"number arguments", "3", `"arguments":7`, -32602},
		{"boolean arguments", "4", `"arguments":true`, -32602},
		{"object id", `{"x":1}`, `"arguments":{"text":"a"}`, -32600},
		{"array id", `[5]`, `"arguments":{"text":"a"}`, -32600},
		{"boolean id", `false`, `"arguments":{"text":"a"}`, -32600},
		{"null id", `null`, `"arguments":{"text":"a"}`, -32600},
	}
	for _, g := range []*gateway{on, off} {
		g.serve()
		toolNames(t, g.client("tenant-a")) // discovers the catalogues
		toolNames(t, g.dialPath("tenant-a", "/mcp/echo", nil))
		sessions := map[string]string{"/mcp": g.oldSession("tenant-a", "/mcp", "{}"), "/mcp/echo": g.oldSession("tenant-a", "/mcp/echo", "{}")}
		tools := map[string]string{"/mcp": "echo_echo", "/mcp/echo": "echo"}
		before := len(up.calls())
		for path, tool := range tools {
			for _, c := range cases {
				var answers []string
				_, body := g.post("tenant-a", path, tool, callBody(c.id, tool, c.params), nil)
				answers = append(answers, body)
				_, _, body = g.postOld("tenant-a", path, sessions[path], oldCall(c.id, tool, c.params))
				answers = append(answers, body)
				for i, body := range answers {
					var got struct {
						Error *struct{ Code float64 }
					}
					if json.Unmarshal([]byte(body), &got) != nil || got.Error == nil || got.Error.Code != c.code {
						t.Errorf("%s %s (%s, era %d): %s, want error %v", path, c.name, map[bool]string{true: "direct on", false: "direct off"}[g == on], i, body, c.code)
					}
				}
			}
		}
		if calls := up.calls()[before:]; len(calls) != 0 {
			t.Errorf("%d malformed calls reached the upstream: %v", len(calls), calls)
		}
		// A well-formed call still does (the check is not a wall).
		if _, body := g.post("tenant-a", "/mcp", "echo_echo", callBody("9", "echo_echo", `"arguments":{"text":"fine"}`), nil); !strings.Contains(body, "fine") {
			t.Errorf("a well-formed call: %s", body)
		}
	}
}

// TestSessionBoundsFromEnv: the bounds on sessions and the idle TTL come
// from the environment; a value that is not one is refused at start.
func TestSessionBoundsFromEnv(t *testing.T) {
	g := newGatewayWithEnv(t, map[string]string{
		"CONNECTORS_MAX_SESSIONS_PER_IDENTITY": "2",
		"CONNECTORS_SESSION_IDLE_TTL":          "1s",
	})
	g.serve()
	const init = `{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"connectors-test","version":"1"}}}`
	first := g.oldSession("tenant-a", "/mcp", "{}")
	g.oldSession("tenant-a", "/mcp", "{}")
	if status, hdr, body := g.postOld("tenant-a", "/mcp", "", init); status != http.StatusTooManyRequests || hdr.Get("Mcp-Session-Id") != "" ||
		!strings.Contains(body, "CONNECTORS_MAX_SESSIONS_PER_IDENTITY") {
		t.Errorf("a third session: %d %s, want 429 naming the bound", status, body)
	}
	g.oldSession("tenant-b", "/mcp", "{}") // another identity has its own places
	// Idle past the TTL, the sessions are swept and their places free.
	deadline := time.Now().Add(10 * time.Second)
	for {
		status, _, _ := g.postOld("tenant-a", "/mcp", "", init)
		if status == http.StatusOK {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no place freed by the idle sweep: %d", status)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if status, _, _ := g.postOld("tenant-a", "/mcp", first, `{"jsonrpc":"2.0","id":3,"method":"ping"}`); status != http.StatusNotFound {
		t.Errorf("a swept session: %d, want 404", status)
	}

	for _, env := range []map[string]string{
		{"CONNECTORS_MAX_SESSIONS": "0"},
		{"CONNECTORS_MAX_SESSIONS_PER_TENANT": "-1"},
		{"CONNECTORS_MAX_SESSIONS_PER_IDENTITY": "many"},
		{"CONNECTORS_SESSION_IDLE_TTL": "10ms"},
		{"CONNECTORS_SESSION_IDLE_TTL": "soon"},
	} {
		if _, err := configFromEnv(func(k string) string { return env[k] }); err == nil {
			t.Errorf("%v: accepted", env)
		}
	}
}
