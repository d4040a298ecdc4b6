package tools

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func writeConfig(t *testing.T, body string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "integrations.json")
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestLoadConfig(t *testing.T) {
	path := writeConfig(t, `{
  "integrations": [
    {
      "name": "jira",
      "category": "productivity",
      "description": "Jira issues",
      "timeout": "30s",
      "upstream": {"url": "https://mcp.example.com/mcp", "headers": {"Authorization": "Bearer {{access_token}}"}}
    },
    {"name": "notion", "timeout": "2m", "upstream": {"env": {"NOTION_TOKEN": "{{access_token}}", "BASE_URL": "http://127.0.0.1:9999"}}},
    {"name": "slack", "upstream": {"url": "https://slack-mcp.example.com/mcp"}}
  ]
}`)
	got, err := LoadConfig(path, Presets())
	if err != nil {
		t.Fatal(err)
	}
	presets := Presets()
	github, notion := presets[0], presets[1]
	notion.Timeout = 2 * time.Minute
	notion.Upstream.Env = map[string]string{"NOTION_TOKEN": "{{access_token}}", "BASE_URL": "http://127.0.0.1:9999"}
	slack := presets[2]
	slack.Upstream = Upstream{URL: "https://slack-mcp.example.com/mcp"}
	want := []Integration{github, notion, slack, {
		Name: "jira", Category: "productivity", Description: "Jira issues", Timeout: 30 * time.Second,
		Upstream: Upstream{URL: "https://mcp.example.com/mcp", Headers: map[string]string{"Authorization": "Bearer {{access_token}}"}},
	}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("LoadConfig (-want +got):\n%s", diff)
	}
	if _, err := NewRegistry(got...); err != nil {
		t.Errorf("NewRegistry of the loaded config: %v", err)
	}
}

func TestLoadConfigErrors(t *testing.T) {
	tests := []struct {
		name, body, want string
	}{
		{"syntax", "{\n  \"integrations\": [\n    {\"name\": }\n  ]\n}", `integrations.json: invalid JSON at line 3, column 15`},
		{"truncated", `{"integrations": [`, `integrations.json: invalid JSON`},
		{"trailing data", `{"integrations": []} []`, `integrations.json: unexpected data after the JSON value`},
		{"missing integrations", `{}`, `integrations.json: missing "integrations"`},
		{"unknown top-level field", `{"integrations": [], "extra": 1}`, `integrations.json: unknown field "extra"`},
		{"unknown field", `{"integrations": [{"name": "jira", "urll": "x"}]}`, `integrations.json: integration "jira": unknown field "urll"`},
		{"unknown upstream field", `{"integrations": [{"name": "jira", "upstream": {"comand": "x"}}]}`, `integrations.json: integration "jira": upstream: unknown field "comand"`},
		{"wrong type", `{"integrations": [{"name": "jira", "category": 3}]}`, `integrations.json: integration "jira": category: must be a string, not number`},
		{"wrong upstream type", `{"integrations": [{"name": "jira", "upstream": {"args": "x"}}]}`, `integrations.json: integration "jira": upstream.args: must be an array, not string`},
		{"missing name", `{"integrations": [{"name": "a", "upstream": {"command": "x"}}, {"upstream": {"command": "x"}}]}`, `integrations.json: integrations[1]: name: missing`},
		{"bad name", `{"integrations": [{"name": "Jira", "upstream": {"command": "x"}}]}`, `integrations.json: integration "Jira": name: "Jira" must match`},
		{"duplicate", `{"integrations": [{"name": "a", "upstream": {"command": "x"}}, {"name": "a", "upstream": {"command": "y"}}]}`, `integrations.json: integration "a": name: duplicate`},
		{"bad timeout", `{"integrations": [{"name": "jira", "timeout": "30", "upstream": {"command": "x"}}]}`, `integrations.json: integration "jira": timeout: "30" is not a duration such as "30s"`},
		{"zero timeout", `{"integrations": [{"name": "jira", "timeout": "0s", "upstream": {"command": "x"}}]}`, `integrations.json: integration "jira": timeout: must be positive`},
		{"no upstream", `{"integrations": [{"name": "jira"}]}`, `integrations.json: integration "jira": upstream: set exactly one of command and url`},
		{"both", `{"integrations": [{"name": "jira", "upstream": {"command": "x", "url": "https://a"}}]}`, `integrations.json: integration "jira": upstream: set exactly one of command and url`},
		{"scheme", `{"integrations": [{"name": "jira", "upstream": {"url": "ftp://a"}}]}`, `integrations.json: integration "jira": upstream.url: scheme must be http or https`},
		{"no host", `{"integrations": [{"name": "jira", "upstream": {"url": "https://"}}]}`, `integrations.json: integration "jira": upstream.url: missing host`},
		{"unknown placeholder", `{"integrations": [{"name": "jira", "upstream": {"command": "x", "env": {"T": "{{token}}"}}}]}`, `integrations.json: integration "jira": upstream.env.T: unknown placeholder {{token}}`},
		{"placeholder in args", `{"integrations": [{"name": "jira", "upstream": {"command": "x", "args": ["{{access_token}}"]}}]}`, `integrations.json: integration "jira": upstream.args[0]: placeholders are not allowed`},
		{"header placeholder", `{"integrations": [{"name": "jira", "upstream": {"url": "https://a", "headers": {"Authorization": "Bearer {{acess_token}}"}}}]}`, `integrations.json: integration "jira": upstream.headers.Authorization: unknown placeholder {{acess_token}}`},
		{"headers with command", `{"integrations": [{"name": "jira", "upstream": {"command": "x", "headers": {"A": "b"}}}]}`, `integrations.json: integration "jira": upstream.headers: only allowed with url`},
		{"preset override breaks it", `{"integrations": [{"name": "github", "upstream": {"url": "ftp://x"}}]}`, `integrations.json: integration "github": upstream.url: scheme must be http or https`},
		{"env on a url preset", `{"integrations": [{"name": "github", "upstream": {"env": {"A": "b"}}}]}`, `integrations.json: integration "github": upstream.env: only allowed with command`},
		{"unknown oauth field", `{"integrations": [{"name": "github", "oauth": {"clientSecret": "s"}}]}`, `integrations.json: integration "github": oauth: unknown field "clientSecret"`},
		{"oauth not an object", `{"integrations": [{"name": "github", "oauth": "https://a"}]}`, `integrations.json: integration "github": oauth: must be an object, not string`},
		{"oauth scopes type", `{"integrations": [{"name": "github", "oauth": {"scopes": "repo"}}]}`, `integrations.json: integration "github": oauth.scopes: must be an array, not string`},
		{"oauth pkce type", `{"integrations": [{"name": "github", "oauth": {"pkce": "yes"}}]}`, `integrations.json: integration "github": oauth.pkce: must be a bool, not string`},
		{"oauth kind", `{"integrations": [{"name": "github", "oauth": {"kind": "gitlab"}}]}`, `integrations.json: integration "github": oauth.kind: "gitlab" is not one of standard, notion, github, slack`},
		{"oauth auth style", `{"integrations": [{"name": "github", "oauth": {"authStyle": "header"}}]}`, `integrations.json: integration "github": oauth.authStyle: "header" is not one of basic, body`},
		{"oauth missing authorizeUrl", `{"integrations": [{"name": "jira", "upstream": {"command": "x"}, "oauth": {"tokenUrl": "https://a/token"}}]}`, `integrations.json: integration "jira": oauth.authorizeUrl: missing`},
		{"oauth missing tokenUrl", `{"integrations": [{"name": "jira", "upstream": {"command": "x"}, "oauth": {"authorizeUrl": "https://a/authorize"}}]}`, `integrations.json: integration "jira": oauth.tokenUrl: missing`},
		{"oauth emptied tokenUrl", `{"integrations": [{"name": "slack", "oauth": {"tokenUrl": ""}}]}`, `integrations.json: integration "slack": oauth.tokenUrl: missing`},
		{"oauth http tokenUrl", `{"integrations": [{"name": "notion", "oauth": {"tokenUrl": "http://api.notion.com/v1/oauth/token"}}]}`, `integrations.json: integration "notion": oauth.tokenUrl: scheme must be https (http only for 127.0.0.1, ::1 or localhost)`},
		{"oauth http on a lookalike", `{"integrations": [{"name": "notion", "oauth": {"tokenUrl": "http://127.0.0.1.example.com/token"}}]}`, `integrations.json: integration "notion": oauth.tokenUrl: scheme must be https`},
		{"oauth scheme", `{"integrations": [{"name": "notion", "oauth": {"authorizeUrl": "ftp://a/authorize"}}]}`, `integrations.json: integration "notion": oauth.authorizeUrl: scheme must be https`},
		{"oauth relative", `{"integrations": [{"name": "notion", "oauth": {"authorizeUrl": "/authorize"}}]}`, `integrations.json: integration "notion": oauth.authorizeUrl: scheme must be https`},
		{"oauth no host", `{"integrations": [{"name": "notion", "oauth": {"tokenUrl": "https:///token"}}]}`, `integrations.json: integration "notion": oauth.tokenUrl: missing host`},
		{"oauth not a url", `{"integrations": [{"name": "notion", "oauth": {"tokenUrl": "https://[::1"}}]}`, `integrations.json: integration "notion": oauth.tokenUrl: not a URL`},
		{"oauth userinfo", `{"integrations": [{"name": "notion", "oauth": {"tokenUrl": "https://id:secret@api.notion.com/v1/oauth/token"}}]}`, `integrations.json: integration "notion": oauth.tokenUrl: credentials in the URL are not allowed`},
		{"oauth fragment", `{"integrations": [{"name": "notion", "oauth": {"authorizeUrl": "https://api.notion.com/v1/oauth/authorize#x"}}]}`, `integrations.json: integration "notion": oauth.authorizeUrl: must not have a fragment`},
		{"oauth http revokeUrl", `{"integrations": [{"name": "slack", "oauth": {"revokeUrl": "http://slack.com/api/auth.revoke"}}]}`, `integrations.json: integration "slack": oauth.revokeUrl: scheme must be https`},
		{"oauth userinfo revokeUrl", `{"integrations": [{"name": "slack", "oauth": {"revokeUrl": "https://u@slack.com/api/auth.revoke"}}]}`, `integrations.json: integration "slack": oauth.revokeUrl: credentials in the URL are not allowed`},
		{"oauth empty scope", `{"integrations": [{"name": "github", "oauth": {"scopes": ["repo", ""]}}]}`, `integrations.json: integration "github": oauth.scopes[1]: empty`},
		{"oauth scope with space", `{"integrations": [{"name": "github", "oauth": {"scopes": ["repo read:user"]}}]}`, `integrations.json: integration "github": oauth.scopes[0]: "repo read:user" must not contain spaces`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := writeConfig(t, tt.body)
			_, err := LoadConfig(path, Presets())
			if err == nil {
				t.Fatalf("LoadConfig succeeded, want error containing %q", tt.want)
			}
			// The error starts with the path as given.
			msg := strings.Replace(err.Error(), path, "integrations.json", 1)
			if !strings.HasPrefix(err.Error(), path+": ") || !strings.Contains(msg, tt.want) {
				t.Errorf("error %q\nwant it to start with the path and contain %q", msg, tt.want)
			}
		})
	}
}

func TestLoadConfigOAuth(t *testing.T) {
	path := writeConfig(t, `{
  "integrations": [
    {"name": "github", "oauth": {"tokenUrl": "http://127.0.0.1:8081/login/oauth/access_token", "pkce": false, "scopes": ["repo"]}},
    {"name": "slack", "oauth": {"authStyle": "basic", "revokeUrl": ""}},
    {
      "name": "jira",
      "upstream": {"url": "https://mcp.example.com/mcp"},
      "oauth": {
        "authorizeUrl": "https://auth.example.com/authorize",
        "tokenUrl": "https://auth.example.com/token",
        "revokeUrl": "http://[::1]:9000/revoke",
        "scopes": ["read:jira-work", "offline_access"],
        "authStyle": "body"
      }
    },
    {"name": "local", "upstream": {"command": "x"}, "oauth": {"kind": "standard", "authorizeUrl": "http://localhost:9000/a", "tokenUrl": "http://localhost:9000/t", "pkce": true}}
  ]
}`)
	got, err := LoadConfig(path, Presets())
	if err != nil {
		t.Fatal(err)
	}
	presets := Presets()
	github, notion, slack := presets[0], presets[1], presets[2]
	github.OAuth.TokenURL = "http://127.0.0.1:8081/login/oauth/access_token"
	github.OAuth.PKCE = new(false)
	github.OAuth.Scopes = []string{"repo"}
	slack.OAuth.AuthStyle = "basic"
	slack.OAuth.RevokeURL = ""
	want := []Integration{github, notion, slack, {
		Name:     "jira",
		Upstream: Upstream{URL: "https://mcp.example.com/mcp"},
		OAuth: &OAuth{
			AuthorizeURL: "https://auth.example.com/authorize",
			TokenURL:     "https://auth.example.com/token",
			RevokeURL:    "http://[::1]:9000/revoke",
			Scopes:       []string{"read:jira-work", "offline_access"},
			AuthStyle:    "body",
		},
	}, {
		Name:     "local",
		Upstream: Upstream{Command: "x"},
		OAuth:    &OAuth{Kind: "standard", AuthorizeURL: "http://localhost:9000/a", TokenURL: "http://localhost:9000/t", PKCE: new(true)},
	}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("LoadConfig (-want +got):\n%s", diff)
	}
	if got[3].OAuth.UsesPKCE() != true || got[0].OAuth.UsesPKCE() != false {
		t.Errorf("UsesPKCE: jira %v, github %v; want true (the default), false", got[3].OAuth.UsesPKCE(), got[0].OAuth.UsesPKCE())
	}
	// The override changed the loaded copy, not the presets.
	if p := Presets()[0].OAuth; p.TokenURL != "https://github.com/login/oauth/access_token" || !*p.PKCE {
		t.Errorf("Presets() changed by LoadConfig: %+v", p)
	}
	if _, err := NewRegistry(got...); err != nil {
		t.Errorf("NewRegistry of the loaded config: %v", err)
	}
}

func TestLoadConfigMissingFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "nope.json")
	_, err := LoadConfig(path, nil)
	if err == nil || !strings.Contains(err.Error(), path) {
		t.Errorf("LoadConfig(missing) = %v, want an error naming %s", err, path)
	}
}
