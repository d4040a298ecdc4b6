// Package audit writes the credential audit trail: one structured record for
// every read, write, delete, refresh and rotation of a tenant's credential,
// for every API key created or revoked over HTTP, and for every denied
// cross-tenant attempt.
//
// # Overview
//
// A record is one JSON line in the seed document's tenant_credential_access
// shape, as log/slog's JSON handler writes it:
//
//	{"time":"2025-11-12T10:55:00.123Z","level":"INFO","msg":"tenant_credential_access",
//	 "tenantId":"tenant-123","integration":"notion","operation":"get","duration":45,
//	 "success":true,"subject":"apikey:ci","requestId":"9f2c4e1a7b3d5e60"}
//
// duration is in milliseconds (a number, with microsecond resolution);
// requestId is present when the context carries one (see [WithRequestID]);
// error, a short single-line message, is present when the operation failed.
// A record never carries a credential: the only free text is the error's
// message, clipped and stripped of control characters.
//
// # Usage
//
//	trail, err := audit.Open(cfg.AuditLog) // "", "stdout", "stderr" or a file
//	...
//	done := trail.Time(ctx, audit.OpGet, tenant, integration)
//	cred, _, err := store.Get(ctx, tenant, integration)
//	done(err)
//
// A nil *Logger records nothing, so callers need no checks.
package audit

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"time"
)

// Operations named in records. Callers may use others; these are the ones
// the gateway emits.
const (
	OpGet          = "get"
	OpPut          = "put"
	OpDelete       = "delete"
	OpRefresh      = "refresh"
	OpRotate       = "rotate"
	OpOffboard     = "offboard"
	OpLink         = "link"
	OpRevoke       = "revoke"
	OpAccessDenied = "access_denied"
	// A tenant's tool calls refused for a rate limit or quota, recorded
	// once per window of the limit (reason: the limit's name).
	OpRateLimited = "rate_limited"
	// An API key created or revoked through the HTTP routes (the record
	// names it in apiKeyId; the key itself is never recorded).
	OpAPIKeyCreate = "apikey_create"
	OpAPIKeyRevoke = "apikey_revoke"
)

// Logger writes audit records. Its methods are safe for concurrent use. A nil
// *Logger is valid and records nothing.
type Logger struct {
	out *sink
}

// Open returns a Logger writing JSON lines to dest:
//
//   - "" or "stdout": standard output (not fsync'd);
//   - "stderr": standard error (not fsync'd);
//   - anything else: a file path, opened append-only and created with mode
//     0600; every record is fsync'd before Record returns. A directory is
//     refused. A path naming a device or a pipe is written but not fsync'd.
//
// Close the Logger to close the file; closing a Logger on stdout or stderr
// leaves them open.
func Open(dest string) (*Logger, error) {
	switch dest {
	case "", "stdout":
		return New(os.Stdout), nil
	case "stderr":
		return New(os.Stderr), nil
	}
	if fi, err := os.Stat(dest); err == nil && fi.IsDir() {
		return nil, fmt.Errorf("opening audit log %s: is a directory", dest)
	}
	f, err := os.OpenFile(dest, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o600)
	if err != nil {
		return nil, fmt.Errorf("opening audit log: %w", err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("opening audit log: %w", err)
	}
	if fi.IsDir() { // replaced by a directory between Stat and OpenFile
		f.Close()
		return nil, fmt.Errorf("opening audit log %s: is a directory", dest)
	}
	s := &sink{w: f, closer: f}
	if fi.Mode().IsRegular() {
		s.sync = f.Sync // fsync(2) fails with EINVAL on pipes and terminals
	}
	return newLogger(s), nil
}

// New returns a Logger writing JSON lines to w, one Write call per record.
// It does not sync or close w.
func New(w io.Writer) *Logger {
	return newLogger(&sink{w: w})
}

func newLogger(s *sink) *Logger {
	return &Logger{out: s}
}

// Close closes the file Open opened and reports the first error met writing
// or syncing a record, if any: Record itself cannot fail, so this is where a
// lost record surfaces. Records after Close are dropped.
func (l *Logger) Close() error {
	if l == nil {
		return nil
	}
	return l.out.close()
}

// sink serialises records onto the destination: one Write per record and,
// when the destination is a file, an fsync before Write returns, so a
// record is durable once recorded. Records written while an fsync runs
// share the next one (group commit): one disk flush per batch rather than
// per record, and writers never wait for each other's flush to start
// their own write.
type sink struct {
	w      io.Writer
	sync   func() error // nil: no fsync
	closer io.Closer    // nil: not ours to close

	mu      sync.Mutex
	err     error  // first write or sync error; guarded by mu
	closed  bool   // guarded by mu
	written uint64 // records written; guarded by mu

	syncMu sync.Mutex // one fsync at a time
	synced uint64     // records covered by a completed fsync; guarded by syncMu
}

func (s *sink) Write(p []byte) (int, error) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return 0, os.ErrClosed
	}
	n, err := s.w.Write(p)
	s.written++
	seq := s.written
	if err != nil && s.err == nil {
		s.err = err
	}
	s.mu.Unlock()
	if err == nil && s.sync != nil {
		err = s.syncThrough(seq)
	}
	return n, err
}

// syncThrough returns once record seq is on disk: covered by an fsync that
// started after it was written.
func (s *sink) syncThrough(seq uint64) error {
	s.syncMu.Lock()
	defer s.syncMu.Unlock()
	if s.synced >= seq {
		return nil // a flush that started after our write covered it
	}
	s.mu.Lock()
	target := s.written
	s.mu.Unlock()
	err := s.sync()
	if err != nil {
		s.mu.Lock()
		if s.err == nil {
			s.err = err
		}
		s.mu.Unlock()
		return err
	}
	s.synced = target
	return nil
}

func (s *sink) close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	var err error
	if s.err != nil {
		err = fmt.Errorf("writing audit log: %w", s.err)
	}
	if s.closer != nil {
		if cerr := s.closer.Close(); cerr != nil {
			err = errors.Join(err, fmt.Errorf("closing audit log: %w", cerr))
		}
	}
	return err
}

// Time starts timing an operation and returns the function that records it:
//
//	done := l.Time(ctx, audit.OpGet, tenant, integration)
//	defer func() { done(err) }()
//
// The record's success is err == nil. Time on a nil Logger returns a no-op.
func (l *Logger) Time(ctx context.Context, op, tenant, integration string) func(error) {
	if l == nil {
		return func(error) {}
	}
	start := time.Now()
	return func(err error) {
		l.Record(ctx, Record{
			TenantID:    tenant,
			Integration: integration,
			Operation:   op,
			Duration:    time.Since(start),
			Success:     err == nil,
			Err:         err,
		})
	}
}
