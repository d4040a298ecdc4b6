package limits

import (
	"testing"
	"time"
)

// shared is a store of shared quota counts, as the gateway's records hold
// them, for tests.
type shared map[key]QuotaCounts

// flush does what the gateway's flusher does: every state's pending
// counts added to the shared ones, and the totals settled.
func (s shared) flush(l *Limiter) {
	for _, p := range l.Pending() {
		k := key{p.Tenant, p.Integration}
		s[k] = s[k].Add(p.Counts)
		l.Settle(p, s[k])
	}
}

// TestQuotasShared: two replicas (and one started later) settling through
// shared counts hold a tenant to its daily quota together, past it by at
// most what they admit between two settlings.
func TestQuotasShared(t *testing.T) {
	c := newClock("2026-12-03T10:00:00Z")
	quota := Options{Defaults: Limits{DailyCalls: 5, MonthlyCalls: 100}, Now: c.now}
	a, b, store := New(quota), New(quota), shared{}
	for range 3 {
		admitted(t, a, "tenant-a", "notion", nil)
	}
	admitted(t, b, "tenant-a", "notion", nil) // b has not read the shared counts yet
	store.flush(a)
	store.flush(b)
	if got := store[key{"tenant-a", ""}]; got.DayCalls != 4 || got.MonthCalls != 4 {
		t.Fatalf("shared counts %+v, want 4 calls today and this month", got)
	}
	admitted(t, b, "tenant-a", "notion", nil)
	refused(t, b, "tenant-a", "notion", nil, LimitDailyCalls) // 4 settled + 1 of its own
	store.flush(b)
	// a last read 3: it admits one more before its next flush tells it
	// of b's calls (the bound: what a replica admits in one interval).
	admitted(t, a, "tenant-a", "notion", nil)
	store.flush(a)
	if got := store[key{"tenant-a", ""}]; got.DayCalls != 6 {
		t.Errorf("shared counts %+v, want 6 calls today", got)
	}
	if len(a.Pending()) != 0 {
		t.Errorf("pending after settling: %+v", a.Pending())
	}
	refused(t, a, "tenant-a", "notion", nil, LimitDailyCalls)
	if p := a.Pending(); len(p) != 1 || p[0].Counts.DayCalls != 0 {
		t.Errorf("pending after a refusal: %+v, want the state, to read the shared counts again", p)
	}

	// A replica started afresh learns the counts at its first flush.
	restarted := New(quota)
	admitted(t, restarted, "tenant-a", "notion", nil)
	store.flush(restarted)
	refused(t, restarted, "tenant-a", "notion", nil, LimitDailyCalls)

	// A new day: the shared count of the old one is no longer held against it.
	c.add(24 * time.Hour)
	admitted(t, a, "tenant-a", "notion", nil)
	store.flush(a)
	if got := store[key{"tenant-a", ""}]; got.DayCalls != 1 || got.MonthCalls != 8 {
		t.Errorf("shared counts the next day %+v, want 1 today and 8 this month", got)
	}
}

// TestReplicasShareTheMinute: with n replicas, each holds a tenant to its
// share of the per-minute budget.
func TestReplicasShareTheMinute(t *testing.T) {
	c := newClock("2026-12-03T10:00:00Z")
	l := New(Options{Defaults: Limits{CallsPerMinute: 10}, Now: c.now})
	l.SetReplicas(3)
	for range 4 { // 10/3, rounded up
		admitted(t, l, "tenant-a", "notion", nil)
	}
	r := refused(t, l, "tenant-a", "notion", nil, LimitCallsPerMinute)
	if r.Max != 4 {
		t.Errorf("refused at %d, want this replica's share, 4", r.Max)
	}
	l.SetReplicas(1)
	for range 10 {
		admitted(t, l, "tenant-a", "notion", nil)
	}
}

// TestSettleKeepsLaterCalls: calls admitted while their state's counts
// were being settled stay pending, and are settled next time.
func TestSettleKeepsLaterCalls(t *testing.T) {
	l := New(Options{Defaults: Limits{DailyCalls: 10}})
	store := shared{}
	admitted(t, l, "tenant-a", "notion", nil)
	p := l.Pending()
	admitted(t, l, "tenant-a", "notion", nil) // after the snapshot, before the settling
	k := key{"tenant-a", ""}
	store[k] = store[k].Add(p[0].Counts)
	l.Settle(p[0], store[k])
	store.flush(l)
	if got := store[k].DayCalls; got != 2 {
		t.Errorf("%d calls settled, want 2: the call admitted during a settling was lost", got)
	}
}
