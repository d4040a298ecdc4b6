package hashicorp

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"syscall"
	"time"

	"github.com/sony/gobreaker/v2"
)

// When Vault stops answering, a call must learn it within the store's
// Timeout, and once a few requests have timed out, at once: waiting the
// bound on every call would turn an outage into a queue. The store's HTTP
// transport therefore carries a circuit breaker. After breakerTrips
// consecutive requests that got no answer within the bound it opens, and
// every request fails at once with ErrUnreachable; after
// breakerOpenFor one request is let through, and an answer closes the
// breaker again. So service resumes within breakerOpenFor plus one Timeout
// of Vault's return.
//
// Only a request that waited counts against Vault. One that failed at once
// (a refused or reset connection) costs nothing to repeat, so it neither
// trips the breaker nor holds it open: when Vault comes back after
// refusing, the next call finds it. Any answer, 503 included, is Vault
// answering.
const (
	breakerTrips   = 2
	breakerOpenFor = 500 * time.Millisecond
)

// ErrUnreachable is wrapped by the *vault.VaultError of a request that got
// no answer from Vault: its connection was refused or broken, the answer
// did not come within the store's Timeout, or the store did not send it
// because the requests before it went unanswered.
var ErrUnreachable = errors.New("Vault is unreachable")

// breakerTransport is the Vault client's HTTP transport: next behind a
// circuit breaker.
type breakerTransport struct {
	next    http.RoundTripper
	timeout time.Duration // the store's bound on a request
	cb      *gobreaker.TwoStepCircuitBreaker[struct{}]
}

// errVaultSlow is what a request that waited the whole bound counts as.
var errVaultSlow = errors.New("no answer within the bound")

func newBreakerTransport(next http.RoundTripper, timeout time.Duration, log *slog.Logger) *breakerTransport {
	return &breakerTransport{next: next, timeout: timeout, cb: gobreaker.NewTwoStepCircuitBreaker[struct{}](gobreaker.Settings{
		Name:        "vault",
		MaxRequests: 1,
		Timeout:     breakerOpenFor,
		ReadyToTrip: func(c gobreaker.Counts) bool { return c.ConsecutiveFailures >= breakerTrips },
		IsExcluded:  func(err error) bool { return err != errVaultSlow },
		OnStateChange: func(_ string, from, to gobreaker.State) {
			switch to {
			case gobreaker.StateOpen:
				if from == gobreaker.StateClosed {
					log.Warn("vault_unreachable", "failing_fast_for", breakerOpenFor.String())
				}
			case gobreaker.StateClosed:
				log.Info("vault_reachable")
			}
		},
	})}
}

func (t *breakerTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	done, err := t.cb.Allow()
	if err != nil {
		if req.Body != nil {
			req.Body.Close() // a RoundTripper closes the body, even on error
		}
		return nil, ErrUnreachable
	}
	start := time.Now()
	resp, err := t.next.RoundTrip(req)
	switch {
	case err == nil:
		done(nil)
	case timedOut(err) && time.Since(start) >= t.timeout*9/10:
		done(errVaultSlow)
	default:
		// Failed at once, or timed out on a deadline of the caller's
		// shorter than the bound: nothing learnt about Vault.
		done(err)
	}
	return resp, err
}

// timedOut reports whether a request failed for want of an answer in time
// (not because its caller gave up, which says nothing about Vault).
func timedOut(err error) bool {
	var ne net.Error
	return errors.Is(err, context.DeadlineExceeded) || errors.As(err, &ne) && ne.Timeout()
}

// unanswered describes, for a client, a request to Vault that got no
// answer: what happened, not where (the address and the path go to the
// operator's log). It wraps only ErrUnreachable, never the context's
// error, so a timeout of Vault is not taken for the caller giving up.
func unanswered(err error, timeout time.Duration) error {
	switch {
	case errors.Is(err, ErrUnreachable):
		return fmt.Errorf("%w (failing fast until it answers again)", ErrUnreachable)
	case timedOut(err):
		return fmt.Errorf("%w: no answer within %s", ErrUnreachable, timeout)
	case errors.Is(err, syscall.ECONNREFUSED):
		return fmt.Errorf("%w: connection refused", ErrUnreachable)
	}
	return fmt.Errorf("%w: connection failed", ErrUnreachable)
}

// failureLog logs requests to Vault that got no answer, at most one a
// second with the count of those left out: a refused Vault fails every
// call at once (the breaker does not hold it open), and a line per call
// would flood the log at thousands a second.
type failureLog struct {
	mu      sync.Mutex
	last    time.Time // guarded by mu
	skipped int       // guarded by mu
}

func (h *Store) logFailure(op string, err error) {
	f := &h.failures
	f.mu.Lock()
	now := time.Now()
	if now.Sub(f.last) < time.Second {
		f.skipped++
		f.mu.Unlock()
		return
	}
	skipped := f.skipped
	f.last, f.skipped = now, 0
	f.mu.Unlock()
	h.log.Warn("vault_request_failed", "operation", op, "error", err.Error(), "not_logged_since", skipped)
}
