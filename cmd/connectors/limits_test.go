package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/mcp"
)

// invokeWithHeaders posts a REST invoke of toolID as tenant and returns
// the status, the answer's headers and its body.
func (g *gateway) invokeWithHeaders(tenant, toolID string) (int, http.Header, map[string]any) {
	g.t.Helper()
	code, header, out, _ := g.apiHeader(tenant, "POST", "/api/v1/tools/invoke", fmt.Sprintf(`{"toolId": %q, "parameters": {}}`, toolID))
	return code, header, out
}

// limitRefusals returns the value of connectors_limit_refusals_total for
// integration and limit, failing if any of its series has a tenant label.
func (g *gateway) limitRefusals(integration, limit string) int {
	g.t.Helper()
	code, _, raw := g.api("admin", "GET", "/metrics", "")
	if code != http.StatusOK {
		g.t.Fatalf("GET /metrics: %d", code)
	}
	total := 0
	for line := range strings.Lines(raw) {
		if !strings.HasPrefix(line, "connectors_limit_refusals_total{") {
			continue
		}
		if strings.Contains(line, "tenant") {
			g.t.Errorf("a refusal series names a tenant: %s", line)
		}
		if strings.Contains(line, `integration="`+integration+`"`) && strings.Contains(line, `limit="`+limit+`"`) {
			f := strings.Fields(line)
			n, _ := strconv.Atoi(f[len(f)-1])
			total += n
		}
	}
	return total
}

// rateLimitedRecords returns the audit records of refusals of tenant.
func (g *gateway) rateLimitedRecords(tenant string) []map[string]any {
	var out []map[string]any
	for _, rec := range g.auditOf("rate_limited") {
		if rec["tenantId"] == tenant {
			out = append(out, rec)
		}
	}
	return out
}

// TestLimitsOnEveryLane runs a gateway whose tenants may make 2 tool
// calls a minute (CONNECTORS_LIMIT_CALLS_PER_MINUTE=2): past them, the
// usual lane (notion, a stdio upstream), the direct lane (echo, a
// 2026-07-28 upstream over HTTP) and REST invoke refuse the call before
// the upstream sees it, each in its own way; an admin's override applies
// at once; refusals are counted and audited once per window.
func TestLimitsOnEveryLane(t *testing.T) {
	upURL, up := recordedEcho(t)
	g := newGatewayWithCredentials(t, map[string]string{"CONNECTORS_LIMIT_CALLS_PER_MINUTE": "2"},
		map[string]any{"name": "echo", "upstream": map[string]any{
			"url": upURL, "headers": map[string]string{"Authorization": "Bearer {{access_token}}"}}})
	g.withAdmin()
	g.serve()
	toolNames(t, g.client("tenant-b")) // discovers the catalogue: the direct lane takes known tools only
	began := time.Now()

	// The usual lane: tenant-a's third call of notion is a tool error
	// saying which limit and when to retry, and Notion never sees it.
	c := g.client("tenant-a")
	call := func() *mcp.CallToolResult {
		t.Helper()
		res, err := c.CallTool(t.Context(), mcp.CallToolRequest{Params: mcp.CallToolParams{Name: "notion_API-get-self"}})
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	for range 2 {
		if res := call(); res.IsError {
			t.Fatalf("a call within the limit: %s", toolText(t, res))
		}
	}
	seen := len(g.notion.Requests())
	res := call()
	text := toolText(t, res)
	if !res.IsError || !strings.Contains(text, "calls_per_minute") || !strings.Contains(text, "2 calls per minute") || !strings.Contains(text, "retry in") {
		t.Errorf("the third call: isError %v, %q; want a tool error naming the limit and the wait", res.IsError, text)
	}
	if res.Meta == nil || res.Meta.AdditionalFields["connectors/limit"] != "calls_per_minute" {
		t.Errorf("_meta %+v, want connectors/limit", res.Meta)
	} else if ms, _ := res.Meta.AdditionalFields["connectors/retryAfterMs"].(float64); ms <= 0 || ms > 31_000 {
		t.Errorf("connectors/retryAfterMs %v, want the wait for one call of 2 a minute (at most 30s)", res.Meta.AdditionalFields["connectors/retryAfterMs"])
	}
	if got := len(g.notion.Requests()); got != seen {
		t.Errorf("the refused call reached Notion (%d requests, had %d)", got, seen)
	}

	// REST invoke: 429 RateLimited with Retry-After, nothing upstream.
	before := len(up.calls())
	status, hdr, body := g.invokeWithHeaders("tenant-a", "echo.echo")
	if retry, _ := strconv.Atoi(hdr.Get("Retry-After")); status != http.StatusTooManyRequests || body["error"] != "RateLimited" || retry < 1 || retry > 30 {
		t.Errorf("invoke past the limit: %d %v, Retry-After %q; want 429 RateLimited and the wait", status, body, hdr.Get("Retry-After"))
	}
	if !strings.Contains(fmt.Sprint(body["message"]), "calls per minute") {
		t.Errorf("invoke's message %q does not name the limit", body["message"])
	}

	// The direct lane: tenant-b's third call is refused as a tool error,
	// as the usual lane refuses it.
	for i := range 2 {
		if status, body := g.post("tenant-b", "/mcp", "echo_echo", callBody(fmt.Sprint(i+1), "echo_echo", `"arguments":{"text":"hi"}`), nil); status != 200 || strings.Contains(body, `"isError":true`) {
			t.Fatalf("a direct call within the limit: %d %s", status, body)
		}
	}
	if got := len(up.directSince(before)); got != 2 {
		t.Fatalf("%d direct upstream calls, want 2 (the direct lane took them)", got)
	}
	status, raw := g.post("tenant-b", "/mcp", "echo_echo", callBody("3", "echo_echo", `"arguments":{"text":"hi"}`), nil)
	if status != 200 || !strings.Contains(raw, `"isError":true`) || !strings.Contains(raw, `"connectors/retryAfterMs"`) || !strings.Contains(raw, `"connectors/limit":"calls_per_minute"`) {
		t.Errorf("a direct call past the limit: %d %s", status, raw)
	}
	if got := len(up.calls()); got != before+2 {
		t.Errorf("%d upstream calls, want %d: a refused call went upstream", got, before+2)
	}

	// Counted every time, audited once per tenant and window.
	if n := g.limitRefusals("notion", "calls_per_minute"); n != 1 {
		t.Errorf("connectors_limit_refusals_total{notion,calls_per_minute} = %d, want 1", n)
	}
	for range 3 {
		call()
	}
	if n := g.limitRefusals("notion", "calls_per_minute"); n != 4 {
		t.Errorf("connectors_limit_refusals_total{notion,calls_per_minute} = %d after 3 more refusals, want 4", n)
	}
	windows := 1
	if time.Now().Unix()/60 != began.Unix()/60 {
		windows = 2 // the refusals spanned two minutes
	}
	if recs := g.rateLimitedRecords("tenant-a"); len(recs) < 1 || len(recs) > windows {
		t.Errorf("%d rate_limited audit records of tenant-a for 5 refusals, want one per minute (%d)", len(recs), windows)
	} else if recs[0]["reason"] != "calls_per_minute" || recs[0]["success"] != false {
		t.Errorf("audit record %v", recs[0])
	}

	// An override applies at once: tenant-a may call again, the same
	// second; an integration's own limit holds that integration only.
	code, out, raw2 := g.api("admin", "PUT", "/admin/tenants/tenant-a/limits", `{"callsPerMinute": 100, "integrations": {"echo": {"callsPerMinute": 1}}}`)
	if code != http.StatusOK || out["callsPerMinute"] != float64(100) {
		t.Fatalf("PUT limits: %d %s", code, raw2)
	}
	if res := call(); res.IsError {
		t.Errorf("after the override: %s", toolText(t, res))
	}
	if status, _, body := g.invokeWithHeaders("tenant-a", "echo.echo"); status != http.StatusOK {
		t.Errorf("echo within its own limit: %d %v", status, body)
	}
	status, _, body = g.invokeWithHeaders("tenant-a", "echo.echo")
	if status != http.StatusTooManyRequests || !strings.Contains(fmt.Sprint(body["message"]), "echo") {
		t.Errorf("echo past its own limit: %d %v, want 429 naming echo", status, body)
	}
	if res := call(); res.IsError {
		t.Errorf("notion, past echo's limit: %s", toolText(t, res))
	}
	if status, body := g.post("tenant-b", "/mcp", "echo_echo", callBody("4", "echo_echo", ""), nil); !strings.Contains(body, `"isError":true`) {
		t.Errorf("tenant-b, not overridden, still refused: %d %s", status, body)
	}
	g.assertNoSecrets()
}

// TestLimitsOverrides: admins read and set a tenant's limits over HTTP
// and with "connectors remote limits"; a hostile body is refused naming
// the field, and stores nothing; other settings changes keep the
// override.
func TestLimitsOverrides(t *testing.T) {
	g := newGatewayWithEnv(t, map[string]string{"CONNECTORS_LIMIT_DAILY_CALLS": "50", "CONNECTORS_LIMIT_BURST": "5"})
	g.withAdmin()
	addr := g.serve()
	const path = "/admin/tenants/tenant-a/limits"
	get := func() string {
		t.Helper()
		code, _, raw := g.api("admin", "GET", path, "")
		if code != http.StatusOK {
			t.Fatalf("GET %s: %d %s", path, code, raw)
		}
		return raw
	}
	if got, want := get(), `{"tenantId":"tenant-a","callsPerMinute":0,"burst":5,"concurrentCalls":0,"dailyCalls":50,"monthlyCalls":0,"integrations":{}}`; !sameJSON(got, want) {
		t.Errorf("the defaults: %s, want %s", got, want)
	}
	code, _, raw := g.api("admin", "PUT", path, `{"callsPerMinute": 600, "burst": 60, "concurrentCalls": 8, "dailyCalls": 0, "integrations": {"notion": {"callsPerMinute": 120}}}`)
	want := `{"tenantId":"tenant-a","callsPerMinute":600,"burst":60,"concurrentCalls":8,"dailyCalls":0,"monthlyCalls":0,
		"integrations":{"notion":{"callsPerMinute":120,"burst":0,"concurrentCalls":0,"dailyCalls":0,"monthlyCalls":0}}}`
	if code != http.StatusOK || !sameJSON(raw, want) {
		t.Fatalf("PUT: %d %s, want %s", code, raw, want)
	}
	if got := get(); !sameJSON(got, want) {
		t.Errorf("GET after PUT: %s", got)
	}
	for _, c := range []struct{ name, body, field string }{
		{"negative", `{"callsPerMinute": -1}`, "callsPerMinute"},
		{"huge", `{"monthlyCalls": 100000000001}`, "monthlyCalls"},
		{"past int64", `{"dailyCalls": 1e30}`, "dailyCalls"},
		{"a string", `{"burst": "60"}`, "burst"},
		{"fractional", `{"concurrentCalls": 0.5}`, "concurrentCalls"},
		{"an unknown field", `{"tenantId": "tenant-b"}`, "tenantId"},
		{"an unknown integration", `{"integrations": {"nope": {"callsPerMinute": 1}}}`, "integrations.nope"},
		{"an integration's unknown field", `{"integrations": {"notion": {"callsPerHour": 1}}}`, "integrations.notion.callsPerHour"},
		{"an integration's negative limit", `{"integrations": {"notion": {"dailyCalls": -3}}}`, "integrations.notion.dailyCalls"},
		{"integrations not an object", `{"integrations": ["notion"]}`, "integrations"},
		{"an array", `[{"callsPerMinute": 1}]`, ""},
		{"empty", ``, ""},
		{"two objects", `{"burst": 1} {"burst": 2}`, ""},
	} {
		code, out, raw := g.api("admin", "PUT", path, c.body)
		msg, _ := out["message"].(string)
		if code != http.StatusBadRequest || out["error"] != "ValidationError" || !strings.HasPrefix(msg, c.field) {
			t.Errorf("%s: %d %s, want 400 ValidationError naming %q", c.name, code, raw, c.field)
		}
	}
	status, errName, _ := g.send("admin", "PUT", path, "application/json", `{"burst": 1, "x": "`+strings.Repeat("n", 5<<20)+`"}`, nil)
	if status != http.StatusRequestEntityTooLarge || errName != "PayloadTooLarge" {
		t.Errorf("an oversized body: %d %s", status, errName)
	}
	for _, who := range []string{"tenant-a", "tenant-b"} {
		if code, out, _ := g.api(who, "PUT", path, `{"callsPerMinute": 0}`); code != http.StatusForbidden || out["error"] != "Forbidden" {
			t.Errorf("PUT by %s: %d %v, want 403: admins only", who, code, out)
		}
		if code, _, _ := g.api(who, "GET", path, ""); code != http.StatusForbidden {
			t.Errorf("GET by %s: %d, want 403", who, code)
		}
	}
	if got := get(); !sameJSON(got, want) {
		t.Errorf("refused bodies changed the limits: %s", got)
	}
	// Another settings change keeps the override.
	if code, _, raw := g.api("admin", "PUT", "/tenants/tenant-a/integrations/everything", `{"tools": ["echo"]}`); code != http.StatusOK {
		t.Fatalf("narrowing everything: %d %s", code, raw)
	}
	if got := get(); !sameJSON(got, want) {
		t.Errorf("a settings change lost the override: %s", got)
	}

	// The CLI.
	g.env["CONNECTORS_GATEWAY_URL"] = "http://" + addr
	g.env["CONNECTORS_API_KEY"] = g.keys["admin"]
	out := g.mustRun("", "remote", "limits", "set", "--tenant", "tenant-a", "--calls-per-minute", "7", "--monthly-calls", "900")
	if !strings.Contains(out, "CALLS/MIN") || !strings.Contains(out, "tenant-a  ") || !strings.Contains(out, "7") || !strings.Contains(out, "900") {
		t.Errorf("remote limits set = %q", out)
	}
	out = g.mustRun(`{"integrations": {"notion": {"concurrentCalls": 2}}}`, "remote", "limits", "set", "--tenant", "tenant-a")
	if !strings.Contains(out, "tenant-a/notion") {
		t.Errorf("remote limits set < body = %q", out)
	}
	out = g.mustRun("", "remote", "limits", "get", "--tenant", "tenant-a", "--json")
	var got struct {
		CallsPerMinute int64
		DailyCalls     int64
		Integrations   map[string]struct{ ConcurrentCalls int64 }
	}
	if err := json.Unmarshal([]byte(out), &got); err != nil || got.CallsPerMinute != 0 || got.DailyCalls != 50 || got.Integrations["notion"].ConcurrentCalls != 2 {
		t.Errorf("remote limits get --json = %q: the last set replaced the override whole, want the defaults and notion's", out)
	}
	if _, err := g.run(`{"burst": -1}`, "remote", "limits", "set", "--tenant", "tenant-a"); err == nil || !strings.Contains(err.Error(), "400 ValidationError: burst") {
		t.Errorf("remote limits set of a hostile body: %v", err)
	}
	if _, err := g.run("", "remote", "limits", "get", "--tenant", "../x"); err == nil {
		t.Error("remote limits get --tenant ../x: no error")
	}
}

// TestLimitsFromEnv: every tenant's defaults come from CONNECTORS_LIMIT_*;
// a value that is not a whole number in range stops the start, naming the
// variable.
func TestLimitsFromEnv(t *testing.T) {
	env := map[string]string{
		"CONNECTORS_LIMIT_CALLS_PER_MINUTE": "600", "CONNECTORS_LIMIT_BURST": "60", "CONNECTORS_LIMIT_CONCURRENT_CALLS": "8",
		"CONNECTORS_LIMIT_DAILY_CALLS": "50000", "CONNECTORS_LIMIT_MONTHLY_CALLS": "0",
	}
	cfg, err := configFromEnv(func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	if l := cfg.Limits; l.CallsPerMinute != 600 || l.Burst != 60 || l.ConcurrentCalls != 8 || l.DailyCalls != 50000 || l.MonthlyCalls != 0 {
		t.Errorf("limits %+v", l)
	}
	for name, bad := range map[string]string{
		"CONNECTORS_LIMIT_CALLS_PER_MINUTE": "-1",
		"CONNECTORS_LIMIT_BURST":            "lots",
		"CONNECTORS_LIMIT_CONCURRENT_CALLS": "1.5",
		"CONNECTORS_LIMIT_DAILY_CALLS":      "99999999999999999999",
		"CONNECTORS_LIMIT_MONTHLY_CALLS":    "100000000001",
	} {
		_, err := configFromEnv(func(k string) string {
			if k == name {
				return bad
			}
			return env[k]
		})
		if err == nil || !strings.HasPrefix(err.Error(), name+":") {
			t.Errorf("%s=%s: %v, want an error naming the variable", name, bad, err)
		}
	}
}

// limitsExchanges exercises GET and PUT /admin/tenants/{tenantId}/limits
// against the OpenAPI document (TestOpenAPIDocument), and a REST invoke
// refused for a limit (429).
func limitsExchanges(t *testing.T, d *apiDoc) {
	t.Helper()
	const path = "/admin/tenants/tenant-b/limits"
	d.run([]exchange{
		{name: "the defaults", method: "GET", path: path, as: "admin", status: 200},
		{name: "an override", method: "PUT", path: path, as: "admin", body: `{"callsPerMinute": 600, "burst": 60, "concurrentCalls": 8, "dailyCalls": 50000, "monthlyCalls": 1000000, "integrations": {"notion": {"callsPerMinute": 120}}}`, status: 200},
		{name: "in force", method: "GET", path: path, as: "admin", status: 200},
		{name: "negative", method: "PUT", path: path, as: "admin", body: `{"callsPerMinute": -1}`, status: 400, errName: "ValidationError", refused: true},
		{name: "past the maximum", method: "PUT", path: path, as: "admin", body: `{"concurrentCalls": 100001}`, status: 400, errName: "ValidationError", refused: true},
		{name: "a string", method: "PUT", path: path, as: "admin", body: `{"burst": "60"}`, status: 400, errName: "ValidationError", refused: true},
		{name: "an unknown field", method: "PUT", path: path, as: "admin", body: `{"callsPerHour": 1}`, status: 400, errName: "ValidationError", refused: true},
		{name: "an unknown integration", method: "PUT", path: path, as: "admin", body: `{"integrations": {"nope": {}}}`, status: 400, errName: "ValidationError"},
		{name: "no body", method: "PUT", path: path, as: "admin", status: 400, errName: "ValidationError", refused: true},
		{name: "not sent as JSON", method: "PUT", path: path, as: "admin", header: []string{"Content-Type", "text/plain"}, body: `{}`, status: 415, errName: "UnsupportedMediaType", refused: true},
		{name: "an oversized body", method: "PUT", path: path, as: "admin", body: `{"burst": 1, "x": "` + strings.Repeat("n", 5<<20) + `"}`, status: 413, errName: "PayloadTooLarge", refused: true},
		{name: "not an admin", method: "PUT", path: path, as: "tenant-b", body: `{"callsPerMinute": 0}`, status: 403, errName: "Forbidden"},
		{name: "not an admin", method: "GET", path: path, as: "tenant-b", status: 403, errName: "Forbidden"},
		{name: "a hostile tenant ID", method: "GET", path: "/admin/tenants/TENANT-B/limits", as: "admin", status: 400, errName: "InvalidTenantId", refused: true},
		{name: "no credentials", method: "GET", path: path, status: 401, errName: "Unauthorized", refused: true},
		{name: "one call a day", method: "PUT", path: path, as: "admin", body: `{"dailyCalls": 1}`, status: 200},
		{name: "the day's call", method: "POST", path: "/api/v1/tools/invoke", as: "tenant-b", body: `{"toolId": "notion.API-get-self"}`, status: 200},
		{name: "past the day's quota", method: "POST", path: "/api/v1/tools/invoke", as: "tenant-b", body: `{"toolId": "notion.API-get-self"}`, status: 429, errName: "RateLimited"},
		{name: "no limits again", method: "PUT", path: path, as: "admin", body: `{}`, status: 200},
	})
}

// throttlingEcho starts testdata/upstream-echo over HTTP behind a proxy
// that, while throttle is set, answers tenant-a's tool calls 429 with
// Retry-After: 1 (as an API over quota does); calls counts the tool calls
// of tenant-a that reached it.
func throttlingEcho(t *testing.T) (mcpURL string, throttle *atomic.Bool, calls *atomic.Int64) {
	t.Helper()
	addr := startHTTPFixture(t, "upstream-echo")
	proxy := httputil.NewSingleHostReverseProxy(&url.URL{Scheme: "http", Host: addr})
	throttle, calls = new(atomic.Bool), new(atomic.Int64)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		r.Body = io.NopCloser(bytes.NewReader(body))
		if strings.Contains(r.Header.Get("Authorization"), "tenant-a") && bytes.Contains(body, []byte(`"tools/call"`)) {
			calls.Add(1)
			if throttle.Load() {
				w.Header().Set("Retry-After", "1")
				http.Error(w, `{"error": "too many requests"}`, http.StatusTooManyRequests)
				return
			}
		}
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv.URL + "/mcp", throttle, calls
}

// TestLimitsUpstreamBackoff: an upstream's 429 with Retry-After makes the
// gateway refuse that tenant's later calls of that integration itself,
// with the answers of a limit, until the time passes; other tenants and
// the tenant's other integrations are not affected.
func TestLimitsUpstreamBackoff(t *testing.T) {
	upURL, throttle, calls := throttlingEcho(t)
	g := newGatewayWithCredentials(t, nil, map[string]any{"name": "echo", "upstream": map[string]any{
		"url": upURL, "headers": map[string]string{"Authorization": "Bearer {{access_token}}"}}})
	g.withAdmin()
	g.serve()
	toolNames(t, g.client("tenant-a")) // discovers the catalogue (the direct lane's)

	throttle.Store(true)
	// The call that gets the upstream's 429 is told when to retry, as
	// the calls the gateway then refuses are.
	if status, hdr, body := g.invokeWithHeaders("tenant-a", "echo.echo"); status != http.StatusTooManyRequests || body["error"] != "RateLimited" ||
		hdr.Get("Retry-After") != "1" || !strings.Contains(fmt.Sprint(body["message"]), "upstream_rate_limit") {
		t.Fatalf("the call the upstream answered 429: %d %v, Retry-After %q; want 429 RateLimited for upstream_rate_limit", status, body, hdr.Get("Retry-After"))
	}
	if n := calls.Load(); n != 1 {
		t.Fatalf("%d tool calls reached the upstream, want 1", n)
	}
	status, hdr, body := g.invokeWithHeaders("tenant-a", "echo.echo")
	if status != http.StatusTooManyRequests || body["error"] != "RateLimited" || hdr.Get("Retry-After") != "1" || !strings.Contains(fmt.Sprint(body["message"]), "upstream_rate_limit") {
		t.Errorf("a call in the upstream's backoff: %d %v, Retry-After %q; want 429 RateLimited for upstream_rate_limit", status, body, hdr.Get("Retry-After"))
	}
	if _, raw := g.post("tenant-a", "/mcp", "echo_echo", callBody("1", "echo_echo", ""), nil); !strings.Contains(raw, `"isError":true`) || !strings.Contains(raw, `"connectors/limit":"upstream_rate_limit"`) {
		t.Errorf("a direct call in the backoff: %s", raw)
	}
	if n := calls.Load(); n != 1 {
		t.Errorf("%d tool calls reached the upstream during its backoff, want 1 (the first)", n)
	}
	if status, _, body := g.invokeWithHeaders("tenant-b", "echo.echo"); status != http.StatusOK {
		t.Errorf("tenant-b's call, not throttled: %d %v", status, body)
	}
	if status, _, body := g.invokeWithHeaders("tenant-a", "notion.API-get-self"); status != http.StatusOK {
		t.Errorf("tenant-a's call of notion: %d %v", status, body)
	}
	if n := g.limitRefusals("echo", "upstream_rate_limit"); n != 2 {
		t.Errorf("connectors_limit_refusals_total{echo,upstream_rate_limit} = %d, want 2", n)
	}

	// On the direct lane, the same: the call that gets the 429 is a tool
	// error with the wait in _meta.
	time.Sleep(1100 * time.Millisecond) // the upstream's Retry-After: 1
	if _, raw := g.post("tenant-a", "/mcp", "echo_echo", callBody("1", "echo_echo", ""), nil); !strings.Contains(raw, `"isError":true`) ||
		!strings.Contains(raw, `"connectors/limit":"upstream_rate_limit"`) || !strings.Contains(raw, `"connectors/retryAfterMs":`) {
		t.Errorf("a direct call the upstream answered 429: %s", raw)
	}
	if n := calls.Load(); n != 2 {
		t.Errorf("%d tool calls reached the upstream, want 2 (one on each lane)", n)
	}

	throttle.Store(false)
	time.Sleep(1100 * time.Millisecond) // the upstream's Retry-After: 1
	if status, _, body := g.invokeWithHeaders("tenant-a", "echo.echo"); status != http.StatusOK || body["success"] != true {
		t.Errorf("after the upstream's wait: %d %v", status, body)
	}
	if n := calls.Load(); n != 3 {
		t.Errorf("%d tool calls reached the upstream, want 3", n)
	}
}

// TestLimitsQuotaAcrossRestart: the calls counted towards a daily quota
// are kept in the store in batches and read again after a restart, so a
// restart does not give a tenant a fresh quota; the store holds them in
// the record limits-quota, not a write per call.
func TestLimitsQuotaAcrossRestart(t *testing.T) {
	g := newGatewayWithEnv(t, map[string]string{"CONNECTORS_LIMIT_DAILY_CALLS": "3", "CONNECTORS_USAGE_FLUSH_INTERVAL": "50ms"})
	_, stop := g.start()
	for range 2 {
		if status, _, body := g.invokeWithHeaders("tenant-a", "notion.API-get-self"); status != http.StatusOK {
			t.Fatalf("a call within the quota: %d %v", status, body)
		}
	}
	stop() // the counts are flushed when the gateway stops, at the latest

	g.start()
	// The first call after the restart is the third of the day: admitted,
	// and the restarted gateway learns the stored count at its next flush.
	if status, _, body := g.invokeWithHeaders("tenant-a", "notion.API-get-self"); status != http.StatusOK {
		t.Fatalf("the third call of the day: %d %v", status, body)
	}
	time.Sleep(300 * time.Millisecond) // six flushes
	status, hdr, body := g.invokeWithHeaders("tenant-a", "notion.API-get-self")
	if status != http.StatusTooManyRequests || body["error"] != "RateLimited" || !strings.Contains(fmt.Sprint(body["message"]), "3 calls a day") || hdr.Get("Retry-After") == "" {
		t.Errorf("the fourth call of a quota of 3, after a restart: %d %v, want 429: the stored count read again\n%s", status, body, g.stderr)
	}
	if status, _, _ := g.invokeWithHeaders("tenant-b", "notion.API-get-self"); status != http.StatusOK {
		t.Errorf("tenant-b, with its own quota: %d", status)
	}
}

// TestLimitsOnReplicas: two replicas on one Vault, gossiping. An override
// put through a applies on b at once (within the gossip's bound, not
// b's settings cache's); each replica holds a tenant to its share of the
// per-minute budget; the replicas hold a tenant to one daily quota.
func TestLimitsOnReplicas(t *testing.T) {
	a, b, _ := clusteredPair(t, map[string]string{"CONNECTORS_USAGE_FLUSH_INTERVAL": "100ms"})
	const path = "/admin/tenants/tenant-a/limits"
	self := "notion.API-get-self"
	if status, _, body := b.invokeWithHeaders("tenant-a", self); status != http.StatusOK { // b caches tenant-a's settings
		t.Fatalf("before any override: %d %v", status, body)
	}
	put := func(body string) {
		t.Helper()
		if code, _, raw := a.api("admin", "PUT", path, body); code != http.StatusOK {
			t.Fatalf("PUT %s through a: %d %s", body, code, raw)
		}
	}

	// Applies on b at once: within the gossip's bound, where b's settings
	// cache would serve the old settings for 5s.
	put(`{"concurrentCalls": 0, "callsPerMinute": 1, "burst": 1}`)
	start := time.Now()
	for {
		status, _, body := b.invokeWithHeaders("tenant-a", self)
		if status == http.StatusTooManyRequests {
			t.Logf("b refused tenant-a %v after the override through a", time.Since(start).Round(time.Millisecond))
			break
		}
		if status != http.StatusOK || time.Since(start) > propagationBound {
			t.Fatalf("b still admits tenant-a's calls %v after an override of 1 a minute through a (last: %d %v)", time.Since(start), status, body)
		}
		time.Sleep(20 * time.Millisecond)
	}

	// 4 a minute between 2 replicas: 2 on each.
	if code, _, raw := a.api("admin", "PUT", "/admin/tenants/tenant-b/limits", `{"callsPerMinute": 4}`); code != http.StatusOK {
		t.Fatalf("PUT through a: %d %s", code, raw)
	}
	time.Sleep(500 * time.Millisecond) // told to b
	for _, g := range []*gateway{a, b} {
		for i := range 3 {
			status, _, _ := g.invokeWithHeaders("tenant-b", self)
			if want := map[bool]int{true: http.StatusOK, false: http.StatusTooManyRequests}[i < 2]; status != want {
				t.Errorf("tenant-b's call %d on a replica: %d, want %d (its share of 4 a minute: 2)", i+1, status, want)
			}
		}
	}

	// 3 a day across both: counted on a, held on b after its flush; a
	// replica that last read the counts before the others' calls may admit
	// one more before its next flush (the bound README states).
	put(`{"dailyCalls": 3}`)
	time.Sleep(300 * time.Millisecond) // the change told, and a few flushes
	for range 2 {
		if status, _, body := a.invokeWithHeaders("tenant-a", self); status != http.StatusOK {
			t.Fatalf("a call within the day's quota on a: %d %v", status, body)
		}
	}
	time.Sleep(300 * time.Millisecond)
	if status, _, body := b.invokeWithHeaders("tenant-a", self); status != http.StatusOK {
		t.Fatalf("the day's third call, on b: %d %v", status, body)
	}
	time.Sleep(300 * time.Millisecond) // b reads the counts it had not (its state is new to the quota)
	if status, _, body := b.invokeWithHeaders("tenant-a", self); status != http.StatusTooManyRequests {
		t.Errorf("the day's fourth call, on b: %d %v, want 429", status, body)
	}
	extra := 0
	if status, _, _ := a.invokeWithHeaders("tenant-a", self); status == http.StatusOK {
		extra++ // a had not read b's call yet
	}
	time.Sleep(300 * time.Millisecond)
	for _, g := range []*gateway{a, b} {
		if status, _, body := g.invokeWithHeaders("tenant-a", self); status != http.StatusTooManyRequests {
			t.Errorf("past the day's quota of 3 (%d over): %d %v, want 429 on either replica", extra, status, body)
		}
	}
}

// TestLimitsDirectFallbackAdmittedOnce: a 2025-11-25 session's call the
// direct lane takes, and hands to the usual lane when the upstream asks
// the agent something, is admitted once: with one call in flight and one
// a day allowed, it completes, and the next call is refused.
func TestLimitsDirectFallbackAdmittedOnce(t *testing.T) {
	upURL, up := recordedEcho(t, "--ask")
	g := newGatewayWithCredentials(t, map[string]string{"CONNECTORS_LIMIT_CONCURRENT_CALLS": "1", "CONNECTORS_LIMIT_DAILY_CALLS": "1"},
		map[string]any{"name": "echo", "upstream": map[string]any{
			"url": upURL, "headers": map[string]string{"Authorization": "Bearer {{access_token}}"}}})
	g.serve()
	c := g.dialPath("tenant-a", "/mcp", nil,
		client.WithProtocolVersion(mcp.ProtocolVersion20251125), client.WithLegacyProtocolOnly(),
		client.WithElicitationHandler(elicitFunc(func(context.Context, mcp.ElicitationRequest) (*mcp.ElicitationResult, error) {
			return &mcp.ElicitationResult{ElicitationResponse: mcp.ElicitationResponse{
				Action: mcp.ElicitationResponseActionAccept, Content: map[string]any{"ok": true}}}, nil
		})))
	toolNames(t, c)
	before := len(up.calls())
	res, err := c.CallTool(t.Context(), mcp.CallToolRequest{Params: mcp.CallToolParams{Name: "echo_ask"}})
	if err != nil || res.IsError {
		t.Fatalf("the call handed from the direct lane to the usual one: %+v %v (admitted twice?)", res, err)
	}
	if text := toolText(t, res); text != "confirmed: accept map[ok:true]" {
		t.Errorf("answer %q", text)
	}
	if n := len(up.directSince(before)); n != 1 {
		t.Fatalf("%d direct upstream calls, want 1: the direct lane took the call first", n)
	}
	res, err = c.CallTool(t.Context(), mcp.CallToolRequest{Params: mcp.CallToolParams{Name: "echo_echo"}})
	if err != nil || !res.IsError || !strings.Contains(toolText(t, res), "daily_calls") {
		t.Errorf("the day's second call of 1: %+v %v, want refused for daily_calls (the first counted once)", res, err)
	}
}

// TestLimitsConcurrentCalls: with one call in flight allowed, a second
// call while a long one runs is refused (nothing sent upstream), and once
// the long one ends, the next is admitted: its place was freed.
func TestLimitsConcurrentCalls(t *testing.T) {
	g := newGatewayWithEnv(t, map[string]string{"CONNECTORS_LIMIT_CONCURRENT_CALLS": "1"})
	g.serve()
	c := g.client("tenant-a")
	call := func(name string, args map[string]any) *mcp.CallToolResult {
		t.Helper()
		res, err := c.CallTool(t.Context(), mcp.CallToolRequest{Params: mcp.CallToolParams{Name: name, Arguments: args}})
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		return res
	}
	call("everything_echo", map[string]any{"message": "warm"}) // starts the upstream
	long := make(chan *mcp.CallToolResult, 1)
	go func() {
		res, _ := c.CallTool(t.Context(), mcp.CallToolRequest{Params: mcp.CallToolParams{
			Name: "everything_trigger-long-running-operation", Arguments: map[string]any{"duration": 2, "steps": 1}}})
		long <- res
	}()
	time.Sleep(300 * time.Millisecond) // the long call admitted and running (it runs 2s)
	seen := len(g.notion.Requests())
	if res := call("notion_API-get-self", nil); !res.IsError || !strings.Contains(toolText(t, res), "concurrent_calls") {
		t.Errorf("a call while a long one ran: %s, want refused for concurrent_calls", toolText(t, res))
	}
	if got := len(g.notion.Requests()); got != seen {
		t.Errorf("the refused call reached Notion")
	}
	if res := <-long; res == nil || res.IsError {
		t.Fatalf("the long call: %+v", res)
	}
	if res := call("notion_API-get-self", nil); res.IsError {
		t.Errorf("after the long call ended: %s (its place was not freed)", toolText(t, res))
	}
}

// TestLimitsTasksLane: the tasks extension's tools/call is admitted within
// the tenant's limits too: past them it is a tool error, and the upstream
// creates no task.
func TestLimitsTasksLane(t *testing.T) {
	upstream, log := recordedConformance(t)
	g := fixtureGateway(t, upstream, "")
	g.withAdmin() // beside the serving gateway, through its admin socket
	if code, _, raw := g.api("admin", "PUT", "/admin/tenants/tenant-a/limits", `{"callsPerMinute": 1}`); code != http.StatusOK {
		t.Fatalf("PUT limits: %d %s", code, raw)
	}
	call := fmt.Sprintf(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{%s,"name":"slow_compute","arguments":{"seconds":1,"label":"x"}}}`, taskMeta)
	if status, raw := g.post("tenant-a", "/mcp/conformance", "slow_compute", call, nil); status != http.StatusOK || !strings.Contains(raw, `"resultType":"task"`) {
		t.Fatalf("the minute's call: %d %s", status, raw)
	}
	before := len(log.of("tools/call"))
	status, raw := g.post("tenant-a", "/mcp/conformance", "slow_compute", call, nil)
	if status != http.StatusOK || !strings.Contains(raw, `"isError":true`) || !strings.Contains(raw, `"connectors/limit":"calls_per_minute"`) || strings.Contains(raw, `"resultType":"task"`) {
		t.Errorf("past the minute's call: %d %s, want a tool error naming the limit", status, raw)
	}
	if got := len(log.of("tools/call")); got != before {
		t.Errorf("the refused call reached the upstream (%d tools/call, had %d)", got, before)
	}
}
