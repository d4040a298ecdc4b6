package metrics

import (
	"encoding/json"
	"fmt"
	"math"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"
)

const day = 24 * time.Hour

// TestDailyFigures: calls, errors, latency and refreshes land on their
// UTC day and integration, and the route's view lists the days with
// figures by date, then integration.
func TestDailyFigures(t *testing.T) {
	synctest.Test(t, func(t *testing.T) { // the clock starts at 2000-01-01 00:00 UTC
		u := NewUsage(10)
		u.CallResult("acme", "notion", OutcomeOK, 40*time.Millisecond)
		u.CallResult("acme", "notion", OutcomeToolError, 60*time.Millisecond)
		u.CallResult("acme", "notion", OutcomeError, 2*time.Second)
		u.CallResult("acme", "github", OutcomeDenied, time.Millisecond)
		u.Refresh("acme", "notion", true)
		u.Refresh("acme", "slack", false) // refreshed, never called
		u.CallResult("other", "notion", OutcomeOK, time.Millisecond)
		time.Sleep(day + time.Hour)
		u.CallResult("acme", "notion", OutcomeOK, 10*time.Millisecond)
		u.Call("acme", "github") // latency unknown

		got := u.Daily("acme", DaysKept)
		want := DailyUsage{
			TenantID: "acme", From: "1999-12-04", To: "2000-01-02", Days: []DayUsage{ // 30 days ending today
				{Date: "2000-01-01", Integration: "github", Calls: 1, Errors: 1, LatencyMs: LatencySummary{Mean: 1, P95: 4.8}},
				{Date: "2000-01-01", Integration: "notion", Calls: 3, Errors: 2, LatencyMs: LatencySummary{Mean: 700, P95: 2275}, Refreshes: 1},
				{Date: "2000-01-01", Integration: "slack", Refreshes: 1, RefreshFailures: 1},
				{Date: "2000-01-02", Integration: "github", Calls: 1},
				{Date: "2000-01-02", Integration: "notion", Calls: 1, LatencyMs: LatencySummary{Mean: 10, P95: 9.8}},
			},
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("daily (-want +got):\n%s", diff)
		}
		if got := u.Daily("acme", 1); len(got.Days) != 2 || got.From != "2000-01-02" || got.To != "2000-01-02" {
			t.Errorf("the last day: %+v, want today's two integrations", got)
		}
		totals, _ := u.Tenant("acme")
		if totals.Calls != 6 || totals.Refreshes != 2 || !slicesEqual(totals.ActiveIntegrations, []string{"github", "notion"}) {
			t.Errorf("totals beside the daily figures: %+v", totals)
		}
		b, err := json.Marshal(u.Daily("other", 1))
		if err != nil || string(b) != `{"tenantId":"other","from":"2000-01-02","to":"2000-01-02","days":[]}` {
			t.Errorf("a tenant with nothing today: %s, %v", b, err)
		}
	})
}

func slicesEqual(a, b []string) bool { return strings.Join(a, ",") == strings.Join(b, ",") }

// TestDailyKept: only the last DaysKept days are kept, and a window
// narrower than that lists only its own days.
func TestDailyKept(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		u := NewUsage(1)
		for range 45 {
			u.CallResult("acme", "notion", OutcomeOK, time.Millisecond)
			time.Sleep(day)
		}
		held := u.Days("acme")
		if len(held) != DaysKept || held[0].Date != "2000-01-16" || held[len(held)-1].Date != "2000-02-14" {
			t.Fatalf("held %d days, %s to %s; want %d, 2000-01-16 to 2000-02-14", len(held), held[0].Date, held[len(held)-1].Date, DaysKept)
		}
		week := u.Daily("acme", 7)
		if len(week.Days) != 6 || week.From != "2000-02-09" || week.To != "2000-02-15" || week.Days[0].Date != "2000-02-09" {
			t.Errorf("a week: %d days from %s to %s, first %s; want 6 from 2000-02-09 (today, 02-15, has none)", len(week.Days), week.From, week.To, week.Days[0].Date)
		}
	})
}

// TestDailyClockBack: a day counted after a later one (the clock stepped
// back) goes in order; one older than the days kept is not counted.
func TestDailyClockBack(t *testing.T) {
	iu := &integrationUsage{}
	iu.at(100).calls++
	iu.at(98).calls++
	iu.at(100).calls++
	if c := iu.at(100 - DaysKept); c != nil {
		t.Error("a day past those kept was admitted")
	}
	if len(iu.days) != 2 || iu.days[0].day != 98 || iu.days[1].day != 100 || iu.days[1].calls != 2 {
		t.Errorf("days: %+v", iu.days)
	}
}

func TestLatencyQuantile(t *testing.T) {
	var l Latency
	for ms := 1; ms <= 100; ms++ {
		l.add(time.Duration(ms) * time.Millisecond)
	}
	if got := l.MeanMs(); math.Abs(got-50.5) > 1e-9 {
		t.Errorf("mean = %v, want 50.5", got)
	}
	if got := l.QuantileMs(0.95); got != 95 {
		t.Errorf("p95 of 1..100 ms = %v, want 95 (interpolated in the 50–100 ms bucket)", got)
	}
	var slow Latency
	slow.add(time.Minute)
	if got := slow.QuantileMs(0.95); got != 10000 {
		t.Errorf("p95 of one call past the last bound = %v, want that bound, 10000", got)
	}
	if got := (Latency{}).QuantileMs(0.95); got != 0 {
		t.Errorf("p95 without calls = %v", got)
	}
	var edge Latency
	edge.add(5 * time.Millisecond)
	if edge.Buckets[0] != 1 || LatencyBoundMs(0) != 5 || !math.IsInf(LatencyBoundMs(LatencyBuckets-1), 1) {
		t.Errorf("5 ms counted in %v, want the first bucket (bounds inclusive)", edge.Buckets)
	}
}

// TestDailyFlushed: what a flush took off stays off, what was counted
// meanwhile stays, and days left empty are forgotten.
func TestDailyFlushed(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		u := NewUsage(0)
		u.CallResult("acme", "notion", OutcomeError, 20*time.Millisecond)
		u.Refresh("acme", "github", true)
		pending := u.UnflushedDaily()
		if len(pending) != 1 || pending[0].TenantID != "acme" || len(pending[0].Days) != 2 {
			t.Fatalf("unflushed: %+v", pending)
		}
		u.CallResult("acme", "notion", OutcomeOK, 30*time.Millisecond) // meanwhile
		u.FlushedDaily("acme", pending[0].Days)
		left := u.Days("acme")
		want := []DayFigures{{Date: "2000-01-01", Integration: "notion", Calls: 1,
			Latency: Latency{Count: 1, SumMs: 30, Buckets: [LatencyBuckets]int64{3: 1}}}} // 25 < 30 ≤ 50
		if diff := cmp.Diff(want, left); diff != "" {
			t.Errorf("left after the flush (-want +got):\n%s", diff)
		}
		u.FlushedDaily("acme", left)
		if left := u.UnflushedDaily(); len(left) != 0 {
			t.Errorf("unflushed after flushing all: %+v", left)
		}
		u.FlushedDaily("gone", left) // a tenant not kept: nothing happens
		if totals, _ := u.Tenant("acme"); !slicesEqual(totals.ActiveIntegrations, []string{"notion"}) {
			t.Errorf("active integrations after the flush: %v", totals.ActiveIntegrations)
		}
	})
}

// TestDailyBounded: a tenant's daily figures cover at most
// maxTenantIntegrations integrations; names outside the grammar none.
func TestDailyBounded(t *testing.T) {
	u := NewUsage(1)
	for i := range 1000 {
		u.CallResult("acme", fmt.Sprintf("in-%d", i), OutcomeOK, time.Millisecond)
		u.Refresh("acme", fmt.Sprintf("re-%d", i), true)
	}
	u.CallResult("acme", "Not A Name", OutcomeOK, time.Millisecond)
	if got := len(u.Days("acme")); got != maxTenantIntegrations {
		t.Errorf("%d integrations' days, want %d", got, maxTenantIntegrations)
	}
}

func TestSumDays(t *testing.T) {
	a := []DayFigures{{Date: "2026-12-03", Integration: "notion", Calls: 2, Errors: 1, Latency: Latency{Count: 2, SumMs: 10, Buckets: [LatencyBuckets]int64{0: 2}}}}
	b := []DayFigures{
		{Date: "2026-12-03", Integration: "notion", Calls: 1, Refreshes: 3, RefreshFailures: 1, Latency: Latency{Count: 1, SumMs: 7, Buckets: [LatencyBuckets]int64{1: 1}}},
		{Date: "2026-12-02", Integration: "slack", Calls: 1},
	}
	got := SumDays(a, b)
	want := []DayFigures{
		{Date: "2026-12-02", Integration: "slack", Calls: 1},
		{Date: "2026-12-03", Integration: "notion", Calls: 3, Errors: 1, Refreshes: 3, RefreshFailures: 1, Latency: Latency{Count: 3, SumMs: 17, Buckets: [LatencyBuckets]int64{0: 2, 1: 1}}},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("sum (-want +got):\n%s", diff)
	}
	if a[0].Calls != 2 {
		t.Error("SumDays changed its input")
	}
}

// TestDayFiguresCheck: figures read from a store that cannot be right are
// refused, each with a reason.
func TestDayFiguresCheck(t *testing.T) {
	ok := DayFigures{Date: "2026-12-03", Integration: "notion", Calls: 2, Errors: 1, Latency: Latency{Count: 1, SumMs: 3, Buckets: [LatencyBuckets]int64{0: 1}}}
	if err := ok.Check(); err != nil {
		t.Fatalf("valid figures: %v", err)
	}
	for name, f := range map[string]func(*DayFigures){
		"date":             func(f *DayFigures) { f.Date = "2026-13-03" },
		"date format":      func(f *DayFigures) { f.Date = "03/12/2026" },
		"integration":      func(f *DayFigures) { f.Integration = "../x" },
		"negative calls":   func(f *DayFigures) { f.Calls = -1 },
		"errors > calls":   func(f *DayFigures) { f.Errors = 3 },
		"failures":         func(f *DayFigures) { f.RefreshFailures = 1 },
		"negative bucket":  func(f *DayFigures) { f.Latency.Buckets[1] = -1; f.Latency.Buckets[0] = 2 },
		"buckets vs count": func(f *DayFigures) { f.Latency.Count = 5 },
		"sum":              func(f *DayFigures) { f.Latency.SumMs = math.Inf(1) },
	} {
		bad := ok
		f(&bad)
		if err := bad.Check(); err == nil {
			t.Errorf("%s: accepted %+v", name, bad)
		}
	}
}

// TestCallResultAllocs: counting a call of a tenant and integration seen
// before allocates nothing.
func TestCallResultAllocs(t *testing.T) {
	u := NewUsage(0)
	u.CallResult("acme", "notion", OutcomeOK, time.Millisecond)
	if n := testing.AllocsPerRun(1000, func() {
		u.CallResult("acme", "notion", OutcomeToolError, 3*time.Millisecond)
	}); n != 0 {
		t.Errorf("%v allocations per call, want 0", n)
	}
}

// BenchmarkUsageCallResult is the cost of counting one call (totals and
// the day's figures), on one goroutine and on all at once over 1,000
// tenants.
func BenchmarkUsageCallResult(b *testing.B) {
	b.Run("one", func(b *testing.B) {
		u := NewUsage(0)
		b.ReportAllocs()
		for b.Loop() {
			u.CallResult("acme", "notion", OutcomeOK, 12*time.Millisecond)
		}
	})
	b.Run("parallel", func(b *testing.B) {
		u := NewUsage(0)
		ids := make([]string, 1000)
		for i := range ids {
			ids[i] = fmt.Sprintf("tenant-%d", i)
		}
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			i := 0
			for pb.Next() {
				u.CallResult(ids[i%len(ids)], "notion", OutcomeOK, 12*time.Millisecond)
				i++
			}
		})
	})
}
