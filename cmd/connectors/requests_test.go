package main

import (
	"encoding/json"
	"strings"
	"testing"
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
