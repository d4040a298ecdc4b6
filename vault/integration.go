package vault

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"regexp"

	"github.com/connectors-gateway/connectors/tenants"
)

// ValidateIntegration returns ErrInvalidIntegration unless name matches
// the integration-name grammar, ^[a-z][a-z0-9-]{0,31}$. Like the tenant-ID
// grammar it has no '/', '.', '%' or upper case, so a name can be used as a
// storage path segment as it is. Checked by hand: it runs on every call (a
// test holds it to the regular expression).
func ValidateIntegration(name string) error {
	if len(name) == 0 || len(name) > 32 {
		return ErrInvalidIntegration
	}
	for i := 0; i < len(name); i++ {
		switch c := name[i]; {
		case 'a' <= c && c <= 'z':
		case ('0' <= c && c <= '9' || c == '-') && i > 0:
		default:
			return ErrInvalidIntegration
		}
	}
	return nil
}

// ValidateTenant checks a tenant ID before a backend touches storage.
func ValidateTenant(tenant string) error {
	if err := tenants.ValidateID(tenant); err != nil {
		return fmt.Errorf("vault: tenant %q: %w", tenant, err)
	}
	return nil
}

// ValidateRecord checks both halves of a record's key before a backend
// touches storage.
func ValidateRecord(tenant, integration string) error {
	if err := ValidateTenant(tenant); err != nil {
		return err
	}
	if err := ValidateIntegration(integration); err != nil {
		return fmt.Errorf("vault: integration %q: %w", integration, err)
	}
	return nil
}

// apiKeyIDPattern bounds the IDs the backends accept for API keys.
var apiKeyIDPattern = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

// ValidAPIKeyID reports whether id may name an API-key record: 1 to 64
// bytes of [A-Za-z0-9_-].
func ValidAPIKeyID(id string) bool { return apiKeyIDPattern.MatchString(id) }

// ClaimID is the name a claim of key is stored under: its SHA-256 in hex,
// so that a key (an OAuth state) is never written down in clear.
func ClaimID(key string) string {
	sum := sha256.Sum256([]byte(key))
	return hex.EncodeToString(sum[:])
}
