package transport

import (
	_ "embed"
	"net/http"
)

// openAPI is the OpenAPI 3 document of the gateway's HTTP routes.
//
//go:embed openapi.json
var openAPI []byte

// handleOpenAPI handles the "GET /openapi.json" route.
func (h *HTTP) handleOpenAPI(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(openAPI)
}
