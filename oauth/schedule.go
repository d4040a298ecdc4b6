package oauth

import (
	"container/heap"
	"context"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/connectors-gateway/connectors/vault"
)

// Run runs the scheduler and its workers until ctx ends, then waits for
// the refreshes under way and returns nil. Refreshes interrupted by the
// end stay scheduled. Run must not be called twice at once.
func (r *Refresher) Run(ctx context.Context) error {
	work := make(chan job)
	var wg sync.WaitGroup
	for range r.workers {
		wg.Go(func() {
			for j := range work {
				r.work(ctx, j)
			}
		})
	}
	defer wg.Wait()
	defer close(work)

	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	for {
		r.mu.Lock()
		e, wait := r.sched.popDue(time.Now())
		var j job
		if e != nil {
			j = job{e: e, key: e.key, expiry: e.expiry}
		}
		r.mu.Unlock()

		if e != nil {
			select {
			case work <- j: // a free worker took it
			case <-ctx.Done():
				r.requeue(j.key, time.Now())
				return nil
			}
			continue
		}
		var fire <-chan time.Time
		if wait > 0 {
			timer.Reset(wait)
			fire = timer.C
		}
		select {
		case <-ctx.Done():
			return nil
		case <-r.wake:
		case <-fire:
		}
	}
}

// job is a due entry handed to a worker, with what it said when popped.
type job struct {
	e      *schedEntry
	key    credKey
	expiry time.Time
}

// work runs one due refresh. Every way a refresh ends sets the entry
// again or removes it; a worker that only joined a refresh someone else
// started makes sure its own entry was dealt with.
func (r *Refresher) work(ctx context.Context, j job) {
	a := attempt{key: j.key, scheduled: true, expiry: j.expiry}
	for round := 0; ; round++ {
		r.mu.Lock()
		live := r.sched.handedOut(j.e)
		r.mu.Unlock()
		if !live {
			return // forgotten or set again since it was popped
		}
		if round == 2 {
			r.requeue(j.key, time.Now().Add(r.minBackoff))
			return
		}
		f, leader := r.join(ctx, a)
		<-f.done
		if leader {
			break
		}
	}
	r.mu.Lock()
	if r.sched.handedOut(j.e) {
		r.sched.remove(j.key)
	}
	r.mu.Unlock()
}

// requeue puts k's entry back at at, if k is still scheduled.
func (r *Refresher) requeue(k credKey, at time.Time) {
	r.mu.Lock()
	e := r.sched.index[k]
	first := false
	if e != nil {
		first = r.sched.set(k, at, e.expiry)
	}
	r.mu.Unlock()
	if first {
		r.poke()
	}
}

// poke tells the dispatcher the earliest entry changed.
func (r *Refresher) poke() {
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// Schedule (re)schedules tenant's credential for integration: its refresh
// is due at ExpiresAt - Margin - a random jitter of up to Jitter, or now
// if that is past. Nothing is scheduled, and an existing entry is removed,
// when cred has no ExpiresAt, no RefreshToken, Status needs_reauth, or the
// integration has no provider. While the credential's refreshes are
// failing, the entry waits for the backoff.
func (r *Refresher) Schedule(tenant, integration string, cred vault.Credential) {
	r.schedule(credKey{tenant, integration}, cred, false)
}

// ScheduleFound is Schedule for a credential this replica found stored
// rather than wrote or was given — at start, or told of a change by
// another replica — which another replica may have just refreshed: as
// after its own refreshes, a token that lives less than twice Margin is
// refreshed after half its life rather than at once, so that replicas
// finding a short-lived token another just refreshed do not each refresh
// it again.
func (r *Refresher) ScheduleFound(tenant, integration string, cred vault.Credential) {
	r.schedule(credKey{tenant, integration}, cred, true)
}

// schedule is Schedule; fresh says cred was just issued by a refresh (by
// this replica or another), and then a token that lives less than twice
// Margin is refreshed after half its life rather than at once (see
// leadTime): a provider issuing tokens shorter-lived than Margin is not
// asked again and again.
func (r *Refresher) schedule(k credKey, cred vault.Credential, fresh bool) {
	now := time.Now()
	var at time.Time
	first, scheduled := false, false
	r.mu.Lock()
	delete(r.revoked, k)
	f := r.failures[k]
	if f != nil && !f.about(cred) {
		delete(r.failures, k) // a new link starts clean
		f = nil
	}
	if !r.schedulable(cred, k.integration) {
		r.sched.remove(k)
	} else {
		lead, jitter := r.margin, r.jitter
		if fresh {
			lead, jitter = r.leadTime(cred)
		}
		at = cred.ExpiresAt.Add(-lead)
		if jitter > 0 {
			at = at.Add(-rand.N(jitter + 1))
		}
		if f != nil && !f.next.IsZero() {
			at = f.next // failing: retry after the backoff
		}
		at = latest(at, now)
		first = r.sched.set(k, at, cred.ExpiresAt)
		scheduled = true
	}
	r.mu.Unlock()
	if first {
		r.poke()
	}
	if scheduled {
		r.logScheduled(k, cred.ExpiresAt, at)
	}
}

func (r *Refresher) schedulable(cred vault.Credential, integration string) bool {
	return !cred.ExpiresAt.IsZero() && cred.RefreshToken != "" &&
		cred.Status != vault.StatusNeedsReauth && r.providers[integration] != nil
}

// leadTime returns how long before a fresh cred's expiry its refresh is
// due, and the most jitter to add: Margin and Jitter, scaled down for a
// token living less than twice Margin (from UpdatedAt to ExpiresAt) so
// that it is refreshed after half its life, not at once.
func (r *Refresher) leadTime(cred vault.Credential) (lead, jitter time.Duration) {
	lead, jitter = r.margin, r.jitter
	if cred.UpdatedAt.IsZero() {
		return lead, jitter
	}
	if life := cred.ExpiresAt.Sub(cred.UpdatedAt); life > 0 && life < 2*lead {
		half := life / 2
		jitter = min(time.Duration(float64(jitter)*float64(half)/float64(lead)), half/2)
		lead = half
	}
	return lead, jitter
}

func (r *Refresher) logScheduled(k credKey, expiry, at time.Time) {
	r.log.Warn("token_refresh_scheduled", "tenantId", k.tenant, "integration", k.integration,
		"currentExpiry", rfc3339(expiry), "refreshAt", rfc3339(at))
}

// Forget removes tenant's credential for integration from the schedule and
// drops its failures: the credential was deleted.
func (r *Refresher) Forget(tenant, integration string) {
	k := credKey{tenant, integration}
	r.mu.Lock()
	r.sched.remove(k)
	delete(r.failures, k)
	r.mu.Unlock()
}

// MarkRevoked forgets tenant's credential for integration, and makes
// Health report it revoked until a new credential is scheduled.
func (r *Refresher) MarkRevoked(tenant, integration string) {
	k := credKey{tenant, integration}
	r.mu.Lock()
	r.sched.remove(k)
	delete(r.failures, k)
	r.revoked[k] = struct{}{}
	r.mu.Unlock()
}

// QueueLen is the number of scheduled refreshes waiting to be due.
func (r *Refresher) QueueLen() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.sched.len()
}

// credKey names one credential: a tenant's link to one integration.
type credKey struct{ tenant, integration string }

// schedEntry is one scheduled refresh. It holds no token: a scheduled
// refresh reads the credential from the store when it runs.
type schedEntry struct {
	key    credKey
	at     time.Time // when the refresh is due
	expiry time.Time // ExpiresAt of the credential the entry was computed from
	index  int       // position in the heap; -1 once handed to a worker
}

// schedule is the refresher's one time-ordered queue: a min-heap on at
// plus an index by key, so that adding, moving and removing an entry cost
// O(log n) and a hundred thousand entries cost a few hundred bytes each,
// with no goroutine or timer per entry. The Refresher's mu guards it.
//
// An entry handed to a worker leaves the heap (index -1) but stays in the
// index until the worker is done with it, so that Forget can cancel it and
// setting it again puts it back in the heap.
type schedule struct {
	heap  entryHeap
	index map[credKey]*schedEntry
}

// set schedules k at at, adding or moving its entry, and reports whether
// the entry is now the earliest (the dispatcher must re-arm its timer).
func (s *schedule) set(k credKey, at, expiry time.Time) (first bool) {
	if s.index == nil {
		s.index = make(map[credKey]*schedEntry)
	}
	e := s.index[k]
	if e == nil {
		e = &schedEntry{key: k, index: -1}
		s.index[k] = e
	}
	e.at, e.expiry = at, expiry
	if e.index < 0 {
		heap.Push(&s.heap, e)
	} else {
		heap.Fix(&s.heap, e.index)
	}
	return e.index == 0
}

// remove drops k's entry, queued or handed to a worker.
func (s *schedule) remove(k credKey) {
	e := s.index[k]
	if e == nil {
		return
	}
	delete(s.index, k)
	if e.index >= 0 {
		heap.Remove(&s.heap, e.index)
	}
}

// popDue takes the earliest entry off the heap if it is due at now,
// leaving it in the index as handed out. Otherwise it returns nil and how
// long until the earliest entry is due (0 when the heap is empty).
func (s *schedule) popDue(now time.Time) (*schedEntry, time.Duration) {
	if len(s.heap) == 0 {
		return nil, 0
	}
	if e := s.heap[0]; e.at.After(now) {
		return nil, e.at.Sub(now)
	}
	return heap.Pop(&s.heap).(*schedEntry), 0
}

// handedOut reports whether e is still k's entry and with a worker: not
// forgotten, and not set again since it was popped.
func (s *schedule) handedOut(e *schedEntry) bool {
	return s.index[e.key] == e && e.index < 0
}

// len is the number of queued entries, not counting those with workers.
func (s *schedule) len() int { return len(s.heap) }

// entryHeap implements heap.Interface, earliest first.
type entryHeap []*schedEntry

func (h entryHeap) Len() int           { return len(h) }
func (h entryHeap) Less(i, j int) bool { return h[i].at.Before(h[j].at) }
func (h entryHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].index = i
	h[j].index = j
}

func (h *entryHeap) Push(x any) {
	e := x.(*schedEntry)
	e.index = len(*h)
	*h = append(*h, e)
}

func (h *entryHeap) Pop() any {
	old := *h
	n := len(old)
	e := old[n-1]
	old[n-1] = nil // let the entry go when it is dropped
	e.index = -1
	*h = old[:n-1]
	return e
}
