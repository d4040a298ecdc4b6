package limits

import (
	"context"
	"sync"
	"time"
)

// Fair shares the gateway's own capacity, calls in flight at once, among
// tenants when it is saturated. While there is room a call takes a place
// at once. When there is none it waits in its tenant's queue, and each
// place freed goes to the next tenant in turn that has a call waiting,
// one place a turn: a tenant with a hundred calls waiting gets no more
// places than one with a single call, so one tenant at ten times its
// share cannot take the others'. A call waits at most MaxWait, and a
// tenant has at most MaxQueue calls waiting; past either it is refused
// (with a delay to retry after), nothing sent upstream.
//
// A nil *Fair admits everything. It is the gateway's, not a tenant's: its
// CONNECTORS_MAX_CONCURRENT_CALLS bounds this replica.
type Fair struct {
	capacity int
	maxWait  time.Duration
	maxQueue int

	mu       sync.Mutex
	inflight int                  // guarded by mu
	queues   map[string][]*turn   // tenants' waiting calls, oldest first; guarded by mu
	ring     []string             // tenants with calls waiting, in turn order; guarded by mu
	next     int                  // index into ring of the next to be served; guarded by mu
	refused  map[string]time.Time // each tenant's last refusal; guarded by mu
}

// turn is one waiting call: granted is closed when it has a place.
type turn struct {
	granted chan struct{}
	given   bool // guarded by Fair.mu
}

// FairOptions size a Fair.
type FairOptions struct {
	// Capacity is the most calls in flight at once on this replica
	// (CONNECTORS_MAX_CONCURRENT_CALLS); 0 or less: no bound, nil Fair.
	Capacity int
	// MaxWait bounds a call's wait for a place (default 5s); MaxQueue the
	// calls a tenant may have waiting (default 64).
	MaxWait  time.Duration
	MaxQueue int
}

// NewFair returns a Fair, or nil when o.Capacity sets no bound.
func NewFair(o FairOptions) *Fair {
	if o.Capacity <= 0 {
		return nil
	}
	if o.MaxWait <= 0 {
		o.MaxWait = 5 * time.Second
	}
	if o.MaxQueue <= 0 {
		o.MaxQueue = 64
	}
	return &Fair{capacity: o.Capacity, maxWait: o.MaxWait, maxQueue: o.MaxQueue, queues: map[string][]*turn{}, refused: map[string]time.Time{}}
}

// Admit takes a place for the call t admitted (see Acquire), which t then
// frees with its other places; a refusal is a Refusal of LimitSaturated,
// First once a minute for the tenant.
func (f *Fair) Admit(ctx context.Context, tenant string, t *Ticket) *Refusal {
	if f == nil {
		return nil
	}
	retry, ok := f.Acquire(ctx, tenant)
	if ok {
		t.fair = f
		return nil
	}
	return &Refusal{Limit: LimitSaturated, Max: int64(f.capacity), RetryAfter: retry, First: f.firstRefusal(tenant)}
}

// firstRefusal reports whether tenant had no saturation refusal in the
// last minute (and records this one).
func (f *Fair) firstRefusal(tenant string) bool {
	now := time.Now()
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.refused) > 4096 {
		for k, at := range f.refused {
			if now.Sub(at) > time.Minute {
				delete(f.refused, k)
			}
		}
	}
	if at, ok := f.refused[tenant]; ok && now.Sub(at) < time.Minute {
		return false
	}
	f.refused[tenant] = now
	return true
}

// Acquire takes a place for a call of tenant, waiting its tenant's turn
// when the gateway is full. ok false: refused, the tenant's queue full or
// the wait too long (or ctx ended); retryAfter says when to try again.
// Release the place, once, when the call ends.
func (f *Fair) Acquire(ctx context.Context, tenant string) (retryAfter time.Duration, ok bool) {
	if f == nil {
		return 0, true
	}
	f.mu.Lock()
	if f.inflight < f.capacity && len(f.ring) == 0 {
		f.inflight++
		f.mu.Unlock()
		return 0, true
	}
	q := f.queues[tenant]
	if len(q) >= f.maxQueue {
		f.mu.Unlock()
		return f.maxWait, false
	}
	t := &turn{granted: make(chan struct{})}
	if len(q) == 0 {
		f.ring = append(f.ring, tenant)
	}
	f.queues[tenant] = append(q, t)
	f.grantLocked() // room freed while nobody waited
	f.mu.Unlock()

	timer := time.NewTimer(f.maxWait)
	defer timer.Stop()
	select {
	case <-t.granted:
		return 0, true
	case <-timer.C:
	case <-ctx.Done():
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if t.given { // granted as it gave up: the place is its own to free
		f.inflight--
		f.grantLocked()
	} else {
		f.dropLocked(tenant, t)
	}
	return f.maxWait, false
}

// Release frees one place and gives it to the next tenant in turn.
func (f *Fair) Release() {
	f.mu.Lock()
	f.inflight--
	f.grantLocked()
	f.mu.Unlock()
}

// grantLocked gives the free places to the waiting calls, one to each
// tenant in turn.
func (f *Fair) grantLocked() {
	for f.inflight < f.capacity && len(f.ring) > 0 {
		if f.next >= len(f.ring) {
			f.next = 0
		}
		tenant := f.ring[f.next]
		q := f.queues[tenant]
		t := q[0]
		f.popLocked(tenant, f.next)
		t.given = true
		f.inflight++
		close(t.granted)
	}
}

// popLocked takes the oldest waiting call of the tenant at ring[i] off its
// queue, the tenant's turn over.
func (f *Fair) popLocked(tenant string, i int) {
	q := f.queues[tenant][1:]
	if len(q) > 0 {
		f.queues[tenant] = q
		f.next = i + 1
		return
	}
	delete(f.queues, tenant)
	f.ring = append(f.ring[:i], f.ring[i+1:]...)
	f.next = i // the one after it moved into its place
}

// dropLocked takes t, which gave up, off tenant's queue.
func (f *Fair) dropLocked(tenant string, t *turn) {
	q := f.queues[tenant]
	for i, w := range q {
		if w == t {
			q = append(q[:i], q[i+1:]...)
			break
		}
	}
	if len(q) > 0 {
		f.queues[tenant] = q
		return
	}
	delete(f.queues, tenant)
	for i, r := range f.ring {
		if r == tenant {
			f.ring = append(f.ring[:i], f.ring[i+1:]...)
			if f.next > i {
				f.next--
			}
			break
		}
	}
}

// InFlight reports the calls holding a place and those waiting for one.
func (f *Fair) InFlight() (holding, waiting int) {
	if f == nil {
		return 0, 0
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, q := range f.queues {
		waiting += len(q)
	}
	return f.inflight, waiting
}
