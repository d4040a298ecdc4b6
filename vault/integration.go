package vault

import (
	"fmt"

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

// validateTenant checks a tenant ID before any backend touches storage.
func validateTenant(tenant string) error {
	if err := tenants.ValidateID(tenant); err != nil {
		return fmt.Errorf("vault: tenant %q: %w", tenant, err)
	}
	return nil
}

// validateRecord checks both halves of a record's key before any backend
// touches storage.
func validateRecord(tenant, integration string) error {
	if err := validateTenant(tenant); err != nil {
		return err
	}
	if err := ValidateIntegration(integration); err != nil {
		return fmt.Errorf("vault: integration %q: %w", integration, err)
	}
	return nil
}
