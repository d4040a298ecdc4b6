// Package tenants knows who is calling: the tenant ID grammar, API keys,
// and the identity carried in a request's context.
package tenants

import "errors"

// The one tenant-ID grammar, enforced everywhere a tenant ID enters the
// gateway, is ^[a-z0-9][a-z0-9_-]{0,63}$. It excludes '/', '.', '%' and
// upper case, so no ID can traverse a storage path or alias another after
// normalisation. ValidateID checks it by hand: it runs on every call (a
// test holds it to the regular expression).

// ErrInvalidID is returned for a tenant ID outside the grammar.
var ErrInvalidID = errors.New("invalid tenant ID: must match ^[a-z0-9][a-z0-9_-]{0,63}$")

// ValidateID returns ErrInvalidID unless id matches the tenant-ID grammar.
func ValidateID(id string) error {
	if len(id) == 0 || len(id) > 64 {
		return ErrInvalidID
	}
	for i := 0; i < len(id); i++ {
		switch c := id[i]; {
		case 'a' <= c && c <= 'z', '0' <= c && c <= '9':
		case (c == '_' || c == '-') && i > 0:
		default:
			return ErrInvalidID
		}
	}
	return nil
}
