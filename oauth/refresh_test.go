package oauth_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/connectors-gateway/connectors/oauth"
	"github.com/connectors-gateway/connectors/vault"
	"github.com/connectors-gateway/connectors/vault/embedded"
)

const integration = "github"

// openStore opens a real embedded store in the test's temporary folder.
// Called inside a synctest bubble, its clock (claims, UpdatedAt) is the
// bubble's.
func openStore(t *testing.T) *embedded.Store {
	t.Helper()
	s, err := embedded.Open(filepath.Join(t.TempDir(), "store.db"),
		&embedded.Options{MasterKey: bytes.Repeat([]byte{0x42}, 32)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// fakeProvider is a rotating token endpoint: each refresh token it issued
// works once and is answered with a new access and refresh token.
type fakeProvider struct {
	mu          sync.Mutex
	live        map[string]bool // refresh tokens that work
	spent       map[string]bool // refresh tokens used up
	issued      []string        // every token it minted
	calls       []time.Time     // when Refresh was called
	reused      int             // spent refresh tokens presented again
	n           int
	inflight    int
	maxInflight int

	lifetime    time.Duration // of the access tokens it issues; 0: 1h
	delay       time.Duration // how long a refresh takes
	keepRefresh bool          // non-rotating: answer with no refresh token
	// fail, if set, may fail call n (from 1) before the token is looked at.
	fail func(n int, refreshToken string) error
	// during, if set, runs in the middle of every refresh.
	during func()
}

func newProvider() *fakeProvider {
	return &fakeProvider{live: map[string]bool{}, spent: map[string]bool{}}
}

func (p *fakeProvider) mintLocked(kind string) string {
	p.n++
	s := fmt.Sprintf("%s-%07d-secret", kind, p.n)
	p.issued = append(p.issued, s)
	return s
}

// grant issues the tokens of a new link.
func (p *fakeProvider) grant() (access, refresh string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	access, refresh = p.mintLocked("access"), p.mintLocked("refresh")
	p.live[refresh] = true
	return access, refresh
}

func (p *fakeProvider) Refresh(ctx context.Context, refreshToken string) (oauth.Token, error) {
	p.mu.Lock()
	p.calls = append(p.calls, time.Now())
	n := len(p.calls)
	p.inflight++
	p.maxInflight = max(p.maxInflight, p.inflight)
	delay, fail, during := p.delay, p.fail, p.during
	p.mu.Unlock()
	defer func() {
		p.mu.Lock()
		p.inflight--
		p.mu.Unlock()
	}()

	if delay > 0 {
		t := time.NewTimer(delay)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return oauth.Token{}, ctx.Err()
		}
	}
	if during != nil {
		during()
	}
	if fail != nil {
		if err := fail(n, refreshToken); err != nil {
			return oauth.Token{}, err
		}
	}

	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.live[refreshToken] {
		if p.spent[refreshToken] {
			p.reused++
		}
		return oauth.Token{}, &oauth.TokenError{Integration: integration, Status: 200, Code: "bad_refresh_token"}
	}
	lifetime := p.lifetime
	if lifetime == 0 {
		lifetime = time.Hour
	}
	tok := oauth.Token{AccessToken: p.mintLocked("access"), TokenType: "bearer", Expiry: time.Now().Add(lifetime)}
	if !p.keepRefresh {
		delete(p.live, refreshToken)
		p.spent[refreshToken] = true
		tok.RefreshToken = p.mintLocked("refresh")
		p.live[tok.RefreshToken] = true
	}
	return tok, nil
}

func (p *fakeProvider) callTimes() []time.Time {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]time.Time(nil), p.calls...)
}

func (p *fakeProvider) callCount() int { return len(p.callTimes()) }

func (p *fakeProvider) reuses() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.reused
}

func (p *fakeProvider) lastIssued(kind string) string {
	p.mu.Lock()
	defer p.mu.Unlock()
	for i := len(p.issued) - 1; i >= 0; i-- {
		if strings.HasPrefix(p.issued[i], kind+"-") {
			return p.issued[i]
		}
	}
	return ""
}

// link stores a new credential for tenant, expiring at expiresAt, with
// tokens p issued.
func link(t *testing.T, s oauth.CredentialStore, p *fakeProvider, tenant string, expiresAt time.Time) vault.Credential {
	t.Helper()
	access, refresh := p.grant()
	cred := vault.Credential{AccessToken: access, RefreshToken: refresh, TokenType: "bearer", ExpiresAt: expiresAt}
	if _, err := s.Put(context.Background(), tenant, integration, cred, 0); err != nil {
		t.Fatal(err)
	}
	return get(t, s, tenant)
}

func get(t *testing.T, s oauth.CredentialStore, tenant string) vault.Credential {
	t.Helper()
	cred, _, err := s.Get(context.Background(), tenant, integration)
	if err != nil {
		t.Fatal(err)
	}
	return cred
}

// logBuffer collects JSON log lines.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// lines returns the log records whose message is msg.
func (b *logBuffer) lines(t *testing.T, msg string) []map[string]any {
	t.Helper()
	var out []map[string]any
	sc := bufio.NewScanner(strings.NewReader(b.String()))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var rec map[string]any
		if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
			t.Fatalf("log line %q: %v", sc.Text(), err)
		}
		if rec["msg"] == msg {
			out = append(out, rec)
		}
	}
	return out
}

// refreshed records OnRefreshed calls.
type refreshed struct {
	mu     sync.Mutex
	tokens []string
}

func (r *refreshed) add(_, _ string, cred vault.Credential) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.tokens = append(r.tokens, cred.AccessToken)
}

func (r *refreshed) got() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.tokens...)
}

func newRefresher(s oauth.CredentialStore, p oauth.TokenRefresher, opts oauth.RefresherOptions) *oauth.Refresher {
	opts.Store = s
	opts.Providers = map[string]oauth.TokenRefresher{integration: p}
	return oauth.NewRefresher(opts)
}

// run runs r until the test ends.
func run(t *testing.T, r *oauth.Refresher) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
}

// advance lets d of fake time pass and everything settle.
func advance(d time.Duration) {
	time.Sleep(d)
	synctest.Wait()
}

func TestRefresherRefreshesBeforeExpiry(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s, p := openStore(t), newProvider()
		var seen refreshed
		r := newRefresher(s, p, oauth.RefresherOptions{Margin: 5 * time.Minute, Jitter: time.Minute, OnRefreshed: seen.add})
		start := time.Now()
		const tenants = 20
		for i := range tenants {
			tenant := fmt.Sprintf("tenant-%02d", i)
			r.Schedule(tenant, integration, link(t, s, p, tenant, start.Add(time.Hour)))
		}
		if got := r.QueueLen(); got != tenants {
			t.Fatalf("QueueLen = %d, want %d", got, tenants)
		}
		run(t, r)

		advance(54*time.Minute - time.Second)
		if n := p.callCount(); n != 0 {
			t.Fatalf("%d refreshes more than Margin+Jitter before expiry", n)
		}
		advance(time.Minute + 2*time.Second) // now just past expiry - Margin
		calls := p.callTimes()
		if len(calls) != tenants {
			t.Fatalf("%d refreshes by expiry - Margin, want %d", len(calls), tenants)
		}
		distinct := map[time.Time]bool{}
		for _, c := range calls {
			if off := c.Sub(start); off < 54*time.Minute || off > 55*time.Minute {
				t.Errorf("refreshed at start+%v, want within [54m, 55m]", off)
			}
			distinct[c] = true
		}
		if len(distinct) < 2 {
			t.Errorf("all %d refreshes at the same instant: no jitter", len(calls))
		}
		for i := range tenants {
			cred := get(t, s, fmt.Sprintf("tenant-%02d", i))
			if !strings.HasPrefix(cred.AccessToken, "access-") || cred.ExpiresAt.Before(start.Add(time.Hour+50*time.Minute)) {
				t.Errorf("tenant %d: stored credential not refreshed: expires %v", i, cred.ExpiresAt)
			}
		}
		if got := len(seen.got()); got != tenants {
			t.Errorf("OnRefreshed called %d times, want %d", got, tenants)
		}
		if got := r.QueueLen(); got != tenants {
			t.Errorf("QueueLen after the refreshes = %d, want %d (the new tokens rescheduled)", got, tenants)
		}

		// The new tokens are refreshed in their turn, an hour later.
		advance(time.Hour)
		if n := p.callCount(); n != 2*tenants {
			t.Errorf("%d refreshes after two hours, want %d", n, 2*tenants)
		}
		if n := p.reuses(); n != 0 {
			t.Errorf("%d spent refresh tokens sent again", n)
		}
	})
}

func TestRefresherWithoutJitterRefreshesAtMargin(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s, p := openStore(t), newProvider()
		r := newRefresher(s, p, oauth.RefresherOptions{Margin: 10 * time.Minute, Jitter: -1})
		start := time.Now()
		r.Schedule("tenant-a", integration, link(t, s, p, "tenant-a", start.Add(time.Hour)))
		run(t, r)
		advance(2 * time.Hour)
		calls := p.callTimes()
		if len(calls) < 1 || !calls[0].Equal(start.Add(50*time.Minute)) {
			t.Fatalf("refreshes at %v, want the first at start+50m", calls)
		}
		// The new token, issued at start+50m for an hour, at start+1h40m.
		if len(calls) < 2 || !calls[1].Equal(start.Add(100*time.Minute)) {
			t.Fatalf("refreshes at %v, want the second at start+1h40m", calls)
		}
	})
}

func TestRefresherShortLivedTokens(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s, p := openStore(t), newProvider()
		p.lifetime = 2 * time.Minute // shorter than the Margin
		r := newRefresher(s, p, oauth.RefresherOptions{Margin: 5 * time.Minute, Jitter: -1})
		start := time.Now()
		r.Schedule("tenant-a", integration, link(t, s, p, "tenant-a", start.Add(2*time.Minute)))
		run(t, r)
		advance(10*time.Minute + 30*time.Second)
		// The linked token is within Margin: refreshed at once. Each new
		// one after half its 2-minute life, not over and over.
		if n := p.callCount(); n != 11 {
			t.Errorf("%d refreshes of 2-minute tokens in 10 minutes, want 11", n)
		}
	})
}

func TestRefreshSharesOneRefresh(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s, p := &flakyStore{Store: openStore(t)}, newProvider()
		p.delay = time.Second
		r := newRefresher(s, p, oauth.RefresherOptions{})
		old := link(t, s, p, "tenant-a", time.Now().Add(-time.Minute)) // expired

		const callers = 50
		var wg sync.WaitGroup
		got := make([]string, callers)
		errs := make([]error, callers)
		for i := range callers {
			stale := old.AccessToken
			if i%2 == 1 {
				stale = "" // "the stored one, if due"
			}
			wg.Go(func() {
				cred, err := r.Refresh(context.Background(), "tenant-a", integration, stale)
				got[i], errs[i] = cred.AccessToken, err
			})
		}
		wg.Wait()

		if n := p.callCount(); n != 1 {
			t.Fatalf("%d calls to the provider for %d concurrent callers, want 1", n, callers)
		}
		// Shared in the process: one refresh, so one claim (not one
		// winner among 50 claimants).
		if n := s.claims.Load(); n != 1 {
			t.Errorf("%d claims for %d concurrent callers in one process, want 1", n, callers)
		}
		want := get(t, s, "tenant-a").AccessToken
		if want == old.AccessToken {
			t.Fatal("stored token not refreshed")
		}
		for i := range callers {
			if errs[i] != nil || got[i] != want {
				t.Errorf("caller %d: %q, %v; want the new token", i, got[i], errs[i])
			}
		}

		// A late caller with the old token gets the new one without a call.
		cred, err := r.Refresh(context.Background(), "tenant-a", integration, old.AccessToken)
		if err != nil || cred.AccessToken != want || p.callCount() != 1 {
			t.Errorf("late caller: %q, %v after %d calls; want the stored token and no call", cred.AccessToken, err, p.callCount())
		}
	})
}

func TestRefreshStaleAndDue(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s, p := openStore(t), newProvider()
		r := newRefresher(s, p, oauth.RefresherOptions{Margin: 5 * time.Minute})
		ctx := context.Background()
		fresh := link(t, s, p, "tenant-a", time.Now().Add(time.Hour))

		// A stale token other than the stored one: the stored one, no call.
		cred, err := r.Refresh(ctx, "tenant-a", integration, "access-0000000-old")
		if err != nil || cred.AccessToken != fresh.AccessToken || p.callCount() != 0 {
			t.Fatalf("other stale token: %q, %v, %d calls", cred.AccessToken, err, p.callCount())
		}
		// "" and not due: the stored one, no call.
		cred, err = r.Refresh(ctx, "tenant-a", integration, "")
		if err != nil || cred.AccessToken != fresh.AccessToken || p.callCount() != 0 {
			t.Fatalf("not due: %q, %v, %d calls", cred.AccessToken, err, p.callCount())
		}
		// The stored token refused by the upstream: refreshed though not due.
		cred, err = r.Refresh(ctx, "tenant-a", integration, fresh.AccessToken)
		if err != nil || cred.AccessToken == fresh.AccessToken || p.callCount() != 1 {
			t.Fatalf("refused token: %q, %v, %d calls", cred.AccessToken, err, p.callCount())
		}
		// "" within Margin of expiry: refreshed.
		advance(56 * time.Minute)
		before := cred.AccessToken
		cred, err = r.Refresh(ctx, "tenant-a", integration, "")
		if err != nil || cred.AccessToken == before || p.callCount() != 2 {
			t.Fatalf("due: %q, %v, %d calls", cred.AccessToken, err, p.callCount())
		}
		if _, err := r.Refresh(ctx, "tenant-a", "notion", ""); !errors.Is(err, oauth.ErrNoProvider) {
			t.Errorf("integration without a provider: %v, want ErrNoProvider", err)
		}
		if _, err := r.Refresh(ctx, "tenant-b", integration, "x"); !vault.IsNotFound(err) {
			t.Errorf("no credential: %v, want not found", err)
		}
	})
}

func TestRefreshReplicasRefreshOnce(t *testing.T) {
	t.Run("lazy", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			s, p := openStore(t), newProvider()
			p.delay = 2 * time.Second
			var seenA, seenB refreshed
			a := newRefresher(s, p, oauth.RefresherOptions{OnRefreshed: seenA.add})
			b := newRefresher(s, p, oauth.RefresherOptions{OnRefreshed: seenB.add})
			old := link(t, s, p, "tenant-a", time.Now().Add(-time.Second))

			var wg sync.WaitGroup
			var gotA, gotB vault.Credential
			var errA, errB error
			wg.Go(func() { gotA, errA = a.Refresh(context.Background(), "tenant-a", integration, old.AccessToken) })
			wg.Go(func() { gotB, errB = b.Refresh(context.Background(), "tenant-a", integration, old.AccessToken) })
			wg.Wait()

			if errA != nil || errB != nil {
				t.Fatalf("Refresh: %v, %v", errA, errB)
			}
			if n := p.callCount(); n != 1 {
				t.Errorf("%d provider calls by two replicas, want 1", n)
			}
			if n := p.reuses(); n != 0 {
				t.Errorf("%d spent refresh tokens sent again", n)
			}
			stored := get(t, s, "tenant-a")
			if gotA.AccessToken != stored.AccessToken || gotB.AccessToken != stored.AccessToken || stored.AccessToken == old.AccessToken {
				t.Errorf("replicas got %q and %q, stored %q", gotA.AccessToken, gotB.AccessToken, stored.AccessToken)
			}
			if diff := cmp.Diff([]string{stored.AccessToken}, seenA.got()); diff != "" {
				t.Errorf("OnRefreshed of replica A (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff([]string{stored.AccessToken}, seenB.got()); diff != "" {
				t.Errorf("OnRefreshed of replica B (-want +got):\n%s", diff)
			}
		})
	})
	t.Run("scheduled", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			s, p := openStore(t), newProvider()
			p.delay = 2 * time.Second
			var seenA, seenB refreshed
			// No jitter: both replicas' schedules fire at the same instant.
			opts := func(seen *refreshed) oauth.RefresherOptions {
				return oauth.RefresherOptions{Jitter: -1, OnRefreshed: seen.add}
			}
			a, b := newRefresher(s, p, opts(&seenA)), newRefresher(s, p, opts(&seenB))
			cred := link(t, s, p, "tenant-a", time.Now().Add(time.Hour))
			a.Schedule("tenant-a", integration, cred)
			b.Schedule("tenant-a", integration, cred)
			run(t, a)
			run(t, b)
			advance(time.Hour)

			if n := p.callCount(); n != 1 {
				t.Errorf("%d provider calls by two replicas, want 1", n)
			}
			if n := p.reuses(); n != 0 {
				t.Errorf("%d spent refresh tokens sent again", n)
			}
			stored := get(t, s, "tenant-a")
			for name, seen := range map[string]*refreshed{"A": &seenA, "B": &seenB} {
				if diff := cmp.Diff([]string{stored.AccessToken}, seen.got()); diff != "" {
					t.Errorf("OnRefreshed of replica %s (-want +got):\n%s", name, diff)
				}
			}
			if a.QueueLen() != 1 || b.QueueLen() != 1 {
				t.Errorf("QueueLen = %d, %d; want the new token scheduled on both", a.QueueLen(), b.QueueLen())
			}
		})
	})
}

func TestRefreshTakesOverADeadReplicasClaim(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s, p := openStore(t), newProvider()
		const lease = 20 * time.Second
		r := newRefresher(s, p, oauth.RefresherOptions{LeaseTTL: lease})
		old := link(t, s, p, "tenant-a", time.Now().Add(-time.Second))
		// A replica claimed version 1 and died.
		start := time.Now()
		if err := s.Claim(context.Background(), "refresh/tenant-a/github/1", start.Add(lease)); err != nil {
			t.Fatal(err)
		}
		// The caller waits twice RefreshTimeout (5s), not the lease: the
		// refresh goes on without it.
		_, err := r.Refresh(context.Background(), "tenant-a", integration, old.AccessToken)
		if re, ok := errors.AsType[*oauth.RefreshError](err); !ok || re.Reason != oauth.ReasonTimeout || time.Since(start) != 10*time.Second {
			t.Fatalf("Refresh behind a dead replica's claim: %v after %v, want ReasonTimeout after 10s", err, time.Since(start))
		}
		advance(lease)
		cred, err := r.Refresh(context.Background(), "tenant-a", integration, old.AccessToken)
		if err != nil {
			t.Fatal(err)
		}
		if calls := p.callTimes(); len(calls) == 0 || calls[0].Sub(start) < lease {
			t.Errorf("refreshed at %v, inside the dead replica's lease of %v", calls, lease)
		}
		if cred.AccessToken == old.AccessToken || p.callCount() != 1 {
			t.Errorf("got %q after %d calls; want a new token after one", cred.AccessToken, p.callCount())
		}
	})
}

func TestRefreshBacksOff(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s, p := openStore(t), newProvider()
		var failing atomic.Bool
		failing.Store(true)
		p.fail = func(int, string) error {
			if failing.Load() {
				return errors.New("upstream exploded")
			}
			return nil
		}
		r := newRefresher(s, p, oauth.RefresherOptions{
			Margin: 10 * time.Minute, Jitter: -1, MinBackoff: 30 * time.Second, MaxBackoff: 100 * time.Second,
			MaxFailures: 100, LeaseTTL: 10 * time.Second,
		})
		start := time.Now()
		old := link(t, s, p, "tenant-a", start.Add(15*time.Minute))
		r.Schedule("tenant-a", integration, old)
		run(t, r)

		advance(5 * time.Minute) // the first attempt
		if n := p.callCount(); n != 1 {
			t.Fatalf("%d calls at expiry - Margin, want 1", n)
		}
		stored := get(t, s, "tenant-a")
		if stored.AccessToken != old.AccessToken || stored.RefreshToken != old.RefreshToken {
			t.Error("a failed refresh changed the stored tokens")
		}
		h := r.Health("tenant-a", integration, &stored)
		want := oauth.Health{State: oauth.HealthRefreshFailed, Failures: 1, NextAttempt: start.Add(5*time.Minute + 30*time.Second)}
		if diff := cmp.Diff(want, h, cmp.FilterPath(func(p cmp.Path) bool { return p.Last().String() == ".LastError" }, cmp.Ignore())); diff != "" {
			t.Errorf("Health after a failure (-want +got):\n%s", diff)
		}
		if !strings.Contains(h.LastError, "upstream exploded") {
			t.Errorf("LastError = %q", h.LastError)
		}

		// Scheduling the same credential again (the admin API does on any
		// change) does not skip the backoff.
		r.Schedule("tenant-a", integration, stored)

		// In the cooldown a caller whose token is spent probes the provider
		// once, a ProbeInterval after the last attempt; the next, within
		// it, gets the failure and the provider no call. The failed probe
		// counts no failure.
		if _, err := r.Refresh(context.Background(), "tenant-a", integration, old.AccessToken); err == nil || p.callCount() != 1 {
			t.Error("Refresh right after a failure probed the provider")
		}
		advance(time.Second)
		for range 2 {
			if _, err := r.Refresh(context.Background(), "tenant-a", integration, old.AccessToken); err == nil {
				t.Error("Refresh in the cooldown succeeded")
			}
		}
		if n := p.callCount(); n != 2 {
			t.Errorf("%d provider calls after two Refreshes in the cooldown, want one probe", n-1)
		}
		if h := r.Health("tenant-a", integration, &stored); h.Failures != 1 || !h.NextAttempt.Equal(start.Add(5*time.Minute+30*time.Second)) {
			t.Errorf("Health after a failed probe = %+v, want the first failure's", h)
		}

		advance(30*time.Second + time.Minute + 100*time.Second + 100*time.Second)
		calls := p.callTimes()
		calls = append(calls[:1], calls[2:]...) // without the probe
		var gaps []time.Duration
		for i := 1; i < len(calls); i++ {
			gaps = append(gaps, calls[i].Sub(calls[i-1]))
		}
		wantGaps := []time.Duration{30 * time.Second, time.Minute, 100 * time.Second, 100 * time.Second} // capped
		if diff := cmp.Diff(wantGaps, gaps); diff != "" {
			t.Errorf("waits between attempts (-want +got):\n%s", diff)
		}

		failing.Store(false)
		advance(100 * time.Second)
		stored = get(t, s, "tenant-a")
		if stored.AccessToken == old.AccessToken {
			t.Fatal("not refreshed once the provider recovered")
		}
		if diff := cmp.Diff(oauth.Health{State: oauth.HealthActive}, r.Health("tenant-a", integration, &stored)); diff != "" {
			t.Errorf("Health after recovery (-want +got):\n%s", diff)
		}
		if n := p.callCount(); n != 7 {
			t.Errorf("%d calls, want 5 failures, a probe and a success", n)
		}
	})
}

func TestRefreshPermanentErrorNeedsReauth(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s, p := openStore(t), newProvider()
		p.fail = func(int, string) error {
			return &oauth.TokenError{Integration: integration, Status: 400, Code: "invalid_grant"}
		}
		r := newRefresher(s, p, oauth.RefresherOptions{})
		old := link(t, s, p, "tenant-a", time.Now().Add(time.Minute))
		r.Schedule("tenant-a", integration, old)
		run(t, r)
		advance(time.Second)

		stored := get(t, s, "tenant-a")
		if stored.Status != vault.StatusNeedsReauth {
			t.Fatalf("stored status %q, want needs_reauth", stored.Status)
		}
		if stored.AccessToken != old.AccessToken || stored.RefreshToken != old.RefreshToken {
			t.Error("marking needs_reauth changed the tokens")
		}
		if n := r.QueueLen(); n != 0 {
			t.Errorf("QueueLen = %d, want it no longer scheduled", n)
		}
		if h := r.Health("tenant-a", integration, &stored); h.State != oauth.HealthNeedsReauth {
			t.Errorf("Health = %+v, want needs_reauth", h)
		}
		advance(24 * time.Hour)
		_, err := r.Refresh(context.Background(), "tenant-a", integration, old.AccessToken)
		if !errors.Is(err, oauth.ErrNeedsReauth) {
			t.Errorf("Refresh: %v, want ErrNeedsReauth", err)
		}
		if n := p.callCount(); n != 1 {
			t.Errorf("%d provider calls, want 1", n)
		}
	})
}

func TestRefreshLazyPermanentError(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s, p := openStore(t), newProvider()
		r := newRefresher(s, p, oauth.RefresherOptions{})
		old := link(t, s, p, "tenant-a", time.Time{}) // no expiry (Notion): refreshed on 401 only
		p.mu.Lock()
		delete(p.live, old.RefreshToken) // revoked at the provider
		p.mu.Unlock()

		_, err := r.Refresh(context.Background(), "tenant-a", integration, old.AccessToken)
		var te *oauth.TokenError
		if !errors.Is(err, oauth.ErrNeedsReauth) || !errors.As(err, &te) || te.Code != "bad_refresh_token" {
			t.Fatalf("Refresh: %v, want ErrNeedsReauth wrapping the provider's bad_refresh_token", err)
		}
		if got := get(t, s, "tenant-a").Status; got != vault.StatusNeedsReauth {
			t.Errorf("stored status %q, want needs_reauth", got)
		}
	})
}

func TestRefreshMaxFailuresNeedsReauth(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s, p := openStore(t), newProvider()
		p.fail = func(int, string) error { return &oauth.TokenError{Integration: integration, Status: 503} }
		r := newRefresher(s, p, oauth.RefresherOptions{MaxFailures: 3, MinBackoff: time.Minute, MaxBackoff: time.Minute})
		r.Schedule("tenant-a", integration, link(t, s, p, "tenant-a", time.Now().Add(time.Minute)))
		run(t, r)

		advance(90 * time.Second) // attempts at 0 and 1m
		stored := get(t, s, "tenant-a")
		if h := r.Health("tenant-a", integration, &stored); h.State != oauth.HealthRefreshFailed || h.Failures != 2 {
			t.Errorf("Health after 2 failures = %+v", h)
		}
		advance(time.Hour)
		if n := p.callCount(); n != 3 {
			t.Errorf("%d attempts, want MaxFailures = 3", n)
		}
		stored = get(t, s, "tenant-a")
		if stored.Status != vault.StatusNeedsReauth {
			t.Errorf("stored status %q after MaxFailures, want needs_reauth", stored.Status)
		}
		if h := r.Health("tenant-a", integration, &stored); h.State != oauth.HealthNeedsReauth || h.Failures != 3 {
			t.Errorf("Health = %+v, want needs_reauth after 3 failures", h)
		}
		if r.QueueLen() != 0 {
			t.Error("still scheduled")
		}
	})
}

// flakyStore is the real store with Put failing on demand, as Vault does
// when it is unreachable.
type flakyStore struct {
	*embedded.Store
	failPuts atomic.Int32 // refuse this many Puts
	lostPuts atomic.Int32 // do this many Puts but report failure
	claims   atomic.Int32
	getDelay atomic.Int64 // each Get takes this long
}

func (f *flakyStore) Get(ctx context.Context, tenant, integration string) (vault.Credential, int64, error) {
	time.Sleep(time.Duration(f.getDelay.Load()))
	return f.Store.Get(ctx, tenant, integration)
}

func (f *flakyStore) Claim(ctx context.Context, key string, until time.Time) error {
	f.claims.Add(1)
	return f.Store.Claim(ctx, key, until)
}

func (f *flakyStore) Put(ctx context.Context, tenant, integration string, cred vault.Credential, version int64) (int64, error) {
	if f.failPuts.Add(-1) >= 0 {
		return 0, &vault.VaultError{Err: errors.New("connection refused")}
	}
	v, err := f.Store.Put(ctx, tenant, integration, cred, version)
	if err == nil && f.lostPuts.Add(-1) >= 0 {
		return 0, &vault.VaultError{Err: errors.New("connection reset after the write")}
	}
	return v, err
}

func TestRefreshRetriesStoringNewTokens(t *testing.T) {
	t.Run("put fails twice", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			s, p := &flakyStore{Store: openStore(t)}, newProvider()
			r := newRefresher(s, p, oauth.RefresherOptions{})
			old := link(t, s, p, "tenant-a", time.Now().Add(-time.Second))
			s.failPuts.Store(2)
			cred, err := r.Refresh(context.Background(), "tenant-a", integration, old.AccessToken)
			if err != nil {
				t.Fatal(err)
			}
			if n := p.callCount(); n != 1 {
				t.Errorf("%d provider calls, want 1", n)
			}
			if stored := get(t, s, "tenant-a"); stored.AccessToken != cred.AccessToken || stored.RefreshToken != p.lastIssued("refresh") {
				t.Error("the new tokens were not stored")
			}
		})
	})
	t.Run("put lands but reports failure", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			s, p := &flakyStore{Store: openStore(t)}, newProvider()
			r := newRefresher(s, p, oauth.RefresherOptions{})
			old := link(t, s, p, "tenant-a", time.Now().Add(-time.Second))
			s.lostPuts.Store(1)
			cred, err := r.Refresh(context.Background(), "tenant-a", integration, old.AccessToken)
			if err != nil {
				t.Fatal(err)
			}
			if stored := get(t, s, "tenant-a"); stored.AccessToken != cred.AccessToken || p.callCount() != 1 {
				t.Errorf("stored %q, got %q, after %d calls", stored.AccessToken, cred.AccessToken, p.callCount())
			}
		})
	})
	t.Run("store down for a while", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			s, p := &flakyStore{Store: openStore(t)}, newProvider()
			var logs logBuffer
			r := newRefresher(s, p, oauth.RefresherOptions{
				MinBackoff: time.Minute, Logger: slog.New(slog.NewJSONHandler(&logs, nil)),
			})
			old := link(t, s, p, "tenant-a", time.Now().Add(time.Minute))
			s.failPuts.Store(1000)
			_, err := r.Refresh(context.Background(), "tenant-a", integration, old.AccessToken)
			if err == nil {
				t.Fatal("Refresh succeeded with the store down")
			}
			stored := get(t, s, "tenant-a")
			if h := r.Health("tenant-a", integration, &stored); h.State != oauth.HealthRefreshFailed {
				t.Errorf("Health = %+v, want refresh_failed", h)
			}
			if len(logs.lines(t, "Failed to refresh token")) != 1 {
				t.Error("no Failed to refresh token line")
			}
			s.failPuts.Store(0)
			run(t, r)
			advance(2 * time.Minute) // the retry after the backoff

			stored = get(t, s, "tenant-a")
			if n := p.callCount(); n != 1 {
				t.Errorf("%d provider calls, want 1: the retry must store the tokens already issued", n)
			}
			if stored.AccessToken != p.lastIssued("access") || stored.RefreshToken != p.lastIssued("refresh") {
				t.Error("the tokens the provider issued were not stored")
			}
			if n := p.reuses(); n != 0 {
				t.Errorf("%d spent refresh tokens sent again", n)
			}
			if h := r.Health("tenant-a", integration, &stored); h.State != oauth.HealthActive {
				t.Errorf("Health = %+v, want active", h)
			}
			for _, tok := range []string{old.AccessToken, old.RefreshToken, stored.AccessToken, stored.RefreshToken} {
				if strings.Contains(logs.String(), tok) {
					t.Errorf("a token is in the logs:\n%s", logs.String())
				}
			}
		})
	})
}

func TestRefreshConflicts(t *testing.T) {
	t.Run("another field changed", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			s, p := openStore(t), newProvider()
			r := newRefresher(s, p, oauth.RefresherOptions{})
			old := link(t, s, p, "tenant-a", time.Now().Add(-time.Second))
			var once sync.Once
			p.during = func() {
				once.Do(func() {
					cred, v, _ := s.Get(context.Background(), "tenant-a", integration)
					cred.Extra = map[string]string{"workspace_id": "w-1"}
					if _, err := s.Put(context.Background(), "tenant-a", integration, cred, v); err != nil {
						t.Error(err)
					}
				})
			}
			cred, err := r.Refresh(context.Background(), "tenant-a", integration, old.AccessToken)
			if err != nil {
				t.Fatal(err)
			}
			stored := get(t, s, "tenant-a")
			if stored.AccessToken != cred.AccessToken || stored.AccessToken == old.AccessToken || stored.Extra["workspace_id"] != "w-1" {
				t.Errorf("stored %+v: want the new tokens merged onto the concurrent change", stored)
			}
			if p.callCount() != 1 {
				t.Errorf("%d provider calls", p.callCount())
			}
		})
	})
	t.Run("credential replaced", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			s, p := openStore(t), newProvider()
			var seen refreshed
			r := newRefresher(s, p, oauth.RefresherOptions{OnRefreshed: seen.add})
			old := link(t, s, p, "tenant-a", time.Now().Add(-time.Second))
			var relinked vault.Credential
			var once sync.Once
			p.during = func() {
				once.Do(func() {
					access, refresh := p.grant()
					relinked = vault.Credential{AccessToken: access, RefreshToken: refresh, ExpiresAt: time.Now().Add(time.Hour)}
					if _, err := s.Put(context.Background(), "tenant-a", integration, relinked, vault.AnyVersion); err != nil {
						t.Error(err)
					}
				})
			}
			cred, err := r.Refresh(context.Background(), "tenant-a", integration, old.AccessToken)
			if err != nil {
				t.Fatal(err)
			}
			stored := get(t, s, "tenant-a")
			if cred.AccessToken != relinked.AccessToken || stored.AccessToken != relinked.AccessToken || stored.RefreshToken != relinked.RefreshToken {
				t.Errorf("got %q, stored %q; want the new link's %q to win", cred.AccessToken, stored.AccessToken, relinked.AccessToken)
			}
			if diff := cmp.Diff([]string{relinked.AccessToken}, seen.got()); diff != "" {
				t.Errorf("OnRefreshed (-want +got):\n%s", diff)
			}
		})
	})
}

func TestRefreshKeepsRefreshTokenNotRotated(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s, p := openStore(t), newProvider()
		p.keepRefresh = true
		r := newRefresher(s, p, oauth.RefresherOptions{})
		old := link(t, s, p, "tenant-a", time.Now().Add(-time.Second))
		cred, err := r.Refresh(context.Background(), "tenant-a", integration, old.AccessToken)
		if err != nil {
			t.Fatal(err)
		}
		stored := get(t, s, "tenant-a")
		if cred.AccessToken == old.AccessToken || stored.AccessToken != cred.AccessToken {
			t.Error("access token not refreshed")
		}
		if stored.RefreshToken != old.RefreshToken || cred.RefreshToken != old.RefreshToken {
			t.Errorf("refresh token %q, want the old one kept", stored.RefreshToken)
		}
	})
}

func TestRefreshTenThousandInOneMinute(t *testing.T) {
	if testing.Short() {
		t.Skip("10,000 credentials in a real store")
	}
	synctest.Test(t, func(t *testing.T) {
		s, p := openStore(t), newProvider()
		p.delay = 50 * time.Millisecond
		const n, workers = 10_000, 8
		r := newRefresher(s, p, oauth.RefresherOptions{Workers: workers})
		start := time.Now()
		expiry := make([]time.Time, n)
		old := make([]string, n)
		for i := range n {
			tenant := fmt.Sprintf("t%05d", i)
			expiry[i] = start.Add(30*time.Minute + time.Duration(i)*time.Minute/n)
			cred := link(t, s, p, tenant, expiry[i])
			old[i] = cred.AccessToken
			r.Schedule(tenant, integration, cred)
		}
		run(t, r)
		advance(32 * time.Minute)

		if got := p.callCount(); got != n {
			t.Errorf("%d provider calls, want %d", got, n)
		}
		p.mu.Lock()
		maxInflight, reused := p.maxInflight, p.reused
		p.mu.Unlock()
		if maxInflight > workers {
			t.Errorf("%d refreshes at once, want at most Workers = %d", maxInflight, workers)
		}
		if reused != 0 {
			t.Errorf("%d spent refresh tokens sent again", reused)
		}
		late := 0
		for i := range n {
			cred := get(t, s, fmt.Sprintf("t%05d", i))
			if cred.AccessToken == old[i] || !cred.UpdatedAt.Before(expiry[i]) {
				late++
			}
		}
		if late > 0 {
			t.Errorf("%d of %d credentials not refreshed before they expired", late, n)
		}
		if got := r.QueueLen(); got != n {
			t.Errorf("QueueLen = %d, want %d", got, n)
		}
	})
}

func TestScheduleSkipsWhatCannotBeRefreshed(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := oauth.NewRefresher(oauth.RefresherOptions{
			Store:     nil, // never reached
			Providers: map[string]oauth.TokenRefresher{integration: newProvider()},
		})
		good := vault.Credential{AccessToken: "a", RefreshToken: "r", ExpiresAt: time.Now().Add(time.Hour)}
		tests := []struct {
			name        string
			integration string
			edit        func(*vault.Credential)
		}{
			{"no expiry", integration, func(c *vault.Credential) { c.ExpiresAt = time.Time{} }},
			{"no refresh token", integration, func(c *vault.Credential) { c.RefreshToken = "" }},
			{"needs_reauth", integration, func(c *vault.Credential) { c.Status = vault.StatusNeedsReauth }},
			{"no provider", "notion", func(*vault.Credential) {}},
		}
		for _, tt := range tests {
			r.Schedule("tenant-a", tt.integration, good)
			bad := good
			tt.edit(&bad)
			r.Schedule("tenant-a", tt.integration, bad)
			if n := r.QueueLen(); n != 0 {
				t.Errorf("%s: QueueLen = %d, want the entry removed", tt.name, n)
			}
		}
		r.Schedule("tenant-a", integration, good)
		r.Schedule("tenant-a", integration, good) // rescheduled, not added
		if n := r.QueueLen(); n != 1 {
			t.Errorf("QueueLen = %d, want 1", n)
		}
	})
}

func TestRefresherLogs(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s, p := openStore(t), newProvider()
		// A provider answering garbage that quotes the refresh token.
		p.fail = func(n int, refreshToken string) error {
			if n == 1 {
				return fmt.Errorf("unexpected answer: {\"refresh_token\":%q}", refreshToken)
			}
			return nil
		}
		var logs logBuffer
		r := newRefresher(s, p, oauth.RefresherOptions{
			MinBackoff: time.Minute,
			Logger:     slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		})
		old := link(t, s, p, "tenant-a", time.Now().Add(time.Hour))
		r.Schedule("tenant-a", integration, old)
		run(t, r)
		advance(2 * time.Hour)
		if n := p.callCount(); n < 2 {
			t.Fatalf("%d refreshes", n)
		}

		scheduled := logs.lines(t, "token_refresh_scheduled")
		if len(scheduled) < 3 { // the link, the retry, the new token
			t.Errorf("%d token_refresh_scheduled lines, want at least 3", len(scheduled))
		}
		for _, rec := range scheduled {
			if rec["level"] != "WARN" || rec["tenantId"] != "tenant-a" || rec["integration"] != integration {
				t.Errorf("token_refresh_scheduled line %v", rec)
			}
			for _, key := range []string{"currentExpiry", "refreshAt"} {
				v, _ := rec[key].(string)
				if _, err := time.Parse(time.RFC3339, v); err != nil {
					t.Errorf("token_refresh_scheduled %s = %v, want RFC 3339", key, rec[key])
				}
			}
		}
		failed := logs.lines(t, "Failed to refresh token")
		if len(failed) != 1 {
			t.Fatalf("%d Failed to refresh token lines, want 1", len(failed))
		}
		rec := failed[0]
		if rec["level"] != "ERROR" || rec["tenantId"] != "tenant-a" || rec["integration"] != integration || rec["failures"] != 1.0 {
			t.Errorf("Failed to refresh token line %v", rec)
		}
		if _, err := time.Parse(time.RFC3339, fmt.Sprint(rec["nextAttempt"])); err != nil {
			t.Errorf("nextAttempt = %v", rec["nextAttempt"])
		}
		if msg, _ := rec["error"].(string); !strings.Contains(msg, "unexpected answer") {
			t.Errorf("error = %v", rec["error"])
		}

		p.mu.Lock()
		issued := append([]string(nil), p.issued...)
		p.mu.Unlock()
		out := logs.String()
		for _, tok := range issued {
			if strings.Contains(out, tok) {
				t.Errorf("token %s is in the logs", tok)
			}
		}
	})
}

func TestRefreshJoinsOnlyAUsefulRefresh(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s, p := &flakyStore{Store: openStore(t)}, newProvider()
		r := newRefresher(s, p, oauth.RefresherOptions{})
		cur := link(t, s, p, "tenant-a", time.Now().Add(time.Hour))
		s.getDelay.Store(int64(time.Second))

		// A caller asks for "the stored token if due": it is not.
		var wg sync.WaitGroup
		wg.Go(func() {
			if _, err := r.Refresh(context.Background(), "tenant-a", integration, ""); err != nil {
				t.Error(err)
			}
		})
		synctest.Wait() // its refresh is reading the store
		// Meanwhile the upstream refuses the stored token: joining the
		// first refresh, which changes nothing, is not enough.
		cred, err := r.Refresh(context.Background(), "tenant-a", integration, cur.AccessToken)
		wg.Wait()
		if err != nil || cred.AccessToken == cur.AccessToken {
			t.Errorf("got %q, %v; want a new token", cred.AccessToken, err)
		}
		if n := p.callCount(); n != 1 {
			t.Errorf("%d provider calls, want 1", n)
		}
	})
}

// TestRefresherScheduleFound: a short-lived token found stored (another
// replica may have just refreshed it) is refreshed after half its life,
// not at once as Schedule would: two replicas finding each other's
// refreshes do not refresh over and over.
func TestRefresherScheduleFound(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s, p := openStore(t), newProvider()
		r := newRefresher(s, p, oauth.RefresherOptions{Margin: 5 * time.Minute, Jitter: -1})
		found := link(t, s, p, "tenant-a", time.Now().Add(4*time.Minute)) // lives 4m: within Margin
		r.ScheduleFound("tenant-a", integration, found)
		run(t, r)
		advance(time.Minute)
		if n := p.callCount(); n != 0 {
			t.Errorf("%d refreshes within a minute of finding a 4-minute token, want none before half its life", n)
		}
		advance(90 * time.Second)
		if n := p.callCount(); n != 1 {
			t.Errorf("%d refreshes after half its life, want 1", n)
		}
	})
}
