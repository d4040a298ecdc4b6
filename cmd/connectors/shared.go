package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/connectors-gateway/connectors/metrics"
	"github.com/connectors-gateway/connectors/oauth"
	"github.com/connectors-gateway/connectors/vault"
)

// Shared truth: what one replica learns of a credential's health, and the
// usage it counts, kept in the store's tenant records (vault.TenantRecords)
// so that every replica on the store, and this one after a restart,
// reports the same.
//
// Health: after each refresh attempt, and after a credential is linked,
// stored or revoked, a background writer (never a tool call) puts what the
// refresher now knows in the record "health/{integration}": at most one
// write per attempt, none while the credential is healthy and its record
// says so (or there is none). The routes report the local refresher's
// health unless the record is about the same credential (its UpdatedAt)
// and tells more (it is failing and counts more failures, or it is
// revoked); a record about an earlier credential is ignored.
//
// Usage: each replica counts in memory (metrics.Usage) and every
// UsageFlushInterval adds what it counted to the record "usage" of each
// tenant it counted for (check-and-set, retried on conflict), and its
// daily figures to the records "usage-daily/day-NN" (shareddaily.go), and
// once more at shutdown. A tenant's usage route answers the stored figures plus
// this replica's unflushed counts, so a call on another replica shows
// within one flush interval. Top-N ranks the tenants this replica knows
// (those it counted for), by their stored figures as of its last flush
// plus its unflushed counts: ranking every tenant of the store would take
// a read per tenant.

const (
	defaultUsageFlush = 10 * time.Second
	usageRecordName   = "usage"
	// flushAttempts bounds the check-and-set rounds of one tenant's flush.
	flushAttempts = 8
	// sharedTimeout bounds one record's read or read-modify-write.
	sharedTimeout = 5 * time.Second
	// settleWait bounds how long the health writer waits for the refresher
	// to record a failed attempt it was told of (it is told just before).
	settleWait = 2 * time.Second
)

// sharedUsage flushes this replica's usage counts to the store.
type sharedUsage struct {
	usage *metrics.Usage
	store vault.TenantRecords
	log   *slog.Logger
	every time.Duration

	stop context.CancelFunc
	done chan struct{}
}

// startSharedUsage starts flushing u to st every interval until close.
func startSharedUsage(u *metrics.Usage, st vault.TenantRecords, every time.Duration, log *slog.Logger) *sharedUsage {
	ctx, cancel := context.WithCancel(context.Background())
	s := &sharedUsage{usage: u, store: st, log: log, every: every, stop: cancel, done: make(chan struct{})}
	go s.run(ctx)
	return s
}

func (s *sharedUsage) run(ctx context.Context) {
	defer close(s.done)
	everyTick(ctx, s.every, func() { s.flush(ctx) })
}

// everyTick calls f every interval until ctx ends.
func everyTick(ctx context.Context, every time.Duration, f func()) {
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			f()
		}
	}
}

// close stops the flushes and flushes what is left, within ctx.
func (s *sharedUsage) close(ctx context.Context) {
	if s == nil {
		return
	}
	s.stop()
	<-s.done
	s.flush(ctx)
}

// flushWorkers bounds the tenants one flush writes at once.
const flushWorkers = 8

// flush adds every tenant's unflushed counts to its stored figures, and
// its unflushed daily figures to its daily records (shareddaily.go): only
// tenants counted for since the last flush (a read and a write each, and
// one of each per day counted, or more on conflict), flushWorkers at a
// time.
func (s *sharedUsage) flush(ctx context.Context) {
	deltas := usageDeltas(s.usage.Unflushed(), s.usage.UnflushedDaily())
	if len(deltas) == 0 {
		return
	}
	next := make(chan usageDelta)
	var failed atomic.Int64
	var wg sync.WaitGroup
	for range min(flushWorkers, len(deltas)) {
		wg.Go(func() {
			for d := range next {
				var err error
				if d.total != nil {
					err = s.flushTenant(ctx, *d.total)
				}
				if len(d.days) > 0 {
					err = errors.Join(err, s.flushDays(ctx, d.tenant, d.days))
				}
				if err != nil {
					failed.Add(1)
					s.log.Warn("usage_flush_failed", "tenantId", d.tenant, "error", err)
				}
			}
		})
	}
	for _, d := range deltas {
		if ctx.Err() != nil {
			break
		}
		next <- d
	}
	close(next)
	wg.Wait()
	s.log.Debug("usage_flushed", "tenants", len(deltas), "failed", failed.Load())
}

// flushTenant adds d to the tenant's stored figures with check-and-set,
// re-reading on conflict; what it could not add stays unflushed for the
// next flush.
func (s *sharedUsage) flushTenant(parent context.Context, d metrics.TenantUsage) error {
	ctx, cancel := context.WithTimeout(parent, sharedTimeout)
	defer cancel()
	var total metrics.TenantUsage
	err := s.checkAndSet(ctx, d.TenantID, usageRecordName, func() ([]byte, int64, error) {
		stored, version, err := s.read(ctx, d.TenantID)
		if err != nil {
			return nil, 0, err
		}
		total = metrics.Sum(stored, d)
		total.TenantID = d.TenantID
		rec, err := json.Marshal(total)
		return rec, version, err
	})
	if err != nil {
		return err
	}
	s.usage.Flushed(d, total)
	return nil
}

// checkAndSet writes the tenant's record name with check-and-set: next
// reads the record and returns what to write over the version it read
// (nil: nothing), and is called again when another replica wrote
// meanwhile, flushAttempts times at most.
func (s *sharedUsage) checkAndSet(ctx context.Context, tenant, name string, next func() ([]byte, int64, error)) error {
	return checkAndSet(ctx, s.store, tenant, name, next)
}

// checkAndSet is sharedUsage.checkAndSet on store.
func checkAndSet(ctx context.Context, store vault.TenantRecords, tenant, name string, next func() ([]byte, int64, error)) error {
	for range flushAttempts {
		rec, version, err := next()
		if err != nil || rec == nil {
			return err
		}
		_, err = store.PutTenantRecord(ctx, tenant, name, rec, version)
		if !errors.Is(err, vault.ErrRecordChanged) {
			return err
		}
		// another replica flushed meanwhile
	}
	return fmt.Errorf("record %s of %s: %w (%d attempts)", name, tenant, vault.ErrRecordChanged, flushAttempts)
}

// read returns the tenant's stored figures and the record's version; a
// record that does not parse is logged and read as none (the next flush
// replaces it).
func (s *sharedUsage) read(ctx context.Context, tenant string) (metrics.TenantUsage, int64, error) {
	rec, version, err := s.store.GetTenantRecord(ctx, tenant, usageRecordName)
	if err != nil || rec == nil {
		return metrics.TenantUsage{TenantID: tenant}, version, err
	}
	u, err := parseUsage(rec)
	if err != nil {
		s.log.Warn("shared_record_malformed", "tenantId", tenant, "record", usageRecordName, "error", err)
		return metrics.TenantUsage{TenantID: tenant}, version, nil
	}
	u.TenantID = tenant
	return u, version, nil
}

// parseUsage reads a usage record: counts may not be negative.
func parseUsage(rec []byte) (metrics.TenantUsage, error) {
	var u metrics.TenantUsage
	if err := json.Unmarshal(rec, &u); err != nil {
		return u, err
	}
	if u.Calls < 0 || u.CredentialAccesses < 0 || u.Refreshes < 0 || u.RefreshFailures < 0 || u.RefreshFailures > u.Refreshes {
		return u, errors.New("counts out of range")
	}
	return metrics.Sum(u, metrics.TenantUsage{}), nil // integrations checked, rate computed
}

// Tenant is the usage route's view: the tenant's stored figures plus this
// replica's unflushed counts; false when neither has any.
func (s *sharedUsage) Tenant(ctx context.Context, tenant string) (metrics.TenantUsage, bool, error) {
	ctx, cancel := context.WithTimeout(ctx, sharedTimeout)
	defer cancel()
	stored, version, err := s.read(ctx, tenant)
	if err != nil {
		return metrics.TenantUsage{}, false, err
	}
	if _, local := s.usage.Tenant(tenant); !local && version == 0 {
		return metrics.TenantUsage{}, false, nil
	}
	return s.usage.AddUnflushed(stored), true, nil
}

// healthRecord is the record "health/{integration}": a credential's health
// as a replica's refresher learned it, and which credential it is about.
type healthRecord struct {
	oauth.Health
	// UpdatedAt is the UpdatedAt of the credential it is about; zero for
	// a revoked (deleted) one.
	UpdatedAt time.Time `json:"credentialUpdatedAt,omitzero"`
}

// unhealthy reports whether state is news another replica must hear of.
func unhealthy(state string) bool {
	switch state {
	case oauth.HealthRefreshFailed, oauth.HealthNeedsReauth, oauth.HealthRevoked:
		return true
	}
	return false
}

// healthEvent is a credential whose health record may need writing.
type healthEvent struct {
	failed bool      // a refresh attempt failed (at): the credential must be read
	at     time.Time // when the writer was told
	cred   *vault.Credential
	// known says cred is the credential as stored now (nil: deleted), so
	// that the writer need not read it (a read is a credential access).
	known bool
}

// sharedHealth writes what the refresher learns to the health records,
// in the background, and merges them into the health the routes report.
type sharedHealth struct {
	refresher *oauth.Refresher
	store     vault.Backend
	log       *slog.Logger

	mu      sync.Mutex
	pending map[[2]string]healthEvent // tenant, integration
	wake    chan struct{}
}

// maxLastError bounds the last error a health record keeps, in bytes.
const maxLastError = 1024

// maxPendingHealth bounds the credentials waiting for their health write;
// past it, news is dropped (logged): the next attempt writes again.
const maxPendingHealth = 100_000

// newSharedHealth returns the writer and reader of the health records in
// st; its refresher is set once built (the refresher's hooks tell it).
func newSharedHealth(st vault.Backend, log *slog.Logger) *sharedHealth {
	return &sharedHealth{store: st, log: log, pending: map[[2]string]healthEvent{}, wake: make(chan struct{}, 1)}
}

// attempted is told of each refresh attempt (the refresher's OnAttempt,
// which runs before the refresher records the outcome).
func (s *sharedHealth) attempted(tenant, integration string, err error) {
	if err != nil {
		s.tell(tenant, integration, healthEvent{failed: true})
	}
}

// changed is told when a credential was refreshed, linked or stored
// (cred), or deleted (nil).
func (s *sharedHealth) changed(tenant, integration string, cred *vault.Credential) {
	if cred != nil {
		c := *cred
		cred = &c
	}
	s.tell(tenant, integration, healthEvent{cred: cred, known: cred == nil || !cred.UpdatedAt.IsZero()})
}

func (s *sharedHealth) tell(tenant, integration string, ev healthEvent) {
	if s == nil {
		return
	}
	ev.at = time.Now()
	k := [2]string{tenant, integration}
	s.mu.Lock()
	prev, queued := s.pending[k]
	if !queued && len(s.pending) >= maxPendingHealth {
		s.mu.Unlock()
		s.log.Warn("shared_health_dropped", "tenantId", tenant, "integration", integration)
		return
	}
	if queued && prev.failed {
		ev.failed, ev.known = true, false
	}
	s.pending[k] = ev
	s.mu.Unlock()
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// run writes the pending health records until ctx ends, one credential at
// a time (several attempts of one credential told meanwhile make one write).
func (s *sharedHealth) run(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.wake:
		}
		s.mu.Lock()
		batch := s.pending
		s.pending = map[[2]string]healthEvent{}
		s.mu.Unlock()
		for k, ev := range batch {
			if ctx.Err() != nil {
				return
			}
			wctx, cancel := context.WithTimeout(ctx, sharedTimeout+settleWait)
			if err := s.write(wctx, k[0], k[1], ev); err != nil {
				s.log.Warn("shared_health_write_failed", "tenantId", k[0], "integration", k[1], "error", err)
			}
			cancel()
		}
	}
}

// write puts the refresher's health of the credential in its record, when
// it is news: failing, revoked, or healthy over a record that says not.
func (s *sharedHealth) write(ctx context.Context, tenant, integration string, ev healthEvent) error {
	cred := ev.cred
	if !ev.known {
		switch c, _, err := s.store.Get(ctx, tenant, integration); {
		case vault.IsNotFound(err):
			cred = nil
		case err != nil:
			return err
		default:
			cred = &c
		}
	}
	local := s.settled(ctx, tenant, integration, cred, ev)
	want := healthRecord{Health: local}
	if len(want.LastError) > maxLastError {
		want.LastError = strings.ToValidUTF8(want.LastError[:maxLastError], "") + "…"
	}
	if cred != nil {
		want.UpdatedAt = cred.UpdatedAt
	}
	stored, version, err := s.read(ctx, tenant, integration)
	if err != nil {
		return err
	}
	for range 2 {
		if !unhealthy(want.State) {
			// Healthy here: clear a record about an earlier credential, or
			// a revoked one linked again; a record about this one is
			// another replica's news, a deleted one's stays revoked.
			if stored == nil || !unhealthy(stored.State) || cred == nil || stored.UpdatedAt.Equal(cred.UpdatedAt) {
				return nil
			}
			want.Health = oauth.Health{State: oauth.HealthActive}
		}
		if stored != nil && stored.UpdatedAt.Equal(want.UpdatedAt) && stored.State == oauth.HealthRefreshFailed && want.State == oauth.HealthRefreshFailed {
			if ev.failed {
				want.Failures = max(want.Failures, stored.Failures+1) // the attempts were made once across replicas
			} else if stored.Failures >= want.Failures {
				return nil // a fresher record than ours
			}
		}
		rec, err := json.Marshal(want)
		if err != nil {
			return err
		}
		_, err = s.store.PutTenantRecord(ctx, tenant, "health/"+integration, rec, version)
		if !errors.Is(err, vault.ErrRecordChanged) {
			return err
		}
		// Another replica wrote meanwhile: merge with what it wrote, once.
		if stored, version, err = s.read(ctx, tenant, integration); err != nil {
			return err
		}
		ev.failed = false
	}
	return nil
}

// settled is the refresher's health of cred once it has recorded the
// failed attempt ev tells of (it is told of the attempt just before it
// records it): a failure whose next attempt is after ev, or settleWait.
func (s *sharedHealth) settled(ctx context.Context, tenant, integration string, cred *vault.Credential, ev healthEvent) oauth.Health {
	h := s.refresher.Health(tenant, integration, cred)
	if !ev.failed || cred == nil {
		return h
	}
	deadline := time.Now().Add(settleWait)
	for !(unhealthy(h.State) && (h.NextAttempt.After(ev.at) || h.State != oauth.HealthRefreshFailed)) && time.Now().Before(deadline) {
		select {
		case <-ctx.Done():
			return h
		case <-time.After(20 * time.Millisecond):
		}
		h = s.refresher.Health(tenant, integration, cred)
	}
	return h
}

// read returns the credential's health record and its version; a record
// that does not parse is logged and read as none.
func (s *sharedHealth) read(ctx context.Context, tenant, integration string) (*healthRecord, int64, error) {
	rec, version, err := s.store.GetTenantRecord(ctx, tenant, "health/"+integration)
	if err != nil || rec == nil {
		return nil, version, err
	}
	var h healthRecord
	if err := json.Unmarshal(rec, &h); err != nil || h.Failures < 0 || len(h.LastError) > 2*maxLastError {
		s.log.Warn("shared_record_malformed", "tenantId", tenant, "record", "health/"+integration, "error", err)
		return nil, version, nil
	}
	return &h, version, nil
}

// Health is the credential routes' Health: the local refresher's, unless
// the stored record is about the same credential and tells more.
func (s *sharedHealth) Health(tenant, integration string, cred *vault.Credential) oauth.Health {
	local := s.refresher.Health(tenant, integration, cred)
	ctx, cancel := context.WithTimeout(context.Background(), sharedTimeout)
	defer cancel()
	stored, _, err := s.read(ctx, tenant, integration)
	if err != nil {
		s.log.Warn("shared_health_read_failed", "tenantId", tenant, "integration", integration, "error", err)
		return local
	}
	switch {
	case stored == nil || !unhealthy(stored.State):
		return local
	case cred == nil:
		if stored.State == oauth.HealthRevoked {
			return oauth.Health{State: oauth.HealthRevoked}
		}
		return local
	case stored.State == oauth.HealthRevoked || !stored.UpdatedAt.Equal(cred.UpdatedAt):
		return local // about an earlier credential
	case unhealthy(local.State) && local.Failures >= stored.Failures:
		return local
	case cred.Status == vault.StatusNeedsReauth:
		return oauth.Health{State: oauth.HealthNeedsReauth, Failures: stored.Failures, LastError: stored.LastError}
	}
	return stored.Health
}
