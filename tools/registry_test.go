package tools

import (
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
	want := map[string]string{"SLACK_BOT_TOKEN": "{{access_token}}", "SLACK_TEAM_ID": "{{extra.team_id}}"}
	if diff := cmp.Diff(want, slack.Upstream.Env); diff != "" {
		t.Errorf("slack env (-want +got):\n%s", diff)
	}
	// The registry hands out copies.
	slack.Upstream.Env["SLACK_BOT_TOKEN"] = "changed"
	again, _ := r.Get("slack")
	if again.Upstream.Env["SLACK_BOT_TOKEN"] != "{{access_token}}" {
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
