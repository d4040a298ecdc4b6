package main

import (
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"
)

// otlpReceiver is an OTLP/HTTP trace receiver: the spans exported to it.
type otlpReceiver struct {
	mu    sync.Mutex
	spans []*tracepb.Span
}

func startOTLPReceiver(t *testing.T) (*otlpReceiver, string) {
	t.Helper()
	rec := &otlpReceiver{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		var req coltracepb.ExportTraceServiceRequest
		if r.URL.Path != "/v1/traces" || proto.Unmarshal(body, &req) != nil {
			http.Error(w, "not an OTLP trace export", http.StatusBadRequest)
			return
		}
		rec.mu.Lock()
		for _, rs := range req.ResourceSpans {
			for _, ss := range rs.ScopeSpans {
				rec.spans = append(rec.spans, ss.Spans...)
			}
		}
		rec.mu.Unlock()
		w.Header().Set("Content-Type", "application/x-protobuf")
		_, _ = w.Write(nil)
	}))
	t.Cleanup(srv.Close)
	return rec, srv.URL
}

// trace returns the spans of trace id (hex), by name.
func (r *otlpReceiver) trace(id string) map[string]*tracepb.Span {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := map[string]*tracepb.Span{}
	for _, s := range r.spans {
		if hex.EncodeToString(s.TraceId) == id {
			out[s.Name] = s
		}
	}
	return out
}

func (r *otlpReceiver) dump() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var b strings.Builder
	for _, s := range r.spans {
		fmt.Fprintf(&b, "%s %x parent %x %v\n", s.Name, s.TraceId, s.ParentSpanId, s.Attributes)
	}
	return b.String()
}

// TestTracing: with OTEL_EXPORTER_OTLP_ENDPOINT set, a tools/call is a
// trace: the request's span (a child of the agent's traceparent header),
// its authentication, the credential read and the upstream call as
// children; the upstream's HTTP request and the call's _meta carry the
// upstream span's context; an agent that sends its context in _meta only
// is the parent there (that call, with a progress token, on the usual
// lane; the first on the direct one); no span holds a secret.
func TestTracing(t *testing.T) {
	rec, endpoint := startOTLPReceiver(t)
	upURL, up := recordedEcho(t)
	in := map[string]any{"name": "echo", "upstream": map[string]any{
		"url": upURL, "headers": map[string]string{"Authorization": "Bearer {{access_token}}"}}}
	g := newGatewayWithCredentials(t, map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": endpoint, "OTEL_SERVICE_NAME": "gw-under-test"}, in)
	_, stop := g.start()
	toolNames(t, g.client("tenant-a"))

	const (
		headerTrace = "4bf92f3577b34da6a3ce929d0e0e4736"
		metaTrace   = "5cf92f3577b34da6a3ce929d0e0e4737"
	)
	parent := "00-" + headerTrace + "-00f067aa0ba902b7-01"
	if status, body := g.post("tenant-a", "/mcp", "echo_echo", callBody("1", "echo_echo", `"arguments":{"text":"traced"}`), map[string]string{"Traceparent": parent}); status != 200 || !strings.Contains(body, "traced") {
		t.Fatalf("call with a traceparent header: %d %s", status, body)
	}
	metaBody := strings.Replace(callBody("2", "echo_echo", `"arguments":{"text":"meta"}`), `"_meta":{`, `"_meta":{"progressToken":"p1","traceparent":"00-`+metaTrace+`-00f067aa0ba902b8-01",`, 1)
	if status, body := g.post("tenant-a", "/mcp", "echo_echo", metaBody, nil); status != 200 || !strings.Contains(body, "meta") {
		t.Fatalf("call with a traceparent in _meta: %d %s", status, body)
	}
	stop() // flushes the spans

	spans := rec.trace(headerTrace)
	server, upstream := spans["POST /mcp"], spans["upstream tools/call"]
	if server == nil || upstream == nil || spans["auth"] == nil || spans["store get"] == nil {
		t.Fatalf("spans of the call: %v\nall spans:\n%s", spans, rec.dump())
	}
	if hex.EncodeToString(server.ParentSpanId) != "00f067aa0ba902b7" {
		t.Errorf("the request's span has parent %x, want the agent's", server.ParentSpanId)
	}
	for _, name := range []string{"auth", "store get", "upstream tools/call"} {
		if string(spans[name].ParentSpanId) != string(server.SpanId) {
			t.Errorf("%s is not a child of the request's span", name)
		}
	}
	want := "00-" + headerTrace + "-" + hex.EncodeToString(upstream.SpanId) + "-01"
	calls := up.calls()
	if len(calls) != 2 || calls[0].Traceparent != want || !strings.Contains(calls[0].Body, `"traceparent":"`+want+`"`) {
		t.Errorf("the upstream got %+v, want traceparent %s in its header and _meta", calls, want)
	}
	if meta := rec.trace(metaTrace)["upstream tools/call"]; meta == nil || hex.EncodeToString(meta.ParentSpanId) != "00f067aa0ba902b8" {
		t.Errorf("the call whose agent sent its context in _meta only: %v\n%s", meta, rec.dump())
	} else if len(calls) == 2 && (calls[1].direct() || !strings.HasPrefix(calls[1].Traceparent, "00-"+metaTrace+"-") ||
		!strings.Contains(calls[1].Body, `"traceparent":"00-`+metaTrace+`-`+hex.EncodeToString(meta.SpanId))) {
		t.Errorf("the second call went upstream (the usual lane) as %+v", calls[1])
	}
	if len(calls) == 2 && !calls[0].direct() {
		t.Error("the first call did not take the direct lane")
	}
	g.assertNoSecretsIn(rec.dump())
}
