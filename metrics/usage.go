package metrics

import (
	"container/heap"
	"container/list"
	"slices"
	"sync"
	"time"
)

// DefaultMaxTenants is how many tenants NewUsage(0) keeps figures for.
const DefaultMaxTenants = 10_000

// maxTenantIntegrations caps the active integrations kept per tenant.
const maxTenantIntegrations = 64

// Usage keeps per-tenant usage figures in memory, for the admin API: calls,
// credential accesses, token refreshes and the integrations in use, and the
// daily figures of each integration (daily.go). It holds
// at most a fixed number of tenants, forgetting the least recently seen (any
// of its methods but Tenant and Top counts as seeing a tenant), so a
// tenant's figures cover the time since it was last (re)admitted: see
// TenantUsage.Since. Figures are per replica and lost on restart, unless
// the program keeps them in a store shared by the replicas: then it hands
// the store what Unflushed reports and tells Flushed what the store holds
// since, and the figures reported are the stored ones plus this replica's
// unflushed counts.
//
// Its methods are safe for concurrent use. A nil *Usage records nothing
// and reports no tenants.
type Usage struct {
	max int

	mu   sync.Mutex
	lru  *list.List // of *tenantUsage, most recently seen first
	byID map[string]*list.Element
}

// tenantUsage is one tenant's figures; Usage.mu guards it.
type tenantUsage struct {
	id                         string
	calls, credAccesses        int64
	refreshes, refreshFailures int64
	// integrations holds the integrations seen in calls (called) and the
	// daily figures of those seen in calls or refreshes, at most
	// maxTenantIntegrations.
	integrations map[string]*integrationUsage
	since        time.Time
	// stored is the tenant's figures in the shared store as of the last
	// Flushed (zero without one); the counters above are those not yet
	// flushed.
	stored TenantUsage
}

// TenantUsage is a snapshot of one tenant's figures.
type TenantUsage struct {
	TenantID           string    `json:"tenantId"`
	Calls              int64     `json:"apiCalls"`
	CredentialAccesses int64     `json:"credentialAccesses"`
	Refreshes          int64     `json:"refreshes"` // attempts, failures included
	RefreshFailures    int64     `json:"refreshFailures"`
	RefreshSuccessRate float64   `json:"refreshSuccessRate"` // 1 when there were no refreshes
	ActiveIntegrations []string  `json:"activeIntegrations"` // sorted; those seen in calls
	Since              time.Time `json:"since"`              // when these figures started
}

// NewUsage returns a Usage keeping figures for at most maxTenants tenants
// (DefaultMaxTenants when maxTenants <= 0).
func NewUsage(maxTenants int) *Usage {
	if maxTenants <= 0 {
		maxTenants = DefaultMaxTenants
	}
	return &Usage{max: maxTenants, lru: list.New(), byID: make(map[string]*list.Element)}
}

// Call counts one API (tool) call by tenant to integration, which becomes
// one of the tenant's active integrations: a call that succeeded, of
// unknown latency (CallResult tells both).
func (u *Usage) Call(tenant, integration string) {
	u.CallResult(tenant, integration, OutcomeOK, -1)
}

// Refresh counts one token refresh attempt for tenant's integration, in
// the totals and the day's figures.
func (u *Usage) Refresh(tenant, integration string, ok bool) {
	u.record(tenant, integration, func(t *tenantUsage, _ *integrationUsage, c *dayCounts) {
		t.refreshes++
		if !ok {
			t.refreshFailures++
		}
		if c != nil {
			c.refreshes++
			if !ok {
				c.refreshFailures++
			}
		}
	})
}

// CredentialAccess counts one read of tenant's credential for integration.
func (u *Usage) CredentialAccess(tenant, integration string) {
	if u == nil || tenant == "" {
		return
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	u.seeLocked(tenant).credAccesses++
}

// seeLocked returns tenant's figures, admitting it (and evicting the least
// recently seen tenant when full) if it has none, and marks it most recently
// seen.
func (u *Usage) seeLocked(tenant string) *tenantUsage {
	if el, ok := u.byID[tenant]; ok {
		u.lru.MoveToFront(el)
		return el.Value.(*tenantUsage)
	}
	for u.lru.Len() >= u.max {
		oldest := u.lru.Back()
		u.lru.Remove(oldest)
		delete(u.byID, oldest.Value.(*tenantUsage).id)
	}
	t := &tenantUsage{id: tenant, integrations: make(map[string]*integrationUsage), since: time.Now().UTC()}
	u.byID[tenant] = u.lru.PushFront(t)
	return t
}

// Tenant returns tenant's figures, and false when it has none (never seen,
// or evicted).
func (u *Usage) Tenant(tenant string) (TenantUsage, bool) {
	if u == nil {
		return TenantUsage{}, false
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	el, ok := u.byID[tenant]
	if !ok {
		return TenantUsage{}, false
	}
	return el.Value.(*tenantUsage).snapshot(), true
}

// Top returns the figures of the n tenants with the most calls, most first
// (ties by tenant ID), or none when n <= 0.
func (u *Usage) Top(n int) []TenantUsage {
	if u == nil || n <= 0 {
		return nil
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	// A min-heap of the n best so far: O(tenants · log n) under the lock,
	// rather than sorting every tenant.
	h := &worstFirst{}
	for el := u.lru.Front(); el != nil; el = el.Next() {
		t := el.Value.(*tenantUsage)
		if h.Len() < n {
			heap.Push(h, t)
		} else if better(t, (*h)[0]) {
			(*h)[0] = t
			heap.Fix(h, 0)
		}
	}
	out := make([]TenantUsage, h.Len())
	for i := len(out) - 1; i >= 0; i-- {
		out[i] = heap.Pop(h).(*tenantUsage).snapshot()
	}
	return out
}

// better orders tenants for Top: more calls (stored and unflushed) first,
// then by ID.
func better(a, b *tenantUsage) bool {
	if ac, bc := a.stored.Calls+a.calls, b.stored.Calls+b.calls; ac != bc {
		return ac > bc
	}
	return a.id < b.id
}

// worstFirst is a heap whose root is the tenant Top would list last.
type worstFirst []*tenantUsage

func (h worstFirst) Len() int           { return len(h) }
func (h worstFirst) Less(i, j int) bool { return better(h[j], h[i]) }
func (h worstFirst) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *worstFirst) Push(x any)        { *h = append(*h, x.(*tenantUsage)) }
func (h *worstFirst) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

// snapshot is t's figures: the stored ones, if any, plus the unflushed.
func (t *tenantUsage) snapshot() TenantUsage {
	if t.stored.TenantID == "" {
		return t.unflushed()
	}
	return Sum(t.stored, t.unflushed())
}

// unflushed is t's figures counted since the last Flushed.
func (t *tenantUsage) unflushed() TenantUsage {
	active := make([]string, 0, len(t.integrations))
	for in, iu := range t.integrations {
		if iu.called {
			active = append(active, in)
		}
	}
	slices.Sort(active)
	return TenantUsage{
		TenantID:           t.id,
		Calls:              t.calls,
		CredentialAccesses: t.credAccesses,
		Refreshes:          t.refreshes,
		RefreshFailures:    t.refreshFailures,
		RefreshSuccessRate: successRate(t.refreshes, t.refreshFailures),
		ActiveIntegrations: active,
		Since:              t.since,
	}
}

func successRate(refreshes, failures int64) float64 {
	if refreshes <= 0 {
		return 1
	}
	return float64(refreshes-failures) / float64(refreshes)
}

// Sum returns the figures of a and b together, as a's tenant: counts
// added, active integrations merged (sorted, at most the per-tenant cap),
// Since the earlier of the two that is set.
func Sum(a, b TenantUsage) TenantUsage {
	out := TenantUsage{
		TenantID:           a.TenantID,
		Calls:              a.Calls + b.Calls,
		CredentialAccesses: a.CredentialAccesses + b.CredentialAccesses,
		Refreshes:          a.Refreshes + b.Refreshes,
		RefreshFailures:    a.RefreshFailures + b.RefreshFailures,
		Since:              a.Since,
	}
	if out.Since.IsZero() || !b.Since.IsZero() && b.Since.Before(out.Since) {
		out.Since = b.Since
	}
	out.RefreshSuccessRate = successRate(out.Refreshes, out.RefreshFailures)
	active := slices.Concat(a.ActiveIntegrations, b.ActiveIntegrations)
	active = slices.DeleteFunc(active, func(in string) bool { return !validIntegration(in) })
	slices.Sort(active)
	active = slices.Compact(active)
	out.ActiveIntegrations = active[:min(len(active), maxTenantIntegrations)]
	return out
}

// Unflushed returns, for each tenant with figures counted since its last
// Flushed, those figures alone (its active integrations: all it has). The
// work is one pass over the tenants kept.
func (u *Usage) Unflushed() []TenantUsage {
	if u == nil {
		return nil
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	var out []TenantUsage
	for el := u.lru.Front(); el != nil; el = el.Next() {
		if t := el.Value.(*tenantUsage); t.calls|t.credAccesses|t.refreshes|t.refreshFailures != 0 {
			out = append(out, t.unflushed())
		}
	}
	return out
}

// Flushed records that d, as Unflushed reported it, is now counted in
// stored, the tenant's figures in the shared store: they are taken off the
// unflushed counts (what was counted meanwhile stays), and stored becomes
// the base of the figures reported. A tenant forgotten meanwhile stays
// forgotten.
func (u *Usage) Flushed(d, stored TenantUsage) {
	if u == nil {
		return
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	el, ok := u.byID[d.TenantID]
	if !ok {
		return
	}
	t := el.Value.(*tenantUsage)
	t.calls = max(0, t.calls-d.Calls)
	t.credAccesses = max(0, t.credAccesses-d.CredentialAccesses)
	t.refreshes = max(0, t.refreshes-d.Refreshes)
	t.refreshFailures = max(0, t.refreshFailures-d.RefreshFailures)
	stored.TenantID = t.id
	t.stored = stored
}

// AddUnflushed returns stored, a tenant's figures read from the shared
// store, plus what this Usage counted for it and has not flushed.
func (u *Usage) AddUnflushed(stored TenantUsage) TenantUsage {
	if u == nil {
		return stored
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	el, ok := u.byID[stored.TenantID]
	if !ok {
		return stored
	}
	return Sum(stored, el.Value.(*tenantUsage).unflushed())
}
