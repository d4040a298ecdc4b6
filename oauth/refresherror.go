package oauth

import (
	"context"
	"errors"
	"fmt"
	"net"
)

// What a tenant is told of a failed refresh: what failed, never where. The
// provider's address, the store's, and the provider's own words stay in
// the refresher's log for operators.
const (
	ReasonTimeout     = "the provider did not answer in time"
	ReasonUnreachable = "the provider is unreachable"
	ReasonStore       = "the credential store could not be reached"
)

// ErrRefreshTimeout is the cause of a refresh that got no answer within
// RefresherOptions.RefreshTimeout, or that a caller stopped waiting for.
var ErrRefreshTimeout = errors.New("no answer within the refresh timeout")

// RefreshError is a failed refresh. Error is for operators' logs: what
// happened, in detail, with any token cut out. Reason is for the tenant:
// what failed (ReasonTimeout, ...), without an address or a token.
// errors.As reaches the cause (a *TokenError, a store error, ...).
type RefreshError struct {
	Reason string
	msg    string
	cause  error
}

func (e *RefreshError) Error() string { return e.msg }
func (e *RefreshError) Unwrap() error { return e.cause }

// errOtherReplica: another replica held the refresh and did not finish it.
var errOtherReplica = errors.New("another replica's refresh did not finish")

// reasonOf is the tenant's view of a refresh's cause. provider says the
// provider's token endpoint failed; otherwise the store did (or another
// replica did not finish).
func reasonOf(cause error, provider bool) string {
	if errors.Is(cause, errOtherReplica) {
		return ReasonTimeout
	}
	if !provider {
		return ReasonStore
	}
	var te *TokenError
	switch {
	case errors.As(cause, &te) && te.Code != "":
		return fmt.Sprintf("the provider refused it (%s)", te.Code)
	case errors.As(cause, &te):
		return fmt.Sprintf("the provider answered with an error (HTTP %d)", te.Status)
	case errors.Is(cause, context.DeadlineExceeded), errors.Is(cause, ErrRefreshTimeout):
		return ReasonTimeout
	}
	if ne, ok := errors.AsType[net.Error](cause); ok && ne.Timeout() {
		return ReasonTimeout
	}
	return ReasonUnreachable
}
