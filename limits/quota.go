package limits

import (
	"cmp"
	"slices"
)

// Sharing with other replicas. A Limiter counts in memory; a caller that
// keeps counts where every replica reads them (the gateway: its store)
// takes what each state counted with Pending, adds it to the shared
// counts, and hands the new totals back with Settle. A state's quotas are
// then held to every replica's settled calls plus its own unsettled ones:
// past a quota by at most what the replicas admit between two settlings. Per-minute budgets are not shared that way (a minute is gone
// before a store would hear of it): with SetReplicas, each replica holds
// a tenant to its share, the limit divided by the live replicas.

// QuotaCounts are calls counted towards quotas: in one UTC day and in one
// UTC month (the windows as numbers: days since 1970, and year*12 +
// month - 1).
type QuotaCounts struct {
	Day        int32 `json:"day"`
	DayCalls   int64 `json:"dayCalls"`
	Month      int32 `json:"month"`
	MonthCalls int64 `json:"monthCalls"`
}

// Add returns c plus o: o's counts of the same windows added, a later
// window's taking the place of an earlier one.
func (c QuotaCounts) Add(o QuotaCounts) QuotaCounts {
	switch {
	case o.Day > c.Day:
		c.Day, c.DayCalls = o.Day, o.DayCalls
	case o.Day == c.Day:
		c.DayCalls += o.DayCalls
	}
	switch {
	case o.Month > c.Month:
		c.Month, c.MonthCalls = o.Month, o.MonthCalls
	case o.Month == c.Month:
		c.MonthCalls += o.MonthCalls
	}
	return c
}

// Pending is what one state counted and has not settled.
type Pending struct {
	Tenant      string
	Integration string // empty: the tenant's own state
	Counts      QuotaCounts
}

// Pending returns the counts of every state under a quota that decided a
// call since it last settled, or has never settled (zero counts: its
// shared counts are only to be read), ordered by tenant. A state no call
// asked about is not read again: its next call is decided on the counts
// it last read, and it reads them at the next settling.
func (l *Limiter) Pending() []Pending {
	var out []Pending
	for i := range l.shards {
		s := &l.shards[i]
		s.mu.RLock()
		for k, e := range s.m {
			e.mu.Lock()
			if (e.lim.DailyCalls > 0 || e.lim.MonthlyCalls > 0) && (!e.settled || e.touched || e.dayCalls != 0 || e.monthCalls != 0) {
				out = append(out, Pending{Tenant: k.tenant, Integration: k.integration,
					Counts: QuotaCounts{Day: e.day, DayCalls: e.dayCalls, Month: e.month, MonthCalls: e.monthCalls}})
			}
			e.mu.Unlock()
		}
		s.mu.RUnlock()
	}
	slices.SortFunc(out, func(a, b Pending) int {
		return cmp.Or(cmp.Compare(a.Tenant, b.Tenant), cmp.Compare(a.Integration, b.Integration))
	})
	return out
}

// Settle says that p (from Pending) was added to the shared counts, which
// are now total (every replica's, p's included): the state's own count
// drops by p's, and total becomes what it holds the quotas to besides.
// Counts of a window that has passed change nothing.
func (l *Limiter) Settle(p Pending, total QuotaCounts) {
	e := l.entry(key{p.Tenant, p.Integration}, false)
	if e == nil {
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.settled, e.touched = true, false
	if e.day == p.Counts.Day {
		e.dayCalls -= p.Counts.DayCalls
	}
	if e.day == total.Day {
		e.dayBase = total.DayCalls // p's among them; ours since come on top
	}
	if e.month == p.Counts.Month {
		e.monthCalls -= p.Counts.MonthCalls
	}
	if e.month == total.Month {
		e.monthBase = total.MonthCalls
	}
}

// SetReplicas sets the number of live replicas that share each tenant's
// per-minute budget (calls per minute and burst): each holds a tenant to
// the limit divided by n, rounded up. n below 2 is this replica alone.
func (l *Limiter) SetReplicas(n int) {
	l.replicas.Store(int64(n))
}

// share is lim with its per-minute budget divided among the replicas.
func (l *Limiter) share(lim Limits) Limits {
	n := l.replicas.Load()
	if n < 2 || lim.CallsPerMinute == 0 {
		return lim
	}
	lim.CallsPerMinute = (lim.CallsPerMinute + n - 1) / n
	lim.Burst = (lim.Burst + n - 1) / n
	return lim
}
