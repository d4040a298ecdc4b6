package tools

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"
)

// A tenant's stdio upstream processes on this replica may be bounded
// (limits.Limits.StdioProcesses, which the server puts in the context of
// Pool.Conn): one more is started past the bound only once the tenant's
// least recently used idle one is closed.

type stdioLimitKey struct{}

// stdioLimit is a bound on a tenant's stdio processes, and how long a
// start waits for one to fall idle.
type stdioLimit struct {
	most int
	wait time.Duration
}

// WithStdioLimit bounds, for the calls of Conn with ctx, the stdio
// upstream processes the tenant has running (n <= 0: no bound): to start
// one more past n, the tenant's least recently used idle ones are closed,
// and with none idle within wait Conn fails with a *StdioLimitError.
func WithStdioLimit(ctx context.Context, n int, wait time.Duration) context.Context {
	if n <= 0 {
		return ctx
	}
	return context.WithValue(ctx, stdioLimitKey{}, stdioLimit{n, wait})
}

// StdioLimitError is a stdio upstream not started: the tenant has its
// most running, each with a call in flight (or starting).
type StdioLimitError struct{ Max int }

func (e *StdioLimitError) Error() string {
	return fmt.Sprintf("the tenant's limit of %d stdio upstream processes is reached, each busy", e.Max)
}

// stdioPoll is how often a start waiting for one of the tenant's stdio
// processes to fall idle looks: a rare path (every process of the tenant
// busy), not worth a wake-up of its own. A connection used within
// stdioGrace is not closed to make room.
const (
	stdioPoll  = 20 * time.Millisecond
	stdioGrace = 100 * time.Millisecond
)

// entryWithin is entry, waiting up to the limit's wait while the tenant
// has its most stdio processes running and none idle (one starting, say,
// while the tenant's catalogue is listed).
func (p *Pool) entryWithin(ctx context.Context, key poolKey, l *launch, in Integration, vars map[string]string, lim stdioLimit) (*entry, error) {
	deadline := time.Now().Add(lim.wait)
	for {
		e, err := p.entry(key, l, in, vars, lim.most)
		if _, full := errors.AsType[*StdioLimitError](err); !full || time.Now().After(deadline) {
			return e, err
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(stdioPoll):
		}
	}
}

// roomLocked makes room for one more stdio process of tenant within most:
// while it has most or more, the least recently used idle one is closed.
// A process starting, or with a call in flight, stays.
func (p *Pool) roomLocked(tenant string, most int) error {
	var mine []*entry // the tenant's stdio entries, most recently used first
	for el := p.lru.Front(); el != nil; el = el.Next() {
		if e := el.Value.(*entry); e.key.tenant == tenant && e.in.Upstream.Command != "" {
			mine = append(mine, e)
		}
	}
	for i := len(mine) - 1; i >= 0 && len(mine) >= most; i-- {
		e := mine[i]
		if !e.settled() {
			continue
		}
		if e.conn != nil {
			// Just handed out by Conn, a connection is not busy yet: its
			// call has not begun.
			if busy, since := e.conn.idle(); busy || time.Since(since) < stdioGrace {
				continue
			}
		}
		p.opts.Logger.Info("upstream_evicted", "tenantId", tenant, "integration", e.key.integration, "reason", "stdio_processes")
		p.removeLocked(e)
		mine = slices.Delete(mine, i, i+1)
	}
	if len(mine) >= most {
		return &StdioLimitError{Max: most}
	}
	return nil
}
