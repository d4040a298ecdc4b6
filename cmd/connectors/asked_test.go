package main

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/mcp"
)

// TestAskedAgentOfTheCall: two agents of one tenant call a tool that asks
// its agent to confirm (input_required, 2026-07-28 upstream). Agent A's
// question comes while B's call, made later, is in flight: it goes to A,
// the agent whose call it belongs to, not to the most recent call.
func TestAskedAgentOfTheCall(t *testing.T) {
	upURL, _ := recordedEcho(t, "--ask")
	// Without the direct path, which would make A's call again (the usual
	// way) once the upstream asks: after B's.
	g := newGatewayWithCredentials(t, map[string]string{"CONNECTORS_DIRECT_CALLS": "off"}, map[string]any{"name": "echo", "upstream": map[string]any{
		"url": upURL, "headers": map[string]string{"Authorization": "Bearer {{access_token}}"}}})
	g.serve()
	var askedA, askedB atomic.Int32
	aAsked := make(chan struct{})
	agent := func(asked *atomic.Int32, ok bool, wait <-chan struct{}) *client.Client {
		c := g.dialPath("tenant-a", "/mcp", nil,
			client.WithProtocolVersion(mcp.ProtocolVersion20251125), client.WithLegacyProtocolOnly(),
			client.WithElicitationHandler(elicitFunc(func(context.Context, mcp.ElicitationRequest) (*mcp.ElicitationResult, error) {
				if asked.Add(1) == 1 && wait != nil {
					// B holds its call in flight until A is asked (or
					// would have been).
					select {
					case <-wait:
					case <-time.After(3 * time.Second):
					}
				}
				return &mcp.ElicitationResult{ElicitationResponse: mcp.ElicitationResponse{
					Action: mcp.ElicitationResponseActionAccept, Content: map[string]any{"ok": ok}}}, nil
			})))
		toolNames(t, c)
		return c
	}
	a := agent(&askedA, true, nil)
	b := agent(&askedB, false, aAsked)
	call := func(c *client.Client, waitMS int) (string, error) {
		res, err := c.CallTool(t.Context(), mcp.CallToolRequest{Params: mcp.CallToolParams{
			Name: "echo_ask", Arguments: map[string]any{"wait_ms": waitMS}}})
		if err != nil || res.IsError || len(res.Content) != 1 {
			return "", fmt.Errorf("%+v %v", res, err)
		}
		return res.Content[0].(mcp.TextContent).Text, nil
	}
	resA := make(chan string, 1)
	go func() {
		text, err := call(a, 600)
		if err != nil {
			t.Errorf("agent A: %v", err)
		}
		resA <- text
	}()
	time.Sleep(150 * time.Millisecond)
	go func() {
		// A is asked, or B a second time (A's question misrouted).
		for askedA.Load() == 0 && askedB.Load() < 2 {
			time.Sleep(5 * time.Millisecond)
		}
		close(aAsked)
	}()
	textB, err := call(b, 0)
	if err != nil {
		t.Fatalf("agent B: %v", err)
	}
	textA := <-resA
	if textA != "confirmed: accept map[ok:true]" || textB != "confirmed: accept map[ok:false]" {
		t.Errorf("A got %q, B got %q", textA, textB)
	}
	if askedA.Load() != 1 || askedB.Load() != 1 {
		t.Errorf("A was asked %d times, B %d times; want once each", askedA.Load(), askedB.Load())
	}
}
