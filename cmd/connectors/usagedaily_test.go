package main

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/vault/api"

	"github.com/connectors-gateway/connectors/metrics"
	"github.com/connectors-gateway/connectors/vault/embedded"
)

// usageDailyExchanges are the OpenAPI exchanges of the daily usage route
// (TestOpenAPIDocument).
func usageDailyExchanges(t *testing.T, d *apiDoc) {
	t.Helper()
	const dailyA = "/tenants/tenant-a/usage/daily"
	// tenant-a called tools above: its days are checked against DayUsage.
	_, body := d.do(exchange{name: "tenant-a's days", method: "GET", path: dailyA, as: "tenant-a", status: 200})
	var got metrics.DailyUsage
	if err := json.Unmarshal(body, &got); err != nil || len(got.Days) == 0 {
		t.Errorf("tenant-a's days after its calls: %s", body)
	}
	d.run([]exchange{
		{name: "the last week", method: "GET", path: dailyA + "?days=7", as: "tenant-a", status: 200},
		{name: "by an admin", method: "GET", path: "/tenants/tenant-c/usage/daily?days=30", as: "admin", status: 200},
		{name: "no days", method: "GET", path: dailyA + "?days=0", as: "tenant-a", status: 400, errName: "ValidationError", refused: true},
		{name: "more days than kept", method: "GET", path: dailyA + "?days=31", as: "tenant-a", status: 400, errName: "ValidationError", refused: true},
		{name: "days not a number", method: "GET", path: dailyA + "?days=week", as: "tenant-a", status: 400, errName: "ValidationError", refused: true},
		{name: "a hostile tenant ID", method: "GET", path: "/tenants/TENANT-A/usage/daily", as: "tenant-a", status: 400, errName: "InvalidTenantId", refused: true},
		{name: "no credentials", method: "GET", path: dailyA, status: 401, errName: "Unauthorized", refused: true},
		{name: "another tenant", method: "GET", path: dailyA, as: "tenant-b", status: 403, errName: "Forbidden"},
	})
}

// dailyOf returns g's daily usage route of tenant, as tenant.
func (g *gateway) dailyOf(tenant, query string) (int, metrics.DailyUsage, string) {
	g.t.Helper()
	code, _, raw := g.api(tenant, "GET", "/tenants/"+tenant+"/usage/daily"+query, "")
	var d metrics.DailyUsage
	_ = json.Unmarshal([]byte(raw), &d)
	return code, d, raw
}

// usageReplicas starts two replicas, a (with an admin key) and b, on one
// Vault (gateway policy) that flush usage every 100ms; stopA stops a.
func usageReplicas(t *testing.T) (a, b *gateway, root *api.Client, stopA func()) {
	t.Helper()
	vaultAddr, root, token := gatewayVault(t)
	a = newGatewayWithEnv(t, map[string]string{
		"VAULT_ADDR": vaultAddr, "VAULT_TOKEN": token,
		"CONNECTORS_USAGE_FLUSH_INTERVAL": "100ms",
	})
	a.withAdmin()
	_, stopA = a.start()
	b = a.twin()
	b.serve()
	return a, b, root, stopA
}

// TestSharedUsageDaily: calls through two replicas on one Vault (gateway
// policy) sum, per day and integration, in the daily route of either
// within the flush interval, and survive a restart; a call the upstream
// refuses counts as an error; a daily record that does not parse is
// ignored and logged.
func TestSharedUsageDaily(t *testing.T) {
	a, b, root, stopA := usageReplicas(t)
	a.echo(t, "tenant-a", 2)
	// A call the upstream refuses (a number for the message) counts as an
	// error of the day.
	if res, err := call(t.Context(), a.client("tenant-a"), "everything_echo", map[string]any{"message": 5}); err == nil && !res.IsError {
		t.Fatalf("a call with a number for the message succeeded: %+v", res)
	}
	b.echo(t, "tenant-a", 2)
	b.echo(t, "tenant-b", 1)
	today := time.Now().UTC().Format(time.DateOnly)
	check := func(g *gateway, tenant string, calls, errs int64) string {
		code, d, raw := g.dailyOf(tenant, "?days=1")
		if code != http.StatusOK || len(d.Days) != 1 || d.Days[0].Date != today || d.Days[0].Integration != "everything" ||
			d.Days[0].Calls != calls || d.Days[0].Errors != errs || d.Days[0].LatencyMs.Mean <= 0 || d.Days[0].LatencyMs.P95 <= 0 {
			return fmt.Sprintf("%s's daily usage: %s; want %d calls of everything today, %d errors, with latency", tenant, raw, calls, errs)
		}
		return ""
	}
	took := eventually(t, sharedBound, func() string {
		if msg := check(a, "tenant-a", 5, 1); msg != "" {
			return "a: " + msg
		}
		return check(b, "tenant-a", 5, 1)
	})
	t.Logf("daily figures of a and b summed on both %v after the last call", took.Round(time.Millisecond))
	eventually(t, sharedBound, func() string { return check(a, "tenant-b", 1, 0) })
	start := time.Now()
	if code, d, raw := b.dailyOf("tenant-a", ""); code != http.StatusOK || len(d.Days) != 1 || d.Days[0].Calls != 5 {
		t.Errorf("tenant-a's 30 days: %s", raw)
	}
	t.Logf("the route read 30 days' records in %v", time.Since(start).Round(time.Millisecond))

	// Hostile: a daily record that does not parse is read as none, logged.
	name, _ := dailyRecordName(today)
	if _, err := root.Logical().Write("secret/data/_records/tenant-b/"+name, map[string]any{"data": map[string]any{"record": "eyJkYXRlIjoibm9wZSJ9"}}); err != nil { // {"date":"nope"}
		t.Fatal(err)
	}
	if code, d, raw := b.dailyOf("tenant-b", ""); code != http.StatusOK || len(d.Days) != 0 {
		t.Errorf("tenant-b's days with a malformed record: %s; want none", raw)
	}
	if !strings.Contains(b.stderr.String(), `"record":"`+name+`"`) {
		t.Error("the malformed daily record was not logged")
	}

	stopA()
	a2 := a.twin()
	a2.serve()
	if msg := check(a2, "tenant-a", 5, 1); msg != "" {
		t.Error("after a restart: " + msg)
	}
}

// TestSharedDailyFlush: the flush of daily figures on a real store, with
// the replicas' check-and-set: two replicas' figures of one day, flushed
// at once, sum; a slot holding a later day is not overwritten by figures
// past the days kept; a failed daily write stays unflushed for the next
// flush.
func TestSharedDailyFlush(t *testing.T) {
	st, err := embedded.Open(filepath.Join(t.TempDir(), "creds.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	log := slog.New(slog.DiscardHandler)
	var replicas [2]*sharedUsage
	for i := range replicas {
		u := metrics.NewUsage(0)
		u.CallResult("acme", "notion", metrics.OutcomeOK, 20*time.Millisecond)
		u.CallResult("acme", "notion", metrics.OutcomeError, 200*time.Millisecond)
		u.Refresh("acme", "github", i == 0)
		replicas[i] = &sharedUsage{usage: u, store: st, log: log, every: time.Hour}
	}
	var wg sync.WaitGroup
	for _, r := range replicas {
		wg.Go(func() { r.flush(t.Context()) }) // at once: check-and-set conflicts retried
	}
	wg.Wait()
	for _, r := range replicas {
		if left := r.usage.UnflushedDaily(); len(left) != 0 {
			t.Errorf("unflushed after the flush: %+v", left)
		}
	}
	got, err := replicas[0].Daily(t.Context(), "acme", 1)
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Days) != 2 || got.Days[0].Integration != "github" || got.Days[0].Refreshes != 2 || got.Days[0].RefreshFailures != 1 ||
		got.Days[1].Calls != 4 || got.Days[1].Errors != 2 || got.Days[1].LatencyMs.Mean != 110 {
		t.Errorf("two replicas' day: %+v", got)
	}

	// Figures of a day 30 days before today land in today's slot, which
	// holds today: they are dropped, and today's figures stay.
	old := time.Now().UTC().AddDate(0, 0, -metrics.DaysKept).Format(time.DateOnly)
	if err := replicas[0].flushDay(t.Context(), "acme", old, []metrics.DayFigures{{Date: old, Integration: "notion", Calls: 9}}); err != nil {
		t.Fatal(err)
	}
	if again, _ := replicas[0].Daily(t.Context(), "acme", 1); fmt.Sprint(again) != fmt.Sprint(got) {
		t.Errorf("after figures of %s: %+v, want %+v", old, again, got)
	}
	if oldName, _ := dailyRecordName(old); oldName != mustName(t, time.Now().UTC().Format(time.DateOnly)) {
		t.Errorf("%s and today in different records: %s", old, oldName)
	}

	// A store that refuses the write: the figures stay to flush.
	u := metrics.NewUsage(0)
	u.CallResult("Acme", "notion", metrics.OutcomeOK, time.Millisecond) // not a tenant ID: the store refuses it
	s := &sharedUsage{usage: u, store: st, log: log, every: time.Hour}
	s.flush(t.Context())
	if left := u.UnflushedDaily(); len(left) != 1 {
		t.Errorf("a refused daily write left %+v unflushed, want the one tenant", left)
	}
}

func mustName(t *testing.T, date string) string {
	t.Helper()
	name, err := dailyRecordName(date)
	if err != nil {
		t.Fatal(err)
	}
	return name
}

// TestParseDaily: a daily record that cannot be right is refused.
func TestParseDaily(t *testing.T) {
	ok := `{"date":"2026-12-03","figures":[{"date":"2026-12-03","integration":"notion","calls":1,"errors":0,"latency":{"count":1,"sumMs":3,"buckets":[1,0,0,0,0,0,0,0,0,0,0,0]},"refreshes":0,"refreshFailures":0}]}`
	if _, err := parseDaily([]byte(ok)); err != nil {
		t.Fatalf("a valid record: %v", err)
	}
	for name, rec := range map[string]string{
		"not JSON":        `{"date":`,
		"no date":         `{"figures":[]}`,
		"another date":    `{"date":"2026-12-03","figures":[{"date":"2026-12-02","integration":"notion"}]}`,
		"twice":           `{"date":"2026-12-03","figures":[{"date":"2026-12-03","integration":"notion"},{"date":"2026-12-03","integration":"notion"}]}`,
		"negative":        `{"date":"2026-12-03","figures":[{"date":"2026-12-03","integration":"notion","calls":-1}]}`,
		"bad integration": `{"date":"2026-12-03","figures":[{"date":"2026-12-03","integration":"../x"}]}`,
	} {
		if _, err := parseDaily([]byte(rec)); err == nil {
			t.Errorf("%s: accepted %s", name, rec)
		}
	}
}
