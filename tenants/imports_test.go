package tenants

import (
	"testing"

	"github.com/connectors-gateway/connectors/internal/testenv"
)

// TestImports keeps tenants below the storage packages: vault imports
// tenants (for ValidateID), so tenants must never import vault.
func TestImports(t *testing.T) { testenv.CheckImports(t) }
