package transport

import (
	_ "embed"
	"net/http"
	"net/url"
	"strings"

	"github.com/connectors-gateway/connectors/internal/httpwire"
)

// meta serves what describes the gateway rather than acts: health,
// readiness, the OpenAPI document and the protected-resource metadata.
type meta struct {
	*guards
	drain *drain
}

func (h meta) register(mux *http.ServeMux) {
	mux.HandleFunc("GET /healthz", h.handleHealthz)
	mux.HandleFunc("GET /readyz", h.handleReadyz)
	mux.HandleFunc("GET /openapi.json", h.handleOpenAPI)
	if h.opts.Resource != "" && len(h.opts.AuthorizationServers) > 0 {
		mux.HandleFunc("GET /.well-known/oauth-protected-resource", h.handleResourceMetadata)
		mux.HandleFunc("GET /.well-known/oauth-protected-resource/{path...}", h.handleResourceMetadata)
	}
}

// handleHealthz handles the "GET /healthz" route: the process is up.
func (h meta) handleHealthz(w http.ResponseWriter, _ *http.Request) {
	httpwire.WriteJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

// handleReadyz handles the "GET /readyz" route: the gateway can serve.
func (h meta) handleReadyz(w http.ResponseWriter, r *http.Request) {
	if h.drain.started() {
		httpwire.WriteError(w, r, http.StatusServiceUnavailable, "NotReady", "the gateway is shutting down")
		return
	}
	if h.opts.Ready != nil {
		if err := h.opts.Ready(r.Context()); err != nil {
			h.log.WarnContext(r.Context(), "not_ready", "error", err)
			httpwire.WriteError(w, r, http.StatusServiceUnavailable, "NotReady", "the gateway is not ready")
			return
		}
	}
	httpwire.WriteJSON(w, http.StatusOK, map[string]string{"status": "ready"})
}

// openAPI is the OpenAPI 3 document of the gateway's HTTP routes.
//
//go:embed openapi.json
var openAPI []byte

// handleOpenAPI handles the "GET /openapi.json" route.
func (meta) handleOpenAPI(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(openAPI)
}

// handleResourceMetadata handles the "GET /.well-known/oauth-protected-resource"
// routes: RFC 9728 metadata telling MCP clients which authorization server
// issues tokens for the gateway, and with which scopes.
func (h meta) handleResourceMetadata(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "max-age=3600")
	httpwire.WriteJSON(w, http.StatusOK, map[string]any{
		"resource":                 h.opts.Resource,
		"authorization_servers":    h.opts.AuthorizationServers,
		"scopes_supported":         append([]string{}, h.opts.Scopes...),
		"bearer_methods_supported": []string{"header"},
		"resource_name":            "Connectors Gateway",
	})
}

// resourceMetadataURL is where RFC 9728 puts the metadata of resource:
// /.well-known/oauth-protected-resource inserted before its path.
func resourceMetadataURL(resource string) string {
	u, err := url.Parse(resource)
	if err != nil || u.Host == "" {
		return ""
	}
	path := strings.TrimSuffix(u.Path, "/")
	return u.Scheme + "://" + u.Host + "/.well-known/oauth-protected-resource" + path
}
