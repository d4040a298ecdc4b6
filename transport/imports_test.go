package transport

import (
	"testing"

	"github.com/connectors-gateway/connectors/internal/testenv"
)

// TestImports keeps transport to HTTP: it mounts the MCP endpoint that
// server serves, and knows neither mcp-go nor the upstream connections
// (tools).
func TestImports(t *testing.T) {
	testenv.CheckImports(t, "audit", "internal/httpwire", "limits", "metrics", "oauth", "server", "telemetry", "tenants", "vault")
	for _, f := range testenv.Importers(t, "github.com/mark3labs/mcp-go") {
		t.Errorf("%s imports mcp-go: the MCP endpoint is server's", f)
	}
}
