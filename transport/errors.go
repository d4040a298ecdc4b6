package transport

import (
	"context"
	"errors"
	"net/http"
	"strconv"

	"github.com/connectors-gateway/connectors/internal/httpwire"
	"github.com/connectors-gateway/connectors/limits"
	"github.com/connectors-gateway/connectors/oauth"
	"github.com/connectors-gateway/connectors/server"
	"github.com/connectors-gateway/connectors/tenants"
	"github.com/connectors-gateway/connectors/vault"
)

// apiError is how the REST routes answer an error: the status, the stable
// error name (the setup guide's, where it has one) and the message for
// people.
type apiError struct {
	status        int
	name, message string
	// retryAfter, if set, is the Retry-After header: waiting may help.
	retryAfter string
	// logged marks a failure of the gateway's own (the store's), logged
	// as credential_store_failed.
	logged bool
	// flow marks an error of the OAuth link flow itself (a link request
	// expired, used, for another tenant...), which the link routes answer
	// as pages too.
	flow bool
}

// upstreamError is an error of a tool's call that is not the gateway's
// own (nor the store's): the upstream failed, or did not answer in time.
type upstreamError struct{ err error }

func (e *upstreamError) Error() string { return e.err.Error() }
func (e *upstreamError) Unwrap() error { return e.err }

// errorFor is the one mapping of an error to the API's answer: every
// route answers the same error alike. An error it does not know is the
// credential store's failing (503 VaultError), the one dependency every
// route has.
func errorFor(err error) apiError {
	if e, ok := flowError(err); ok {
		return e
	}
	var (
		nf       *vault.CredentialNotFoundError
		conflict *vault.ConflictError
		fe       *FieldError
		name     *tenants.KeyNameError
		up       *upstreamError
		limited  *limits.Refusal
	)
	switch {
	case errors.As(err, new(*http.MaxBytesError)):
		return apiError{status: http.StatusRequestEntityTooLarge, name: "PayloadTooLarge", message: "request body too large"}
	case errors.As(err, &fe):
		return apiError{status: http.StatusBadRequest, name: "ValidationError", message: fe.Error()}
	case errors.Is(err, server.ErrUnknownIntegration):
		return apiError{status: http.StatusNotFound, name: "IntegrationNotFound", message: "no integration by that name"}
	case errors.Is(err, server.ErrDisabled):
		return apiError{status: http.StatusForbidden, name: "IntegrationDisabled", message: "this integration is turned off for the tenant"}
	case errors.Is(err, server.ErrUnknownTool):
		return apiError{status: http.StatusNotFound, name: "ToolNotFound", message: "the integration has no tool by that name"}
	case errors.As(err, &name):
		return apiError{status: http.StatusBadRequest, name: "ValidationError", message: name.Error()}
	case errors.Is(err, tenants.ErrKeyNotFound):
		// The one answer for a key that does not exist and for another
		// tenant's: nothing tells them apart.
		return apiError{status: http.StatusNotFound, name: "APIKeyNotFound", message: "no API key by that ID"}
	case errors.Is(err, tenants.ErrAdminKey):
		return apiError{status: http.StatusForbidden, name: "Forbidden", message: "admin: only an admin may create or revoke an admin key"}
	case errors.As(err, &nf):
		return apiError{status: http.StatusNotFound, name: "CredentialNotFoundError", message: nf.Error()}
	case errors.As(err, &conflict):
		return apiError{status: http.StatusConflict, name: "Conflict", message: "the credential changed concurrently: retry"}
	case errors.As(err, new(*vault.VaultEncryptionError)):
		return apiError{status: http.StatusServiceUnavailable, name: "VaultEncryptionError", message: "Failed to decrypt data", logged: true}
	case errors.As(err, new(*vault.VaultError)):
		// As the authentication's 503: the store may come back.
		return apiError{status: http.StatusServiceUnavailable, name: "VaultError", message: "Failed to connect to Vault", retryAfter: "5", logged: true}
	case errors.As(err, &limited):
		// Nothing was sent upstream: waiting helps, and the answer says how long.
		return apiError{status: http.StatusTooManyRequests, name: "RateLimited", message: limited.Error(),
			retryAfter: strconv.FormatInt(limited.RetryAfterSeconds(), 10)}
	case errors.As(err, &up) && (errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled)):
		return apiError{status: http.StatusGatewayTimeout, name: "UpstreamTimeout", message: "the tool did not answer in time"}
	case up != nil:
		return apiError{status: http.StatusBadGateway, name: "UpstreamError", message: "the integration could not run the tool"}
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return apiError{status: http.StatusServiceUnavailable, name: "VaultError", message: "the credential store did not answer in time"}
	}
	return apiError{status: http.StatusServiceUnavailable, name: "VaultError", message: "the credential store failed", logged: true}
}

// flowError maps the errors of the OAuth link flow (part of errorFor).
func flowError(err error) (apiError, bool) {
	for _, f := range []struct {
		err    error
		status int
		name   string
		msg    string
	}{
		{oauth.ErrRedirectURI, http.StatusBadRequest, "InvalidRedirectUri", "redirect_uri must be exactly one of the gateway's allowed redirect URIs"},
		{oauth.ErrStateExpired, http.StatusBadRequest, "StateExpired", "this link request has expired: start again"},
		{oauth.ErrStateUsed, http.StatusBadRequest, "StateAlreadyUsed", "this link request was already completed"},
		{oauth.ErrStateTenant, http.StatusForbidden, "StateTenantMismatch", "this link request was started for another tenant than the one signed in"},
		{oauth.ErrStateBrowser, http.StatusForbidden, "StateBrowserMismatch", "this link request was confirmed in another browser: nothing was linked"},
		{oauth.ErrStateInvalid, http.StatusBadRequest, "InvalidState", "the state parameter is missing or not valid"},
		{oauth.ErrLinkUsed, http.StatusBadRequest, "StateAlreadyUsed", "this link request was already confirmed: ask for a new link"},
		{oauth.ErrLinkExpired, http.StatusBadRequest, "StateExpired", "this link request has expired: ask for a new link"},
		{oauth.ErrLinkInvalid, http.StatusBadRequest, "InvalidState", "this link is not valid"},
	} {
		if errors.Is(err, f.err) {
			return apiError{status: f.status, name: f.name, message: f.msg, flow: true}, true
		}
	}
	return apiError{}, false
}

// badBody is the error of a request body that could not be decoded
// (err): too large, as it is; else a validation error saying msg.
func badBody(err error, msg string) error {
	if errors.As(err, new(*http.MaxBytesError)) {
		return err
	}
	return &FieldError{Msg: msg}
}

// flowFailure maps err, an error of the OAuth link flow on r: the flow's
// own errors as errorFor does, any other (logged as event) as fallback,
// in the words of the route.
func (h *guards) flowFailure(r *http.Request, err error, event string, fallback apiError) apiError {
	if e := errorFor(err); e.flow {
		return e
	}
	h.log.ErrorContext(r.Context(), event, "error", err, "requestId", RequestID(r.Context()))
	return fallback
}

// fail answers r with err, as errorFor maps it.
func (h *guards) fail(w http.ResponseWriter, r *http.Request, err error) {
	h.answer(w, r, err, errorFor(err))
}

// answer answers r with e, the mapping of err, logging err when it is a
// failure of the gateway's.
func (h *guards) answer(w http.ResponseWriter, r *http.Request, err error, e apiError) {
	if e.logged {
		h.log.ErrorContext(r.Context(), "credential_store_failed", "error", err, "requestId", RequestID(r.Context()))
	}
	if e.retryAfter != "" {
		w.Header().Set("Retry-After", e.retryAfter)
	}
	httpwire.WriteError(w, r, e.status, e.name, e.message)
}
