package server

import (
	"context"
	"errors"
	"time"

	"github.com/mark3labs/mcp-go/mcp"
	mcpserver "github.com/mark3labs/mcp-go/server"

	"github.com/connectors-gateway/connectors/audit"
	"github.com/connectors-gateway/connectors/limits"
	"github.com/connectors-gateway/connectors/tenants"
	"github.com/connectors-gateway/connectors/tools"
)

// Rate limits and quotas. Every lane admits a call before anything is
// sent upstream, with the tenant's limits (the defaults and the override
// in its settings, read with them): the usual lane and REST invoke in
// limited, the direct lane and the tasks lane on their own. A refused call
// is a tool error saying which limit and when to retry, the delay also in
// the result's _meta (REST invoke: an error, which the transport answers
// 429). Each refusal is counted in the metrics, and the first of its
// window audited (rate_limited). A call the direct lane admitted and then
// hands to the usual lane (an upstream asking a 2025-11-25 session for
// input) takes its admission with it, through the request's memo: one
// call, admitted once. An upstream's 429 with Retry-After makes the
// tenant's later calls of it wait here (backoff), refused in the same way,
// and the call that got it is answered as one of them (upstreamRefusal).

// The _meta keys of a refused call's result.
const (
	MetaRetryAfterMs = "connectors/retryAfterMs"
	MetaLimit        = "connectors/limit"
)

type refusalAsErrorKey struct{}

// withRefusalAsError makes a refused call an error (a *limits.Refusal)
// rather than a tool result: REST invoke answers it with HTTP 429.
func withRefusalAsError(ctx context.Context) context.Context {
	return context.WithValue(ctx, refusalAsErrorKey{}, true)
}

// admit admits a call of integration for the tenant of ctx, or refuses
// it (the refusal counted and, first in its window, audited). Release
// the ticket when the call ends. Without limits, or without an identity
// (refused further on), everything is admitted.
func (g *Gateway) admit(ctx context.Context, integration string) (limits.Ticket, *limits.Refusal) {
	id, ok := tenants.FromContext(ctx)
	if g.limits == nil || !ok {
		return limits.Ticket{}, nil
	}
	if t, ok := takeOver(ctx, id.Tenant, integration); ok {
		return t, nil
	}
	// Settings that cannot be read (and were never read) leave the
	// defaults; the call is refused for them further on.
	e, _ := g.settingsEntry(ctx, id.Tenant)
	t, r := g.limits.Admit(id.Tenant, integration, e.limits)
	if r == nil {
		if r = g.limits.Hold(ctx, id.Tenant, &t); r != nil { // the replica's own bound, shared in turn
			t.Release()
		}
	}
	if r != nil {
		g.noteRefusal(ctx, id.Tenant, integration, r)
	}
	return t, r
}

// noteRefusal counts r in the metrics and, when it is the first of its
// window, audits and logs it.
func (g *Gateway) noteRefusal(ctx context.Context, tenant, integration string, r *limits.Refusal) {
	g.metrics.LimitRefusal(integration, r.Limit)
	if !r.First {
		return
	}
	g.audit.Record(ctx, audit.Record{TenantID: tenant, Integration: integration, Operation: audit.OpRateLimited, Reason: r.Limit, Err: r})
	g.log.WarnContext(ctx, "rate_limited", "tenantId", tenant, "integration", integration, "limit", r.Limit,
		"retryAfterMs", retryAfterMs(r), "requestId", audit.RequestID(ctx))
}

// limited admits each call of h (see admit), and frees its place when h
// returns.
func (g *Gateway) limited(integration string, h mcpserver.ToolHandlerFunc) mcpserver.ToolHandlerFunc {
	if g.limits == nil {
		return h
	}
	return func(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		t, r := g.admit(ctx, integration)
		if r != nil {
			return refusedAnswer(ctx, r)
		}
		defer t.Release()
		return h(ctx, req)
	}
}

// refusedAnswer is the usual lane's answer of a call refused for r: its
// tool result, or r itself for REST invoke.
func refusedAnswer(ctx context.Context, r *limits.Refusal) (*mcp.CallToolResult, error) {
	if ctx.Value(refusalAsErrorKey{}) != nil {
		return nil, r
	}
	return limitResult(r), nil
}

// limitResult is the answer of a refused call: a tool error the model
// reads, with the limit and the delay in _meta for agents.
func limitResult(r *limits.Refusal) *mcp.CallToolResult {
	res := mcp.NewToolResultError(r.Error())
	res.Meta = mcp.NewMetaFromMap(map[string]any{MetaRetryAfterMs: retryAfterMs(r), MetaLimit: r.Limit})
	return res
}

// limitedResult reports whether res is limitResult's: a call refused, not
// an upstream's tool error.
func limitedResult(res *mcp.CallToolResult) bool {
	if res == nil || !res.IsError || res.Meta == nil {
		return false
	}
	_, ok := res.Meta.AdditionalFields[MetaLimit]
	return ok
}

// retryAfterMs is r's delay in milliseconds, rounded up.
func retryAfterMs(r *limits.Refusal) int64 {
	return int64((r.RetryAfter + time.Millisecond - 1) / time.Millisecond)
}

// isRefusal reports whether err is a call refused for a limit.
func isRefusal(err error) bool {
	var r *limits.Refusal
	return errors.As(err, &r)
}

// backoff makes the tenant's calls of integration wait, here, as long as
// its upstream asked on conn (HTTP 429 with Retry-After): they are refused
// as for a limit (upstream_rate_limit) until then. Other tenants, and the
// tenant's other integrations, are not affected.
func (g *Gateway) backoff(tenant, integration string, conn *tools.Conn) {
	if g.limits == nil {
		return
	}
	if until := conn.ThrottledUntil(); !until.IsZero() {
		g.limits.Backoff(tenant, integration, until)
	}
}

// upstreamRefusal is err, a failed call of integration on conn, as the
// refusal of the upstream's own limit (upstream_rate_limit) when the
// upstream has asked the tenant to wait (HTTP 429 with Retry-After): the
// agent is told when to retry, as for the calls the gateway refuses in
// the wait. It is not counted among the gateway's refusals: the call
// reached the upstream. Else err as it is.
func upstreamRefusal(integration string, conn *tools.Conn, err error) error {
	until := conn.ThrottledUntil()
	if err == nil || until.IsZero() {
		return err
	}
	return &limits.Refusal{Limit: limits.LimitUpstream, Integration: integration, RetryAfter: time.Until(until)}
}

// withStdioLimit bounds, in ctx, the stdio upstream processes the tenant
// may have running (tools.WithStdioLimit), for a connection to in: its
// limit in force. An HTTP upstream's connection is no process of its.
func (g *Gateway) withStdioLimit(ctx context.Context, tenant string, in tools.Integration) context.Context {
	if g.limits == nil || in.Upstream.Command == "" {
		return ctx
	}
	e, _ := g.settingsEntry(ctx, tenant)
	return tools.WithStdioLimit(ctx, int(e.limits.Apply(g.limits.Defaults()).StdioProcesses), g.limits.Wait())
}

// stdioRefusal is err, a connection not made, as a refusal for the
// tenant's stdio_processes limit when that is why; else err as it is.
// The agent may retry once a call of another of its stdio integrations
// has ended.
func stdioRefusal(err error) error {
	if le, ok := errors.AsType[*tools.StdioLimitError](err); ok {
		return &limits.Refusal{Limit: limits.LimitStdioProcesses, Max: int64(le.Max), RetryAfter: time.Second}
	}
	return err
}

// noteStdioRefusal counts and records r, a call refused for its tenant's
// stdio processes, as noteRefusal does; the first of each tenant's
// minute is the one audited.
func (g *Gateway) noteStdioRefusal(ctx context.Context, integration string, r *limits.Refusal) {
	id, _ := tenants.FromContext(ctx)
	now := time.Now().Unix() / 60
	last, _ := g.stdioRefused.Swap(id.Tenant, now)
	r.First = last != now
	g.noteRefusal(ctx, id.Tenant, integration, r)
}

// handOver keeps t, a call the direct lane admitted, in the request's
// memo for the usual lane to take (takeOver); false without a memo.
func handOver(ctx context.Context, tenant, integration string, t limits.Ticket) bool {
	m, _ := ctx.Value(memoKey{}).(*requestMemo)
	if m == nil {
		return false
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.tickets == nil {
		m.tickets = map[memoRef]limits.Ticket{}
	}
	m.tickets[memoRef{tenant, integration}] = t
	return true
}

// takeOver takes the admission the direct lane handed over, if any.
func takeOver(ctx context.Context, tenant, integration string) (limits.Ticket, bool) {
	m, _ := ctx.Value(memoKey{}).(*requestMemo)
	if m == nil {
		return limits.Ticket{}, false
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	t, ok := m.tickets[memoRef{tenant, integration}]
	delete(m.tickets, memoRef{tenant, integration})
	return t, ok
}

// releaseHandedOver frees the admissions handed over that the usual lane
// did not take (it refused the request before calling).
func releaseHandedOver(ctx context.Context) {
	m, _ := ctx.Value(memoKey{}).(*requestMemo)
	if m == nil {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	for ref, t := range m.tickets {
		t.Release()
		delete(m.tickets, ref)
	}
}
