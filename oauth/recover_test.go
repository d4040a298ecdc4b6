package oauth_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/connectors-gateway/connectors/oauth"
)

// reasonOf is what the tenant is told of a failed refresh; "" when err
// says nothing of the kind.
func reasonOf(err error) string {
	if re, ok := errors.AsType[*oauth.RefreshError](err); ok {
		return re.Reason
	}
	return ""
}

// TestRefreshProbesWhenProviderReturns: after a failure, with a backoff of
// ten minutes, the provider comes back; the next call whose token has
// expired probes it and gets a new token at once, and the schedule
// resumes.
func TestRefreshProbesWhenProviderReturns(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s, p := openStore(t), newProvider()
		var down atomic.Bool
		down.Store(true)
		p.fail = func(int, string) error {
			if down.Load() {
				return &oauth.TokenError{Integration: integration, Status: 503}
			}
			return nil
		}
		r := newRefresher(s, p, oauth.RefresherOptions{MinBackoff: 10 * time.Minute, MaxBackoff: 30 * time.Minute, Jitter: -1})
		run(t, r)
		old := link(t, s, p, "tenant-a", time.Now().Add(-time.Second))

		_, err := r.Refresh(context.Background(), "tenant-a", integration, old.AccessToken)
		if got, want := reasonOf(err), "the provider answered with an error (HTTP 503)"; got != want {
			t.Fatalf("Refresh while the provider is down: %v (reason %q), want reason %q", err, got, want)
		}
		down.Store(false)
		advance(time.Second)

		start := time.Now()
		cred, err := r.Refresh(context.Background(), "tenant-a", integration, old.AccessToken)
		if err != nil {
			t.Fatalf("Refresh once the provider is back: %v, want a new token at once (not after the 10m backoff)", err)
		}
		if waited := time.Since(start); waited != 0 {
			t.Errorf("the call waited %v", waited)
		}
		stored := get(t, s, "tenant-a")
		if cred.AccessToken == old.AccessToken || stored.AccessToken != cred.AccessToken {
			t.Error("the probe's token was not stored")
		}
		if diff := cmp.Diff(oauth.Health{State: oauth.HealthActive}, r.Health("tenant-a", integration, &stored)); diff != "" {
			t.Errorf("Health after the probe (-want +got):\n%s", diff)
		}
		// The schedule resumes from the new token: due at expiry - Margin.
		advance(time.Hour - 5*time.Minute)
		if n := p.callCount(); n != 3 {
			t.Errorf("%d provider calls an hour on, want the failure, the probe and the scheduled refresh", n)
		}
	})
}

// TestRefreshProbeStorm: 50 callers with an expired token call every 50ms
// through an outage; the provider sees at most one probe per second, the
// credential is not counted to needs_reauth, and the first call after the
// provider is back, within a second, gets a new token.
func TestRefreshProbeStorm(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s, p := openStore(t), newProvider()
		var down atomic.Bool
		down.Store(true)
		p.fail = func(int, string) error {
			if down.Load() {
				return errors.New("dial tcp 127.0.0.1:9: connect: connection refused")
			}
			return nil
		}
		r := newRefresher(s, p, oauth.RefresherOptions{MinBackoff: 10 * time.Minute, MaxFailures: 3})
		run(t, r)
		old := link(t, s, p, "tenant-a", time.Now().Add(-time.Second))
		start := time.Now()
		back := start.Add(10*time.Second + 300*time.Millisecond)

		var mu sync.Mutex
		var firstOK time.Time
		reasons := map[string]int{}
		var wg sync.WaitGroup
		for range 50 {
			wg.Go(func() {
				for time.Since(start) < 12*time.Second {
					_, err := r.Refresh(context.Background(), "tenant-a", integration, old.AccessToken)
					mu.Lock()
					if err == nil && firstOK.IsZero() {
						firstOK = time.Now()
					}
					if err != nil {
						reasons[reasonOf(err)]++
					}
					mu.Unlock()
					time.Sleep(50 * time.Millisecond)
				}
			})
		}
		time.Sleep(time.Until(back))
		down.Store(false)
		wg.Wait()

		calls := p.callTimes()
		for i := 1; i < len(calls); i++ {
			if gap := calls[i].Sub(calls[i-1]); gap < time.Second {
				t.Errorf("provider calls %d and %d %v apart, want a second at least", i-1, i, gap)
			}
		}
		if len(calls) > 12 {
			t.Errorf("%d provider calls in 12s", len(calls))
		}
		if firstOK.IsZero() || firstOK.Sub(back) > time.Second {
			t.Errorf("first success %v after the provider came back, want within the probe interval (1s)", firstOK.Sub(back))
		}
		if diff := cmp.Diff(map[string]int{oauth.ReasonUnreachable: reasons[oauth.ReasonUnreachable]}, reasons); diff != "" {
			t.Errorf("reasons the callers were given (-want +got):\n%s", diff)
		}
		stored := get(t, s, "tenant-a")
		if stored.Status != "" || stored.AccessToken == old.AccessToken {
			t.Errorf("stored credential: status %q, refreshed %v; want it refreshed, not needs_reauth", stored.Status, stored.AccessToken != old.AccessToken)
		}
	})
}

// TestRefreshHangingProvider: a provider that accepts the request and
// never answers fails the refresh after RefreshTimeout (5s by default),
// for every caller waiting on it, with ReasonTimeout; once it answers
// again, the next call recovers at once.
func TestRefreshHangingProvider(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s, p := openStore(t), newProvider()
		p.delay = time.Hour
		r := newRefresher(s, p, oauth.RefresherOptions{MinBackoff: 10 * time.Minute})
		run(t, r)
		old := link(t, s, p, "tenant-a", time.Now().Add(-time.Second))

		start := time.Now()
		var wg sync.WaitGroup
		var mu sync.Mutex
		waits := map[time.Duration]int{}
		for i := range 10 {
			wg.Go(func() {
				time.Sleep(time.Duration(i) * 400 * time.Millisecond) // joining the refresh under way
				_, err := r.Refresh(context.Background(), "tenant-a", integration, old.AccessToken)
				mu.Lock()
				defer mu.Unlock()
				if reasonOf(err) != oauth.ReasonTimeout {
					t.Errorf("Refresh from a hanging provider: %v, want reason %q", err, oauth.ReasonTimeout)
				}
				waits[time.Since(start)]++
			})
		}
		wg.Wait()
		if diff := cmp.Diff(map[time.Duration]int{5 * time.Second: 10}, waits); diff != "" {
			t.Errorf("when the callers got their answer (-want +got):\n%s", diff)
		}
		if n := p.callCount(); n != 1 {
			t.Errorf("%d provider calls, want the one they shared", n)
		}

		p.mu.Lock()
		p.delay = 0
		p.mu.Unlock()
		advance(time.Second)
		start = time.Now()
		cred, err := r.Refresh(context.Background(), "tenant-a", integration, old.AccessToken)
		if err != nil || cred.AccessToken == old.AccessToken {
			t.Fatalf("Refresh once the provider answers again: %v, want a new token at once", err)
		}
		if waited := time.Since(start); waited != 0 {
			t.Errorf("recovery took %v", waited)
		}
	})
}

// TestRefreshReplicaTakesOverAFailedProbe: two replicas on one store; the
// first claims the refresh and its provider call hangs to the timeout;
// the claim it gives up is taken over by the other replica's waiting
// refresh within a second, which, the provider being back, refreshes once
// (no spent refresh token sent again), without waiting out the lease.
func TestRefreshReplicaTakesOverAFailedProbe(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s, p := openStore(t), newProvider()
		p.delay = time.Hour
		opts := oauth.RefresherOptions{RefreshTimeout: 2 * time.Second, LeaseTTL: 30 * time.Second}
		a, b := newRefresher(s, p, opts), newRefresher(s, p, opts)
		old := link(t, s, p, "tenant-a", time.Now().Add(-time.Second))
		start := time.Now()

		var wg sync.WaitGroup
		var errA, errB error
		var tookA, tookB time.Duration
		wg.Go(func() {
			_, errA = a.Refresh(context.Background(), "tenant-a", integration, old.AccessToken)
			tookA = time.Since(start)
		})
		wg.Go(func() {
			time.Sleep(100 * time.Millisecond) // a has claimed
			_, errB = b.Refresh(context.Background(), "tenant-a", integration, old.AccessToken)
			tookB = time.Since(start)
		})
		time.Sleep(2*time.Second + 200*time.Millisecond)
		p.mu.Lock()
		p.delay = 0 // the provider is back
		p.mu.Unlock()
		wg.Wait()

		if reasonOf(errA) != oauth.ReasonTimeout || tookA != 2*time.Second {
			t.Errorf("replica A: %v after %v, want ReasonTimeout after the 2s timeout", errA, tookA)
		}
		if errB != nil || tookB > 3500*time.Millisecond {
			t.Errorf("replica B: %v after %v, want a new token within a poll (1s) of A's failure", errB, tookB)
		}
		stored := get(t, s, "tenant-a")
		if stored.AccessToken == old.AccessToken {
			t.Error("not refreshed")
		}
		if n, reused := p.callCount(), p.reuses(); n != 2 || reused != 0 {
			t.Errorf("%d provider calls, %d spent refresh tokens sent again; want A's hung one and B's", n, reused)
		}
		// A's next caller takes the token B stored, without the provider.
		if cred, err := a.Refresh(context.Background(), "tenant-a", integration, old.AccessToken); err != nil || cred.AccessToken != stored.AccessToken {
			t.Errorf("replica A afterwards: %v", err)
		}
		if n := p.callCount(); n != 2 {
			t.Errorf("%d provider calls, want 2", n)
		}
	})
}
