package server

import (
	"errors"

	"github.com/connectors-gateway/connectors/oauth"
)

// refreshFailed is an expired token that could not be refreshed, as the
// tenant is told it: the integration and what failed, never where (the
// provider's or the store's address). The cause stays reachable through
// errors.As, for the store failures that map to VaultError.
type refreshFailed struct {
	integration, reason string
	cause               error
}

func newRefreshFailed(integration string, cause error) *refreshFailed {
	reason := "the refresh failed"
	if re, ok := errors.AsType[*oauth.RefreshError](cause); ok && re.Reason != "" {
		reason = re.Reason
	}
	return &refreshFailed{integration: integration, reason: reason, cause: cause}
}

func (e *refreshFailed) Error() string {
	return "the " + e.integration + " token could not be refreshed: " + e.reason
}

func (e *refreshFailed) Unwrap() error { return e.cause }
