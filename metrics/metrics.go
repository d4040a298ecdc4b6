// Package metrics exposes the gateway's Prometheus metrics and keeps the
// per-tenant usage figures of the admin API.
//
// # Overview
//
// [Metrics] owns a registry of its own (never the global default) holding
// the Go and process collectors and the gateway's metrics, all named
// connectors_*. Their labels are bounded whatever the number of tenants: no
// metric has a tenant label, and every label value is either one of a fixed
// set or an integration (or route) name that passes a grammar and a cap on
// distinct values; anything else is counted as "other".
//
// Per-tenant figures (the seed's API call volume, token refresh success rate,
// credential access frequency and active integrations) live in [Usage], in
// memory, for the most recently seen tenants only.
//
// # Usage
//
//	m := metrics.New()
//	mux.Handle("GET /metrics", m.Handler())
//	start := time.Now()
//	...
//	m.ToolCall("notion", metrics.OutcomeOK, time.Since(start))
//
// A nil *Metrics and a nil *Usage are valid and record nothing, so callers
// need no checks.
package metrics

import (
	"errors"
	"io/fs"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Outcomes of a tool call, the values of ToolCall's outcome label.
const (
	OutcomeOK        = "ok"         // the upstream answered with a result
	OutcomeToolError = "tool_error" // the upstream answered with isError
	OutcomeError     = "error"      // no answer: upstream unreachable, protocol error, timeout
	OutcomeDenied    = "denied"     // the tenant may not use the tool, has no credential, or is past a limit
)

// Transports to an upstream, the values of Upstream's transport label.
const (
	TransportStdio = "stdio"
	TransportHTTP  = "http"
)

// Credential-store backends, the values of Store's backend label.
const (
	BackendEmbedded = "embedded"
	BackendVault    = "vault"
)

// Credential-store operations, the values of Store's operation label.
const (
	StoreGet      = "get"
	StorePut      = "put"
	StoreDelete   = "delete"
	StoreList     = "list"
	StoreClaim    = "claim"
	StoreRotate   = "rotate"
	StoreOffboard = "offboard"
)

// Other replaces a label value outside its allowed set.
const Other = "other"

var (
	outcomes   = []string{OutcomeOK, OutcomeToolError, OutcomeError, OutcomeDenied}
	transports = []string{TransportStdio, TransportHTTP}
	backends   = []string{BackendEmbedded, BackendVault}
	storeOps   = []string{StoreGet, StorePut, StoreDelete, StoreList, StoreClaim, StoreRotate, StoreOffboard}
	// The names of package limits' limits (which this package does not
	// import), the values of LimitRefusal's limit label.
	limitNames = []string{"calls_per_minute", "concurrent_calls", "daily_calls", "monthly_calls", "upstream_rate_limit", "gateway_saturated", "stdio_processes"}
)

// Histogram buckets, in seconds.
var (
	// A tool call spans a cached credential and a fast upstream (1ms) to a
	// long-running upstream tool (60s).
	callBuckets = []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60}
	// A store operation spans a bbolt read (sub-millisecond) to a Vault
	// round trip under load.
	storeBuckets = []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}
	// HTTP requests include streamed MCP responses.
	httpBuckets = []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60}
)

// Metrics records the gateway's Prometheus metrics. Its methods are safe for
// concurrent use. A nil *Metrics is valid and records nothing.
type Metrics struct {
	reg     *prometheus.Registry
	handler http.Handler

	integrations *boundedSet // integration label values
	routes       *boundedSet // route label values

	toolCalls        *prometheus.CounterVec
	toolCallDuration *prometheus.HistogramVec
	upstream         *prometheus.HistogramVec
	storeDuration    *prometheus.HistogramVec
	storeErrors      *prometheus.CounterVec
	refreshes        *prometheus.CounterVec
	limitRefusals    *prometheus.CounterVec
	httpRequests     *prometheus.CounterVec
	httpDuration     *prometheus.HistogramVec

	refreshQueue      *funcGauge
	activeSessions    *funcGauge
	upstreamProcesses *funcGauge
	clusterMembers    *funcGauge
	clusterReceived   *funcGauge // counters, read at scrape time
	clusterDropped    *funcGauge
	clusterIgnored    *funcGauge
}

// New returns Metrics on a registry of their own, with the Go runtime and
// process collectors.
func New() *Metrics {
	m := &Metrics{
		reg:          prometheus.NewRegistry(),
		integrations: newBoundedSet(maxIntegrations, validIntegration),
		routes:       newBoundedSet(maxRoutes, validRoute),

		toolCalls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "connectors_tool_calls_total",
			Help: "Tool calls relayed to upstreams, by integration and outcome (ok, tool_error, error, denied).",
		}, []string{"integration", "outcome"}),
		toolCallDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "connectors_tool_call_duration_seconds",
			Help:    "Time to answer a tool call, credential lookup and upstream included, by integration and outcome.",
			Buckets: callBuckets,
		}, []string{"integration", "outcome"}),
		upstream: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "connectors_upstream_request_duration_seconds",
			Help:    "Time an upstream MCP server took to answer, by integration and transport (stdio, http).",
			Buckets: callBuckets,
		}, []string{"integration", "transport"}),
		storeDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "connectors_store_operation_duration_seconds",
			Help:    "Credential-store operation latency, by backend (embedded, vault) and operation.",
			Buckets: storeBuckets,
		}, []string{"backend", "operation"}),
		storeErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "connectors_store_errors_total",
			Help: "Credential-store operations that failed (a missing credential is not a failure), by backend and operation.",
		}, []string{"backend", "operation"}),
		refreshes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "connectors_token_refreshes_total",
			Help: "OAuth token refresh attempts, by integration and result (success, failure).",
		}, []string{"integration", "result"}),
		limitRefusals: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "connectors_limit_refusals_total",
			Help: "Tool calls refused for a tenant's rate limit or quota (nothing sent upstream), by integration and limit.",
		}, []string{"integration", "limit"}),
		httpRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "connectors_http_requests_total",
			Help: "HTTP requests served, by route pattern and status class (2xx, 4xx, ...).",
		}, []string{"route", "status"}),
		httpDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "connectors_http_request_duration_seconds",
			Help:    "Time to serve an HTTP request, by route pattern and status class.",
			Buckets: httpBuckets,
		}, []string{"route", "status"}),

		refreshQueue: newFuncGauge("connectors_token_refresh_queue_length",
			"OAuth tokens scheduled for refresh."),
		activeSessions: newFuncGauge("connectors_active_sessions",
			"MCP sessions open on this replica."),
		upstreamProcesses: newFuncGauge("connectors_upstream_processes",
			"Upstream MCP server processes (stdio) running on this replica."),
		clusterMembers: newFuncGauge("connectors_cluster_members",
			"Replicas in the gossip, this one included."),
		clusterReceived: newFuncCounter("connectors_cluster_changes_received_total",
			"Changes other replicas told this one, each counted once."),
		clusterDropped: newFuncCounter("connectors_cluster_messages_dropped_total",
			"Gossip messages dropped unread: malformed, of an unknown kind, or past the inbox."),
		clusterIgnored: newFuncCounter("connectors_cluster_changes_ignored_total",
			"Changes received that named nothing this replica serves, and were not acted on."),
	}
	m.reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		m.toolCalls, m.toolCallDuration, m.upstream,
		m.storeDuration, m.storeErrors, m.refreshes, m.limitRefusals,
		m.httpRequests, m.httpDuration,
		m.refreshQueue, m.activeSessions, m.upstreamProcesses,
		m.clusterMembers, m.clusterReceived, m.clusterDropped, m.clusterIgnored,
	)
	m.handler = promhttp.InstrumentMetricHandler(m.reg, promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{
		Registry:            m.reg,
		ErrorHandling:       promhttp.ContinueOnError, // one failing collector must not blank the scrape
		MaxRequestsInFlight: 4,
	}))
	return m
}

// Handler serves the metrics in the Prometheus exposition formats, for
// "GET /metrics". It serves 404 on a nil *Metrics.
func (m *Metrics) Handler() http.Handler {
	if m == nil {
		return http.NotFoundHandler()
	}
	return m.handler
}

// ToolCall records one tool call of integration that ended with outcome
// (one of the Outcome constants) after d.
func (m *Metrics) ToolCall(integration, outcome string, d time.Duration) {
	if m == nil {
		return
	}
	in, out := m.integrations.value(integration), oneOf(outcome, outcomes)
	m.toolCalls.WithLabelValues(in, out).Inc()
	m.toolCallDuration.WithLabelValues(in, out).Observe(d.Seconds())
}

// Upstream records an upstream request of integration over transport
// (TransportStdio or TransportHTTP) that took d.
func (m *Metrics) Upstream(integration, transport string, d time.Duration) {
	if m == nil {
		return
	}
	m.upstream.WithLabelValues(m.integrations.value(integration), oneOf(transport, transports)).Observe(d.Seconds())
}

// Store records a credential-store operation op (one of the Store
// constants) on backend (BackendEmbedded or BackendVault) that took d and
// ended with err. An err matching fs.ErrNotExist (a missing record) is an
// answer, not a failure; callers should pass nil for other expected
// outcomes too, such as a claim another replica holds.
func (m *Metrics) Store(backend, op string, d time.Duration, err error) {
	if m == nil {
		return
	}
	b, o := oneOf(backend, backends), oneOf(op, storeOps)
	m.storeDuration.WithLabelValues(b, o).Observe(d.Seconds())
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		m.storeErrors.WithLabelValues(b, o).Inc()
	}
}

// Refresh records one token refresh attempt for integration; err is nil
// when it succeeded. Attempts are the sum over results.
func (m *Metrics) Refresh(integration string, err error) {
	if m == nil {
		return
	}
	result := "success"
	if err != nil {
		result = "failure"
	}
	m.refreshes.WithLabelValues(m.integrations.value(integration), result).Inc()
}

// LimitRefusal records one tool call of integration refused for limit
// (a name of package limits: calls_per_minute, ...).
func (m *Metrics) LimitRefusal(integration, limit string) {
	if m == nil {
		return
	}
	m.limitRefusals.WithLabelValues(m.integrations.value(integration), oneOf(limit, limitNames)).Inc()
}

// RefreshQueue sets the function read at every scrape for the number of
// tokens scheduled for refresh. f must be quick and safe for concurrent use;
// until it is set the gauge is absent. A later call replaces f.
func (m *Metrics) RefreshQueue(f func() int) {
	if m != nil {
		m.refreshQueue.set(f)
	}
}

// ActiveSessions sets the function read at every scrape for the number of
// open MCP sessions, as RefreshQueue.
func (m *Metrics) ActiveSessions(f func() int) {
	if m != nil {
		m.activeSessions.set(f)
	}
}

// UpstreamProcesses sets the function read at every scrape for the number of
// running stdio upstream processes, as RefreshQueue.
func (m *Metrics) UpstreamProcesses(f func() int) {
	if m != nil {
		m.upstreamProcesses.set(f)
	}
}

// Cluster sets the functions read at every scrape for the gossip between
// replicas: its members, and the changes received, the messages dropped
// and the changes ignored since start; as RefreshQueue.
func (m *Metrics) Cluster(members, received, dropped, ignored func() int) {
	if m != nil {
		m.clusterMembers.set(members)
		m.clusterReceived.set(received)
		m.clusterDropped.set(dropped)
		m.clusterIgnored.set(ignored)
	}
}

// HTTP records one HTTP request: route is the pattern that matched
// (r.Pattern, "" when none did), status the response's status code (0 is
// taken as 200, which net/http sends when a handler writes nothing).
func (m *Metrics) HTTP(route string, status int, d time.Duration) {
	if m == nil {
		return
	}
	if route == "" {
		route = "unmatched"
	}
	r, s := m.routes.value(route), statusClass(status)
	m.httpRequests.WithLabelValues(r, s).Inc()
	m.httpDuration.WithLabelValues(r, s).Observe(d.Seconds())
}

func statusClass(code int) string {
	if code == 0 {
		code = http.StatusOK
	}
	if code < 100 || code > 599 {
		return Other
	}
	return strconv.Itoa(code/100) + "xx"
}

// funcGauge is a gauge whose value a function gives at scrape time; it is
// absent from scrapes until the function is set.
type funcGauge struct {
	desc *prometheus.Desc
	kind prometheus.ValueType
	f    atomic.Pointer[func() int]
}

func newFuncGauge(name, help string) *funcGauge {
	return &funcGauge{desc: prometheus.NewDesc(name, help, nil, nil), kind: prometheus.GaugeValue}
}

// newFuncCounter is a funcGauge whose function counts up from start: a
// counter kept by another package.
func newFuncCounter(name, help string) *funcGauge {
	return &funcGauge{desc: prometheus.NewDesc(name, help, nil, nil), kind: prometheus.CounterValue}
}

func (g *funcGauge) set(f func() int) {
	if f == nil {
		g.f.Store(nil)
		return
	}
	g.f.Store(&f)
}

func (g *funcGauge) Describe(ch chan<- *prometheus.Desc) { ch <- g.desc }

func (g *funcGauge) Collect(ch chan<- prometheus.Metric) {
	if f := g.f.Load(); f != nil {
		ch <- prometheus.MustNewConstMetric(g.desc, g.kind, float64((*f)()))
	}
}
