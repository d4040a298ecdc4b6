package vault

import (
	"errors"
	"fmt"
	"strings"
)

// MaxRecordSize bounds a tenant record (see [TenantRecords]): records are
// small figures, never documents.
const MaxRecordSize = 64 << 10

// ErrRecordChanged is a lost check-and-set on a tenant record.
var ErrRecordChanged = errors.New("tenant record changed concurrently: retry")

// ErrInvalidRecordName is a tenant record name outside the grammar.
var ErrInvalidRecordName = errors.New("invalid tenant record name: one or two '/'-separated segments, each ^[a-z][a-z0-9-]{0,31}$")

// ValidateRecordName checks a tenant record's name: one or two segments
// separated by '/', each in the integration-name grammar ("usage",
// "health/notion"), so that a name is a storage path as it is, with no
// '.', '%' or empty segment.
func ValidateRecordName(name string) error {
	first, rest, nested := strings.Cut(name, "/")
	if ValidateIntegration(first) != nil || nested && ValidateIntegration(rest) != nil {
		return ErrInvalidRecordName
	}
	return nil
}

// ValidateTenantRecord checks a tenant record's tenant, name and, for a
// write, size (rec nil: a read).
func ValidateTenantRecord(tenant, name string, rec []byte) error {
	if err := ValidateTenant(tenant); err != nil {
		return err
	}
	if err := ValidateRecordName(name); err != nil {
		return fmt.Errorf("vault: record %q: %w", name, err)
	}
	if len(rec) > MaxRecordSize {
		return fmt.Errorf("vault: record %q: %d bytes, at most %d", name, len(rec), MaxRecordSize)
	}
	return nil
}
