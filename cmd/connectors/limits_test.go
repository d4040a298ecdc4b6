package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/mcp"
)

// invokeWithHeaders posts a REST invoke of toolID as tenant and returns
// the status, the answer's headers and its body.
func (g *gateway) invokeWithHeaders(tenant, toolID string) (int, http.Header, map[string]any) {
	g.t.Helper()
	body := fmt.Sprintf(`{"toolId": %q, "parameters": {}}`, toolID)
	req, _ := http.NewRequest("POST", "http://"+g.addr+"/api/v1/tools/invoke", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+g.keys[tenant])
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		g.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var out map[string]any
	_ = json.Unmarshal(raw, &out)
	return resp.StatusCode, resp.Header, out
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
