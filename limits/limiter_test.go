package limits

import (
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// clock is a test's clock: it moves only when told.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock(at string) *clock {
	t, err := time.Parse(time.RFC3339, at)
	if err != nil {
		panic(err)
	}
	return &clock{t: t}
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }

func (c *clock) add(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

func n(v int64) *int64 { return &v }

// admitted admits one call and releases it at once, failing on a refusal.
func admitted(t *testing.T, l *Limiter, tenant, integration string, o *Override) {
	t.Helper()
	tk, r := l.Admit(tenant, integration, o)
	if r != nil {
		t.Fatalf("%s/%s refused: %v", tenant, integration, r)
	}
	tk.Release()
}

// refused admits one call that must be refused for limit, and returns the refusal.
func refused(t *testing.T, l *Limiter, tenant, integration string, o *Override, limit string) *Refusal {
	t.Helper()
	tk, r := l.Admit(tenant, integration, o)
	if r == nil {
		tk.Release()
		t.Fatalf("%s/%s admitted, want refused for %s", tenant, integration, limit)
	}
	if r.Limit != limit {
		t.Fatalf("%s/%s refused for %s (%v), want %s", tenant, integration, r.Limit, r, limit)
	}
	return r
}

func TestCallsPerMinuteReachedAndRecovered(t *testing.T) {
	c := newClock("2026-12-03T10:00:00Z")
	l := New(Options{Defaults: Limits{CallsPerMinute: 60, Burst: 2}, Now: c.now})
	admitted(t, l, "tenant-a", "notion", nil)
	admitted(t, l, "tenant-a", "notion", nil)
	r := refused(t, l, "tenant-a", "notion", nil, LimitCallsPerMinute)
	if !r.First || r.RetryAfter <= 0 || r.RetryAfter > 1100*time.Millisecond || r.RetryAfterSeconds() != 1 {
		t.Errorf("first refusal: %+v, want First and about 1s to wait", r)
	}
	if msg := r.Error(); !strings.Contains(msg, "60 calls per minute") || !strings.Contains(msg, "retry in 1 s") {
		t.Errorf("refusal text %q names neither the limit nor the wait", msg)
	}
	if r := refused(t, l, "tenant-a", "notion", nil, LimitCallsPerMinute); r.First {
		t.Error("a second refusal in the same minute is First")
	}
	admitted(t, l, "tenant-b", "notion", nil) // other tenants have their own bucket
	c.add(r.RetryAfter)
	admitted(t, l, "tenant-a", "notion", nil)
	refused(t, l, "tenant-a", "notion", nil, LimitCallsPerMinute)
	c.add(time.Minute) // a full bucket again, and a new window
	admitted(t, l, "tenant-a", "notion", nil)
	admitted(t, l, "tenant-a", "notion", nil)
	if r := refused(t, l, "tenant-a", "notion", nil, LimitCallsPerMinute); !r.First {
		t.Error("the first refusal of a new minute is not First")
	}
}

func TestConcurrentCallsReachedAndRecovered(t *testing.T) {
	l := New(Options{Defaults: Limits{ConcurrentCalls: 2}})
	t1, _ := l.Admit("tenant-a", "notion", nil)
	t2, _ := l.Admit("tenant-a", "github", nil)
	r := refused(t, l, "tenant-a", "notion", nil, LimitConcurrentCalls)
	if r.Max != 2 || r.RetryAfterSeconds() != 1 {
		t.Errorf("refusal %+v", r)
	}
	admitted(t, l, "tenant-b", "notion", nil)
	t1.Release()
	t1.Release() // twice: frees one place, not two
	t3, r := l.Admit("tenant-a", "notion", nil)
	if r != nil {
		t.Fatalf("after a release: %v", r)
	}
	refused(t, l, "tenant-a", "notion", nil, LimitConcurrentCalls)
	t2.Release()
	t3.Release()
	admitted(t, l, "tenant-a", "notion", nil)
}

// TestConcurrentCallsUnderLoad: however many goroutines call at once, no
// more than the limit are ever in flight, and every place is freed.
func TestConcurrentCallsUnderLoad(t *testing.T) {
	l := New(Options{Defaults: Limits{ConcurrentCalls: 3}})
	var inflight, most, admittedCalls atomic.Int64
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() {
			for range 500 {
				tk, r := l.Admit("tenant-a", "notion", nil)
				if r != nil {
					continue
				}
				admittedCalls.Add(1)
				now := inflight.Add(1)
				for m := most.Load(); now > m && !most.CompareAndSwap(m, now); m = most.Load() {
				}
				inflight.Add(-1)
				tk.Release()
			}
		})
	}
	wg.Wait()
	if most.Load() > 3 || admittedCalls.Load() == 0 {
		t.Errorf("at most %d in flight (limit 3), %d admitted", most.Load(), admittedCalls.Load())
	}
	for range 3 {
		if _, r := l.Admit("tenant-a", "notion", nil); r != nil {
			t.Fatalf("places leaked: %v", r)
		}
	}
}

func TestDailyQuotaReachedAndRecovered(t *testing.T) {
	c := newClock("2026-12-03T23:59:00Z")
	l := New(Options{Defaults: Limits{DailyCalls: 3}, Now: c.now})
	for range 3 {
		admitted(t, l, "tenant-a", "notion", nil)
	}
	r := refused(t, l, "tenant-a", "notion", nil, LimitDailyCalls)
	if r.RetryAfter != time.Minute || !r.First {
		t.Errorf("refusal %+v, want First and a minute to UTC midnight", r)
	}
	if !strings.Contains(r.Error(), "3 calls a day") {
		t.Errorf("refusal text %q", r.Error())
	}
	c.add(time.Minute)
	for range 3 {
		admitted(t, l, "tenant-a", "notion", nil)
	}
	if r := refused(t, l, "tenant-a", "notion", nil, LimitDailyCalls); !r.First {
		t.Error("the first refusal of a new day is not First")
	}
}

func TestMonthlyQuotaReachedAndRecovered(t *testing.T) {
	c := newClock("2026-12-31T12:00:00Z")
	l := New(Options{Defaults: Limits{MonthlyCalls: 2, DailyCalls: 10}, Now: c.now})
	admitted(t, l, "tenant-a", "notion", nil)
	admitted(t, l, "tenant-a", "github", nil)
	r := refused(t, l, "tenant-a", "notion", nil, LimitMonthlyCalls)
	if r.RetryAfter != 12*time.Hour {
		t.Errorf("retry after %v, want 12h (to 1 January, UTC)", r.RetryAfter)
	}
	c.add(12 * time.Hour)
	admitted(t, l, "tenant-a", "notion", nil)
}

// TestOverride: a tenant's override replaces the defaults field by field,
// and an integration's own limit holds that integration only, without
// spending the tenant's budget when it refuses.
func TestOverride(t *testing.T) {
	c := newClock("2026-12-03T10:00:00Z")
	l := New(Options{Defaults: Limits{CallsPerMinute: 1, DailyCalls: 3}, Now: c.now})
	unlimitedRate := &Override{CallsPerMinute: n(0)}
	for range 3 {
		admitted(t, l, "tenant-a", "notion", unlimitedRate)
	}
	refused(t, l, "tenant-a", "notion", unlimitedRate, LimitDailyCalls) // the default quota still holds

	o := &Override{DailyCalls: n(100), CallsPerMinute: n(600), Integrations: map[string]Limits{"notion": {CallsPerMinute: 60, Burst: 1}}}
	admitted(t, l, "tenant-b", "notion", o)
	r := refused(t, l, "tenant-b", "notion", o, LimitCallsPerMinute)
	if r.Integration != "notion" || r.Max != 60 || !strings.Contains(r.Error(), "notion") {
		t.Errorf("refusal %+v (%v), want notion's own limit of 60", r, r)
	}
	for range 5 {
		refused(t, l, "tenant-b", "notion", o, LimitCallsPerMinute)
	}
	for range 10 {
		admitted(t, l, "tenant-b", "github", o)
	}
	if got := l.entry(key{"tenant-b", ""}, false).dayCalls; got != 11 {
		t.Errorf("tenant-b counted %d calls today, want 11 (refused calls spend nothing)", got)
	}
	if eff := EffectiveOf(l.Defaults(), o); eff.CallsPerMinute != 600 || eff.DailyCalls != 100 || eff.Integrations["notion"].CallsPerMinute != 60 {
		t.Errorf("effective %+v", eff)
	}
}

// TestOverrideAppliesAtOnce: a raised limit admits the next call, a
// lowered one refuses it, without waiting for any bucket to refill.
func TestOverrideAppliesAtOnce(t *testing.T) {
	c := newClock("2026-12-03T10:00:00Z")
	l := New(Options{Defaults: Limits{CallsPerMinute: 1}, Now: c.now})
	admitted(t, l, "tenant-a", "notion", nil)
	refused(t, l, "tenant-a", "notion", nil, LimitCallsPerMinute)
	raised := &Override{CallsPerMinute: n(600), Burst: n(10)}
	for range 10 {
		admitted(t, l, "tenant-a", "notion", raised)
	}
	refused(t, l, "tenant-a", "notion", &Override{CallsPerMinute: n(600), Burst: n(10), ConcurrentCalls: n(0)}, LimitCallsPerMinute)
	lowered := &Override{CallsPerMinute: n(600), Burst: n(10), ConcurrentCalls: n(1)}
	c.add(time.Second)
	held, r := l.Admit("tenant-a", "notion", lowered)
	if r != nil {
		t.Fatal(r)
	}
	refused(t, l, "tenant-a", "notion", lowered, LimitConcurrentCalls)
	held.Release()
}

func TestUpstreamBackoff(t *testing.T) {
	c := newClock("2026-12-03T10:00:00Z")
	l := New(Options{Now: c.now})
	l.Backoff("tenant-a", "notion", c.now().Add(30*time.Second))
	r := refused(t, l, "tenant-a", "notion", nil, LimitUpstream)
	if r.Integration != "notion" || r.RetryAfter != 30*time.Second || !r.First {
		t.Errorf("refusal %+v", r)
	}
	if r := refused(t, l, "tenant-a", "notion", nil, LimitUpstream); r.First {
		t.Error("a second refusal in the same backoff is First")
	}
	admitted(t, l, "tenant-a", "github", nil)
	admitted(t, l, "tenant-b", "notion", nil)
	c.add(30 * time.Second)
	admitted(t, l, "tenant-a", "notion", nil)
}

func TestReap(t *testing.T) {
	c := newClock("2026-12-03T10:00:00Z")
	l := New(Options{Defaults: Limits{CallsPerMinute: 60}, Now: c.now, IdleTTL: time.Minute})
	quota := &Override{DailyCalls: n(5)}
	admitted(t, l, "tenant-a", "notion", nil)
	admitted(t, l, "tenant-b", "notion", quota)
	held, _ := l.Admit("tenant-c", "notion", &Override{ConcurrentCalls: n(1)})
	c.add(2 * time.Minute)
	if got := l.Reap(); got != 1 || l.Len() != 2 {
		t.Errorf("reaped %d, %d left; want tenant-a's only (tenant-b counts today, tenant-c has a call in flight)", got, l.Len())
	}
	held.Release()
	c.add(24 * time.Hour)
	if got := l.Reap(); got != 2 || l.Len() != 0 {
		t.Errorf("reaped %d the next day, %d left, want all", got, l.Len())
	}
	admitted(t, l, "tenant-a", "notion", nil) // state made anew
}

func TestDecodeOverride(t *testing.T) {
	known := func(name string) bool { return name == "notion" || name == "github" }
	good := `{"callsPerMinute": 600, "burst": 60, "concurrentCalls": 8, "dailyCalls": 50000, "monthlyCalls": 1000000, "stdioProcesses": 4, "integrations": {"notion": {"callsPerMinute": 120}}}`
	o, err := DecodeOverride([]byte(good), known)
	if err != nil {
		t.Fatal(err)
	}
	if got := EffectiveOf(Limits{}, o); got.Burst != 60 || got.MonthlyCalls != 1000000 || got.StdioProcesses != 4 || got.Integrations["notion"].CallsPerMinute != 120 {
		t.Errorf("decoded %+v", got)
	}
	back, err := ParseOverride(o.Marshal())
	if err != nil || EffectiveOf(Limits{}, back).DailyCalls != 50000 {
		t.Errorf("stored form read back: %+v, %v", back, err)
	}
	for _, c := range []struct{ name, body, field string }{
		{"empty", ``, ""},
		{"null", `null`, ""},
		{"an array", `[{}]`, ""},
		{"malformed", `{"callsPerMinute": `, ""},
		{"two objects", `{} {}`, ""},
		{"negative", `{"callsPerMinute": -1}`, "callsPerMinute"},
		{"huge", `{"dailyCalls": 1000000000000}`, "dailyCalls"},
		{"past int64", `{"monthlyCalls": 99999999999999999999}`, "monthlyCalls"},
		{"fractional", `{"burst": 1.5}`, "burst"},
		{"a string", `{"concurrentCalls": "8"}`, "concurrentCalls"},
		{"a boolean", `{"concurrentCalls": true}`, "concurrentCalls"},
		{"unknown field", `{"callsPerSecond": 1}`, "callsPerSecond"},
		{"unknown field, hostile name", `{"<script>": 1}`, ""},
		{"integrations not an object", `{"integrations": [1]}`, "integrations"},
		{"unknown integration", `{"integrations": {"nope": {}}}`, "integrations.nope"},
		{"hostile integration", `{"integrations": {"../x": {}}}`, "integrations"},
		{"integration negative", `{"integrations": {"notion": {"burst": -5}}}`, "integrations.notion.burst"},
		{"integration unknown field", `{"integrations": {"notion": {"tenant": "tenant-b"}}}`, "integrations.notion.tenant"},
		{"integration wrong type", `{"integrations": {"notion": {"dailyCalls": "x"}}}`, "integrations.notion.dailyCalls"},
		{"stdio processes negative", `{"stdioProcesses": -1}`, "stdioProcesses"},
		{"stdio processes huge", `{"stdioProcesses": 10001}`, "stdioProcesses"},
		{"stdio processes of an integration", `{"integrations": {"notion": {"stdioProcesses": 1}}}`, "integrations.notion.stdioProcesses"},
	} {
		t.Run(c.name, func(t *testing.T) {
			o, err := DecodeOverride([]byte(c.body), known)
			var fe *FieldError
			if !errors.As(err, &fe) {
				t.Fatalf("decoded %+v, %v; want a *FieldError", o, err)
			}
			if fe.Field != c.field {
				t.Errorf("field %q (%v), want %q", fe.Field, fe, c.field)
			}
			if strings.Contains(fe.Error(), "<script>") || strings.Contains(fe.Error(), "../x") {
				t.Errorf("the error repeats a hostile value: %v", fe)
			}
		})
	}
}

// TestAdmitAllocatesNothing: the hot path of a limited call, admitted and
// released, allocates nothing once the tenant's state exists.
func TestAdmitAllocatesNothing(t *testing.T) {
	l := New(Options{Defaults: Limits{CallsPerMinute: 1_000_000, Burst: 1_000_000, ConcurrentCalls: 100, DailyCalls: 1_000_000_000, MonthlyCalls: 1_000_000_000}})
	o := &Override{Integrations: map[string]Limits{"notion": {CallsPerMinute: 1_000_000, ConcurrentCalls: 10}}}
	admitted(t, l, "tenant-a", "notion", o)
	if allocs := testing.AllocsPerRun(1000, func() {
		tk, r := l.Admit("tenant-a", "notion", o)
		if r != nil {
			panic(r)
		}
		tk.Release()
	}); allocs != 0 {
		t.Errorf("%v allocations per admitted call, want 0", allocs)
	}
}
