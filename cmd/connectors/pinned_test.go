package main

import (
	"strings"
	"testing"
)

// TestPinnedUpstreamProtocol: an agent on 2026-07-28 calls a tool of an
// HTTP upstream pinned to 2025-11-25. The agent's per-request protocol
// metadata belongs to its own hop: forwarded as is, it contradicts the
// pinned version header and the upstream refuses the call.
func TestPinnedUpstreamProtocol(t *testing.T) {
	upstream, _ := recordedEcho(t)
	g := newGatewayWith(t, map[string]any{
		"name": "pinned", "protocol": "2025-11-25",
		"upstream": map[string]any{"url": upstream},
	})
	g.serve()
	if got := mustCall(t, g.client("tenant-a"), "pinned_echo", map[string]any{"text": "through a pinned upstream"}); !strings.Contains(got, "through a pinned upstream") {
		t.Errorf("pinned_echo = %q", got)
	}
}
