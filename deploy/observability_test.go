package deploy

import (
	"bufio"
	"encoding/json"
	"errors"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/connectors-gateway/connectors/internal/testenv"
	"github.com/connectors-gateway/connectors/metrics"
)

const (
	alertsFile     = "deploy/prometheus/alerts.yml"
	alertTestsFile = "deploy/prometheus/alerts_test.yml"
	dashboardFile  = "deploy/grafana/connectors-dashboard.json"
)

// TestAlertRules checks the alerting rules with promtool and runs their
// unit tests, which must fire every alert.
func TestAlertRules(t *testing.T) {
	if out := testenv.Promtool(t, "check", "rules", alertsFile); !strings.Contains(out, "SUCCESS") {
		t.Fatalf("promtool check rules: %s", out)
	}
	if out := testenv.Promtool(t, "test", "rules", alertTestsFile); !strings.Contains(out, "SUCCESS") {
		t.Fatalf("promtool test rules: %s", out)
	}
	alerts := yamlValues(t, alertsFile, "alert")
	tested := yamlValues(t, alertTestsFile, "alertname")
	if len(alerts) < 8 {
		t.Fatalf("alerts.yml: %d alerts found: %v", len(alerts), alerts)
	}
	for _, a := range alerts {
		if !slices.Contains(tested, a) {
			t.Errorf("alert %s has no test in %s that fires it", a, alertTestsFile)
		}
	}
}

// yamlValues returns the values of key in file, one per line ("key: value").
func yamlValues(t *testing.T, file, key string) []string {
	t.Helper()
	f, err := os.Open(filepath.Join(testenv.Root(), file))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(sc.Text()), "- "))
		if v, ok := strings.CutPrefix(line, key+":"); ok {
			v = strings.TrimSpace(v)
			if v == "|" || v == ">" || strings.HasPrefix(v, "|") || strings.HasPrefix(v, ">") {
				t.Fatalf("%s: %s: keep %s on one line, so that this test reads it", file, line, key)
			}
			out = append(out, v)
		}
	}
	return out
}

// TestObservabilityMetricsExist: every metric the dashboard and the
// alerting rules name is one the gateway exports, so that neither can
// drift from the metrics package; and the dashboard shows every metric of
// the gateway's own.
func TestObservabilityMetricsExist(t *testing.T) {
	exported := exportedMetrics(t)
	// Prometheus itself makes up; everything else must be the gateway's.
	exported["up"] = true
	var used []string
	for _, e := range yamlValues(t, alertsFile, "expr") {
		used = append(used, exprMetrics(t, alertsFile, e)...)
	}
	var shown []string
	for _, e := range dashboardExprs(t) {
		names := exprMetrics(t, dashboardFile, e)
		used, shown = append(used, names...), append(shown, names...)
	}
	for _, n := range used {
		if !exported[n] {
			t.Errorf("%s is not a metric the gateway exports", n)
		}
	}
	for n := range exported {
		family := strings.TrimSuffix(strings.TrimSuffix(strings.TrimSuffix(n, "_bucket"), "_sum"), "_count")
		if !strings.HasPrefix(n, "connectors_") || slices.ContainsFunc(shown, func(s string) bool { return strings.HasPrefix(s, family) }) {
			continue
		}
		t.Errorf("the dashboard has no panel for %s", n)
	}
}

// exportedMetrics is the name of every series a gateway's /metrics serves,
// read from the metrics package's own handler after it has recorded one of
// everything (a histogram's _bucket, _sum and _count each).
func exportedMetrics(t *testing.T) map[string]bool {
	t.Helper()
	m := metrics.New()
	m.ToolCall("notion", metrics.OutcomeOK, time.Millisecond)
	m.Upstream("notion", metrics.TransportStdio, time.Millisecond)
	m.Store(metrics.BackendVault, metrics.StoreGet, time.Millisecond, errors.New("down"))
	m.Refresh("notion", nil)
	m.HTTP("POST /mcp", 200, time.Millisecond)
	one := func() int { return 1 }
	m.RefreshQueue(one)
	m.ActiveSessions(one)
	m.UpstreamProcesses(one)
	m.Cluster(one, one, one, one)
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	sample := regexp.MustCompile(`^([a-zA-Z_:][a-zA-Z0-9_:]*)[{ ]`)
	names := map[string]bool{}
	for line := range strings.Lines(rec.Body.String()) {
		if s := sample.FindStringSubmatch(line); s != nil {
			names[s[1]] = true
		}
	}
	for _, want := range []string{"connectors_tool_calls_total", "connectors_store_operation_duration_seconds_bucket", "connectors_cluster_members", "go_goroutines"} {
		if !names[want] {
			t.Fatalf("the metrics handler's output has no %s: the scrape broke\n%s", want, rec.Body)
		}
	}
	return names
}

// dashboardExprs returns every PromQL expression of the dashboard: the
// panels' targets and the variables' label_values queries.
func dashboardExprs(t *testing.T) []string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(testenv.Root(), dashboardFile))
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		Panels []struct {
			Title   string
			Targets []struct{ Expr string }
		}
		Templating struct {
			List []struct {
				Type  string
				Query json.RawMessage
			}
		}
	}
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatalf("%s: %v", dashboardFile, err)
	}
	var exprs []string
	for _, p := range d.Panels {
		for _, tg := range p.Targets {
			exprs = append(exprs, tg.Expr)
		}
	}
	labelValues := regexp.MustCompile(`^label_values\((.+),\s*[a-zA-Z_][a-zA-Z0-9_]*\)$`)
	for _, v := range d.Templating.List {
		var q struct{ Query string }
		if v.Type != "query" || json.Unmarshal(v.Query, &q) != nil {
			continue
		}
		m := labelValues.FindStringSubmatch(q.Query)
		if m == nil {
			t.Fatalf("%s: variable query %q is not label_values(expr, label)", dashboardFile, q.Query)
		}
		exprs = append(exprs, m[1])
	}
	if len(exprs) < 20 {
		t.Fatalf("%s: only %d expressions found", dashboardFile, len(exprs))
	}
	return exprs
}

var (
	promStrings  = regexp.MustCompile(`"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'`)
	promVars     = regexp.MustCompile(`\$\{?[A-Za-z_][A-Za-z0-9_]*\}?`)
	promMatchers = regexp.MustCompile(`\{[^}]*\}`)
	promRanges   = regexp.MustCompile(`\[[^\]]*\]`)
	promGrouping = regexp.MustCompile(`\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)`)
	promTokens   = regexp.MustCompile(`[0-9.][A-Za-z0-9_.+]*|[A-Za-z_:][A-Za-z0-9_:]*`)
	promKeywords = []string{"and", "or", "unless", "bool", "offset", "by", "without", "on", "ignoring", "group_left", "group_right", "inf", "nan", "Inf", "NaN"}
)

// metricNames returns the metric names a PromQL expression selects: what
// is left of its names once strings, dashboard variables, label matchers,
// ranges and grouping clauses are taken out, that is not a function or
// aggregation (a name before "("), a keyword or a number.
func metricNames(expr string) []string {
	e := promStrings.ReplaceAllString(expr, `""`)
	e = promVars.ReplaceAllString(e, "")
	e = promMatchers.ReplaceAllString(e, " ")
	e = promRanges.ReplaceAllString(e, " ")
	e = promGrouping.ReplaceAllString(e, " ")
	var names []string
	for _, loc := range promTokens.FindAllStringIndex(e, -1) {
		tok := e[loc[0]:loc[1]]
		if tok[0] >= '0' && tok[0] <= '9' || tok[0] == '.' || slices.Contains(promKeywords, tok) ||
			strings.HasPrefix(strings.TrimSpace(e[loc[1]:]), "(") {
			continue
		}
		names = append(names, tok)
	}
	return names
}

// exprMetrics is metricNames, failing t for an expression that names none.
func exprMetrics(t *testing.T, file, expr string) []string {
	t.Helper()
	names := metricNames(expr)
	if len(names) == 0 {
		t.Errorf("%s: %q names no metric", file, expr)
	}
	return names
}

// TestMetricNames holds metricNames to expressions whose names are known.
func TestMetricNames(t *testing.T) {
	for expr, want := range map[string][]string{
		`up{job="connectors"} == 0`: {"up"},
		`histogram_quantile(0.99, sum by (backend, le) (rate(connectors_store_operation_duration_seconds_bucket{instance=~"$instance"}[$__rate_interval]))) > 0.5`: {"connectors_store_operation_duration_seconds_bucket"},
		`sum(rate(a_total{x="}{"}[5m])) by (integration) / on(instance) group_left(route) b offset 5m and bool c > 1e3`:                                            {"a_total", "b", "c"},
		`delta(connectors_token_refresh_queue_length[30m]) > 1000`:                                                                                                 {"connectors_token_refresh_queue_length"},
	} {
		if got := metricNames(expr); !slices.Equal(got, want) {
			t.Errorf("metricNames(%q) = %v, want %v", expr, got, want)
		}
	}
}
