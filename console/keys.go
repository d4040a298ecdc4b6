package console

import (
	"encoding/json"
	"maps"
	"net/http"
	"strings"
	"time"
)

// apiKey is one key of GET /tenants/{tenantId}/api-keys.
type apiKey struct {
	ID        string    `json:"id"`
	Name      string    `json:"name"`
	Admin     bool      `json:"admin"`
	CreatedAt time.Time `json:"createdAt"`
}

// keysData is the API keys page.
type keysData struct {
	Keys     []apiKey
	Created  *apiKey // the key just made, shown once with Secret
	Secret   string
	Snippets []snippet
}

// snippet is one MCP client's configuration.
type snippet struct {
	Client, Transport, File, Text string
}

// keys is GET /console/keys: the tenant's API keys and the MCP client
// configurations that use one.
func (c *Console) keys(w http.ResponseWriter, r *http.Request, s *session) {
	c.renderKeys(w, r, s, http.StatusOK, nil, "")
}

func (c *Console) renderKeys(w http.ResponseWriter, r *http.Request, s *session, status int, created *apiKey, secret string) {
	var out struct {
		Keys []apiKey `json:"keys"`
	}
	if _, err := (call{method: http.MethodGet, path: tenantPath(s.Tenant, "api-keys")}).into(r.Context(), c.handler(), r, &out); err != nil {
		c.fail(w, r, s, err)
		return
	}
	key := secret
	if key == "" {
		key = "YOUR_API_KEY"
	}
	d := keysData{Keys: out.Keys, Created: created, Secret: secret, Snippets: c.snippets(r, s.Tenant, key)}
	c.render(w, r, status, "keys", page{Title: "API keys", Nav: "keys", Session: s, Flash: flash(r), Data: d})
}

// createKey is POST /console/keys: a key made for the tenant's agents and
// shown on this answer only (no-store; a reload does not make another).
func (c *Console) createKey(w http.ResponseWriter, r *http.Request, s *session) {
	var out struct {
		apiKey
		Key string `json:"key"`
	}
	body := map[string]any{"name": strings.TrimSpace(r.PostFormValue("name"))}
	if _, err := (call{method: http.MethodPost, path: tenantPath(s.Tenant, "api-keys"), body: body, csrf: s.CSRF}).into(r.Context(), c.handler(), r, &out); err != nil {
		c.fail(w, r, s, err)
		return
	}
	c.renderKeys(w, r, s, http.StatusCreated, &out.apiKey, out.Key)
}

// revokeKey is POST /console/keys/{keyId}/revoke.
func (c *Console) revokeKey(w http.ResponseWriter, r *http.Request, s *session) {
	path := tenantPath(s.Tenant, "api-keys", r.PathValue("keyId"))
	if _, err := (call{method: http.MethodDelete, path: path, csrf: s.CSRF}).into(r.Context(), c.handler(), r, nil); err != nil {
		c.fail(w, r, s, err)
		return
	}
	back(w, r, "/console/keys", "revoked")
}

// snippets are the configurations of Claude, Cursor and VS Code, over
// HTTP with key and over stdio for tenant.
func (c *Console) snippets(r *http.Request, tenant, key string) []snippet {
	mcpURL := c.publicURL(r) + "/mcp"
	headers := map[string]string{"Authorization": "Bearer " + key}
	stdio := map[string]any{"command": c.opts.Binary, "args": []string{"stdio", "--tenant", tenant}}
	if len(c.opts.StdioEnv) > 0 {
		stdio["env"] = c.opts.StdioEnv
	}
	vsStdio := maps.Clone(stdio)
	vsStdio["type"] = "stdio"
	return []snippet{
		{"Claude Code", "HTTP", "a terminal",
			"claude mcp add --transport http connectors " + mcpURL + ` --header "Authorization: Bearer ` + key + `"`},
		{"Claude Desktop", "stdio", "claude_desktop_config.json",
			jsonText(map[string]any{"mcpServers": map[string]any{"connectors": stdio}})},
		{"Cursor", "HTTP", "~/.cursor/mcp.json",
			jsonText(map[string]any{"mcpServers": map[string]any{"connectors": map[string]any{"url": mcpURL, "headers": headers}}})},
		{"Cursor", "stdio", "~/.cursor/mcp.json",
			jsonText(map[string]any{"mcpServers": map[string]any{"connectors": stdio}})},
		{"VS Code", "HTTP", ".vscode/mcp.json",
			jsonText(map[string]any{"servers": map[string]any{"connectors": map[string]any{"type": "http", "url": mcpURL, "headers": headers}}})},
		{"VS Code", "stdio", ".vscode/mcp.json",
			jsonText(map[string]any{"servers": map[string]any{"connectors": vsStdio}})},
	}
}

// publicURL is the gateway's base URL: configured, or the request's own.
func (c *Console) publicURL(r *http.Request) string {
	if c.opts.PublicURL != "" {
		return strings.TrimSuffix(c.opts.PublicURL, "/")
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host
}

func jsonText(v any) string {
	b, _ := json.MarshalIndent(v, "", "  ")
	return string(b)
}
