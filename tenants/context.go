package tenants

import "context"

// Identity is the verified caller of one request.
type Identity struct {
	Tenant  string // always valid per ValidateID
	Subject string // who: an OIDC subject, "apikey:<id>", or "stdio"
	Admin   bool
	// Scopes are the scopes an OAuth token granted; nil for an API key,
	// whose rights are the key's own.
	Scopes []string
}

type identityKey struct{}

// NewContext returns ctx carrying id.
func NewContext(ctx context.Context, id Identity) context.Context {
	return context.WithValue(ctx, identityKey{}, id)
}

// FromContext returns the identity in ctx, if any.
func FromContext(ctx context.Context) (Identity, bool) {
	id, ok := ctx.Value(identityKey{}).(Identity)
	return id, ok
}
