package main

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/mcp"
)

// TestFairShare: with CONNECTORS_MAX_CONCURRENT_CALLS=1 and one tenant's
// call holding the place, another tenant's call waits its turn for
// CONNECTORS_CALL_QUEUE_WAIT and is then refused as the gateway's own limit
// (a tool error naming gateway_saturated with retryAfterMs; REST invoke
// 429 RateLimited with Retry-After), nothing sent upstream; once the place
// is free its calls pass again. (Which tenant gets a freed place, in turn,
// is limits' TestFairTakesTurns.)
func TestFairShare(t *testing.T) {
	g := newGatewayWithCredentials(t, map[string]string{"CONNECTORS_MAX_CONCURRENT_CALLS": "1", "CONNECTORS_CALL_QUEUE_WAIT": "300ms"}, stdioEcho(t, "slowecho", "--slow"))
	g.withAdmin()
	g.serve()
	a, b := g.client("tenant-a"), g.client("tenant-b")
	toolNames(t, a)
	toolNames(t, b)
	held := make(chan error, 1)
	go func() {
		_, err := a.CallTool(t.Context(), mcp.CallToolRequest{Params: mcp.CallToolParams{Name: "slowecho_slow", Arguments: map[string]any{"ms": 2000}}})
		held <- err
	}()
	time.Sleep(300 * time.Millisecond) // a's call holds the place

	begin := time.Now()
	res, err := b.CallTool(t.Context(), mcp.CallToolRequest{Params: mcp.CallToolParams{Name: "slowecho_echo", Arguments: map[string]any{"text": "hi"}}})
	waited := time.Since(begin)
	if err != nil || !res.IsError || res.Meta == nil || res.Meta.AdditionalFields["connectors/limit"] != "gateway_saturated" ||
		!strings.Contains(toolText(t, res), "capacity of 1 calls at once") || waited < 250*time.Millisecond {
		t.Errorf("b's call while a's holds the place: %+v %v after %v", res, err, waited)
	}
	status, body, raw := g.api("tenant-b", "POST", "/api/v1/tools/invoke", `{"toolId": "slowecho.echo", "parameters": {"text": "hi"}}`)
	if status != http.StatusTooManyRequests || body["error"] != "RateLimited" {
		t.Errorf("invoke while a's call holds the place: %d %s", status, raw)
	}
	if err := <-held; err != nil {
		t.Fatalf("a's call: %v", err)
	}
	if n := g.limitRefusals("slowecho", "gateway_saturated"); n != 2 {
		t.Errorf("connectors_limit_refusals_total{slowecho,gateway_saturated} = %d, want 2", n)
	}
	res, err = b.CallTool(t.Context(), mcp.CallToolRequest{Params: mcp.CallToolParams{Name: "slowecho_echo", Arguments: map[string]any{"text": "hi"}}})
	if err != nil || res.IsError || toolText(t, res) != "hi" {
		t.Errorf("b's call once the place is free: %+v %v", res, err)
	}
}
