// Package tenants knows who is calling: the tenant ID grammar, API keys,
// and the identity carried in a request's context.
package tenants

import (
	"errors"
	"regexp"
)

// idPattern is the one tenant-ID grammar, enforced everywhere a tenant ID
// enters the gateway. It excludes '/', '.', '%' and upper case, so no ID can
// traverse a storage path or alias another after normalisation.
var idPattern = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,63}$`)

// ErrInvalidID is returned for a tenant ID outside the grammar.
var ErrInvalidID = errors.New("invalid tenant ID: must match ^[a-z0-9][a-z0-9_-]{0,63}$")

// ValidateID returns ErrInvalidID unless id matches the tenant-ID grammar.
func ValidateID(id string) error {
	if !idPattern.MatchString(id) {
		return ErrInvalidID
	}
	return nil
}
