package metrics

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/connectors-gateway/connectors/internal/testenv"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
)

// histogram returns the sample count and sum of the series of the histogram
// family name with the given labels.
func histogram(t *testing.T, m *Metrics, name string, labels map[string]string) (uint64, float64) {
	t.Helper()
	mfs, err := m.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, metric := range mf.GetMetric() {
			if labelsOf(metric) == fmt.Sprint(labels) {
				h := metric.GetHistogram()
				return h.GetSampleCount(), h.GetSampleSum()
			}
		}
	}
	return 0, 0
}

func labelsOf(metric *dto.Metric) string {
	l := map[string]string{}
	for _, p := range metric.GetLabel() {
		l[p.GetName()] = p.GetValue()
	}
	return fmt.Sprint(l)
}

func TestToolCall(t *testing.T) {
	m := New()
	m.ToolCall("notion", OutcomeOK, 20*time.Millisecond)
	m.ToolCall("notion", OutcomeOK, 30*time.Millisecond)
	m.ToolCall("github", OutcomeToolError, time.Second)
	m.ToolCall("github", OutcomeDenied, 0)
	m.ToolCall("slack", "exploded", time.Millisecond) // not an outcome

	want := `
# HELP connectors_tool_calls_total Tool calls relayed to upstreams, by integration and outcome (ok, tool_error, error, denied).
# TYPE connectors_tool_calls_total counter
connectors_tool_calls_total{integration="github",outcome="denied"} 1
connectors_tool_calls_total{integration="github",outcome="tool_error"} 1
connectors_tool_calls_total{integration="notion",outcome="ok"} 2
connectors_tool_calls_total{integration="slack",outcome="other"} 1
`
	if err := testutil.CollectAndCompare(m.toolCalls, strings.NewReader(want)); err != nil {
		t.Error(err)
	}
	if got := testutil.ToFloat64(m.toolCalls.WithLabelValues("notion", OutcomeOK)); got != 2 {
		t.Errorf("notion ok calls = %v, want 2", got)
	}
	n, sum := histogram(t, m, "connectors_tool_call_duration_seconds", map[string]string{"integration": "notion", "outcome": "ok"})
	if n != 2 || sum < 0.0499 || sum > 0.0501 {
		t.Errorf("notion ok latency: %d samples summing to %vs, want 2 summing to 0.05s", n, sum)
	}
	if got := testutil.CollectAndCount(m.toolCallDuration); got != 4 {
		t.Errorf("latency series = %d, want 4", got)
	}
}

func TestUpstream(t *testing.T) {
	m := New()
	m.Upstream("notion", TransportStdio, 5*time.Millisecond)
	m.Upstream("notion", TransportHTTP, 7*time.Millisecond)
	m.Upstream("notion", "carrier-pigeon", time.Millisecond)
	for _, tr := range []string{TransportStdio, TransportHTTP, Other} {
		if n, _ := histogram(t, m, "connectors_upstream_request_duration_seconds", map[string]string{"integration": "notion", "transport": tr}); n != 1 {
			t.Errorf("transport %s: %d samples, want 1", tr, n)
		}
	}
}

func TestStore(t *testing.T) {
	m := New()
	m.Store(BackendVault, StoreGet, 3*time.Millisecond, nil)
	m.Store(BackendVault, StoreGet, 4*time.Millisecond, errors.New("Failed to connect to Vault"))
	m.Store(BackendVault, StoreGet, time.Millisecond, fmt.Errorf("reading: %w", fs.ErrNotExist)) // not found: an answer
	m.Store(BackendEmbedded, StorePut, time.Millisecond, nil)
	m.Store("postgres", "vacuum", time.Millisecond, errors.New("x"))

	if n, _ := histogram(t, m, "connectors_store_operation_duration_seconds", map[string]string{"backend": "vault", "operation": "get"}); n != 3 {
		t.Errorf("vault get: %d samples, want 3", n)
	}
	want := `
# HELP connectors_store_errors_total Credential-store operations that failed (a missing credential is not a failure), by backend and operation.
# TYPE connectors_store_errors_total counter
connectors_store_errors_total{backend="other",operation="other"} 1
connectors_store_errors_total{backend="vault",operation="get"} 1
`
	if err := testutil.CollectAndCompare(m.storeErrors, strings.NewReader(want)); err != nil {
		t.Error(err)
	}
}

func TestRefresh(t *testing.T) {
	m := New()
	m.Refresh("notion", nil)
	m.Refresh("notion", nil)
	m.Refresh("notion", errors.New("invalid_grant"))
	for _, tt := range []struct {
		result string
		want   float64
	}{{"success", 2}, {"failure", 1}} {
		if got := testutil.ToFloat64(m.refreshes.WithLabelValues("notion", tt.result)); got != tt.want {
			t.Errorf("notion %s = %v, want %v", tt.result, got, tt.want)
		}
	}
}

func TestHTTP(t *testing.T) {
	m := New()
	for _, tt := range []struct {
		route  string
		status int
	}{
		{"POST /mcp", 200},
		{"POST /mcp", 202},
		{"POST /mcp", 0}, // nothing written: net/http sent 200
		{"POST /mcp", 401},
		{"GET /admin/tenants/{tenantId}/integrations", 404},
		{"", 404}, // no pattern matched
		{"POST /mcp", 503},
		{"POST /mcp", 999},
	} {
		m.HTTP(tt.route, tt.status, 10*time.Millisecond)
	}
	want := `
# HELP connectors_http_requests_total HTTP requests served, by route pattern and status class (2xx, 4xx, ...).
# TYPE connectors_http_requests_total counter
connectors_http_requests_total{route="GET /admin/tenants/{tenantId}/integrations",status="4xx"} 1
connectors_http_requests_total{route="POST /mcp",status="2xx"} 3
connectors_http_requests_total{route="POST /mcp",status="4xx"} 1
connectors_http_requests_total{route="POST /mcp",status="5xx"} 1
connectors_http_requests_total{route="POST /mcp",status="other"} 1
connectors_http_requests_total{route="unmatched",status="4xx"} 1
`
	if err := testutil.CollectAndCompare(m.httpRequests, strings.NewReader(want)); err != nil {
		t.Error(err)
	}
	if n, _ := histogram(t, m, "connectors_http_request_duration_seconds", map[string]string{"route": "POST /mcp", "status": "2xx"}); n != 3 {
		t.Errorf("POST /mcp 2xx: %d samples, want 3", n)
	}
}

func TestGauges(t *testing.T) {
	m := New()
	gauges := []struct {
		name string
		set  func(func() int)
		c    prometheus.Collector
	}{
		{"connectors_token_refresh_queue_length", m.RefreshQueue, m.refreshQueue},
		{"connectors_active_sessions", m.ActiveSessions, m.activeSessions},
		{"connectors_upstream_processes", m.UpstreamProcesses, m.upstreamProcesses},
		{"connectors_cluster_members", func(f func() int) { m.Cluster(f, nil, nil, nil) }, m.clusterMembers},
		{"connectors_cluster_changes_received_total", func(f func() int) { m.Cluster(nil, f, nil, nil) }, m.clusterReceived},
		{"connectors_cluster_messages_dropped_total", func(f func() int) { m.Cluster(nil, nil, f, nil) }, m.clusterDropped},
		{"connectors_cluster_changes_ignored_total", func(f func() int) { m.Cluster(nil, nil, nil, f) }, m.clusterIgnored},
	}
	for i, g := range gauges {
		if n := testutil.CollectAndCount(g.c); n != 0 {
			t.Errorf("%s reported before it was set", g.name)
		}
		v := 10 * (i + 1)
		g.set(func() int { return v })
		if got := testutil.ToFloat64(g.c); got != float64(v) {
			t.Errorf("%s = %v, want %d", g.name, got, v)
		}
		v++ // read at scrape time, not when set
		if got := testutil.ToFloat64(g.c); got != float64(v) {
			t.Errorf("%s = %v after change, want %d", g.name, got, v)
		}
		g.set(func() int { return 7 })
		if got := testutil.ToFloat64(g.c); got != 7 {
			t.Errorf("%s = %v after replacing the function, want 7", g.name, got)
		}
		g.set(nil)
		if n := testutil.CollectAndCount(g.c); n != 0 {
			t.Errorf("%s reported after its function was removed", g.name)
		}
	}
}

func TestHandler(t *testing.T) {
	m := New()
	m.ToolCall("notion", OutcomeOK, time.Millisecond)
	m.Upstream("notion", TransportStdio, time.Millisecond)
	m.Store(BackendEmbedded, StoreGet, time.Millisecond, errors.New("x"))
	m.Refresh("notion", nil)
	m.HTTP("GET /metrics", 200, time.Millisecond)
	m.RefreshQueue(func() int { return 3 })
	m.ActiveSessions(func() int { return 2 })
	m.UpstreamProcesses(func() int { return 1 })
	m.Cluster(func() int { return 3 }, func() int { return 12 }, func() int { return 1 }, func() int { return 0 })

	srv := httptest.NewServer(m.Handler())
	t.Cleanup(srv.Close)
	body := scrape(t, srv.URL)
	body = scrape(t, srv.URL) // the second scrape counts the first

	for _, want := range []string{
		"connectors_tool_calls_total",
		"connectors_tool_call_duration_seconds_bucket",
		"connectors_upstream_request_duration_seconds_bucket",
		"connectors_store_operation_duration_seconds_bucket",
		"connectors_store_errors_total",
		"connectors_token_refreshes_total",
		"connectors_http_requests_total",
		"connectors_http_request_duration_seconds_bucket",
		"connectors_token_refresh_queue_length 3",
		"connectors_active_sessions 2",
		"connectors_upstream_processes 1",
		"connectors_cluster_members 3",
		"connectors_cluster_changes_received_total 12",
		"connectors_cluster_messages_dropped_total 1",
		"connectors_cluster_changes_ignored_total 0",
		"# TYPE connectors_cluster_changes_received_total counter",
		"go_goroutines",
		"process_start_time_seconds",
		`promhttp_metric_handler_requests_total{code="200"} 1`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("scrape lacks %q", want)
		}
	}
	if strings.Contains(body, "tenant") {
		t.Error("scrape mentions a tenant")
	}
	// The registry is the Metrics' own, not the global default.
	if n, err := testutil.GatherAndCount(prometheus.DefaultGatherer, "connectors_tool_calls_total"); err != nil || n != 0 {
		t.Errorf("default registry holds %d connectors series (err %v)", n, err)
	}
}

func scrape(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("scrape: %s\n%s", resp.Status, b)
	}
	return string(b)
}

func TestLabelsBounded(t *testing.T) {
	m := New()
	bogus := []func(i int) string{
		func(i int) string { return fmt.Sprintf("Notion_%d", i) },               // upper case, underscore
		func(i int) string { return strings.Repeat("a", 33) + strconv.Itoa(i) }, // too long
		func(i int) string { return fmt.Sprintf("%d-notion", i) },               // leading digit
		func(i int) string { return fmt.Sprintf("tenant-001/notion-%d", i) },    // a path
		func(i int) string { return fmt.Sprintf("nötion-%d", i) },               // not ASCII
	}
	for i := range 10_000 {
		name := bogus[i%len(bogus)](i)
		m.ToolCall(name, OutcomeOK, time.Millisecond)
		m.Upstream(name, TransportHTTP, time.Millisecond)
		m.Refresh(name, nil)
	}
	if n := testutil.CollectAndCount(m.toolCalls); n != 1 {
		t.Errorf("10,000 invalid integration names made %d tool-call series, want 1 (other)", n)
	}
	if got := testutil.ToFloat64(m.toolCalls.WithLabelValues(Other, OutcomeOK)); got != 10_000 {
		t.Errorf("other = %v, want 10000", got)
	}

	// Names in the grammar are admitted only up to the cap.
	for i := range 10_000 {
		name := fmt.Sprintf("x%d", i)
		m.ToolCall(name, OutcomeOK, time.Millisecond)
		m.Upstream(name, TransportHTTP, time.Millisecond)
		m.Refresh(name, errors.New("x"))
	}
	for name, c := range map[string]prometheus.Collector{
		"tool calls": m.toolCalls, "tool latency": m.toolCallDuration,
		"upstream": m.upstream, "refreshes": m.refreshes,
	} {
		// Refreshes have two results, one of which (failure) saw every name.
		if n := testutil.CollectAndCount(c); n > maxIntegrations+2 {
			t.Errorf("%s: %d series, want at most %d", name, n, maxIntegrations+2)
		}
	}
	// An admitted name keeps its own series.
	m.ToolCall("x1", OutcomeOK, time.Millisecond)
	if got := testutil.ToFloat64(m.toolCalls.WithLabelValues("x1", OutcomeOK)); got != 2 {
		t.Errorf("x1 = %v, want 2", got)
	}

	for i := range 10_000 {
		m.HTTP(fmt.Sprintf("GET /x/%d", i), 200, time.Millisecond) // a path where a pattern belongs
		m.HTTP(fmt.Sprintf("GET /\x00%d", i), 200, time.Millisecond)
	}
	if n := testutil.CollectAndCount(m.httpRequests); n > maxRoutes+1 {
		t.Errorf("http: %d series, want at most %d", n, maxRoutes+1)
	}
}

func TestValidIntegration(t *testing.T) {
	for _, tt := range []struct {
		name string
		want bool
	}{
		{"notion", true}, {"google-drive", true}, {"a", true}, {"x9", true},
		{strings.Repeat("a", 32), true}, {strings.Repeat("a", 33), false},
		{"", false}, {"Notion", false}, {"9x", false}, {"-x", false}, {"a_b", false}, {"a b", false}, {"é", false},
	} {
		if got := validIntegration(tt.name); got != tt.want {
			t.Errorf("validIntegration(%q) = %v, want %v", tt.name, got, tt.want)
		}
	}
}

func TestNilMetrics(t *testing.T) {
	var m *Metrics
	m.ToolCall("notion", OutcomeOK, time.Second)
	m.Upstream("notion", TransportStdio, time.Second)
	m.Store(BackendVault, StoreGet, time.Second, errors.New("x"))
	m.Refresh("notion", nil)
	m.RefreshQueue(func() int { return 1 })
	m.ActiveSessions(func() int { return 1 })
	m.UpstreamProcesses(func() int { return 1 })
	m.HTTP("GET /metrics", 200, time.Second)

	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	if rec.Code != http.StatusNotFound {
		t.Errorf("nil Metrics handler: %d, want 404", rec.Code)
	}
}

func TestConcurrentMetrics(t *testing.T) {
	m := New()
	srv := httptest.NewServer(m.Handler())
	t.Cleanup(srv.Close)
	const goroutines, each = 16, 500
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Go(func() {
			for i := range each {
				in := fmt.Sprintf("in-%d", (g*each+i)%300) // crosses the cap concurrently
				m.ToolCall(in, OutcomeOK, time.Millisecond)
				m.Upstream(in, TransportStdio, time.Millisecond)
				m.Store(BackendVault, StoreGet, time.Millisecond, nil)
				m.Refresh(in, nil)
				m.HTTP("POST /mcp", 200, time.Millisecond)
				if i%100 == 0 {
					m.ActiveSessions(func() int { return i })
				}
			}
		})
	}
	wg.Go(func() {
		for range 5 {
			scrape(t, srv.URL)
		}
	})
	wg.Wait()
	var total float64
	mfs, err := m.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == "connectors_tool_calls_total" {
			for _, metric := range mf.GetMetric() {
				total += metric.GetCounter().GetValue()
			}
		}
	}
	if total != goroutines*each {
		t.Errorf("tool calls total %v, want %d", total, goroutines*each)
	}
	if n := len(m.integrations.seen); n != maxIntegrations {
		t.Errorf("%d integrations admitted, want the cap %d", n, maxIntegrations)
	}
}

// TestImports keeps metrics a leaf: every package may record metrics, so it
// imports none of the gateway's.
func TestImports(t *testing.T) { testenv.CheckImports(t) }
