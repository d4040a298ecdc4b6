package telemetry

import (
	"testing"

	"github.com/connectors-gateway/connectors/internal/testenv"
)

// TestImports keeps telemetry a leaf: OpenTelemetry, nothing of the gateway.
func TestImports(t *testing.T) { testenv.CheckImports(t) }
