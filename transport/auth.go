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

// Authenticate implements Authenticator.
func (a APIKeyAuth) Authenticate(r *http.Request) (tenants.Identity, error) {
	key := bearer(r)
	if !strings.HasPrefix(key, apiKeyPrefix) {
		key = "" // another kind of bearer token: not ours to judge
	}
	if key == "" {
		key = r.Header.Get("X-API-Key")
	}
	if key == "" {
		return tenants.Identity{}, ErrNoCredentials
	}
	return a.Keys.Verify(r.Context(), key)
}
