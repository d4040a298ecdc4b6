package oauth

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/connectors-gateway/connectors/vault"
)

// CredentialStore is what the refresher needs of the credential store.
type CredentialStore interface {
	Get(ctx context.Context, tenant, integration string) (vault.Credential, int64, error)
	// Put is a check-and-set: *vault.ConflictError when the record is no
	// longer at version.
	Put(ctx context.Context, tenant, integration string, cred vault.Credential, version int64) (int64, error)
	// Claim takes key until the given time; vault.ErrClaimed if another
	// holder's claim is still live.
	Claim(ctx context.Context, key string, until time.Time) error
	// ReleaseClaim gives a claim up before it expires.
	ReleaseClaim(ctx context.Context, key string) error
}

// TokenRefresher spends a refresh token; *Provider satisfies it.
type TokenRefresher interface {
	Refresh(ctx context.Context, refreshToken string) (Token, error)
}

// ErrNeedsReauth is returned by Refresher.Refresh when the credential
// cannot be refreshed any more: it is marked needs_reauth, has no refresh
// token, or the provider refused its refresh token for good. The tenant
// must link the integration again.
var ErrNeedsReauth = errors.New("credential needs re-authorization: link the integration again")

// Defaults of RefresherOptions.
const (
	defaultMargin      = 5 * time.Minute
	defaultWorkers     = 4
	defaultMaxFailures = 5
	defaultMinBackoff  = 30 * time.Second
	defaultMaxBackoff  = 30 * time.Minute
	defaultLeaseTTL    = 30 * time.Second
	defaultTimeout     = 5 * time.Second
	defaultProbeEvery  = time.Second
)

// Pacing of the refresher's own retries: polling the store while another
// replica refreshes, and storing tokens the store refused.
const (
	pollMin       = 100 * time.Millisecond
	pollMax       = time.Second
	storeAttempts = 5
	storeRetryMin = 100 * time.Millisecond
)

// RefresherOptions configure a Refresher. Store is required; every other
// field has a default when zero.
type RefresherOptions struct {
	Store CredentialStore
	// Providers refresh each integration's tokens, by integration. An
	// integration without one is never refreshed.
	Providers map[string]TokenRefresher
	// Margin is how long before expiry a token is refreshed. Zero: 5m.
	Margin time.Duration
	// Jitter is the most a refresh is moved earlier still, at random, to
	// spread the load of tokens issued together. Zero: Margin/5;
	// negative: none.
	Jitter time.Duration
	// Workers bounds the refreshes the scheduler runs at once. Zero: 4.
	Workers int
	// MaxFailures is how many consecutive refusals or failures of the
	// provider mark a credential needs_reauth. Zero: 5.
	MaxFailures int
	// MinBackoff and MaxBackoff bound the wait after a failed refresh,
	// doubling from one to the other. Zero: 30s and 30m.
	MinBackoff, MaxBackoff time.Duration
	// LeaseTTL is how long a replica's claim on a refresh holds: it bounds
	// the call to the provider, and how long the other replicas wait for
	// the holder before taking over. Zero: 30s.
	LeaseTTL time.Duration
	// RefreshTimeout bounds one call to a provider's token endpoint: a
	// provider that hangs fails the refresh after it (and a caller waits
	// for a refresh at most twice as long: the provider, then the store).
	// Zero: 5s; never more than LeaseTTL.
	RefreshTimeout time.Duration
	// ProbeInterval is how often, at most, a caller whose token has
	// expired or was refused may try the provider during the backoff
	// after a failure (one probe at a time, per credential and replica):
	// recovery follows traffic, not the backoff timer. Zero: 1s.
	ProbeInterval time.Duration
	// Logger receives the refresher's events; it never sees a token.
	// Nil: logs are discarded.
	Logger *slog.Logger
	// OnRefreshed is called after a refreshed credential is stored (by
	// this process or, when it re-read the winner's, another), for the
	// gateway to replace upstream connections started with the old token.
	// It runs on the refreshing goroutine: it should not block, nor call
	// Refresh for the same credential.
	OnRefreshed func(tenant, integration string, cred vault.Credential)
	// OnAttempt, if set, is told of every call to a provider's token
	// endpoint (its duration and error), for the audit trail and metrics.
	OnAttempt func(tenant, integration string, d time.Duration, err error)
}

// Refresher keeps stored OAuth tokens fresh.
//
// Proactively: Schedule puts a credential on one time-ordered queue, due
// Margin (and up to Jitter) before it expires, and Run's dispatcher hands
// due credentials to a bounded pool of workers. Lazily: a caller whose
// token expired or was refused calls Refresh.
//
// A refresh is never done twice. In one process, concurrent refreshes of
// one credential (scheduled or not) share one attempt. Across replicas, the
// attempt first claims the record's current version in the store: the
// claim's holder refreshes and writes the next version; the others wait for
// that version and use it. The new access and refresh tokens are written
// in one check-and-set Put; if the store refuses it, the new tokens are
// retried, never the spent refresh token.
//
// Failures back off exponentially from MinBackoff to MaxBackoff; during
// the backoff (the cooldown) Refresh answers with the last failure instead
// of calling the provider, except that a caller whose token has expired or
// was refused may probe the provider once per ProbeInterval: if the
// provider is back, the refresh succeeds and the backoff ends. A failed
// probe neither counts as a failure nor moves the backoff on. A permanent
// refusal (see [IsPermanent]), or MaxFailures failures in a row, mark the
// credential needs_reauth in the store and stop its refreshes.
//
// A call to a provider is bounded by RefreshTimeout, and a caller's wait
// for a refresh by twice that.
type Refresher struct {
	store       CredentialStore
	providers   map[string]TokenRefresher
	margin      time.Duration
	jitter      time.Duration
	workers     int
	maxFailures int
	minBackoff  time.Duration
	maxBackoff  time.Duration
	leaseTTL    time.Duration
	timeout     time.Duration // of one call to a provider
	probeEvery  time.Duration
	log         *slog.Logger
	onRefreshed func(tenant, integration string, cred vault.Credential)
	onAttempt   func(tenant, integration string, d time.Duration, err error)

	wake chan struct{} // a new earliest entry; buffered (1)

	mu       sync.Mutex
	sched    schedule                // guarded by mu
	failures map[credKey]*failure    // guarded by mu
	revoked  map[credKey]struct{}    // guarded by mu
	flights  map[credKey]*refreshing // guarded by mu
}

// NewRefresher returns a Refresher; it refreshes nothing on its own until
// Run is called, but Refresh works without it.
func NewRefresher(opts RefresherOptions) *Refresher {
	r := &Refresher{
		store:       opts.Store,
		providers:   maps.Clone(opts.Providers),
		margin:      opts.Margin,
		jitter:      opts.Jitter,
		workers:     opts.Workers,
		maxFailures: opts.MaxFailures,
		minBackoff:  opts.MinBackoff,
		maxBackoff:  opts.MaxBackoff,
		leaseTTL:    opts.LeaseTTL,
		timeout:     opts.RefreshTimeout,
		probeEvery:  opts.ProbeInterval,
		log:         opts.Logger,
		onRefreshed: opts.OnRefreshed,
		onAttempt:   opts.OnAttempt,
		wake:        make(chan struct{}, 1),
		failures:    make(map[credKey]*failure),
		revoked:     make(map[credKey]struct{}),
		flights:     make(map[credKey]*refreshing),
	}
	if r.margin <= 0 {
		r.margin = defaultMargin
	}
	switch {
	case r.jitter == 0:
		r.jitter = r.margin / 5
	case r.jitter < 0:
		r.jitter = 0
	}
	if r.workers <= 0 {
		r.workers = defaultWorkers
	}
	if r.maxFailures <= 0 {
		r.maxFailures = defaultMaxFailures
	}
	if r.minBackoff <= 0 {
		r.minBackoff = defaultMinBackoff
	}
	if r.maxBackoff <= 0 {
		r.maxBackoff = defaultMaxBackoff
	}
	r.maxBackoff = max(r.maxBackoff, r.minBackoff)
	if r.leaseTTL <= 0 {
		r.leaseTTL = defaultLeaseTTL
	}
	if r.timeout <= 0 {
		r.timeout = defaultTimeout
	}
	r.timeout = min(r.timeout, r.leaseTTL)
	if r.probeEvery <= 0 {
		r.probeEvery = defaultProbeEvery
	}
	if r.log == nil {
		r.log = slog.New(slog.DiscardHandler)
	}
	return r
}

// Refresh refreshes tenant's credential for integration now, for a caller
// whose token was refused or expired, and returns the credential to use.
//
// stale is the access token the caller saw fail; "" means the stored one,
// if it is due (within Margin of expiry, or past it). If the stored access
// token already differs from stale, another caller or replica refreshed it
// and the stored credential is returned without calling the provider.
// Concurrent calls share one refresh, which goes on if ctx ends, or if
// the caller stops waiting for it after twice RefreshTimeout (then the
// error is a *RefreshError with ReasonTimeout).
//
// During the backoff after a failed refresh, Refresh returns that failure
// without calling the provider, unless the caller's token is spent (stale
// is the stored one, or it has expired) and no probe of the provider was
// made for it in the last ProbeInterval. A credential that can no longer
// be refreshed is ErrNeedsReauth. Other failures are *RefreshError.
func (r *Refresher) Refresh(ctx context.Context, tenant, integration, stale string) (vault.Credential, error) {
	if r.providers[integration] == nil {
		return vault.Credential{}, fmt.Errorf("refreshing %s/%s: %w", tenant, integration, ErrNoProvider)
	}
	a := attempt{key: credKey{tenant, integration}, stale: stale}
	// The refresh goes on without the caller: a refresh token spent at the
	// provider must not be lost because one caller gave up.
	fctx := context.WithoutCancel(ctx)
	// The caller's wait is bounded, whatever holds the refresh up (a
	// provider, the store, another replica's claim): only the callers
	// that need the new token wait at all, and none of them for long.
	bound := time.NewTimer(2 * r.timeout)
	defer bound.Stop()
	for round := 0; ; round++ {
		f, _ := r.join(fctx, a)
		select {
		case <-f.done:
		case <-ctx.Done():
			return vault.Credential{}, ctx.Err()
		case <-bound.C:
			return vault.Credential{}, &RefreshError{
				Reason: ReasonTimeout,
				msg:    fmt.Sprintf("refreshing %s/%s: no result within %s: %v", tenant, integration, 2*r.timeout, ErrRefreshTimeout),
				cause:  ErrRefreshTimeout,
			}
		}
		// A refresh started for another caller may have found nothing to
		// do while our token is the one stored: start one for ours.
		if f.err == nil && stale != "" && f.a.stale != stale && f.cred.AccessToken == stale && round < 2 {
			continue
		}
		return cloneCredential(f.cred), f.err
	}
}

// attempt is what one refresh was asked to do.
type attempt struct {
	key       credKey
	stale     string    // lazy: the access token the caller saw fail
	scheduled bool      // run by the scheduler
	probe     bool      // lazy, in the backoff: a probe of the provider
	expiry    time.Time // scheduled: ExpiresAt of the credential the entry came from
}

// refreshing is one refresh under way; concurrent callers for the same
// credential wait for it rather than start their own.
type refreshing struct {
	a    attempt
	done chan struct{}
	cred vault.Credential // set before done is closed
	err  error
}

// join returns k's refresh under way, or starts one for a under parent.
func (r *Refresher) join(parent context.Context, a attempt) (f *refreshing, leader bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if f := r.flights[a.key]; f != nil {
		return f, false
	}
	f = &refreshing{a: a, done: make(chan struct{})}
	r.flights[a.key] = f
	go func() {
		// Bounded: waiting out a dead replica's claim, then our own lease.
		ctx, cancel := context.WithTimeout(parent, 3*r.leaseTTL)
		f.cred, f.err = r.tracedRefresh(ctx, parent, a) // trace.go
		cancel()
		r.mu.Lock()
		delete(r.flights, a.key)
		r.mu.Unlock()
		close(f.done)
	}()
	return f, true
}

// refresh is one refresh of a credential, the only one under way for it in
// this process. parent tells the Run's end (ctx also has a time bound).
func (r *Refresher) refresh(ctx, parent context.Context, a attempt) (vault.Credential, error) {
	k := a.key
	p := r.providers[k.integration]
	if p == nil {
		r.unschedule(k)
		return vault.Credential{}, fmt.Errorf("refreshing %s/%s: %w", k.tenant, k.integration, ErrNoProvider)
	}
	var seen string // the access token first read
	var held claimHeld
	for round := 0; ; round++ {
		cred, ver, err := r.store.Get(ctx, k.tenant, k.integration)
		if vault.IsNotFound(err) {
			r.Forget(k.tenant, k.integration)
			return vault.Credential{}, fmt.Errorf("refreshing %s/%s: %w", k.tenant, k.integration, err)
		}
		if err != nil {
			return r.fail(ctx, parent, a, vault.Credential{}, 0, fmt.Errorf("reading the credential: %w", err), false, time.Time{})
		}
		if round == 0 {
			seen = cred.AccessToken
		}
		// Refreshed by someone else since the caller, or the schedule, saw it.
		replaced := cred.AccessToken != seen || a.scheduled && !cred.ExpiresAt.Equal(a.expiry)

		// Tokens refreshed earlier and not yet stored go first: they are
		// good even if a replica that spent the old refresh token again
		// has marked the credential needs_reauth since.
		pending := r.pendingFor(k, cred)
		if pending == nil && cred.Status == vault.StatusNeedsReauth {
			r.unschedule(k)
			return vault.Credential{}, fmt.Errorf("refreshing %s/%s: %w", k.tenant, k.integration, ErrNeedsReauth)
		}
		if pending == nil && replaced {
			return r.adopt(k, cred)
		}
		if pending == nil && !r.wanted(a, cred, time.Now()) {
			return cred, nil
		}
		if pending == nil && cred.RefreshToken == "" {
			r.unschedule(k)
			return vault.Credential{}, fmt.Errorf("refreshing %s/%s: no refresh token: %w", k.tenant, k.integration, ErrNeedsReauth)
		}
		if !a.probe { // a probe that waited for another replica is still ours
			probe, err := r.cooling(a, cred)
			if err != nil {
				return vault.Credential{}, err
			}
			a.probe = probe
		}

		until, waited, err := r.claim(ctx, k, ver, &held)
		if err != nil {
			return r.fail(ctx, parent, a, cred, ver, err, false, time.Time{})
		}
		if waited {
			continue
		}

		var tok Token
		if pending != nil {
			tok = pending.tok // done at the provider already; only storing failed
		} else {
			tok, err = r.spend(ctx, p, k, cred.RefreshToken, until)
			if err != nil {
				// The provider issued nothing we got. If it answered, the
				// refresh token is unspent; if it did not (unreachable,
				// timed out), whether it spent it cannot be known, and
				// holding the claim to the lease's end would not change
				// that, only hold the next attempt (a probe when the
				// provider is back, or another replica's) behind it.
				if r.store.ReleaseClaim(ctx, claimKey(k, ver)) == nil {
					until = time.Time{}
				}
				return r.fail(ctx, parent, a, cred, ver, err, true, until, tok.AccessToken, tok.RefreshToken)
			}
		}
		return r.save(ctx, parent, a, cred, ver, tok, until)
	}
}

// claim takes the claim on version ver of k's credential, which makes
// this replica the one that refreshes it. A claim outlives its holder by at
// most LeaseTTL; then Claim lets exactly one waiter take the same key over
// (see awaitOther). waited is true when another replica held the claim and
// this one waited it out: read the credential again (held is then the
// claim taken over, if any, kept for the next round).
func (r *Refresher) claim(ctx context.Context, k credKey, ver int64, held *claimHeld) (until time.Time, waited bool, err error) {
	if held.ver == ver && time.Now().Before(held.until) {
		return held.until, false, nil // taken over while waiting
	}
	until = time.Now().Add(r.leaseTTL)
	err = r.store.Claim(ctx, claimKey(k, ver), until)
	if !errors.Is(err, vault.ErrClaimed) {
		if err != nil {
			err = fmt.Errorf("claiming the refresh: %w", err)
		}
		return until, false, err
	}
	got, err := r.awaitOther(ctx, k, ver)
	if err != nil {
		return until, true, fmt.Errorf("waiting for another replica's refresh: %w: %w", errOtherReplica, err)
	}
	*held = claimHeld{ver, got}
	return until, true, nil
}

// spend spends refreshToken at k's provider p: only while the claim holds
// (until), and for RefreshTimeout at most when the provider does not
// answer. Every attempt is reported to OnAttempt.
func (r *Refresher) spend(ctx context.Context, p TokenRefresher, k credKey, refreshToken string, until time.Time) (Token, error) {
	started := time.Now()
	pctx, cancel := context.WithDeadline(ctx, earliest(until, started.Add(r.timeout)))
	tok, err := p.Refresh(pctx, refreshToken)
	if err != nil && pctx.Err() != nil && ctx.Err() == nil {
		err = fmt.Errorf("%w after %s: %w", ErrRefreshTimeout, r.timeout, err)
	}
	cancel()
	if err == nil && tok.AccessToken == "" {
		err = errors.New("the token endpoint answered without an access token")
	}
	if r.onAttempt != nil {
		r.onAttempt(k.tenant, k.integration, time.Since(started), err)
	}
	return tok, err
}

// wanted reports whether a asks for cred to be refreshed at now.
func (r *Refresher) wanted(a attempt, cred vault.Credential, now time.Time) bool {
	switch {
	case a.scheduled:
		// Still the credential the entry was computed from; otherwise
		// it was refreshed or replaced since, and is scheduled afresh.
		return cred.ExpiresAt.Equal(a.expiry)
	case a.stale != "":
		return cred.AccessToken == a.stale
	default:
		lead, _ := r.leadTime(cred)
		return !cred.ExpiresAt.IsZero() && !now.Before(cred.ExpiresAt.Add(-lead))
	}
}

// cooling returns the last failure if cred is within its backoff, keeping
// a scheduled attempt scheduled for the backoff's end. Failures of an
// earlier credential (the tenant linked again) are dropped.
//
// A caller whose token is spent (the one it saw fail, or expired) may
// probe instead, once per probeEvery: probe is true, and the attempt goes
// on. One probe at a time: concurrent callers share the attempt (join).
func (r *Refresher) cooling(a attempt, cred vault.Credential) (probe bool, err error) {
	now := time.Now()
	r.mu.Lock()
	f := r.failures[a.key]
	if f != nil && !f.about(cred) {
		delete(r.failures, a.key)
		f = nil
	}
	if f == nil || !now.Before(f.next) {
		r.mu.Unlock()
		return false, nil
	}
	spent := a.stale != "" || !cred.ExpiresAt.IsZero() && !now.Before(cred.ExpiresAt)
	if !a.scheduled && spent && (f.probed.IsZero() || !now.Before(f.probed.Add(r.probeEvery))) && !now.Before(f.claimUntil) {
		f.probed = now
		r.mu.Unlock()
		return true, nil
	}
	next, err, count := f.next, f.err, f.count
	first := false
	if _, ok := r.sched.index[a.key]; ok && a.scheduled {
		first = r.sched.set(a.key, next, a.expiry)
	}
	r.mu.Unlock()
	if first {
		r.poke()
	}
	return false, fmt.Errorf("refreshing %s/%s: not retried before %s after %d failures: %w",
		a.key.tenant, a.key.integration, rfc3339(next), count, err)
}

// save stores the refreshed tokens: one check-and-set Put of the new access
// and refresh token together. A lost race is merged or yielded; a failing
// store is retried with the same new tokens, and if it keeps failing they
// are kept to be stored by the next attempt: the spent refresh token is
// never sent again.
func (r *Refresher) save(ctx, parent context.Context, a attempt, cred vault.Credential, ver int64, tok Token, until time.Time) (vault.Credential, error) {
	k := a.key
	spent := cred.RefreshToken
	// Storing goes on past the Run's end and the flight's bound: the
	// provider has spent the old refresh token.
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), r.leaseTTL)
	defer cancel()
	next := tok.Credential(cred, time.Now())
	delay := storeRetryMin
	var err error
	n := 0
	for n = 1; ; n++ {
		if _, err = r.store.Put(sctx, k.tenant, k.integration, next, ver); err == nil {
			return r.succeeded(k, next), nil
		}
		var conflict *vault.ConflictError
		if errors.As(err, &conflict) {
			stored, v, gerr := r.store.Get(sctx, k.tenant, k.integration)
			switch {
			case vault.IsNotFound(gerr):
				// Deleted while we refreshed: the tenant unlinked it.
				r.Forget(k.tenant, k.integration)
				return vault.Credential{}, fmt.Errorf("refreshing %s/%s: %w", k.tenant, k.integration, gerr)
			case gerr != nil:
				err = gerr
			case stored.AccessToken == next.AccessToken:
				// An earlier Put that reported failure went through.
				return r.succeeded(k, stored), nil
			case stored.RefreshToken == spent:
				// Another field changed meanwhile: put our tokens on it.
				next, ver = tok.Credential(stored, time.Now()), v
				if n < storeAttempts {
					continue
				}
			default:
				// Replaced by another writer (a new link): theirs wins.
				r.clearFailures(k)
				r.log.Info("token_refresh_superseded", "tenantId", k.tenant, "integration", k.integration)
				if stored.Status == vault.StatusNeedsReauth {
					r.unschedule(k)
					return vault.Credential{}, fmt.Errorf("refreshing %s/%s: %w", k.tenant, k.integration, ErrNeedsReauth)
				}
				return r.adopt(k, stored)
			}
		}
		if n >= storeAttempts || sleep(sctx, delay) != nil {
			break
		}
		delay *= 2
	}

	r.mu.Lock()
	f := r.failureLocked(k, cred)
	f.pending = &pendingPut{tok: tok, spent: spent}
	r.mu.Unlock()
	msg := redact(err.Error(), cred.AccessToken, spent, tok.AccessToken, tok.RefreshToken)
	r.log.Error("Failed to store refreshed token: keeping the new tokens to store them at the next attempt",
		"tenantId", k.tenant, "integration", k.integration, "error", msg, "attempts", n)
	return r.fail(ctx, parent, a, cred, ver, fmt.Errorf("storing the refreshed credential: %w", err), false, until, tok.AccessToken, tok.RefreshToken)
}

// succeeded finishes a refresh this process stored.
func (r *Refresher) succeeded(k credKey, cred vault.Credential) vault.Credential {
	r.clearFailures(k)
	r.schedule(k, cred, true)
	r.log.Info("token_refreshed", "tenantId", k.tenant, "integration", k.integration, "expiresAt", rfc3339(cred.ExpiresAt))
	if r.onRefreshed != nil {
		r.onRefreshed(k.tenant, k.integration, cloneCredential(cred))
	}
	return cred
}

// adopt takes up a credential another replica (or writer) stored.
func (r *Refresher) adopt(k credKey, cred vault.Credential) (vault.Credential, error) {
	r.clearFailures(k)
	r.schedule(k, cred, true)
	r.log.Debug("token_refresh_adopted", "tenantId", k.tenant, "integration", k.integration, "expiresAt", rfc3339(cred.ExpiresAt))
	if r.onRefreshed != nil {
		r.onRefreshed(k.tenant, k.integration, cloneCredential(cred))
	}
	return cred, nil
}

// fail records a failed attempt on cred (read at version ver; ver 0: it
// could not be read), logs it and schedules the retry after the backoff,
// or, when the provider's refusal is final, marks the credential
// needs_reauth. grant says the provider failed (MaxFailures counts those).
// secrets are tokens the error might quote, besides cred's.
func (r *Refresher) fail(ctx, parent context.Context, a attempt, cred vault.Credential, ver int64, cause error, grant bool, claimUntil time.Time, secrets ...string) (vault.Credential, error) {
	k := a.key
	if parent.Err() != nil {
		// Run is ending: not the credential's failure. Retry on the next Run.
		if a.scheduled {
			r.requeue(k, time.Now())
		}
		return vault.Credential{}, parent.Err()
	}
	msg := fmt.Sprintf("refreshing %s/%s: %s", k.tenant, k.integration,
		redact(cause.Error(), append(secrets, cred.AccessToken, cred.RefreshToken)...))
	err := &RefreshError{Reason: reasonOf(cause, grant), msg: msg, cause: cause}

	now := time.Now()
	r.mu.Lock()
	var f *failure
	if ver == 0 {
		if f = r.failures[k]; f == nil {
			f = &failure{}
			r.failures[k] = f
		}
	} else {
		f = r.failureLocked(k, cred)
	}
	probe := a.probe && f.count > 0
	if !probe {
		f.count++
		if grant {
			f.grant++
		}
		f.next = now.Add(r.backoff(f.count))
	}
	// A probe that failed is no new failure: a storm of calls during an
	// outage must not count the credential to needs_reauth, nor push the
	// scheduled retry back.
	f.lastErr, f.err = msg, err
	f.probed = now // an attempt just failed: no probe for probeEvery
	// Never before our claim ends, or our next attempt would wait on it.
	f.next = latest(f.next, claimUntil)
	f.claimUntil = claimUntil
	final := grant && (IsPermanent(cause) || !probe && f.grant >= r.maxFailures)
	count, next := f.count, f.next

	expiry, retry, first := cred.ExpiresAt, false, false
	switch e := r.sched.index[k]; {
	case final:
		r.sched.remove(k)
	case ver != 0 && (cred.RefreshToken != "" || f.pending != nil):
		retry = true
	case e != nil: // unread: keep what the schedule knew
		expiry, retry = e.expiry, true
	case a.scheduled:
		expiry, retry = a.expiry, true
	}
	if retry {
		first = r.sched.set(k, next, expiry)
	}
	r.mu.Unlock()
	if first {
		r.poke()
	}
	if retry && !probe {
		r.logScheduled(k, expiry, next)
	}
	nextAttempt := ""
	if !final {
		nextAttempt = rfc3339(next)
	}
	r.log.Error("Failed to refresh token", "tenantId", k.tenant, "integration", k.integration,
		"error", msg, "failures", count, "nextAttempt", nextAttempt, "probe", probe)
	if !final {
		return vault.Credential{}, err
	}
	return r.giveUp(ctx, k, cred, ver, err)
}

// giveUp marks k's credential needs_reauth in the store (a check-and-set
// Put of the same credential) after its refresh failed for good.
func (r *Refresher) giveUp(ctx context.Context, k credKey, cred vault.Credential, ver int64, cause error) (vault.Credential, error) {
	reauth := fmt.Errorf("%w: %w", ErrNeedsReauth, cause)
	mctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), r.leaseTTL)
	defer cancel()
	for range storeAttempts {
		cred.Status = vault.StatusNeedsReauth
		_, err := r.store.Put(mctx, k.tenant, k.integration, cred, ver)
		var conflict *vault.ConflictError
		if errors.As(err, &conflict) {
			stored, v, gerr := r.store.Get(mctx, k.tenant, k.integration)
			switch {
			case gerr != nil:
				err = gerr
			case stored.Status == vault.StatusNeedsReauth:
				return vault.Credential{}, reauth
			case stored.RefreshToken != cred.RefreshToken:
				// Linked again meanwhile: the new credential is good.
				return r.adopt(k, stored)
			default:
				cred, ver = stored, v
				continue
			}
		}
		if err != nil {
			r.log.Error("Failed to mark credential needs_reauth", "tenantId", k.tenant, "integration", k.integration,
				"error", redact(err.Error(), cred.AccessToken, cred.RefreshToken))
			break
		}
		r.log.Warn("credential_needs_reauth", "tenantId", k.tenant, "integration", k.integration)
		break
	}
	return vault.Credential{}, reauth
}

// failureLocked returns k's failure record for cred, starting a new one
// if there is none or it was about an earlier credential.
func (r *Refresher) failureLocked(k credKey, cred vault.Credential) *failure {
	f := r.failures[k]
	if f == nil || !f.about(cred) {
		f = &failure{updatedAt: cred.UpdatedAt}
		r.failures[k] = f
	}
	f.updatedAt = cred.UpdatedAt
	return f
}

// pendingFor returns tokens refreshed for cred and not yet stored, if
// cred is still the credential they replace; others are dropped.
func (r *Refresher) pendingFor(k credKey, cred vault.Credential) *pendingPut {
	r.mu.Lock()
	defer r.mu.Unlock()
	f := r.failures[k]
	if f == nil || f.pending == nil {
		return nil
	}
	if f.pending.spent != cred.RefreshToken {
		f.pending = nil
		return nil
	}
	p := *f.pending
	return &p
}

func (r *Refresher) clearFailures(k credKey) {
	r.mu.Lock()
	delete(r.failures, k)
	r.mu.Unlock()
}

func (r *Refresher) unschedule(k credKey) {
	r.mu.Lock()
	r.sched.remove(k)
	r.mu.Unlock()
}

// backoff is the wait after the n-th consecutive failure.
func (r *Refresher) backoff(n int) time.Duration {
	d := r.minBackoff
	for i := 1; i < n && d < r.maxBackoff; i++ {
		d *= 2
	}
	return min(d, r.maxBackoff)
}

// redact cuts the given secrets out of msg.
func redact(msg string, secrets ...string) string {
	for _, s := range secrets {
		if s != "" {
			msg = strings.ReplaceAll(msg, s, "[redacted]")
		}
	}
	return msg
}

// cloneCredential copies cred's slices and maps, so callers sharing one
// refresh do not share them.
func cloneCredential(c vault.Credential) vault.Credential {
	c.Scopes = slices.Clone(c.Scopes)
	c.Extra = maps.Clone(c.Extra)
	return c
}

// sleep waits d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

func earliest(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

func latest(a, b time.Time) time.Time {
	if a.Before(b) {
		return b
	}
	return a
}

// rfc3339 formats t for the logs; "" for none.
func rfc3339(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
}
