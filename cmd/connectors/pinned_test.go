package main

import (
	"bufio"
	"encoding/json"
	"os/exec"
	"strings"
	"testing"

	"github.com/connectors-gateway/connectors/internal/testenv"
)

// TestPinnedUpstreamProtocol: an agent on 2026-07-28 calls a tool of an
// HTTP upstream pinned to 2025-11-25. The agent's per-request protocol
// metadata belongs to its own hop: forwarded as is, it contradicts the
// pinned version header and the upstream refuses the call.
func TestPinnedUpstreamProtocol(t *testing.T) {
	cmd := exec.Command(testenv.Build(t, "./testdata/upstream-echo"), "--http", "127.0.0.1:0")
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
		t.Fatal("upstream-echo did not start")
	}
	g := newGatewayWith(t, map[string]any{
		"name": "pinned", "protocol": "2025-11-25",
		"upstream": map[string]any{"url": "http://" + ready.Addr + "/mcp"},
	})
	g.serve()
	if got := mustCall(t, g.client("tenant-a"), "pinned_echo", map[string]any{"text": "through a pinned upstream"}); !strings.Contains(got, "through a pinned upstream") {
		t.Errorf("pinned_echo = %q", got)
	}
}
