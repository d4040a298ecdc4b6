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

func TestLoadConfigMissingFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "nope.json")
	_, err := LoadConfig(path, nil)
	if err == nil || !strings.Contains(err.Error(), path) {
		t.Errorf("LoadConfig(missing) = %v, want an error naming %s", err, path)
	}
}
