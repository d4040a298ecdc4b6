package vault

import (
	"testing"

	"github.com/connectors-gateway/connectors/internal/testenv"
)

// TestImports keeps vault beneath the packages that use it: it may know
// the tenant ID grammar, nothing of serving, linking or forwarding.
func TestImports(t *testing.T) { testenv.CheckImports(t, "tenants") }
