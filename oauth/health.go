package oauth

import (
	"time"

	"github.com/connectors-gateway/connectors/vault"
)

// Credential health states, as [Refresher.Health] reports them.
const (
	HealthActive        = "active"         // usable, not near expiry
	HealthExpiring      = "expiring"       // within Margin of expiry, or past it
	HealthRefreshFailed = "refresh_failed" // the last refresh failed; retrying with backoff
	HealthNeedsReauth   = "needs_reauth"   // the refresh token is dead: the tenant must link again
	HealthRevoked       = "revoked"        // revoked and deleted
)

// Health is a credential's health, for the admin API.
type Health struct {
	State       string    `json:"status"`              // HealthActive, ...
	Failures    int       `json:"failures,omitempty"`  // consecutive failed refreshes
	LastError   string    `json:"lastError,omitempty"` // never a token
	NextAttempt time.Time `json:"nextAttempt,omitzero"`
}

// failure is what the refresher remembers of a credential whose refresh
// has been failing. It exists only while it fails, so the memory of a
// healthy schedule stays one entry per credential.
type failure struct {
	count   int       // consecutive failed attempts, of any kind
	grant   int       // of which the provider refused or failed (MaxFailures counts these)
	lastErr string    // redacted
	err     error     // the last failure, returned during the cooldown
	next    time.Time // no attempt before this (the cooldown); zero once given up
	// probed is when a caller last probed the provider in the cooldown.
	probed time.Time
	// claimUntil is when this replica's claim on the failed attempt ends;
	// no probe before it, or it would wait on our own claim.
	claimUntil time.Time
	// updatedAt is the UpdatedAt of the credential these failures are
	// about; a credential with another one is a new link and starts clean.
	updatedAt time.Time
	// pending holds tokens the provider issued but the store would not
	// take: the next attempt stores them instead of spending the old
	// refresh token again.
	pending *pendingPut
}

// pendingPut is a refresh done at the provider and not yet stored.
type pendingPut struct {
	tok   Token
	spent string // the refresh token tok replaces
}

// about reports whether f is about cred (and not an earlier credential).
func (f *failure) about(cred vault.Credential) bool {
	return f.updatedAt.IsZero() || f.updatedAt.Equal(cred.UpdatedAt)
}

// Health reports the health of tenant's credential for integration; cred
// is the stored credential, nil when there is none. Without a credential
// the state is HealthRevoked if MarkRevoked was called for it, else empty.
func (r *Refresher) Health(tenant, integration string, cred *vault.Credential) Health {
	k := credKey{tenant, integration}
	r.mu.Lock()
	_, revoked := r.revoked[k]
	var f failure
	failing := false
	if p := r.failures[k]; p != nil && cred != nil && p.about(*cred) {
		f, failing = *p, true
	}
	r.mu.Unlock()

	switch {
	case cred == nil && revoked:
		return Health{State: HealthRevoked}
	case cred == nil:
		return Health{}
	case cred.Status == vault.StatusNeedsReauth:
		return Health{State: HealthNeedsReauth, Failures: f.count, LastError: f.lastErr}
	case failing && f.count > 0:
		return Health{State: HealthRefreshFailed, Failures: f.count, LastError: f.lastErr, NextAttempt: f.next}
	case !cred.ExpiresAt.IsZero() && !time.Now().Before(cred.ExpiresAt.Add(-r.margin)):
		return Health{State: HealthExpiring}
	default:
		return Health{State: HealthActive}
	}
}
