package tools

import (
	"errors"
	"fmt"
	"maps"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/mark3labs/mcp-go/mcp"
)

// nameRE is what an integration name must match: it prefixes every exposed
// tool name, so it is short and has no '_'.
var nameRE = regexp.MustCompile(`^[a-z][a-z0-9-]{0,31}$`)

var (
	envNameRE    = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
	headerNameRE = regexp.MustCompile("^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")
)

// IntegrationError says which integration and which field of it is wrong.
// Integration is the name, or "" when the name is missing; Index is then the
// position in the list the integration came from.
type IntegrationError struct {
	Integration string
	Index       int
	Field       string // "upstream.url", "upstream.env.TOKEN", ...
	Err         error
}

func (e *IntegrationError) Error() string {
	who := fmt.Sprintf("integrations[%d]", e.Index)
	if e.Integration != "" {
		who = fmt.Sprintf("integration %q", e.Integration)
	}
	if e.Field == "" {
		return fmt.Sprintf("%s: %v", who, e.Err)
	}
	return fmt.Sprintf("%s: %s: %v", who, e.Field, e.Err)
}

func (e *IntegrationError) Unwrap() error { return e.Err }

// Registry is the set of integrations the gateway fronts, by name. It is
// immutable once built and safe for concurrent use.
type Registry struct {
	byName map[string]Integration
	sorted []Integration
}

// NewRegistry validates integrations and returns a registry of them. Errors
// are *IntegrationError.
func NewRegistry(integrations ...Integration) (*Registry, error) {
	r := &Registry{byName: make(map[string]Integration, len(integrations))}
	for i, in := range integrations {
		if err := validate(in, i); err != nil {
			return nil, err
		}
		if _, dup := r.byName[in.Name]; dup {
			return nil, &IntegrationError{Integration: in.Name, Index: i, Field: "name", Err: errors.New("duplicate")}
		}
		in = in.clone()
		r.byName[in.Name] = in
		r.sorted = append(r.sorted, in)
	}
	slices.SortFunc(r.sorted, func(a, b Integration) int { return strings.Compare(a.Name, b.Name) })
	return r, nil
}

// Get returns the integration called name.
func (r *Registry) Get(name string) (Integration, bool) {
	in, ok := r.byName[name]
	if !ok {
		return Integration{}, false
	}
	return in.clone(), true
}

// All returns the integrations sorted by name.
func (r *Registry) All() []Integration {
	out := make([]Integration, len(r.sorted))
	for i, in := range r.sorted {
		out[i] = in.clone()
	}
	return out
}

// Names returns the registered integrations' names, sorted.
func (r *Registry) Names() []string {
	out := make([]string, len(r.sorted))
	for i, in := range r.sorted {
		out[i] = in.Name
	}
	return out
}

// The versions of the stdio servers the presets run, pinned: a new release
// changes nothing until it is chosen here (and tested), and npx finds the
// package it prepared ahead ("connectors integrations prepare").
const (
	// NotionServerVersion is Notion's own @notionhq/notion-mcp-server.
	NotionServerVersion = "2.5.2"
	// SlackServerVersion is slack-mcp-server, a maintained Slack MCP
	// server (the reference @modelcontextprotocol/server-slack is
	// archived); it takes a bot token (xoxb-) in SLACK_MCP_XOXB_TOKEN.
	SlackServerVersion = "1.3.0"
)

// Presets returns the built-in integrations: notion, github and slack.
func Presets() []Integration {
	return []Integration{
		{
			Name:        "github",
			Category:    "code",
			Description: "GitHub repositories, issues and pull requests (GitHub's hosted MCP server).",
			Upstream: Upstream{
				URL:     "https://api.githubcopilot.com/mcp/",
				Headers: map[string]string{"Authorization": "Bearer {{access_token}}"},
			},
			OAuth: &OAuth{
				Kind:         "github",
				AuthorizeURL: "https://github.com/login/oauth/authorize",
				TokenURL:     "https://github.com/login/oauth/access_token",
				// Deleting the grant revokes every token of the authorization.
				RevokeURL: "https://api.github.com/applications/{client_id}/grant",
				Scopes:    []string{"repo", "read:user"},
				AuthStyle: "body",
				PKCE:      new(true), // GitHub verifies S256 challenges
			},
		},
		{
			Name:        "notion",
			Category:    "productivity",
			Description: "Notion pages, databases and search.",
			Upstream: Upstream{
				Command: "npx",
				Args:    []string{"-y", "@notionhq/notion-mcp-server@" + NotionServerVersion},
				Env:     map[string]string{"NOTION_TOKEN": "{{access_token}}"},
			},
			OAuth: &OAuth{
				Kind:         "notion",
				AuthorizeURL: "https://api.notion.com/v1/oauth/authorize",
				TokenURL:     "https://api.notion.com/v1/oauth/token",
				// Notion has no revocation endpoint and no scopes: the
				// tenant picks pages on the consent screen.
				AuthStyle: "basic",
				PKCE:      new(false), // not supported
			},
		},
		{
			Name:        "slack",
			Category:    "communication",
			Description: "Slack channels, messages and users.",
			Upstream: Upstream{
				Command: "npx",
				Args:    []string{"-y", "slack-mcp-server@" + SlackServerVersion, "--transport", "stdio"},
				Env: map[string]string{
					"SLACK_MCP_XOXB_TOKEN": "{{access_token}}",
					// Posting and reactions are off unless enabled; the
					// bot's scopes below grant them.
					"SLACK_MCP_ADD_MESSAGE_TOOL": "true",
					"SLACK_MCP_REACTION_TOOL":    "true",
				},
			},
			OAuth: &OAuth{
				Kind:         "slack",
				AuthorizeURL: "https://slack.com/oauth/v2/authorize",
				TokenURL:     "https://slack.com/api/oauth.v2.access",
				RevokeURL:    "https://slack.com/api/auth.revoke",
				// Bot scopes, for the bot token the upstream server uses.
				Scopes:    []string{"channels:history", "channels:read", "chat:write", "reactions:write", "users:read"},
				AuthStyle: "body",
				PKCE:      new(false), // not supported for confidential apps
			},
		},
	}
}

// clone returns a deep copy, so callers can't change a registry's maps.
func (in Integration) clone() Integration {
	in.Upstream.Args = slices.Clone(in.Upstream.Args)
	in.Upstream.Env = cloneMap(in.Upstream.Env)
	in.Upstream.Headers = cloneMap(in.Upstream.Headers)
	if in.OAuth != nil {
		o := *in.OAuth
		o.Scopes = slices.Clone(o.Scopes)
		if o.PKCE != nil {
			o.PKCE = new(*o.PKCE)
		}
		in.OAuth = &o
	}
	return in
}

// equal reports whether in and o are the same configuration (a nil list or
// map is the same as an empty one), without reflection: it runs on every
// call. TestIntegrationEqual changes each field in turn, so a field added
// to Integration, Upstream or OAuth without a line here fails it.
func (in *Integration) equal(o *Integration) bool {
	a, b := &in.Upstream, &o.Upstream
	if in.Name != o.Name || in.Category != o.Category || in.Description != o.Description ||
		in.Timeout != o.Timeout || in.Protocol != o.Protocol ||
		a.Command != b.Command || a.URL != b.URL || !slices.Equal(a.Args, b.Args) ||
		!maps.Equal(a.Env, b.Env) || !maps.Equal(a.Headers, b.Headers) ||
		(in.OAuth == nil) != (o.OAuth == nil) {
		return false
	}
	if in.OAuth == nil {
		return true
	}
	x, y := in.OAuth, o.OAuth
	return x.Kind == y.Kind && x.AuthorizeURL == y.AuthorizeURL && x.TokenURL == y.TokenURL &&
		x.RevokeURL == y.RevokeURL && x.AuthStyle == y.AuthStyle && slices.Equal(x.Scopes, y.Scopes) &&
		(x.PKCE == nil) == (y.PKCE == nil) && (x.PKCE == nil || *x.PKCE == *y.PKCE)
}

func cloneMap(m map[string]string) map[string]string {
	if m == nil {
		return nil
	}
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// validate checks one integration; index is its position, for errors about
// an integration without a name.
func validate(in Integration, index int) error {
	fail := func(field string, format string, args ...any) error {
		return &IntegrationError{Integration: in.Name, Index: index, Field: field, Err: fmt.Errorf(format, args...)}
	}
	switch {
	case in.Name == "":
		return fail("name", "missing")
	case !nameRE.MatchString(in.Name):
		return fail("name", "%q must match %s", truncate(in.Name, 40), nameRE)
	}
	if in.Timeout < 0 {
		return fail("timeout", "must not be negative")
	}
	if in.Protocol != "" && !slices.Contains(mcp.ValidProtocolVersions, in.Protocol) {
		return fail("protocol", "%q is not an MCP protocol version (%s)", truncate(in.Protocol, 40), strings.Join(mcp.ValidProtocolVersions, ", "))
	}
	if in.OAuth != nil {
		if err := validateOAuth(in.OAuth); err != nil {
			var fe *fieldError
			if errors.As(err, &fe) {
				return fail("oauth."+fe.field, "%v", fe.err)
			}
			return fail("oauth", "%v", err)
		}
	}
	if field, err := checkUpstream(in.Upstream); err != nil {
		return &IntegrationError{Integration: in.Name, Index: index, Field: field, Err: err}
	}
	return nil
}

// checkUpstream checks an integration's upstream: the field at fault and
// why, or nil.
func checkUpstream(up Upstream) (field string, err error) {
	if (up.Command == "") == (up.URL == "") {
		return "upstream", errors.New("set exactly one of command and url")
	}
	if up.Command != "" {
		return checkCommand(up)
	}
	return checkURL(up)
}

// checkCommand checks the upstream of an integration run as a process.
func checkCommand(up Upstream) (field string, err error) {
	if hasPlaceholder(up.Command) {
		return "upstream.command", errors.New("placeholders are not allowed (use env)")
	}
	for i, a := range up.Args {
		// argv is visible to every process on the host: no credentials.
		if hasPlaceholder(a) {
			return fmt.Sprintf("upstream.args[%d]", i), errors.New("placeholders are not allowed, argv is visible to other processes (use env)")
		}
	}
	if len(up.Headers) > 0 {
		return "upstream.headers", errors.New("only allowed with url")
	}
	for _, k := range sortedKeys(up.Env) {
		if !envNameRE.MatchString(k) {
			return "upstream.env", fmt.Errorf("invalid variable name %q", truncate(k, 40))
		}
		if err := checkTemplate(up.Env[k]); err != nil {
			return "upstream.env." + k, err
		}
	}
	return "", nil
}

// checkURL checks the upstream of an integration reached over HTTP.
func checkURL(up Upstream) (field string, err error) {
	if len(up.Args) > 0 {
		return "upstream.args", errors.New("only allowed with command")
	}
	if len(up.Env) > 0 {
		return "upstream.env", errors.New("only allowed with command")
	}
	if hasPlaceholder(up.URL) {
		return "upstream.url", errors.New("placeholders are not allowed, URLs end up in logs (use headers)")
	}
	u, err := url.Parse(up.URL)
	switch {
	case err != nil:
		return "upstream.url", errors.New("not a URL")
	case u.Scheme != "http" && u.Scheme != "https":
		return "upstream.url", errors.New("scheme must be http or https")
	case u.Host == "":
		return "upstream.url", errors.New("missing host")
	case u.User != nil:
		return "upstream.url", errors.New("credentials in the URL are not allowed (use headers)")
	}
	for _, k := range sortedKeys(up.Headers) {
		if !headerNameRE.MatchString(k) {
			return "upstream.headers", fmt.Errorf("invalid header name %q", truncate(k, 40))
		}
		v := up.Headers[k]
		if strings.ContainsAny(v, "\r\n\x00") {
			return "upstream.headers." + k, errors.New("value must not contain CR, LF or NUL")
		}
		if err := checkTemplate(v); err != nil {
			return "upstream.headers." + k, err
		}
	}
	return "", nil
}

// OAuth kinds and client authentication styles; empty means the first.
var (
	oauthKinds      = []string{"standard", "notion", "github", "slack"}
	oauthAuthStyles = []string{"basic", "body"}
)

// fieldError is a validation error about one field of a nested block.
type fieldError struct {
	field string
	err   error
}

func (e *fieldError) Error() string { return e.field + ": " + e.err.Error() }

// validateOAuth checks an integration's OAuth block; errors are
// *fieldError naming the field within it.
func validateOAuth(o *OAuth) error {
	fail := func(field, format string, args ...any) error {
		return &fieldError{field: field, err: fmt.Errorf(format, args...)}
	}
	if o.Kind != "" && !slices.Contains(oauthKinds, o.Kind) {
		return fail("kind", "%q is not one of %s", truncate(o.Kind, 40), strings.Join(oauthKinds, ", "))
	}
	if o.AuthStyle != "" && !slices.Contains(oauthAuthStyles, o.AuthStyle) {
		return fail("authStyle", "%q is not one of %s", truncate(o.AuthStyle, 40), strings.Join(oauthAuthStyles, ", "))
	}
	for _, u := range []struct {
		field, url string
		required   bool
	}{
		{"authorizeUrl", o.AuthorizeURL, true},
		{"tokenUrl", o.TokenURL, true},
		{"revokeUrl", o.RevokeURL, false},
	} {
		if u.url == "" {
			if u.required {
				return fail(u.field, "missing")
			}
			continue
		}
		if err := checkEndpointURL(u.url); err != nil {
			return fail(u.field, "%v", err)
		}
	}
	for i, sc := range o.Scopes {
		switch {
		case sc == "":
			return fail(fmt.Sprintf("scopes[%d]", i), "empty")
		case strings.ContainsFunc(sc, func(r rune) bool { return r <= ' ' || r == 0x7f }):
			return fail(fmt.Sprintf("scopes[%d]", i), "%q must not contain spaces or control characters", truncate(sc, 40))
		}
	}
	return nil
}

// checkEndpointURL checks a provider endpoint: client secrets and codes
// travel to it, so it must be https, except on loopback where tests run
// fake providers.
func checkEndpointURL(raw string) error {
	u, err := url.Parse(raw)
	switch {
	case err != nil:
		return errors.New("not a URL")
	case u.Scheme != "https" && u.Scheme != "http":
		return errors.New("scheme must be https")
	case u.Host == "":
		return errors.New("missing host")
	case u.User != nil:
		return errors.New("credentials in the URL are not allowed")
	case u.Fragment != "" || strings.Contains(raw, "#"):
		return errors.New("must not have a fragment")
	case u.Scheme == "http" && !isLoopback(u.Hostname()):
		return errors.New("scheme must be https (http only for 127.0.0.1, ::1 or localhost)")
	}
	return nil
}

func isLoopback(host string) bool {
	return host == "localhost" || host == "127.0.0.1" || host == "::1"
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// timeout returns the per-call bound of in.
func (in Integration) timeout() time.Duration {
	if in.Timeout > 0 {
		return in.Timeout
	}
	return DefaultTimeout
}
