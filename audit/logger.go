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
//
// # Integrity
//
// A Logger opened with [Options.Chain] links every record to the one
// before it and signs checkpoints of the chain ([Options.SigningKey]);
// [Verify] finds any record changed, removed, inserted or moved (chain.go).
package audit

import (
	"context"
	"crypto/ed25519"
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

// Options are how OpenWith writes the trail.
type Options struct {
	// Chain links each record to the one before it (chain.go).
	Chain bool
	// SigningKey, with Chain, signs a checkpoint every CheckpointEvery
	// records (DefaultCheckpointEvery when 0), at least every
	// CheckpointInterval while records come (DefaultCheckpointInterval),
	// and at Close.
	SigningKey         ed25519.PrivateKey
	CheckpointEvery    int
	CheckpointInterval time.Duration
	// FsyncWindow, for a file: 0 fsyncs every record before Record
	// returns; a positive window writes the record at once and fsyncs it
	// within the window, together with the others written meanwhile.
	FsyncWindow time.Duration
}

// Open returns a Logger writing JSON lines to dest, unchained (OpenWith).
func Open(dest string) (*Logger, error) { return OpenWith(dest, Options{}) }

// OpenWith returns a Logger writing JSON lines to dest as o says:
//
//   - "" or "stdout": standard output (not fsync'd);
//   - "stderr": standard error (not fsync'd);
//   - "syslog", "syslog+udp://host:port", "syslog+tcp://host:port": the
//     local syslog daemon or a remote one (syslog.go), one message a record;
//   - anything else: a file path, opened append-only and created with mode
//     0600; every record is fsync'd (o.FsyncWindow). A directory is
//     refused. A path naming a device or a pipe is written but not fsync'd.
//
// Close the Logger to close the file; closing a Logger on stdout or stderr
// leaves them open.
func OpenWith(dest string, o Options) (*Logger, error) {
	var s *sink
	switch {
	case dest == "" || dest == "stdout":
		s = &sink{w: os.Stdout}
	case dest == "stderr":
		s = &sink{w: os.Stderr}
	case isSyslog(dest):
		w, err := dialSyslog(dest)
		if err != nil {
			return nil, err
		}
		s = &sink{w: w, closer: w}
	default:
		var err error
		if s, err = openFile(dest, o); err != nil {
			return nil, err
		}
	}
	if o.Chain {
		s.chain = newChain(o)
		if s.file != nil {
			size, err := s.chain.resume(s.file)
			if err != nil {
				s.closer.Close()
				return nil, fmt.Errorf("opening audit log %s: reading its last record: %w", dest, err)
			}
			s.size = size
		}
	}
	return newLogger(s), nil
}

func openFile(dest string, o Options) (*sink, error) {
	if fi, err := os.Stat(dest); err == nil && fi.IsDir() {
		return nil, fmt.Errorf("opening audit log %s: is a directory", dest)
	}
	flags := os.O_APPEND | os.O_CREATE | os.O_WRONLY
	if o.Chain {
		flags = os.O_APPEND | os.O_CREATE | os.O_RDWR // the chain reads its last record
	}
	f, err := os.OpenFile(dest, flags, 0o600)
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
		s.file = f
		s.window = o.FsyncWindow
	}
	return s, nil
}

// New returns a Logger writing JSON lines to w, one Write call per record.
// It does not sync or close w.
func New(w io.Writer) *Logger {
	return newLogger(&sink{w: w})
}

// NewWith returns a Logger writing JSON lines to w, chained when o says
// so (a stream: the chain begins anew with each Logger).
func NewWith(w io.Writer, o Options) *Logger {
	s := &sink{w: w}
	if o.Chain {
		s.chain = newChain(o)
	}
	return newLogger(s)
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
// their own write. With a window, the fsync comes within it instead.
type sink struct {
	w      io.Writer
	sync   func() error // nil: no fsync
	closer io.Closer    // nil: not ours to close
	window time.Duration

	// chain, when set, links every record (chain.go); over a file (file
	// set), size is the file's size after this sink's last write, which
	// tells when another process has appended since.
	chain *chain
	file  *os.File
	size  int64

	mu      sync.Mutex
	err     error  // first write or sync error; guarded by mu
	closed  bool   // guarded by mu
	written uint64 // records written; guarded by mu
	pending bool   // an fsync is scheduled (window); guarded by mu

	syncMu sync.Mutex // one fsync at a time
	synced uint64     // records covered by a completed fsync; guarded by syncMu
}

// Write writes p, one complete record line, unchained.
func (s *sink) Write(p []byte) (int, error) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return 0, os.ErrClosed
	}
	n, err := s.writeLocked(p)
	seq := s.written
	s.mu.Unlock()
	if err == nil {
		err = s.durable(seq)
	}
	return n, err
}

// put writes one record, body being its JSON object without the closing
// brace: closed as it is, or linked to the chain (and followed by a
// checkpoint when one is due).
func (s *sink) put(body []byte) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	var err error
	if s.chain == nil {
		_, err = s.writeLocked(append(body, "}\n"...))
	} else {
		err = s.linkLocked(body)
	}
	seq := s.written
	s.mu.Unlock()
	if err == nil {
		_ = s.durable(seq)
	}
}

// linkLocked writes body linked to the chain, and a checkpoint when one is
// due.
func (s *sink) linkLocked(body []byte) error {
	return s.chainLocked(func() error {
		if _, err := s.writeLocked(s.chain.link(body)); err != nil {
			return err
		}
		if now := time.Now(); s.chain.checkpointDue(now) {
			_, err := s.writeLocked(s.chain.checkpoint(now))
			return err
		}
		return nil
	})
}

// chainLocked runs write, which extends the chain. Over a file, under an
// exclusive lock of it: another process's records appended since this
// sink's last write are linked to first.
func (s *sink) chainLocked(write func() error) error {
	if s.file != nil {
		lockFile(s.file)
		defer unlockFile(s.file)
		if size, err := fileSize(s.file); err == nil && size != s.size {
			if _, err := s.chain.resume(s.file); err != nil {
				s.keep(err)
			}
			s.size = size
		}
	}
	return write()
}

func (s *sink) writeLocked(p []byte) (int, error) {
	n, err := s.w.Write(p)
	s.written++
	s.size += int64(n)
	s.keep(err)
	return n, err
}

// keep records err as the sink's first error; under mu.
func (s *sink) keep(err error) {
	if err != nil && s.err == nil {
		s.err = err
	}
}

// durable returns once record seq is on disk (a file without a window),
// or once its fsync is scheduled (with one).
func (s *sink) durable(seq uint64) error {
	switch {
	case s.sync == nil:
		return nil
	case s.window <= 0:
		return s.syncThrough(seq)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.pending && !s.closed {
		s.pending = true
		time.AfterFunc(s.window, func() {
			s.mu.Lock()
			s.pending = false
			target := s.written
			s.mu.Unlock()
			_ = s.syncThrough(target)
		})
	}
	return nil
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
	if s.chain != nil && s.chain.key != nil && s.chain.since > 0 {
		// The trail ends signed: a cut after a clean close is seen.
		_ = s.chainLocked(func() error {
			_, err := s.writeLocked(s.chain.checkpoint(time.Now()))
			return err
		})
	}
	s.closed = true
	if s.sync != nil && s.err == nil {
		s.keep(s.sync())
	}
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
