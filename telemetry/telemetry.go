// Package telemetry traces the gateway's work with OpenTelemetry: a span
// for each HTTP request, with authentication, each credential-store
// operation and each upstream call as its children, and a span for each
// background token refresh. W3C trace context comes in with the agent's
// request (its traceparent header, or "traceparent" in a call's _meta)
// and goes on to the upstream (its HTTP request's headers and the call's
// _meta).
//
// It is off unless configured by the standard OTEL_* variables (Setup):
// then every function here is a check of one atomic flag, and nothing is
// allocated. Spans carry names and IDs (tenant, integration, tool, HTTP
// route and status), never a credential, a key or a request's arguments.
package telemetry

import (
	"context"
	"net/http"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

// on is set while a tracer provider of Setup's is installed.
var on atomic.Bool

// propagator is W3C trace context, the one the MCP _meta convention uses.
var propagator = propagation.TraceContext{}

const scope = "github.com/connectors-gateway/connectors"

// On reports whether spans are recorded.
func On() bool { return on.Load() }

func tracer() trace.Tracer { return otel.Tracer(scope) }

// Start starts a span named name as a child of ctx's, with attrs; with
// tracing off it returns ctx and nil. Callers on a hot path check On
// first, so that with tracing off not even attrs are built:
//
//	var span trace.Span
//	if telemetry.On() {
//		ctx, span = telemetry.Start(ctx, "upstream tools/call", ...)
//	}
//	defer func() { telemetry.End(span, err) }()
func Start(ctx context.Context, name string, attrs ...attribute.KeyValue) (context.Context, trace.Span) {
	if !on.Load() {
		return ctx, nil
	}
	return tracer().Start(ctx, name, trace.WithAttributes(attrs...))
}

// End ends span (from Start; nil: nothing) with err's outcome.
func End(span trace.Span, err error) {
	if span == nil {
		return
	}
	if err != nil {
		span.SetStatus(codes.Error, "failed") // the error's text may quote what it should not
	}
	span.End()
}

// StartServer starts the span of one HTTP request to the gateway, its
// parent the traceparent header when the agent sent one.
func StartServer(r *http.Request) (context.Context, trace.Span) {
	ctx := r.Context()
	if !on.Load() {
		return ctx, nil
	}
	ctx = propagator.Extract(ctx, propagation.HeaderCarrier(r.Header))
	return tracer().Start(ctx, "HTTP "+r.Method, trace.WithSpanKind(trace.SpanKindServer),
		trace.WithAttributes(attribute.String("http.request.method", r.Method)))
}

// EndServer ends a StartServer span (nil when tracing was off), named
// after the route that served it (pattern) and its status.
func EndServer(span trace.Span, pattern string, status int) {
	if span == nil {
		return
	}
	if pattern != "" {
		span.SetName(pattern)
		span.SetAttributes(attribute.String("http.route", pattern))
	}
	span.SetAttributes(attribute.Int("http.response.status_code", status))
	if status >= 500 {
		span.SetStatus(codes.Error, http.StatusText(status))
	}
	span.End()
}

// Inject writes ctx's trace context into h (an upstream request's headers).
func Inject(ctx context.Context, h http.Header) {
	if on.Load() {
		propagator.Inject(ctx, propagation.HeaderCarrier(h))
	}
}

// Traceparent is ctx's trace context as a traceparent value, for an
// upstream call's _meta; "" when tracing is off or ctx has no span.
func Traceparent(ctx context.Context) string {
	if !on.Load() {
		return ""
	}
	c := propagation.MapCarrier{}
	propagator.Inject(ctx, c)
	return c["traceparent"]
}

// Record records a span that has ended: an operation timed by its caller
// (a credential-store operation, reported with its duration once done).
func Record(ctx context.Context, name string, start time.Time, err error, attrs ...attribute.KeyValue) {
	if !on.Load() {
		return
	}
	_, span := tracer().Start(ctx, name, trace.WithTimestamp(start), trace.WithAttributes(attrs...))
	if err != nil {
		span.SetStatus(codes.Error, "failed")
	}
	span.End()
}

// StartUpstream starts the span of one call to an upstream (nil with
// tracing off): a client span, a child of the agent's traceparent from the
// call's _meta (agentParent, may be "") when it sent one there, linked to
// ctx's span (the HTTP request's, which began a trace of its own); else a
// child of ctx's span.
func StartUpstream(ctx context.Context, agentParent, tenant, integration, method, name string) (context.Context, trace.Span) {
	if !on.Load() {
		return ctx, nil
	}
	opts := []trace.SpanStartOption{trace.WithSpanKind(trace.SpanKindClient), trace.WithAttributes(
		attribute.String("connectors.tenant", tenant),
		attribute.String("connectors.integration", integration),
		attribute.String("rpc.method", method),
		attribute.String("mcp.tool", name),
	)}
	if agentParent != "" {
		agent := trace.SpanContextFromContext(propagator.Extract(context.Background(), propagation.MapCarrier{"traceparent": agentParent}))
		if own := trace.SpanContextFromContext(ctx); agent.IsValid() && agent.TraceID() != own.TraceID() {
			if own.IsValid() {
				opts = append(opts, trace.WithLinks(trace.Link{SpanContext: own}))
			}
			ctx = trace.ContextWithRemoteSpanContext(ctx, agent)
		}
	}
	return tracer().Start(ctx, "upstream "+method, opts...)
}
