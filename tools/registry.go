package tools

import (
	"errors"
	"fmt"
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
		},
		{
			Name:        "notion",
			Category:    "productivity",
			Description: "Notion pages, databases and search.",
			Upstream: Upstream{
				Command: "npx",
				Args:    []string{"-y", "@notionhq/notion-mcp-server"},
				Env:     map[string]string{"NOTION_TOKEN": "{{access_token}}"},
			},
		},
		{
			Name:        "slack",
			Category:    "communication",
			Description: "Slack channels, messages and users.",
			Upstream: Upstream{
				Command: "npx",
				Args:    []string{"-y", "@modelcontextprotocol/server-slack"},
				Env: map[string]string{
					"SLACK_BOT_TOKEN": "{{access_token}}",
					"SLACK_TEAM_ID":   "{{extra.team_id}}",
				},
			},
		},
	}
}

// clone returns a deep copy, so callers can't change a registry's maps.
func (in Integration) clone() Integration {
	in.Upstream.Args = slices.Clone(in.Upstream.Args)
	in.Upstream.Env = cloneMap(in.Upstream.Env)
	in.Upstream.Headers = cloneMap(in.Upstream.Headers)
	return in
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
	up := in.Upstream
	if (up.Command == "") == (up.URL == "") {
		return fail("upstream", "set exactly one of command and url")
	}
	if up.Command != "" {
		if hasPlaceholder(up.Command) {
			return fail("upstream.command", "placeholders are not allowed (use env)")
		}
		for i, a := range up.Args {
			// argv is visible to every process on the host: no credentials.
			if hasPlaceholder(a) {
				return fail(fmt.Sprintf("upstream.args[%d]", i), "placeholders are not allowed, argv is visible to other processes (use env)")
			}
		}
		if len(up.Headers) > 0 {
			return fail("upstream.headers", "only allowed with url")
		}
		for _, k := range sortedKeys(up.Env) {
			if !envNameRE.MatchString(k) {
				return fail("upstream.env", "invalid variable name %q", truncate(k, 40))
			}
			if err := checkTemplate(up.Env[k]); err != nil {
				return fail("upstream.env."+k, "%v", err)
			}
		}
		return nil
	}
	if len(up.Args) > 0 {
		return fail("upstream.args", "only allowed with command")
	}
	if len(up.Env) > 0 {
		return fail("upstream.env", "only allowed with command")
	}
	if hasPlaceholder(up.URL) {
		return fail("upstream.url", "placeholders are not allowed, URLs end up in logs (use headers)")
	}
	u, err := url.Parse(up.URL)
	switch {
	case err != nil:
		return fail("upstream.url", "not a URL")
	case u.Scheme != "http" && u.Scheme != "https":
		return fail("upstream.url", "scheme must be http or https")
	case u.Host == "":
		return fail("upstream.url", "missing host")
	case u.User != nil:
		return fail("upstream.url", "credentials in the URL are not allowed (use headers)")
	}
	for _, k := range sortedKeys(up.Headers) {
		if !headerNameRE.MatchString(k) {
			return fail("upstream.headers", "invalid header name %q", truncate(k, 40))
		}
		v := up.Headers[k]
		if strings.ContainsAny(v, "\r\n\x00") {
			return fail("upstream.headers."+k, "value must not contain CR, LF or NUL")
		}
		if err := checkTemplate(v); err != nil {
			return fail("upstream.headers."+k, "%v", err)
		}
	}
	return nil
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
