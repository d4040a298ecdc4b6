package metrics

import (
	"cmp"
	"errors"
	"fmt"
	"math"
	"slices"
	"time"
)

// Daily figures: per tenant, integration and UTC day, the calls, errors,
// latency (count, sum and a histogram of fixed buckets, from which the 95th
// percentile is estimated), refreshes and refresh failures, for the last
// DaysKept days. Usage counts them beside its totals (CallResult, Refresh),
// within the same bounds: its tenants, and maxTenantIntegrations
// integrations per tenant (one map holds both the active integrations and
// their daily figures), so at most maxTenantIntegrations·DaysKept days
// (of about 150 bytes) per tenant. Like the totals, a Usage holds the
// figures counted since its last flush (FlushedDaily), and all of them
// when nothing flushes.

// DaysKept is how many UTC days of daily figures are kept: today and the
// DaysKept-1 days before.
const DaysKept = 30

// LatencyBuckets is the number of buckets of a day's latency histogram.
const LatencyBuckets = len(latencyBoundsMs) + 1

// latencyBoundsMs are the inclusive upper bounds, in milliseconds, of the
// latency buckets but the last, which counts the slower calls.
var latencyBoundsMs = [...]float64{5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000}

// Latency is a latency histogram: Buckets[i] counts the calls that took at
// most LatencyBoundMs(i) (and more than the bound before).
type Latency struct {
	Count   int64                 `json:"count"`
	SumMs   float64               `json:"sumMs"`
	Buckets [LatencyBuckets]int64 `json:"buckets"`
}

// LatencyBoundMs is the upper bound of bucket i of a Latency, in
// milliseconds; +Inf for the last.
func LatencyBoundMs(i int) float64 {
	if i >= len(latencyBoundsMs) {
		return math.Inf(1)
	}
	return latencyBoundsMs[i]
}

// add counts one call that took d.
func (l *Latency) add(d time.Duration) {
	ms := float64(d) / float64(time.Millisecond)
	l.Count++
	l.SumMs += ms
	i := 0
	for i < len(latencyBoundsMs) && ms > latencyBoundsMs[i] {
		i++
	}
	l.Buckets[i]++
}

func (l *Latency) plus(o Latency) {
	l.Count += o.Count
	l.SumMs += o.SumMs
	for i := range l.Buckets {
		l.Buckets[i] += o.Buckets[i]
	}
}

func (l *Latency) minus(o Latency) {
	l.Count = max(0, l.Count-o.Count)
	l.SumMs = max(0, l.SumMs-o.SumMs)
	for i := range l.Buckets {
		l.Buckets[i] = max(0, l.Buckets[i]-o.Buckets[i])
	}
	if l.Count == 0 {
		l.SumMs = 0
	}
}

// MeanMs is the mean latency in milliseconds (0 without calls).
func (l Latency) MeanMs() float64 {
	if l.Count <= 0 {
		return 0
	}
	return l.SumMs / float64(l.Count)
}

// QuantileMs estimates the latency under which the fraction q of the calls
// fell, interpolating linearly within its bucket; in the last, unbounded
// bucket it is that bucket's lower bound. 0 without calls.
func (l Latency) QuantileMs(q float64) float64 {
	var total int64
	for _, n := range l.Buckets {
		total += n
	}
	if total <= 0 {
		return 0
	}
	rank := q * float64(total)
	var before int64
	for i, n := range l.Buckets {
		if n == 0 || float64(before+n) < rank {
			before += n
			continue
		}
		lo := 0.0
		if i > 0 {
			lo = latencyBoundsMs[i-1]
		}
		if i == len(latencyBoundsMs) {
			return lo
		}
		return lo + (latencyBoundsMs[i]-lo)*(rank-float64(before))/float64(n)
	}
	return latencyBoundsMs[len(latencyBoundsMs)-1]
}

// DayFigures is one integration's figures on one UTC day, as the shared
// store keeps them.
type DayFigures struct {
	Date            string  `json:"date"` // YYYY-MM-DD, UTC
	Integration     string  `json:"integration"`
	Calls           int64   `json:"calls"`
	Errors          int64   `json:"errors"` // calls that failed or answered a tool error
	Latency         Latency `json:"latency"`
	Refreshes       int64   `json:"refreshes"` // attempts, failures included
	RefreshFailures int64   `json:"refreshFailures"`
}

// Check reports what is wrong with f as read from a store: a date that is
// not one, an integration outside the grammar, a negative count, more
// errors than calls or failures than refreshes, a histogram that does not
// add up to its count.
func (f DayFigures) Check() error {
	if _, err := time.Parse(time.DateOnly, f.Date); err != nil {
		return fmt.Errorf("date %q: not YYYY-MM-DD", f.Date)
	}
	if !validIntegration(f.Integration) {
		return fmt.Errorf("integration %q: not an integration name", f.Integration)
	}
	var inBuckets int64
	for _, n := range f.Latency.Buckets {
		if n < 0 {
			return errors.New("latency bucket: negative")
		}
		inBuckets += n
	}
	switch {
	case f.Calls < 0 || f.Errors < 0 || f.Refreshes < 0 || f.RefreshFailures < 0 || f.Latency.Count < 0:
		return errors.New("counts: negative")
	case f.Errors > f.Calls || f.RefreshFailures > f.Refreshes:
		return errors.New("counts: more failures than attempts")
	case inBuckets != f.Latency.Count || f.Latency.SumMs < 0 || math.IsNaN(f.Latency.SumMs) || math.IsInf(f.Latency.SumMs, 0):
		return errors.New("latency: buckets do not add up")
	}
	return nil
}

func (f *DayFigures) plus(o DayFigures) {
	f.Calls += o.Calls
	f.Errors += o.Errors
	f.Refreshes += o.Refreshes
	f.RefreshFailures += o.RefreshFailures
	f.Latency.plus(o.Latency)
}

// SumDays returns the figures of every list together: those of one date
// and integration added, ordered by date, then integration.
func SumDays(lists ...[]DayFigures) []DayFigures {
	var out []DayFigures
	for _, l := range lists {
		out = append(out, l...)
	}
	slices.SortStableFunc(out, compareDays)
	merged := out[:0]
	for _, f := range out {
		if n := len(merged); n > 0 && compareDays(merged[n-1], f) == 0 {
			merged[n-1].plus(f)
			continue
		}
		merged = append(merged, f)
	}
	return merged
}

func compareDays(a, b DayFigures) int {
	return cmp.Or(cmp.Compare(a.Date, b.Date), cmp.Compare(a.Integration, b.Integration))
}

// TenantDays is one tenant's daily figures.
type TenantDays struct {
	TenantID string
	Days     []DayFigures
}

// DailyUsage is the usage route's view of a tenant's daily figures: the
// days from From to To (UTC, inclusive) that have any, by date, then
// integration.
type DailyUsage struct {
	TenantID string     `json:"tenantId"`
	From     string     `json:"from"`
	To       string     `json:"to"`
	Days     []DayUsage `json:"days"`
}

// DayUsage is one integration's figures on one day, for the route.
type DayUsage struct {
	Date            string         `json:"date"`
	Integration     string         `json:"integration"`
	Calls           int64          `json:"calls"`
	Errors          int64          `json:"errors"`
	LatencyMs       LatencySummary `json:"latencyMs"`
	Refreshes       int64          `json:"refreshes"`
	RefreshFailures int64          `json:"refreshFailures"`
}

// LatencySummary is a day's latency: the mean and the estimated 95th
// percentile, in milliseconds to a tenth.
type LatencySummary struct {
	Mean float64 `json:"mean"`
	P95  float64 `json:"p95"`
}

// NewDailyUsage returns tenant's figures of the days days ending with the
// UTC day of today, from lists summed (SumDays); other days are left out.
func NewDailyUsage(tenant string, today time.Time, days int, lists ...[]DayFigures) DailyUsage {
	days = min(max(days, 1), DaysKept)
	to := dayOf(today)
	from := to - int32(days) + 1
	out := DailyUsage{TenantID: tenant, From: dateOf(from), To: dateOf(to), Days: []DayUsage{}}
	for _, f := range SumDays(lists...) {
		if f.Date < out.From || f.Date > out.To || f.Calls|f.Refreshes == 0 {
			continue
		}
		out.Days = append(out.Days, DayUsage{
			Date: f.Date, Integration: f.Integration,
			Calls: f.Calls, Errors: f.Errors,
			LatencyMs: LatencySummary{Mean: tenth(f.Latency.MeanMs()), P95: tenth(f.Latency.QuantileMs(0.95))},
			Refreshes: f.Refreshes, RefreshFailures: f.RefreshFailures,
		})
	}
	return out
}

func tenth(x float64) float64 { return math.Round(x*10) / 10 }

// dayOf is t's UTC day, counted from 1970-01-01.
func dayOf(t time.Time) int32 {
	s := t.Unix()
	if s < 0 {
		s -= 86399
	}
	return int32(s / 86400)
}

// dateOf is day's date, YYYY-MM-DD.
func dateOf(day int32) string {
	return time.Unix(int64(day)*86400, 0).UTC().Format(time.DateOnly)
}

// integrationUsage is what a tenant's Usage keeps of one integration;
// Usage.mu guards it.
type integrationUsage struct {
	called bool        // seen in a call: one of the tenant's active integrations
	days   []dayCounts // the unflushed daily figures, oldest first
}

// dayCounts is one day's figures of one integration.
type dayCounts struct {
	day                        int32
	calls, errors              int64
	refreshes, refreshFailures int64
	latency                    Latency
}

func (c *dayCounts) zero() bool { return c.calls|c.refreshes|c.latency.Count == 0 }

// at returns the counts of day, adding them (in order) if new, after
// forgetting the days that are no longer among the last DaysKept; nil for
// a day itself too old (a clock stepped back).
func (iu *integrationUsage) at(day int32) *dayCounts {
	n := len(iu.days)
	if n > 0 && iu.days[n-1].day == day {
		return &iu.days[n-1] // the common case: today, counted before
	}
	newest := day
	if n > 0 {
		newest = max(newest, iu.days[n-1].day)
	}
	if day <= newest-DaysKept {
		return nil
	}
	iu.days = slices.DeleteFunc(iu.days, func(c dayCounts) bool { return c.day <= newest-DaysKept })
	i, found := slices.BinarySearchFunc(iu.days, day, func(c dayCounts, d int32) int { return cmp.Compare(c.day, d) })
	if !found {
		iu.days = slices.Insert(iu.days, i, dayCounts{day: day})
	}
	return &iu.days[i]
}

// figures returns the integration's days as DayFigures, those with counts.
func (iu *integrationUsage) figures(integration string, out []DayFigures) []DayFigures {
	for _, c := range iu.days {
		if c.zero() {
			continue
		}
		out = append(out, DayFigures{
			Date: dateOf(c.day), Integration: integration,
			Calls: c.calls, Errors: c.errors, Latency: c.latency,
			Refreshes: c.refreshes, RefreshFailures: c.refreshFailures,
		})
	}
	return out
}

// integrationLocked returns tenant t's figures of integration, adding them
// while the tenant has fewer than maxTenantIntegrations; nil for a name
// outside the grammar or past the cap.
func (t *tenantUsage) integrationLocked(integration string) *integrationUsage {
	if iu, ok := t.integrations[integration]; ok {
		return iu
	}
	if !validIntegration(integration) || len(t.integrations) >= maxTenantIntegrations {
		return nil
	}
	iu := &integrationUsage{}
	t.integrations[integration] = iu
	return iu
}

// CallResult counts one API (tool) call by tenant to integration, which
// becomes one of the tenant's active integrations, with its outcome (one
// of the Outcome constants: any but OutcomeOK counts as an error of the
// day) and how long it took (negative: unknown, not in the latency).
func (u *Usage) CallResult(tenant, integration, outcome string, took time.Duration) {
	u.record(tenant, integration, func(t *tenantUsage, iu *integrationUsage, c *dayCounts) {
		t.calls++
		if iu != nil {
			iu.called = true
		}
		if c == nil {
			return
		}
		c.calls++
		if outcome != OutcomeOK {
			c.errors++
		}
		if took >= 0 {
			c.latency.add(took)
		}
	})
}

// record admits tenant (seeLocked) and hands add, under u.mu, its figures,
// those of integration and integration's counts of today (nil: past the
// caps, or a day before those kept).
func (u *Usage) record(tenant, integration string, add func(*tenantUsage, *integrationUsage, *dayCounts)) {
	if u == nil || tenant == "" {
		return
	}
	day := dayOf(time.Now())
	u.mu.Lock()
	defer u.mu.Unlock()
	t := u.seeLocked(tenant)
	iu := t.integrationLocked(integration)
	var c *dayCounts
	if iu != nil {
		c = iu.at(day)
	}
	add(t, iu, c)
}

// Days returns the daily figures this Usage holds for tenant (counted
// since its last FlushedDaily), by date, then integration.
func (u *Usage) Days(tenant string) (out []DayFigures) {
	u.kept(tenant, func(t *tenantUsage) { out = t.daysLocked() })
	return out
}

// kept hands f, under u.mu, tenant's figures, if u keeps any.
func (u *Usage) kept(tenant string, f func(*tenantUsage)) {
	if u == nil {
		return
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	if el, ok := u.byID[tenant]; ok {
		f(el.Value.(*tenantUsage))
	}
}

func (t *tenantUsage) daysLocked() []DayFigures {
	var out []DayFigures
	for name, iu := range t.integrations {
		out = iu.figures(name, out)
	}
	slices.SortFunc(out, compareDays)
	return out
}

// Daily is the daily figures this Usage holds for tenant, of the last
// days days (1 to DaysKept).
func (u *Usage) Daily(tenant string, days int) DailyUsage {
	return NewDailyUsage(tenant, time.Now(), days, u.Days(tenant))
}

// UnflushedDaily returns, for each tenant with daily figures counted since
// they were last flushed, those figures. The work is one pass over the
// tenants kept.
func (u *Usage) UnflushedDaily() []TenantDays {
	if u == nil {
		return nil
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	var out []TenantDays
	for el := u.lru.Front(); el != nil; el = el.Next() {
		t := el.Value.(*tenantUsage)
		if d := t.daysLocked(); len(d) > 0 {
			out = append(out, TenantDays{TenantID: t.id, Days: d})
		}
	}
	return out
}

// FlushedDaily records that flushed, daily figures of tenant as
// UnflushedDaily reported them, are now in the shared store: they are
// taken off (what was counted meanwhile stays), and days left with nothing
// are forgotten. A tenant forgotten meanwhile stays forgotten.
func (u *Usage) FlushedDaily(tenant string, flushed []DayFigures) {
	u.kept(tenant, func(t *tenantUsage) { t.flushedLocked(flushed) })
}

func (t *tenantUsage) flushedLocked(flushed []DayFigures) {
	for _, f := range flushed {
		iu, ok := t.integrations[f.Integration]
		d, err := time.Parse(time.DateOnly, f.Date)
		if !ok || err != nil {
			continue
		}
		day := dayOf(d)
		i, found := slices.BinarySearchFunc(iu.days, day, func(c dayCounts, d int32) int { return cmp.Compare(c.day, d) })
		if !found {
			continue
		}
		c := &iu.days[i]
		c.calls = max(0, c.calls-f.Calls)
		c.errors = max(0, c.errors-f.Errors)
		c.refreshes = max(0, c.refreshes-f.Refreshes)
		c.refreshFailures = max(0, c.refreshFailures-f.RefreshFailures)
		c.latency.minus(f.Latency)
		if c.zero() {
			iu.days = slices.Delete(iu.days, i, i+1)
		}
	}
}
