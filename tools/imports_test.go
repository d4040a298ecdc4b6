package tools

import (
	"testing"

	"github.com/connectors-gateway/connectors/internal/testenv"
)

// TestImports keeps tools a client of upstreams only: it knows nothing of
// tenants' credentials, their store, or how the gateway is served.
func TestImports(t *testing.T) { testenv.CheckImports(t, "internal/rawjson", "telemetry") }
