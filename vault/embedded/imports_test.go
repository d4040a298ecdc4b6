package embedded_test

import (
	"testing"

	"github.com/connectors-gateway/connectors/internal/testenv"
)

// TestImports keeps the backend beneath the packages that use it: it may
// know the contract and the tenant ID grammar, nothing of serving, linking
// or forwarding.
func TestImports(t *testing.T) { testenv.CheckImports(t, "vault", "tenants") }
