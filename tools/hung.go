package tools

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/mark3labs/mcp-go/client/transport"
	"github.com/mark3labs/mcp-go/mcp"

	"github.com/connectors-gateway/connectors/telemetry"
)

// A hung upstream (deadlocked, stopped, or a listener that accepts and
// never answers) is told from a slow one by what it sends: after a call
// timed out, an upstream that has sent nothing at all since the call went
// out, and does not answer a ping either, is hung. Its connection ends
// (ErrUpstreamHung): a stdio process is killed with its process group, an
// HTTP session is dropped with the h1 connections idle to its host, and
// the pool starts a fresh one for the next call. An upstream that answered
// anything else meanwhile, or answers the ping, is merely slow on that
// call and keeps serving.

// probeGrace bounds the ping that decides whether an upstream is hung:
// long enough for a busy healthy process to answer, short enough that the
// call that timed out is not held much longer.
func probeGrace(timeout time.Duration) time.Duration {
	return min(max(timeout, time.Second), 5*time.Second)
}

// checkHung ends c when nothing arrived from the upstream since heardAt
// (the count when a call, now timed out, was sent) and a ping goes
// unanswered too. Concurrent callers share one probe.
func (c *Conn) checkHung(heardAt uint64) {
	if c.heard.Load() != heardAt || c.ctx.Err() != nil {
		return
	}
	c.probeMu.Lock()
	defer c.probeMu.Unlock()
	if c.heard.Load() != heardAt || c.ctx.Err() != nil {
		return // another call's probe decided
	}
	c.mu.Lock()
	cli := c.client
	c.mu.Unlock()
	grace := probeGrace(c.timeout)
	if cli != nil {
		ctx, cancel := context.WithTimeout(c.ctx, grace)
		// Sent on the transport itself: mcp-go's client sends no ping on
		// 2026-07-28, where a server may answer it with an error. Any
		// answer, an error included, moves heard: only silence counts.
		_, _ = cli.GetTransport().SendRequest(ctx, transport.JSONRPCRequest{
			JSONRPC: mcp.JSONRPC_VERSION,
			ID:      mcp.NewRequestId("gw-probe-" + strconv.FormatUint(ownSeq.Add(1), 36)),
			Method:  string(mcp.MethodPing),
		})
		cancel()
	}
	if c.heard.Load() != heardAt || c.ctx.Err() != nil {
		return
	}
	c.cancel(fmt.Errorf("%w: nothing arrived for %s after a call was sent, nor an answer to a ping within %s", ErrUpstreamHung, c.timeout, grace))
	c.logger.Warn("upstream_hung", "tenantId", c.tenant, "timeout", c.timeout.String(), "probe", grace.String(), "pid", c.pid)
	if c.kill != nil {
		c.kill()
	}
	if c.direct != nil {
		// Idle connections to a hung server look open and would take
		// the next calls into the same silence.
		c.direct.drop()
	}
	go c.Close()
}

// heardTransport counts every response an HTTP upstream gives, whatever
// its status, as a sign of life of the conn's upstream; and notes the
// wait a 429 asks for (throttle.go).
type heardTransport struct {
	base      http.RoundTripper
	heard     *atomic.Uint64
	throttled *atomic.Int64
}

func (t heardTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if telemetry.On() { // the call's trace context goes on (a RoundTripper changes no request)
		req = req.Clone(req.Context())
		telemetry.Inject(req.Context(), req.Header)
	}
	resp, err := t.base.RoundTrip(req)
	if err == nil {
		noteThrottle(t.throttled, resp)
	}
	// Not the listen stream's answer (listen.go): it was asked for long
	// before, and an upstream whose calls hang may well have opened it.
	if err == nil && req.Header.Get(mcp.HeaderMethod) != string(mcp.MethodSubscriptionsListen) {
		t.heard.Add(1)
	}
	return resp, err
}

// CloseIdleConnections passes on to the base transport.
func (t heardTransport) CloseIdleConnections() {
	if ci, ok := t.base.(interface{ CloseIdleConnections() }); ok {
		ci.CloseIdleConnections()
	}
}

// heardClient is hc with every response counted in heard, and a 429's
// wait noted in throttled.
func heardClient(hc *http.Client, heard *atomic.Uint64, throttled *atomic.Int64) *http.Client {
	c := *hc
	base := hc.Transport
	if base == nil {
		base = http.DefaultTransport
	}
	c.Transport = heardTransport{base: base, heard: heard, throttled: throttled}
	return &c
}
