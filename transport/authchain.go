package transport

import (
	"context"
	"errors"
	"net/http"
	"strings"

	"github.com/connectors-gateway/connectors/tenants"
)

// Chain authenticates with the first of its Authenticators that recognises
// the request's credentials. An Authenticator that finds none it handles
// returns an error wrapping ErrNoCredentials and the next is tried; any
// other error is the verdict (a bad token is not retried elsewhere). A
// request no Authenticator recognises gets ErrNoCredentials.
//
// The gateway's chain is Chain{APIKeyAuth{...}, OIDCAuth{...}}: each
// declines the other's tokens (API keys start "cgw_").
type Chain []Authenticator

// Authenticate implements Authenticator.
func (c Chain) Authenticate(r *http.Request) (tenants.Identity, error) {
	for _, a := range c {
		id, err := a.Authenticate(r)
		if errors.Is(err, ErrNoCredentials) {
			continue
		}
		return id, err
	}
	return tenants.Identity{}, ErrNoCredentials
}

// TokenVerifier verifies a bearer token; tenants.OIDCVerifier is one.
type TokenVerifier interface {
	Verify(ctx context.Context, token string) (tenants.Identity, error)
}

// OIDCAuth authenticates "Authorization: Bearer <token>" with an OpenID
// provider's access tokens. It declines (ErrNoCredentials) requests
// without a bearer token and bearer tokens that are API keys ("cgw_…"),
// which are APIKeyAuth's.
type OIDCAuth struct{ Verifier TokenVerifier }

// Authenticate implements Authenticator.
func (a OIDCAuth) Authenticate(r *http.Request) (tenants.Identity, error) {
	token := bearer(r)
	if token == "" || strings.HasPrefix(token, apiKeyPrefix) {
		return tenants.Identity{}, ErrNoCredentials
	}
	return a.Verifier.Verify(r.Context(), token)
}

// apiKeyPrefix begins every API key (tenants' key format).
const apiKeyPrefix = "cgw_"
