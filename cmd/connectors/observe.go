package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"time"

	"github.com/connectors-gateway/connectors/audit"
	"github.com/connectors-gateway/connectors/metrics"
	"github.com/connectors-gateway/connectors/vault"
)

// openAudit opens the audit trail: CONNECTORS_AUDIT_LOG "" or "stderr"
// (beside the log), "stdout", or a file (append-only, fsync'd per record).
func (m *Main) openAudit(cfg Config) (*audit.Logger, error) {
	if m.audit != nil {
		return m.audit, nil
	}
	var trail *audit.Logger
	switch cfg.AuditLog {
	case "", "stderr":
		trail = audit.New(m.Stderr)
	case "stdout":
		trail = audit.New(m.Stdout)
	default:
		var err error
		if trail, err = audit.Open(cfg.AuditLog); err != nil {
			return nil, fmt.Errorf("CONNECTORS_AUDIT_LOG: %w", err)
		}
	}
	m.audit = trail
	m.onClose(trail.Close)
	return trail, nil
}

// observedStore records every credential operation in the audit trail, the
// metrics (latency and errors by operation) and the per-tenant usage.
type observedStore struct {
	store
	trail   *audit.Logger
	metrics *metrics.Metrics
	usage   *metrics.Usage
	backend string
}

// observe wraps st; metrics and usage may be nil (operator commands).
func observe(st store, trail *audit.Logger, m *metrics.Metrics, u *metrics.Usage, backend string) *observedStore {
	return &observedStore{store: st, trail: trail, metrics: m, usage: u, backend: backend}
}

// done records one operation.
func (s *observedStore) done(ctx context.Context, op, tenant, integration string, start time.Time, err error) {
	d := time.Since(start)
	s.trail.Record(ctx, audit.Record{TenantID: tenant, Integration: integration, Operation: op, Duration: d, Success: err == nil, Err: err})
	if vault.IsNotFound(err) || errors.Is(err, vault.ErrClaimed) {
		err = nil // an answer, not a store failure
	}
	s.metrics.Store(s.backend, op, d, err)
}

func (s *observedStore) Get(ctx context.Context, tenant, integration string) (vault.Credential, int64, error) {
	start := time.Now()
	cred, v, err := s.store.Get(ctx, tenant, integration)
	s.done(ctx, audit.OpGet, tenant, integration, start, err)
	if err == nil {
		s.usage.CredentialAccess(tenant, integration)
	}
	return cred, v, err
}

func (s *observedStore) Put(ctx context.Context, tenant, integration string, cred vault.Credential, version int64) (int64, error) {
	start := time.Now()
	v, err := s.store.Put(ctx, tenant, integration, cred, version)
	s.done(ctx, audit.OpPut, tenant, integration, start, err)
	return v, err
}

func (s *observedStore) Delete(ctx context.Context, tenant, integration string) error {
	start := time.Now()
	err := s.store.Delete(ctx, tenant, integration)
	s.done(ctx, audit.OpDelete, tenant, integration, start, err)
	return err
}

func (s *observedStore) RotateTenantKey(ctx context.Context, tenant string) error {
	start := time.Now()
	err := s.store.RotateTenantKey(ctx, tenant)
	s.done(ctx, audit.OpRotate, tenant, "", start, err)
	return err
}

func (s *observedStore) RetireOldKeyVersions(ctx context.Context, tenant string) error {
	start := time.Now()
	err := s.store.RetireOldKeyVersions(ctx, tenant)
	s.done(ctx, audit.OpRotate, tenant, "", start, err)
	return err
}

func (s *observedStore) OffboardTenant(ctx context.Context, tenant string) error {
	start := time.Now()
	err := s.store.OffboardTenant(ctx, tenant)
	s.done(ctx, audit.OpOffboard, tenant, "", start, err)
	return err
}

// sweepClaims removes expired claims (used OAuth states, refresh leases)
// from Vault every ten minutes; the embedded store purges its own.
func sweepClaims(ctx context.Context, s interface {
	SweepClaims(context.Context) (int, error)
}, log *slog.Logger) {
	t := time.NewTicker(10 * time.Minute)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			n, err := s.SweepClaims(ctx)
			if err != nil {
				log.Warn("claim_sweep_failed", "error", err)
				continue
			}
			log.Debug("claims_swept", "removed", n)
		}
	}
}

// servePprof serves net/http/pprof on addr until ctx ends: a listener of
// its own, never the gateway's, so profiles are never reachable through
// the gateway's routes.
func servePprof(ctx context.Context, addr string, log *slog.Logger) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("CONNECTORS_PPROF_ADDR: %w", err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	go func() { <-ctx.Done(); _ = srv.Close() }()
	log.Info("pprof_listening", "addr", ln.Addr().String())
	return nil
}
