package limits

import (
	"context"
	"fmt"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"
)

// Options configure a Limiter. The zero Options limit nothing.
type Options struct {
	// Defaults are every tenant's limits, which an Override replaces
	// field by field (zero fields: no limit).
	Defaults Limits
	// Now is the clock; nil: time.Now. Tests give their own.
	Now func() time.Time
	// IdleTTL is how long the state of a tenant (or tenant and
	// integration) that makes no call is kept: its bucket is full again
	// long before. State that still counts towards a quota of the
	// current day or month, or has calls in flight, is kept. Zero: 10m.
	IdleTTL time.Duration
	// Fair bounds the replica's calls in flight, shared among tenants in
	// turn when it is full (fair.go); zero: no bound.
	Fair FairOptions
}

// Limiter admits tool calls within their tenants' limits. Its methods
// are safe for concurrent use.
type Limiter struct {
	defaults Limits
	now      func() time.Time
	idle     time.Duration
	// replicas is the number of live replicas sharing the tenants'
	// per-minute budgets (SetReplicas, quota.go); 0 or 1: this one alone.
	replicas atomic.Int64
	// backoffUntil is the latest end of an upstream's backoff
	// (UnixNano): until then a call looks for one even when it has no
	// limits of its own.
	backoffUntil atomic.Int64
	shards       [shardCount]shard
	fair         *Fair // nil: no bound on the replica's calls in flight
	wait         time.Duration
}

// shardCount is the number of shards of the state maps: a power of two.
const shardCount = 64

type shard struct {
	mu sync.RWMutex
	m  map[key]*entry // guarded by mu
}

// key names the state of a tenant (integration empty) or of one of its
// integrations.
type key struct{ tenant, integration string }

// entry is the state of one key. Every field is guarded by mu.
type entry struct {
	mu           sync.Mutex
	dead         bool // reaped: look it up again
	lim          Limits
	bucket       *rate.Limiter // nil without a per-minute limit
	inflight     int64
	day, month   int32 // the windows of the counts below
	dayCalls     int64 // counted here and not yet settled (quota.go)
	monthCalls   int64
	dayBase      int64 // every replica's settled counts, as last read
	monthBase    int64
	settled      bool  // the bases were read at least once
	touched      bool  // a call was decided since the bases were read
	used         int64 // the last admission (UnixNano)
	blockedUntil int64 // an upstream's backoff (UnixNano)
	noted        [limitKinds]int64
}

// The limits as indexes of entry.noted.
const (
	kindRate = iota
	kindConcurrent
	kindDaily
	kindMonthly
	kindUpstream
	limitKinds
)

var kindNames = [limitKinds]string{LimitCallsPerMinute, LimitConcurrentCalls, LimitDailyCalls, LimitMonthlyCalls, LimitUpstream}

// New returns a Limiter.
func New(opts Options) *Limiter {
	l := &Limiter{defaults: opts.Defaults, now: opts.Now, idle: opts.IdleTTL, fair: NewFair(opts.Fair), wait: opts.Fair.MaxWait}
	if l.wait <= 0 {
		l.wait = 5 * time.Second
	}
	if l.now == nil {
		l.now = time.Now
	}
	if l.idle <= 0 {
		l.idle = 10 * time.Minute
	}
	for i := range l.shards {
		l.shards[i].m = map[key]*entry{}
	}
	return l
}

// Hold takes the place among the replica's calls in flight of the call t
// admitted, waiting the tenant's turn when they are at their bound
// (Fair.Admit); t's Release frees it. A refusal leaves t as it was.
func (l *Limiter) Hold(ctx context.Context, tenant string, t *Ticket) *Refusal {
	return l.fair.Admit(ctx, tenant, t)
}

// Wait is the longest a call waits its turn (FairOptions.MaxWait): for a
// place among the replica's calls in flight, or for one of its tenant's
// stdio processes to fall idle.
func (l *Limiter) Wait() time.Duration { return l.wait }

// Defaults returns every tenant's limits.
func (l *Limiter) Defaults() Limits { return l.defaults }

// Refusal is a call refused for a limit. Its Error is for the agent: it
// says which limit and when to retry.
type Refusal struct {
	Limit       string // one of the Limit constants
	Integration string // the integration whose own limit it is; empty: the tenant's
	Max         int64  // the limit (0 for LimitUpstream)
	RetryAfter  time.Duration
	// First marks the first refusal of this limit for this tenant (and
	// integration) in the limit's window (its minute, day or month, or
	// the upstream's backoff): what is worth recording once.
	First bool
}

func (r *Refusal) Error() string {
	whose := "this tenant's"
	if r.Integration != "" {
		whose = "this tenant's " + r.Integration
	}
	var what string
	switch r.Limit {
	case LimitCallsPerMinute:
		what = fmt.Sprintf("%s limit of %d calls per minute is reached", whose, r.Max)
	case LimitConcurrentCalls:
		what = fmt.Sprintf("%s limit of %d calls at once is reached", whose, r.Max)
	case LimitDailyCalls:
		what = fmt.Sprintf("%s quota of %d calls a day (UTC) is used up", whose, r.Max)
	case LimitMonthlyCalls:
		what = fmt.Sprintf("%s quota of %d calls a month (UTC) is used up", whose, r.Max)
	case LimitStdioProcesses:
		what = fmt.Sprintf("%s limit of %d stdio upstream processes running at once is reached, each with a call in flight", whose, r.Max)
	case LimitSaturated:
		return fmt.Sprintf("rate limited (%s): the gateway is at its capacity of %d calls at once and this tenant's turn did not come; retry in %d s", r.Limit, r.Max, r.RetryAfterSeconds())
	default:
		what = fmt.Sprintf("the %s service asked this tenant to slow down", orIntegration(r.Integration))
	}
	return fmt.Sprintf("rate limited (%s): %s; retry in %d s", r.Limit, what, r.RetryAfterSeconds())
}

func orIntegration(s string) string {
	if s == "" {
		return "upstream"
	}
	return s
}

// RetryAfterSeconds is RetryAfter in whole seconds, rounded up, at least 1:
// an HTTP Retry-After.
func (r *Refusal) RetryAfterSeconds() int64 {
	return max(1, int64(math.Ceil(r.RetryAfter.Seconds())))
}

// Ticket is an admitted call: Release it when the call ends, whichever
// way it ends, to free its place among the calls in flight.
type Ticket struct {
	tenant, integration *entry // those whose inflight the call counts in
	fair                *Fair  // the gateway's place it holds (Fair.Admit)
}

// Release frees the call's place. It may be called more than once.
func (t *Ticket) Release() {
	for _, e := range [2]*entry{t.tenant, t.integration} {
		if e != nil {
			e.mu.Lock()
			e.inflight--
			e.mu.Unlock()
		}
	}
	if t.fair != nil {
		t.fair.Release()
	}
	*t = Ticket{}
}

// Admit admits one call of integration for tenant, whose override is o
// (nil: the defaults), or refuses it. A call admitted counts towards
// every limit of the tenant and of the integration; a call refused
// counts towards none.
func (l *Limiter) Admit(tenant, integration string, o *Override) (Ticket, *Refusal) {
	tl, il := l.share(o.Apply(l.defaults)), l.share(o.Integration(integration))
	now := l.now()
	backoff := now.UnixNano() < l.backoffUntil.Load()
	if !tl.any() && !il.any() && !backoff {
		return Ticket{}, nil
	}
	for {
		var te, ie *entry
		if tl.any() {
			te = l.entry(key{tenant, ""}, true)
		}
		if il.any() || backoff {
			ie = l.entry(key{tenant, integration}, il.any())
		}
		if t, r, again := admit(now, te, tl, ie, il, integration); !again {
			return t, r
		}
	}
}

// admit admits a call against te (the tenant's state, nil without tenant
// limits) and ie (the integration's, nil without), both or neither.
// again is true when one of them was reaped meanwhile.
func admit(now time.Time, te *entry, tl Limits, ie *entry, il Limits, integration string) (t Ticket, r *Refusal, again bool) {
	// Locked in one order, the tenant's first: no deadlock. No defer:
	// this is the hot path.
	if te != nil {
		te.mu.Lock()
	}
	if ie != nil {
		ie.mu.Lock()
	}
	t, r, again = admitLocked(now, te, tl, ie, il, integration)
	if ie != nil {
		ie.mu.Unlock()
	}
	if te != nil {
		te.mu.Unlock()
	}
	return t, r, again
}

// admitLocked is admit with te and ie locked.
func admitLocked(now time.Time, te *entry, tl Limits, ie *entry, il Limits, integration string) (t Ticket, r *Refusal, again bool) {
	if te != nil && te.dead || ie != nil && ie.dead {
		return t, nil, true
	}
	for _, e := range [2]*entry{te, ie} {
		if e != nil {
			e.touched = true // its shared counts are worth reading again
		}
	}
	if te != nil {
		if r = te.check(now, tl); r != nil {
			return t, r, false
		}
	}
	if ie != nil {
		if r = ie.check(now, il); r != nil {
			r.Integration = integration
			return t, r, false
		}
	}
	if te != nil && te.take(now, tl) {
		t.tenant = te
	}
	if ie != nil && ie.take(now, il) {
		t.integration = ie
	}
	return t, nil, false
}

// entry returns the state of k, made when create is set (else nil when
// there is none).
func (l *Limiter) entry(k key, create bool) *entry {
	s := &l.shards[shardOf(k.tenant)]
	s.mu.RLock()
	e := s.m[k]
	s.mu.RUnlock()
	if e != nil || !create {
		return e
	}
	s.mu.Lock()
	if e = s.m[k]; e == nil {
		e = &entry{}
		s.m[k] = e
	}
	s.mu.Unlock()
	return e
}

// shardOf is the shard of a tenant's state (FNV-1a).
func shardOf(tenant string) int {
	h := uint32(2166136261)
	for i := 0; i < len(tenant); i++ {
		h ^= uint32(tenant[i])
		h *= 16777619
	}
	return int(h & (shardCount - 1))
}

// configure makes e's bucket follow lim. A rate or burst changed (an
// admin changed the tenant's limits) starts a full bucket of the new
// size: the change applies at once, a raised limit included.
func (e *entry) configure(lim Limits) {
	if e.lim == lim {
		return
	}
	old := e.lim
	e.lim = lim
	switch {
	case lim.CallsPerMinute == 0:
		e.bucket = nil
	case e.bucket == nil || old.CallsPerMinute != lim.CallsPerMinute || old.burst() != lim.burst():
		e.bucket = rate.NewLimiter(rate.Limit(float64(lim.CallsPerMinute)/60), lim.burst())
	}
}

// roll starts the counts of a new day or month.
func (e *entry) roll(now time.Time) {
	day, month := windows(now)
	if e.day != day {
		e.day, e.dayCalls, e.dayBase = day, 0, 0
	}
	if e.month != month {
		e.month, e.monthCalls, e.monthBase = month, 0, 0
	}
}

// windows are the UTC day and month of t, as numbers.
func windows(t time.Time) (day, month int32) {
	u := t.UTC()
	return int32(u.Unix() / 86400), int32(u.Year()*12 + int(u.Month()) - 1)
}

// check refuses a call that would pass one of lim (e's own limits) or
// falls in an upstream's backoff; it changes nothing but the noted window.
func (e *entry) check(now time.Time, lim Limits) *Refusal {
	ns := now.UnixNano()
	if ns < e.blockedUntil {
		return e.refuse(kindUpstream, 0, time.Duration(e.blockedUntil-ns), e.blockedUntil)
	}
	e.configure(lim)
	e.roll(now)
	minute := now.Unix() / 60
	switch {
	case lim.ConcurrentCalls > 0 && e.inflight >= lim.ConcurrentCalls:
		return e.refuse(kindConcurrent, lim.ConcurrentCalls, time.Second, minute)
	case lim.DailyCalls > 0 && e.dayBase+e.dayCalls >= lim.DailyCalls:
		u := now.UTC()
		next := time.Date(u.Year(), u.Month(), u.Day()+1, 0, 0, 0, 0, time.UTC)
		return e.refuse(kindDaily, lim.DailyCalls, next.Sub(now), int64(e.day))
	case lim.MonthlyCalls > 0 && e.monthBase+e.monthCalls >= lim.MonthlyCalls:
		u := now.UTC()
		next := time.Date(u.Year(), u.Month()+1, 1, 0, 0, 0, 0, time.UTC)
		return e.refuse(kindMonthly, lim.MonthlyCalls, next.Sub(now), int64(e.month))
	}
	if e.bucket != nil {
		if tokens := e.bucket.TokensAt(now); tokens < 1 {
			// To the millisecond, rounded up (but for float noise).
			ms := math.Ceil((1-tokens)/float64(e.bucket.Limit())*1e3 - 1e-6)
			return e.refuse(kindRate, lim.CallsPerMinute, time.Duration(ms)*time.Millisecond, minute)
		}
	}
	return nil
}

// refuse is the refusal of limit kind, first in window unless one was
// noted there already.
func (e *entry) refuse(kind int, limit int64, retry time.Duration, window int64) *Refusal {
	first := e.noted[kind] != window
	e.noted[kind] = window
	return &Refusal{Limit: kindNames[kind], Max: limit, RetryAfter: retry, First: first}
}

// take counts an admitted call (check having passed it), and reports
// whether it counts among e's calls in flight.
func (e *entry) take(now time.Time, lim Limits) (inflight bool) {
	e.used = now.UnixNano()
	if e.bucket != nil {
		e.bucket.AllowN(now, 1)
	}
	if lim.DailyCalls > 0 {
		e.dayCalls++
	}
	if lim.MonthlyCalls > 0 {
		e.monthCalls++
	}
	if lim.ConcurrentCalls > 0 {
		e.inflight++
		return true
	}
	return false
}

// Backoff refuses tenant's calls of integration until until: the
// upstream answered 429 with Retry-After. Other tenants, and the
// tenant's other integrations, are not affected.
func (l *Limiter) Backoff(tenant, integration string, until time.Time) {
	ns := until.UnixNano()
	for {
		e := l.entry(key{tenant, integration}, true)
		e.mu.Lock()
		dead := e.dead
		if !dead {
			e.blockedUntil = max(e.blockedUntil, ns)
		}
		e.mu.Unlock()
		if !dead {
			break
		}
	}
	for {
		cur := l.backoffUntil.Load()
		if cur >= ns || l.backoffUntil.CompareAndSwap(cur, ns) {
			return
		}
	}
}

// Reap drops the state no call has used for IdleTTL: nothing in flight,
// no backoff in force, no count of the current day or month. It returns
// how many it dropped.
func (l *Limiter) Reap() int {
	now := l.now()
	ns := now.UnixNano()
	day, month := windows(now)
	n := 0
	for i := range l.shards {
		s := &l.shards[i]
		s.mu.Lock()
		for k, e := range s.m {
			e.mu.Lock()
			if e.inflight == 0 && ns-e.used >= int64(l.idle) && ns >= e.blockedUntil &&
				(e.dayBase+e.dayCalls == 0 || e.day != day) && (e.monthBase+e.monthCalls == 0 || e.month != month) {
				e.dead = true
				delete(s.m, k)
				n++
			}
			e.mu.Unlock()
		}
		s.mu.Unlock()
	}
	return n
}

// Len is the number of states held (for tests and metrics).
func (l *Limiter) Len() int {
	n := 0
	for i := range l.shards {
		s := &l.shards[i]
		s.mu.RLock()
		n += len(s.m)
		s.mu.RUnlock()
	}
	return n
}
