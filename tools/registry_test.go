package tools

import (
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestPresetsAreValid(t *testing.T) {
	r, err := NewRegistry(Presets()...)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, in := range r.All() {
		names = append(names, in.Name+"/"+in.Category)
	}
	if diff := cmp.Diff([]string{"github/code", "notion/productivity", "slack/communication"}, names); diff != "" {
		t.Errorf("All() (-want +got):\n%s", diff)
	}
	slack, ok := r.Get("slack")
	if !ok {
		t.Fatal("Get(slack) not found")
	}
	want := map[string]string{"SLACK_MCP_XOXB_TOKEN": "{{access_token}}", "SLACK_MCP_ADD_MESSAGE_TOOL": "true", "SLACK_MCP_REACTION_TOOL": "true"}
	if diff := cmp.Diff(want, slack.Upstream.Env); diff != "" {
		t.Errorf("slack env (-want +got):\n%s", diff)
	}
	// Every package a preset runs through npx has an exact version.
	exact := regexp.MustCompile(`^(@[a-z0-9-]+/)?[a-z0-9-]+@\d+\.\d+\.\d+$`)
	for _, in := range r.All() {
		if in.Upstream.Command == "npx" {
			if spec, ok := NPXPackage(in.Upstream); !ok || !exact.MatchString(spec) {
				t.Errorf("%s runs %q, not a package at an exact version", in.Name, in.Upstream.Args)
			}
		}
	}
	// The registry hands out copies.
	slack.Upstream.Env["SLACK_MCP_XOXB_TOKEN"] = "changed"
	again, _ := r.Get("slack")
	if again.Upstream.Env["SLACK_MCP_XOXB_TOKEN"] != "{{access_token}}" {
		t.Error("changing a returned integration changed the registry")
	}
	if _, ok := r.Get("jira"); ok {
		t.Error("Get(jira) found an integration that isn't there")
	}
}

func TestNewRegistryErrors(t *testing.T) {
	stdio := func(mod func(*Integration)) Integration {
		in := Integration{Name: "x", Upstream: Upstream{Command: "srv", Env: map[string]string{"T": "{{access_token}}"}}}
		mod(&in)
		return in
	}
	web := func(mod func(*Integration)) Integration {
		in := Integration{Name: "x", Upstream: Upstream{URL: "https://mcp.example.com/mcp", Headers: map[string]string{"Authorization": "Bearer {{access_token}}"}}}
		mod(&in)
		return in
	}
	withOAuth := func(mod func(*OAuth)) Integration {
		in := web(func(in *Integration) {
			in.OAuth = &OAuth{AuthorizeURL: "https://auth.example.com/authorize", TokenURL: "https://auth.example.com/token"}
		})
		mod(in.OAuth)
		return in
	}
	tests := []struct {
		name string
		in   []Integration
		want string
	}{
		{"missing name", []Integration{stdio(func(in *Integration) { in.Name = "" })}, `integrations[0]: name: missing`},
		{"bad name", []Integration{stdio(func(in *Integration) { in.Name = "Jira_1" })}, `integration "Jira_1": name: "Jira_1" must match ^[a-z][a-z0-9-]{0,31}$`},
		{"long name", []Integration{stdio(func(in *Integration) { in.Name = strings.Repeat("a", 33) })}, `name: "aaaa`},
		{"duplicate", []Integration{stdio(func(*Integration) {}), web(func(*Integration) {})}, `integration "x": name: duplicate`},
		{"neither", []Integration{{Name: "x"}}, `integration "x": upstream: set exactly one of command and url`},
		{"both", []Integration{stdio(func(in *Integration) { in.Upstream.URL = "https://a" })}, `upstream: set exactly one of command and url`},
		{"negative timeout", []Integration{stdio(func(in *Integration) { in.Timeout = -time.Second })}, `integration "x": timeout: must not be negative`},
		{"placeholder in args", []Integration{stdio(func(in *Integration) { in.Upstream.Args = []string{"--token", "{{access_token}}"} })}, `upstream.args[1]: placeholders are not allowed`},
		{"placeholder in command", []Integration{stdio(func(in *Integration) { in.Upstream.Command = "{{access_token}}" })}, `upstream.command: placeholders are not allowed`},
		{"headers with command", []Integration{stdio(func(in *Integration) { in.Upstream.Headers = map[string]string{"A": "b"} })}, `upstream.headers: only allowed with url`},
		{"bad env name", []Integration{stdio(func(in *Integration) { in.Upstream.Env["1X"] = "v" })}, `upstream.env: invalid variable name "1X"`},
		{"unknown placeholder", []Integration{stdio(func(in *Integration) { in.Upstream.Env["T"] = "{{acces_token}}" })}, `integration "x": upstream.env.T: unknown placeholder {{acces_token}}`},
		{"unclosed placeholder", []Integration{stdio(func(in *Integration) { in.Upstream.Env["T"] = "{{access_token" })}, `upstream.env.T: unclosed placeholder`},
		{"bad extra", []Integration{stdio(func(in *Integration) { in.Upstream.Env["T"] = "{{extra.}}" })}, `upstream.env.T: unknown placeholder {{extra.}}`},
		{"args with url", []Integration{web(func(in *Integration) { in.Upstream.Args = []string{"a"} })}, `upstream.args: only allowed with command`},
		{"env with url", []Integration{web(func(in *Integration) { in.Upstream.Env = map[string]string{"A": "b"} })}, `upstream.env: only allowed with command`},
		{"scheme", []Integration{web(func(in *Integration) { in.Upstream.URL = "ftp://mcp.example.com" })}, `integration "x": upstream.url: scheme must be http or https`},
		{"no host", []Integration{web(func(in *Integration) { in.Upstream.URL = "https:///mcp" })}, `upstream.url: missing host`},
		{"not a url", []Integration{web(func(in *Integration) { in.Upstream.URL = "http://[::1" })}, `upstream.url: not a URL`},
		{"userinfo", []Integration{web(func(in *Integration) { in.Upstream.URL = "https://u:p@mcp.example.com" })}, `upstream.url: credentials in the URL are not allowed`},
		{"placeholder in url", []Integration{web(func(in *Integration) { in.Upstream.URL = "https://a/?t={{access_token}}" })}, `upstream.url: placeholders are not allowed`},
		{"bad header name", []Integration{web(func(in *Integration) { in.Upstream.Headers["X Y"] = "v" })}, `upstream.headers: invalid header name "X Y"`},
		{"header newline", []Integration{web(func(in *Integration) { in.Upstream.Headers["X"] = "a\r\nB: c" })}, `upstream.headers.X: value must not contain CR, LF or NUL`},
		{"header placeholder", []Integration{web(func(in *Integration) { in.Upstream.Headers["X"] = "{{password}}" })}, `upstream.headers.X: unknown placeholder {{password}}`},
		{"oauth kind", []Integration{withOAuth(func(o *OAuth) { o.Kind = "Notion" })}, `integration "x": oauth.kind: "Notion" is not one of standard, notion, github, slack`},
		{"oauth auth style", []Integration{withOAuth(func(o *OAuth) { o.AuthStyle = "post" })}, `integration "x": oauth.authStyle: "post" is not one of basic, body`},
		{"oauth no authorize url", []Integration{withOAuth(func(o *OAuth) { o.AuthorizeURL = "" })}, `integration "x": oauth.authorizeUrl: missing`},
		{"oauth no token url", []Integration{withOAuth(func(o *OAuth) { o.TokenURL = "" })}, `integration "x": oauth.tokenUrl: missing`},
		{"oauth http token url", []Integration{withOAuth(func(o *OAuth) { o.TokenURL = "http://auth.example.com/token" })}, `oauth.tokenUrl: scheme must be https (http only for 127.0.0.1, ::1 or localhost)`},
		{"oauth http 0.0.0.0", []Integration{withOAuth(func(o *OAuth) { o.TokenURL = "http://0.0.0.0:80/token" })}, `oauth.tokenUrl: scheme must be https`},
		{"oauth relative url", []Integration{withOAuth(func(o *OAuth) { o.AuthorizeURL = "auth.example.com/authorize" })}, `oauth.authorizeUrl: scheme must be https`},
		{"oauth no host", []Integration{withOAuth(func(o *OAuth) { o.AuthorizeURL = "https:/authorize" })}, `oauth.authorizeUrl: missing host`},
		{"oauth not a url", []Integration{withOAuth(func(o *OAuth) { o.RevokeURL = "https://a b/%zz" })}, `oauth.revokeUrl: not a URL`},
		{"oauth userinfo", []Integration{withOAuth(func(o *OAuth) { o.TokenURL = "https://client:secret@auth.example.com/token" })}, `oauth.tokenUrl: credentials in the URL are not allowed`},
		{"oauth loopback userinfo", []Integration{withOAuth(func(o *OAuth) { o.RevokeURL = "http://client@127.0.0.1:1/revoke" })}, `oauth.revokeUrl: credentials in the URL are not allowed`},
		{"oauth fragment", []Integration{withOAuth(func(o *OAuth) { o.TokenURL = "https://auth.example.com/token#" })}, `oauth.tokenUrl: must not have a fragment`},
		{"oauth empty scope", []Integration{withOAuth(func(o *OAuth) { o.Scopes = []string{""} })}, `integration "x": oauth.scopes[0]: empty`},
		{"oauth scope with tab", []Integration{withOAuth(func(o *OAuth) { o.Scopes = []string{"a", "b\tc"} })}, `oauth.scopes[1]: "b\tc" must not contain spaces or control characters`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := NewRegistry(tt.in...)
			if err == nil {
				t.Fatalf("NewRegistry succeeded, want error containing %q", tt.want)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not contain %q", err, tt.want)
			}
		})
	}
}

func TestPresetsOAuth(t *testing.T) {
	r, err := NewRegistry(Presets()...)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]*OAuth{
		"github": {
			Kind:         "github",
			AuthorizeURL: "https://github.com/login/oauth/authorize",
			TokenURL:     "https://github.com/login/oauth/access_token",
			RevokeURL:    "https://api.github.com/applications/{client_id}/grant",
			Scopes:       []string{"repo", "read:user"},
			AuthStyle:    "body",
			PKCE:         new(true),
		},
		"notion": {
			Kind:         "notion",
			AuthorizeURL: "https://api.notion.com/v1/oauth/authorize",
			TokenURL:     "https://api.notion.com/v1/oauth/token",
			AuthStyle:    "basic",
			PKCE:         new(false),
		},
		"slack": {
			Kind:         "slack",
			AuthorizeURL: "https://slack.com/oauth/v2/authorize",
			TokenURL:     "https://slack.com/api/oauth.v2.access",
			RevokeURL:    "https://slack.com/api/auth.revoke",
			Scopes:       []string{"channels:history", "channels:read", "chat:write", "reactions:write", "users:read"},
			AuthStyle:    "body",
			PKCE:         new(false),
		},
	}
	got := map[string]*OAuth{}
	for _, in := range r.All() {
		got[in.Name] = in.OAuth
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("presets' OAuth (-want +got):\n%s", diff)
	}

	// The registry hands out deep copies of OAuth too.
	gh, _ := r.Get("github")
	gh.OAuth.Scopes[0] = "admin:org"
	*gh.OAuth.PKCE = false
	gh.OAuth.TokenURL = "https://evil.example.com/token"
	again, _ := r.Get("github")
	if diff := cmp.Diff(want["github"], again.OAuth); diff != "" {
		t.Errorf("changing a returned integration's OAuth changed the registry (-want +got):\n%s", diff)
	}
}

func TestRender(t *testing.T) {
	vars := map[string]string{"access_token": "tok", "token_type": "Bearer", "extra.team_id": "T1"}
	tests := []struct{ in, want, err string }{
		{"Bearer {{access_token}}", "Bearer tok", ""},
		{"{{ token_type }} {{access_token}}", "Bearer tok", ""},
		{"{{extra.team_id}}", "T1", ""},
		{"plain", "plain", ""},
		{"{{refresh_token}}", "", "no value for placeholder {{refresh_token}}"},
		{"{{extra.other}}", "", "no value for placeholder {{extra.other}}"},
	}
	for _, tt := range tests {
		got, err := render(tt.in, vars)
		if tt.err != "" {
			if err == nil || err.Error() != tt.err {
				t.Errorf("render(%q) error = %v, want %q", tt.in, err, tt.err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("render(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
}

// TestIntegrationEqual changes every field of a complete Integration in
// turn (found by reflection, so a new field is covered without a line
// here) and expects equal to notice each.
func TestIntegrationEqual(t *testing.T) {
	pkce := true
	base := Integration{
		Name: "n", Category: "c", Description: "d", Timeout: time.Second, Protocol: "p",
		Upstream: Upstream{Command: "cmd", Args: []string{"a"}, Env: map[string]string{"K": "v"},
			URL: "http://u", Headers: map[string]string{"H": "v"}},
		OAuth: &OAuth{Kind: "k", AuthorizeURL: "a", TokenURL: "t", RevokeURL: "r",
			Scopes: []string{"s"}, AuthStyle: "basic", PKCE: &pkce},
	}
	same := base.clone()
	if !base.equal(&same) {
		t.Fatal("a clone is not equal")
	}
	var leaves int
	var walk func(v reflect.Value, path string)
	walk = func(v reflect.Value, path string) {
		switch v.Kind() {
		case reflect.Struct:
			for i := range v.NumField() {
				walk(v.Field(i), path+"."+v.Type().Field(i).Name)
			}
			return
		case reflect.Pointer:
			if v.IsNil() {
				t.Fatalf("%s: nil in the complete Integration", path)
			}
			walk(v.Elem(), path)
			return
		}
		leaves++
		// Mutate this leaf in a fresh clone: find it again by path.
		changed := base.clone()
		leaf := reflect.ValueOf(&changed).Elem()
		for _, name := range strings.Split(path, ".")[1:] {
			if leaf.Kind() == reflect.Pointer {
				leaf = leaf.Elem()
			}
			leaf = leaf.FieldByName(name)
		}
		if leaf.Kind() == reflect.Pointer {
			leaf = leaf.Elem()
		}
		switch leaf.Kind() {
		case reflect.String:
			leaf.SetString(leaf.String() + "x")
		case reflect.Int64:
			leaf.SetInt(leaf.Int() + 1)
		case reflect.Bool:
			leaf.SetBool(!leaf.Bool())
		case reflect.Slice:
			leaf.Set(reflect.Append(leaf, reflect.ValueOf("x")))
		case reflect.Map:
			leaf.SetMapIndex(reflect.ValueOf("X"), reflect.ValueOf("x"))
		default:
			t.Fatalf("%s: no mutation for kind %s; teach the test and equal", path, leaf.Kind())
		}
		if base.equal(&changed) || changed.equal(&base) {
			t.Errorf("equal misses a change of %s", path)
		}
	}
	walk(reflect.ValueOf(base), "Integration")
	if leaves < 17 {
		t.Fatalf("walked %d fields", leaves)
	}

	// Presence of the optional parts counts; nil lists and maps are empty ones.
	for name, change := range map[string]func(*Integration){
		"no OAuth": func(in *Integration) { in.OAuth = nil },
		"no PKCE":  func(in *Integration) { in.OAuth.PKCE = nil },
	} {
		changed := base.clone()
		change(&changed)
		if base.equal(&changed) || changed.equal(&base) {
			t.Errorf("%s: equal", name)
		}
	}
	a, b := Integration{Upstream: Upstream{Args: []string{}, Env: map[string]string{}}}, Integration{}
	if !a.equal(&b) {
		t.Error("empty and nil lists and maps differ")
	}
}
