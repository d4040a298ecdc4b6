package vault

import (
	"fmt"
	"regexp"

	"github.com/connectors-gateway/connectors/tenants"
)

// integrationPattern is the integration-name grammar. Like the tenant-ID
// grammar it has no '/', '.', '%' or upper case, so a name can be used as a
// storage path segment as it is.
var integrationPattern = regexp.MustCompile(`^[a-z][a-z0-9-]{0,31}$`)

// ValidateIntegration returns ErrInvalidIntegration unless name matches
// ^[a-z][a-z0-9-]{0,31}$.
func ValidateIntegration(name string) error {
	if !integrationPattern.MatchString(name) {
		return ErrInvalidIntegration
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
