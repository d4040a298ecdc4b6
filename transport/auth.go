package transport

import (
	"context"
	"errors"
	"net/http"
	"strings"

	"github.com/connectors-gateway/connectors/tenants"
)

// KeyVerifier verifies an API key; tenants.APIKeys is one.
type KeyVerifier interface {
	Verify(ctx context.Context, key string) (tenants.Identity, error)
}

// APIKeyAuth authenticates service accounts by API key, given as
// "Authorization: Bearer <key>" or "X-API-Key: <key>".
type APIKeyAuth struct{ Keys KeyVerifier }

// ErrNoCredentials is returned when a request carries no credentials.
var ErrNoCredentials = errors.New("no credentials")

// ErrAmbiguousCredentials is returned for a request that presents both an
// Authorization header and an X-API-Key: it is refused rather than judged
// by whichever one happens to be checked.
var ErrAmbiguousCredentials = errors.New("both Authorization and X-API-Key present")

// Authenticate implements Authenticator. It declines (ErrNoCredentials)
// bearer tokens that are not API keys: those are OIDCAuth's to judge.
func (a APIKeyAuth) Authenticate(r *http.Request) (tenants.Identity, error) {
	header := r.Header.Get("X-API-Key")
	if r.Header.Get("Authorization") != "" {
		if header != "" {
			return tenants.Identity{}, ErrAmbiguousCredentials
		}
		key := bearer(r)
		if !strings.HasPrefix(key, apiKeyPrefix) {
			return tenants.Identity{}, ErrNoCredentials
		}
		return a.Keys.Verify(r.Context(), key)
	}
	if header == "" {
		return tenants.Identity{}, ErrNoCredentials
	}
	return a.Keys.Verify(r.Context(), header)
}
