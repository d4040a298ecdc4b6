package server

import (
	"context"
	"errors"
	"log/slog"
	"testing"

	"github.com/mark3labs/mcp-go/mcp"

	"github.com/connectors-gateway/connectors/limits"
	"github.com/connectors-gateway/connectors/tenants"
)

func limitedGateway(l limits.Limits) *Gateway {
	return &Gateway{limits: limits.New(limits.Options{Defaults: l}), log: slog.New(slog.DiscardHandler)}
}

// aRequest is the context of one HTTP request of tenant-a (with its memo).
func aRequest() context.Context {
	return tenants.NewContext(withRequestMemo(context.Background()), tenants.Identity{Tenant: "tenant-a"})
}

// TestHandedOverAdmittedOnce: a call the direct lane admitted and handed
// to the usual lane is admitted there without counting again, and an
// admission the usual lane did not take is freed.
func TestHandedOverAdmittedOnce(t *testing.T) {
	g := limitedGateway(limits.Limits{DailyCalls: 2, ConcurrentCalls: 1})
	ctx := aRequest()
	direct, r := g.admit(ctx, "echo")
	if r != nil {
		t.Fatal(r)
	}
	if !handOver(ctx, "tenant-a", "echo", direct) {
		t.Fatal("no memo to hand over through")
	}
	usual, r := g.admit(ctx, "echo") // its one place in flight is the direct lane's
	if r != nil {
		t.Fatalf("the usual lane refused the call the direct lane admitted: %v", r)
	}
	usual.Release()
	next, r := g.admit(aRequest(), "echo")
	if r != nil {
		t.Fatalf("the next request refused (%v): the handed-over call was counted twice", r)
	}
	next.Release()
	if _, r := g.admit(aRequest(), "echo"); r == nil || r.Limit != limits.LimitDailyCalls {
		t.Fatalf("a third call of 2 a day: %v, want refused", r)
	}

	g = limitedGateway(limits.Limits{ConcurrentCalls: 1})
	ctx = aRequest()
	left, _ := g.admit(ctx, "echo")
	handOver(ctx, "tenant-a", "echo", left)
	releaseHandedOver(ctx) // the usual lane never called
	if _, r := g.admit(aRequest(), "echo"); r != nil {
		t.Fatalf("an admission handed over and not taken was not freed: %v", r)
	}
}

// TestLimitedFreesItsPlace: the usual lane's call frees its place however
// it ends (result, error, panic), and a refusal is a tool error with the
// limit in _meta, or an error for REST invoke.
func TestLimitedFreesItsPlace(t *testing.T) {
	g := limitedGateway(limits.Limits{ConcurrentCalls: 1})
	boom := errors.New("upstream down")
	for _, h := range []func() (*mcp.CallToolResult, error){
		func() (*mcp.CallToolResult, error) { return mcp.NewToolResultText("ok"), nil },
		func() (*mcp.CallToolResult, error) { return nil, boom },
		func() (*mcp.CallToolResult, error) { panic("handler panics") },
	} {
		call := g.limited("echo", func(context.Context, mcp.CallToolRequest) (*mcp.CallToolResult, error) { return h() })
		func() {
			defer func() { _ = recover() }()
			_, _ = call(aRequest(), mcp.CallToolRequest{})
		}()
		free, r := g.admit(aRequest(), "echo")
		if r != nil {
			t.Fatalf("the place was not freed: %v", r)
		}
		free.Release()
	}

	held, _ := g.admit(aRequest(), "echo")
	defer held.Release()
	call := g.limited("echo", func(context.Context, mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		t.Fatal("a refused call reached the handler")
		return nil, nil
	})
	res, err := call(aRequest(), mcp.CallToolRequest{})
	if err != nil || !res.IsError || res.Meta == nil || res.Meta.AdditionalFields[MetaLimit] != limits.LimitConcurrentCalls {
		t.Fatalf("refused: %+v, %v; want a tool error with connectors/limit", res, err)
	}
	if ms, _ := res.Meta.AdditionalFields[MetaRetryAfterMs].(int64); ms != 1000 {
		t.Errorf("connectors/retryAfterMs %v, want 1000", res.Meta.AdditionalFields[MetaRetryAfterMs])
	}
	if _, err := call(withRefusalAsError(aRequest()), mcp.CallToolRequest{}); !isRefusal(err) {
		t.Errorf("refused for REST invoke: %v, want a *limits.Refusal", err)
	}
}
