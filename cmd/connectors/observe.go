package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"path/filepath"
	"time"

	"go.opentelemetry.io/otel/attribute"

	"github.com/connectors-gateway/connectors/audit"
	"github.com/connectors-gateway/connectors/metrics"
	"github.com/connectors-gateway/connectors/telemetry"
	"github.com/connectors-gateway/connectors/vault"
)

// OperatorAuditFile is where, in the data dir, operator commands record
// their audit trail when CONNECTORS_AUDIT_LOG is not set.
const OperatorAuditFile = "operator-audit.log"

// openAudit opens the audit trail: CONNECTORS_AUDIT_LOG "" or "stderr"
// (beside the log), "stdout", or a file (append-only, fsync'd per record).
// An operator command (m.operator) whose trail is not configured records
// to OperatorAuditFile in the data dir (with Vault: in the operator's state
// dir, stateDir), not on the terminal: its output is for the person at
// it, and a trail on the terminal is no trail. It records where
// CONNECTORS_AUDIT_LOG says, "stderr" and "stdout" included.
func (m *Main) openAudit(cfg Config) (*audit.Logger, error) {
	if m.audit != nil {
		return m.audit, nil
	}
	opts, err := m.auditOptions(cfg) // auditcmd.go
	if err != nil {
		return nil, err
	}
	var trail *audit.Logger
	switch cfg.AuditLog {
	case "":
		dir := cfg.DataDir
		if m.operator && cfg.VaultAddr != "" {
			// With Vault there is no data dir of the gateway's: the
			// operator's own state dir (stderr when it has none).
			dir = m.stateDir()
		}
		if !m.operator || dir == "" {
			trail = audit.NewWith(m.Stderr, opts)
			break
		}
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, fmt.Errorf("the operator audit trail: %w", err)
		}
		if trail, err = audit.OpenWith(filepath.Join(dir, OperatorAuditFile), opts); err != nil {
			return nil, err
		}
	case "stderr":
		trail = audit.NewWith(m.Stderr, opts)
	case "stdout":
		trail = audit.NewWith(m.Stdout, opts)
	default:
		if trail, err = audit.OpenWith(cfg.AuditLog, opts); err != nil {
			return nil, fmt.Errorf("CONNECTORS_AUDIT_LOG: %w", err)
		}
	}
	m.audit = trail
	m.onClose(trail.Close)
	return trail, nil
}

// stateDir is where an operator command on Vault keeps its audit trail:
// $XDG_STATE_HOME/connectors, else ~/.local/state/connectors; "" when the
// environment names neither.
func (m *Main) stateDir() string {
	if d := m.Getenv("XDG_STATE_HOME"); filepath.IsAbs(d) {
		return filepath.Join(d, "connectors")
	}
	if h := m.Getenv("HOME"); filepath.IsAbs(h) {
		return filepath.Join(h, ".local", "state", "connectors")
	}
	return ""
}

// storeObserver records every credential operation of the store in the
// audit trail, the metrics (latency and errors by operation) and the
// per-tenant usage. It is the backend's vault.Observer, so every backend
// reports the same operations, and nothing needs to wrap the store.
type storeObserver struct {
	trail   *audit.Logger
	metrics *metrics.Metrics // nil for operator commands
	usage   *metrics.Usage   // likewise
	backend string           // metrics.BackendEmbedded or metrics.BackendVault
}

// Observe implements vault.Observer. The operation names of the audit
// trail and of the metrics are vault's own.
func (o storeObserver) Observe(ctx context.Context, op vault.Op, tenant, integration string, d time.Duration, err error) {
	if telemetry.On() {
		telemetry.Record(ctx, "store "+string(op), time.Now().Add(-d), err, attribute.String("connectors.store", o.backend),
			attribute.String("connectors.tenant", tenant), attribute.String("connectors.integration", integration))
	}
	o.trail.Record(ctx, audit.Record{TenantID: tenant, Integration: integration, Operation: string(op), Duration: d, Success: err == nil, Err: err})
	failure := err
	if vault.IsNotFound(err) || errors.Is(err, vault.ErrClaimed) {
		failure = nil // an answer, not a store failure
	}
	o.metrics.Store(o.backend, string(op), d, failure)
	if op == vault.OpGet && err == nil {
		o.usage.CredentialAccess(tenant, integration)
	}
}

// claimSweeper is a store whose expired claims must be swept now and then
// (HashiCorp Vault's; the embedded store purges its own).
type claimSweeper interface {
	SweepClaims(context.Context) (int, error)
}

// sweepClaims removes expired claims (used OAuth states, refresh leases)
// from Vault every ten minutes; the embedded store purges its own.
func sweepClaims(ctx context.Context, s claimSweeper, log *slog.Logger) {
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
