package main

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/mcp"
)

// TestLimitsStdioProcesses: with every tenant allowed one stdio upstream
// process (CONNECTORS_LIMIT_STDIO_PROCESSES=1), a tenant's two stdio
// integrations take turns on one process, the idle one closed to start
// the other; while its one process is busy a call of the other waits
// CONNECTORS_CALL_QUEUE_WAIT and is then refused (stdio_processes: a tool
// error with the delay in _meta; REST invoke 429 RateLimited), counted,
// and other tenants go on; once the call ends the other integration's
// calls pass again. An override of two lets both run at once; an
// integration's own stdioProcesses, or a negative one, is refused naming
// the field.
func TestLimitsStdioProcesses(t *testing.T) {
	g := newGatewayWithCredentials(t, map[string]string{"CONNECTORS_LIMIT_STDIO_PROCESSES": "1", "CONNECTORS_CALL_QUEUE_WAIT": "2s"},
		stdioEcho(t, "one", "--slow"), stdioEcho(t, "two"))
	g.withAdmin()
	g.serve()
	a := g.client("tenant-a")
	if names := toolNames(t, a); !slices.Contains(names, "one_echo") || !slices.Contains(names, "one_slow") || !slices.Contains(names, "two_echo") {
		t.Fatalf("tools/list with one process at a time: %q, want both integrations' tools", names)
	}
	for _, name := range []string{"one_echo", "two_echo", "one_echo", "two_echo"} {
		if res, err := echoCall(t, a, name); err != nil || res.IsError || toolText(t, res) != "hi" {
			t.Fatalf("%s, taking turns on one process: %+v %v", name, res, err)
		}
	}
	if n := strings.Count(g.stderr.String(), `"reason":"stdio_processes"`); n < 3 {
		t.Errorf("%d processes closed to make room (upstream_evicted reason=stdio_processes), want at least 3\n%s", n, lastLines(g.stderr.String(), 40))
	}

	held := holdSlow(t, a, "one_slow", 6000) // past the two waits below
	begin := time.Now()
	res, err := echoCall(t, a, "two_echo")
	waited := time.Since(begin)
	if err != nil || !res.IsError || res.Meta == nil || res.Meta.AdditionalFields["connectors/limit"] != "stdio_processes" ||
		res.Meta.AdditionalFields["connectors/retryAfterMs"] == nil || !strings.Contains(toolText(t, res), "1 stdio upstream processes") || waited < 1900*time.Millisecond {
		t.Errorf("two_echo while one's process is busy: %+v %v after %v, want stdio_processes after the wait", res, err, waited)
	}
	status, body, raw := g.api("tenant-a", "POST", "/api/v1/tools/invoke", `{"toolId": "two.echo", "parameters": {"text": "hi"}}`)
	if status != http.StatusTooManyRequests || body["error"] != "RateLimited" || !strings.Contains(raw, "stdio_processes") {
		t.Errorf("invoke while one's process is busy: %d %s, want 429 RateLimited", status, raw)
	}
	if res, err := echoCall(t, g.client("tenant-b"), "two_echo"); err != nil || res.IsError {
		t.Errorf("tenant-b's call meanwhile: %+v %v", res, err)
	}
	if err := <-held; err != nil {
		t.Fatalf("the slow call: %v", err)
	}
	if res, err := echoCall(t, a, "two_echo"); err != nil || res.IsError || toolText(t, res) != "hi" {
		t.Errorf("two_echo once the call has ended: %+v %v", res, err)
	}
	if n := g.limitRefusals("two", "stdio_processes"); n != 2 {
		t.Errorf("connectors_limit_refusals_total{two,stdio_processes} = %d, want 2", n)
	}

	// Hostile overrides are refused, naming the field; nothing is stored.
	for body, field := range map[string]string{
		`{"integrations": {"one": {"stdioProcesses": 1}}}`: "integrations.one.stdioProcesses",
		`{"stdioProcesses": -1}`:                           "stdioProcesses",
		`{"stdioProcesses": 1e9}`:                          "stdioProcesses",
		`{"stdioProcesses": "2"}`:                          "stdioProcesses",
	} {
		code, out, raw := g.api("admin", "PUT", "/admin/tenants/tenant-a/limits", body)
		if code != http.StatusBadRequest || out["error"] != "ValidationError" || !strings.Contains(raw, field) {
			t.Errorf("PUT limits %s: %d %s, want 400 ValidationError naming %s", body, code, raw, field)
		}
	}
	if code, _, raw := g.api("admin", "GET", "/admin/tenants/tenant-a/limits", ""); code != http.StatusOK || !strings.Contains(raw, `"stdioProcesses":1`) {
		t.Errorf("the limits in force after the refused overrides: %d %s, want the default's stdioProcesses 1", code, raw)
	}
	if code, _, raw := g.api("admin", "PUT", "/admin/tenants/tenant-a/limits", `{"stdioProcesses": 2}`); code != http.StatusOK || !strings.Contains(raw, `"stdioProcesses":2`) {
		t.Fatalf("PUT limits stdioProcesses 2: %d %s", code, raw)
	}
	held = holdSlow(t, a, "one_slow", 1000)
	if res, err := echoCall(t, a, "two_echo"); err != nil || res.IsError || toolText(t, res) != "hi" {
		t.Errorf("two_echo beside the slow call, with two processes allowed: %+v %v", res, err)
	}
	if err := <-held; err != nil {
		t.Fatalf("the slow call: %v", err)
	}
}

// echoCall calls the echo tool name with "hi".
func echoCall(t *testing.T, c *client.Client, name string) (*mcp.CallToolResult, error) {
	t.Helper()
	return c.CallTool(t.Context(), mcp.CallToolRequest{Params: mcp.CallToolParams{Name: name, Arguments: map[string]any{"text": "hi"}}})
}

// holdSlow calls the slow tool name for ms milliseconds in the background,
// and returns once the call is under way; the channel has its outcome.
func holdSlow(t *testing.T, c *client.Client, name string, ms int) <-chan error {
	t.Helper()
	held := make(chan error, 1)
	go func() {
		res, err := c.CallTool(t.Context(), mcp.CallToolRequest{Params: mcp.CallToolParams{Name: name, Arguments: map[string]any{"ms": ms}}})
		if err == nil && res.IsError {
			err = fmt.Errorf("%s: %v", name, res.Content)
		}
		held <- err
	}()
	time.Sleep(300 * time.Millisecond) // the call is under way
	return held
}
