package main

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/mcp"
)

// TestUpstreamQuestionStaysWithItsAgent: two initialize-era agents of
// tenant-a, each in its own session, share the gateway's session of an
// upstream pinned to 2025-11-25, which asks for sampling on its GET
// stream, outside any call (mcp-go's server does). Alone, agent A's call
// gets A's answers. While A's call waits for its second question (sampling)
// and agent B's call is in flight too, the question cannot be told to be
// A's: it is refused, A's call fails, and B is never asked it (it used to
// be put to the most recent call's agent, B, whose answer went back as
// A's: the conformance suite's tools-call-sampling, now and then, when
// three suites of one tenant ran at once).
func TestUpstreamQuestionStaysWithItsAgent(t *testing.T) {
	g := fixtureGateway(t, startConformanceFixture(t), "2025-11-25")
	a := eraAgent(t, g, "tenant-a", mcp.ProtocolVersion20251125)
	b := eraAgent(t, g, "tenant-a", mcp.ProtocolVersion20251125)
	a.says, b.says = "agent A", "agent B"
	const tool = "conformance_test_elicitation_then_sampling"

	if got := a.call(t, tool, nil); got != "tenant-a-name: agent A says Paris" {
		t.Fatalf("A alone: %q", got)
	}

	// A's first question (on its call's stream, so A's for sure) is
	// answered only once B's call is in flight, held in B's own question.
	inB, release, doneB := make(chan struct{}), make(chan struct{}), make(chan string, 1)
	b.onElicit = func() { close(inB); <-release }
	a.onElicit = func() {
		a.onElicit = nil
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			res, err := b.CallTool(ctx, mcp.CallToolRequest{Params: mcp.CallToolParams{Name: "conformance_test_elicitation", Arguments: map[string]any{"message": "who?"}}})
			doneB <- fmt.Sprint(res, err)
		}()
		<-inB
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	res, err := a.CallTool(ctx, mcp.CallToolRequest{Params: mcp.CallToolParams{Name: tool}})
	close(release)
	if got := fmt.Sprint(res, err); strings.Contains(got, "agent B") || err == nil && !res.IsError {
		t.Errorf("A's call beside B's: %s, want it refused and nothing of B's in it", got)
	}
	select {
	case got := <-doneB:
		if !strings.Contains(got, "action=accept") {
			t.Errorf("B's own call: %s", got)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("B's call did not end")
	}
	asked, _ := b.got()
	if len(asked) != 1 || !strings.HasPrefix(asked[0], "elicitation: ") {
		t.Errorf("B was asked %q, want only its own elicitation", asked)
	}
	if !strings.Contains(g.stderr.String(), "upstream_request_ambiguous") {
		t.Error("the refusal was not logged (upstream_request_ambiguous)")
	}
}
