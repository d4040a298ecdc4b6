package transport

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/connectors-gateway/connectors/audit"
	"github.com/connectors-gateway/connectors/internal/mcptest"
	"github.com/connectors-gateway/connectors/metrics"
	"github.com/connectors-gateway/connectors/server"
	"github.com/connectors-gateway/connectors/tenants"
	"github.com/connectors-gateway/connectors/vault"
	"github.com/connectors-gateway/connectors/vault/embedded"
)

// newUsageGateway is NewHTTP with the daily usage route over a real
// metrics.Usage (and daily, if set, as UsageDaily), the real APIKeyAuth on
// an embedded store and an audit trail; keys of tenant-a, tenant-b and an
// admin (tenant ops).
func newUsageGateway(t *testing.T, u *metrics.Usage, daily func(context.Context, string, int) (metrics.DailyUsage, error)) *apiKeyGateway {
	t.Helper()
	st, err := embedded.Open(filepath.Join(t.TempDir(), "creds.db"), &embedded.Options{MasterKey: bytes.Repeat([]byte{9}, 32)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	g := &apiKeyGateway{keys: tenants.NewAPIKeys(st), trail: &syncBuffer{}, log: &syncBuffer{}, key: map[string]string{}}
	for _, name := range []string{"tenant-a", "tenant-b", "ops"} {
		key, _, err := g.keys.Create(t.Context(), name, name == "ops")
		if err != nil {
			t.Fatal(err)
		}
		g.key[name] = key
	}
	h := NewHTTP(HTTPOptions{
		MCP:        server.NewHandler(mcptest.NewWhoami(), nil, server.HTTPOptions{}),
		Auth:       APIKeyAuth{Keys: g.keys},
		APIKeys:    g.keys,
		Usage:      u,
		UsageDaily: daily,
		Audit:      audit.New(g.trail),
		Logger:     slog.New(slog.NewJSONHandler(g.log, nil)),
	})
	ts := httptest.NewServer(h)
	t.Cleanup(func() { ts.Close(); _ = h.Close(context.Background()) })
	g.url = ts.URL
	return g
}

// TestUsageDailyRoute: a tenant reads its own daily figures, in the
// documented shape, only the days with figures; another tenant's ID is
// refused (403, audited) exactly as the API-key route refuses it; an admin
// reads any tenant's.
func TestUsageDailyRoute(t *testing.T) {
	u := metrics.NewUsage(0)
	u.CallResult("tenant-a", "notion", metrics.OutcomeOK, 40*time.Millisecond)
	u.CallResult("tenant-a", "notion", metrics.OutcomeToolError, 60*time.Millisecond)
	u.Refresh("tenant-a", "notion", false)
	u.CallResult("tenant-b", "slack", metrics.OutcomeOK, time.Millisecond)
	g := newUsageGateway(t, u, nil)
	today := time.Now().UTC().Format(time.DateOnly)

	a := g.mustCall(t, 200, "tenant-a", "GET", "/tenants/tenant-a/usage/daily", "")
	if got, want := keysOf(a.json), []string{"days", "from", "tenantId", "to"}; !slices.Equal(got, want) {
		t.Errorf("fields %v, want %v", got, want)
	}
	from := time.Now().UTC().AddDate(0, 0, -(metrics.DaysKept - 1)).Format(time.DateOnly)
	if a.json["tenantId"] != "tenant-a" || a.json["to"] != today || a.json["from"] != from {
		t.Errorf("tenant-a's daily usage: %s; want from %s to %s", a.raw, from, today)
	}
	days, _ := a.json["days"].([]any)
	if len(days) != 1 {
		t.Fatalf("days: %s, want notion's today alone", a.raw)
	}
	d := days[0].(map[string]any)
	lat, _ := d["latencyMs"].(map[string]any)
	if d["date"] != today || d["integration"] != "notion" || d["calls"] != 2.0 || d["errors"] != 1.0 ||
		d["refreshes"] != 1.0 || d["refreshFailures"] != 1.0 || lat["mean"] != 50.0 || lat["p95"] == nil {
		t.Errorf("notion today: %v", d)
	}
	if week := g.mustCall(t, 200, "tenant-a", "GET", "/tenants/tenant-a/usage/daily?days=1", ""); week.json["from"] != today {
		t.Errorf("days=1: %s, want from today", week.raw)
	}

	// Another tenant's: refused as the other tenant routes refuse it.
	cross := g.call(t, "tenant-a", "GET", "/tenants/tenant-b/usage/daily", "")
	keys := g.call(t, "tenant-a", "GET", "/tenants/tenant-b/api-keys", "")
	if cross.status != 403 || cross.errName() != "Forbidden" || cross.status != keys.status || cross.errName() != keys.errName() {
		t.Errorf("tenant-a reading tenant-b's usage: %d %s (the API-key route: %d %s)", cross.status, cross.raw, keys.status, keys.raw)
	}
	if strings.Contains(cross.raw, "slack") {
		t.Error("tenant-b's figures in the refusal")
	}
	if denied := g.auditRecords(t, audit.OpAccessDenied); len(denied) == 0 || denied[0]["tenantId"] != "tenant-b" || denied[0]["reason"] != "cross_tenant" {
		t.Errorf("audit of the refusal: %v", denied)
	}
	if bad := g.call(t, "tenant-a", "GET", "/tenants/Not_A_Tenant/usage/daily", ""); bad.status != 400 || bad.errName() != "InvalidTenantId" {
		t.Errorf("a name outside the grammar: %d %s", bad.status, bad.raw)
	}
	if anon := g.call(t, "", "GET", "/tenants/tenant-a/usage/daily", ""); anon.status != 401 {
		t.Errorf("without credentials: %d %s", anon.status, anon.raw)
	}

	b := g.mustCall(t, 200, "ops", "GET", "/tenants/tenant-b/usage/daily?days=30", "")
	if days, _ := b.json["days"].([]any); len(days) != 1 || days[0].(map[string]any)["integration"] != "slack" {
		t.Errorf("the admin reading tenant-b's: %s", b.raw)
	}
}

// TestUsageDailyDays: every ?days= that is not a whole number from 1 to
// 30, written plainly and once, is 400 ValidationError naming days, and
// nothing is read.
func TestUsageDailyDays(t *testing.T) {
	read := 0
	g := newUsageGateway(t, nil, func(context.Context, string, int) (metrics.DailyUsage, error) {
		read++
		return metrics.DailyUsage{}, nil
	})
	for _, q := range []string{"days=0", "days=31", "days=-1", "days=abc", "days=", "days=1.5", "days=+5", "days=05",
		"days=3&days=4", "days=%205", "days=99999999999999999999", "days=1e1", "days=0x1f", "days=%00", "days=" + url.QueryEscape("<script>")} {
		a := g.call(t, "tenant-a", "GET", "/tenants/tenant-a/usage/daily?"+q, "")
		msg, _ := a.json["message"].(string)
		if a.status != 400 || a.errName() != "ValidationError" || !strings.HasPrefix(msg, "days: ") {
			t.Errorf("?%s: %d %s, want 400 ValidationError naming days", q, a.status, a.raw)
		}
		if strings.Contains(a.raw, "<script>") {
			t.Errorf("?%s: the value echoed: %s", q, a.raw)
		}
	}
	if read != 0 {
		t.Errorf("UsageDaily called %d times for refused queries", read)
	}
}

// TestUsageDailyShared: with UsageDaily, the route answers what it gives
// for the tenant the guards resolved and the days asked; its error is the
// API's error (a store outage: 503).
func TestUsageDailyShared(t *testing.T) {
	var asked []string
	var fail error
	g := newUsageGateway(t, metrics.NewUsage(0), func(_ context.Context, tenant string, days int) (metrics.DailyUsage, error) {
		asked = append(asked, tenant+"/"+strings.Repeat("d", days))
		return metrics.DailyUsage{TenantID: tenant, From: "2026-12-01", To: "2026-12-03", Days: []metrics.DayUsage{{Date: "2026-12-02", Integration: "notion", Calls: 7}}}, fail
	})
	a := g.mustCall(t, 200, "tenant-a", "GET", "/tenants/tenant-a/usage/daily?days=3", "")
	if days, _ := a.json["days"].([]any); len(days) != 1 || days[0].(map[string]any)["calls"] != 7.0 {
		t.Errorf("shared daily usage: %s", a.raw)
	}
	g.mustCall(t, 200, "ops", "GET", "/tenants/tenant-b/usage/daily", "")
	if want := []string{"tenant-a/ddd", "tenant-b/" + strings.Repeat("d", metrics.DaysKept)}; !slices.Equal(asked, want) {
		t.Errorf("UsageDaily asked %v, want %v", asked, want)
	}
	fail = &vault.VaultError{Err: errors.New("connection refused")}
	if a := g.call(t, "tenant-a", "GET", "/tenants/tenant-a/usage/daily", ""); a.status != 503 || a.errName() != "VaultError" {
		t.Errorf("a store outage: %d %s, want 503 VaultError", a.status, a.raw)
	}
}
