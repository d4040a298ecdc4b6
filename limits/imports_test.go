package limits

import (
	"testing"

	"github.com/connectors-gateway/connectors/internal/testenv"
)

// TestImports keeps limits a leaf: it imports nothing of the module.
func TestImports(t *testing.T) { testenv.CheckImports(t) }
