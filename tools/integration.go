// Package tools is the integration registry and the gateway's connections to
// upstream MCP servers.
//
// # Overview
//
// An [Integration] names one upstream MCP server (a stdio command or a
// streamable-HTTP URL), its category, and how a tenant's credential is
// injected into it (env or header templates such as
// "NOTION_TOKEN={{access_token}}"). A [Registry] holds the built-in presets
// (notion, github, slack) and the integrations of a config file.
//
// A [Pool] owns the live upstream connections: one per (tenant,
// integration), started on first use with only that tenant's credential.
package tools

import "time"

// Upstream says how to reach an integration's MCP server. Exactly one of
// Command and URL is set.
type Upstream struct {
	// Command and Args start a stdio MCP server. Env holds extra variables
	// whose values are templates ({{access_token}}, {{token_type}}, ...);
	// the process gets these plus an allowlist of the gateway's own
	// environment (PATH, HOME, ...), never anything else.
	Command string            `json:"command,omitempty"`
	Args    []string          `json:"args,omitempty"`
	Env     map[string]string `json:"env,omitempty"`

	// URL is a streamable-HTTP MCP endpoint; Headers are templates added to
	// every request (e.g. "Authorization": "Bearer {{access_token}}").
	URL     string            `json:"url,omitempty"`
	Headers map[string]string `json:"headers,omitempty"`
}

// Integration is one upstream MCP server the gateway fronts.
type Integration struct {
	Name        string        `json:"name"`     // matches ^[a-z][a-z0-9-]{0,31}$
	Category    string        `json:"category"` // productivity, code, communication, ...
	Description string        `json:"description,omitempty"`
	Upstream    Upstream      `json:"upstream"`
	Timeout     time.Duration `json:"-"` // per tools/call; zero means DefaultTimeout

	// Protocol pins the MCP protocol version spoken with the upstream, for
	// servers that misbehave under negotiation (for example servers that
	// make sampling or elicitation requests, which 2026-07-28 replaced).
	// Empty: negotiate, 2026-07-28 first, then the initialize handshake.
	Protocol string `json:"protocol,omitempty"`

	// OAuth, if set, lets tenants link their account through the
	// gateway's OAuth link flow. Client ID and secret never live here:
	// they come from the environment ({NAME}_CLIENT_ID, ...).
	OAuth *OAuth `json:"oauth,omitempty"`
}

// OAuth describes an integration's OAuth 2.0 provider.
type OAuth struct {
	// Kind selects the token endpoint's dialect: "standard" (RFC 6749,
	// the default), "notion", "github" or "slack".
	Kind         string   `json:"kind,omitempty"`
	AuthorizeURL string   `json:"authorizeUrl"`
	TokenURL     string   `json:"tokenUrl"`
	RevokeURL    string   `json:"revokeUrl,omitempty"` // empty: no revocation at the provider
	Scopes       []string `json:"scopes,omitempty"`
	// AuthStyle is how client credentials reach the token endpoint:
	// "basic" (HTTP Basic, the default) or "body" (form fields).
	AuthStyle string `json:"authStyle,omitempty"`
	// PKCE sends an S256 code challenge; on unless set to false.
	PKCE *bool `json:"pkce,omitempty"`
}

// UsesPKCE reports whether the link flow sends a PKCE challenge.
func (o *OAuth) UsesPKCE() bool { return o.PKCE == nil || *o.PKCE }

// DefaultTimeout bounds one upstream call when an integration sets none.
const DefaultTimeout = 60 * time.Second
