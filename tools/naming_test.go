package tools

import (
	"fmt"
	"strings"
	"testing"
)

func TestExposedName(t *testing.T) {
	long := strings.Repeat("x", 80)
	tests := []struct {
		integration, tool string
		want              string // "" when only the form is checked
		marked            bool
	}{
		{"notion", "API-post-search", "notion_API-post-search", false},
		{"github", "create_issue", "github_create_issue", false},
		{"notion", "", "notion_", false},
		{"notion", "a.b", "", true},
		{"notion", "a/b", "", true},
		{"notion", "héllo", "", true},
		{"notion", "日本語", "", true},
		{"notion", "with space", "", true},
		{"notion", long, "", true},
		{"Bad_Integration", "x", "", true},
		{"notion", "x_0123abcd", "", true},                           // looks marked: marked for real
		{"slack", "slack_post_message", "slack_post_message", false}, // never slack_slack_…
		{"slack", "slack_", "slack_slack_", false},                   // the prefix alone is not one
		{"slack", "slackpost", "slack_slackpost", false},
	}
	for _, tt := range tests {
		got := ExposedName(tt.integration, tt.tool)
		if !ExposedNameRE.MatchString(got) {
			t.Errorf("ExposedName(%q, %q) = %q does not match %s", tt.integration, tt.tool, got, ExposedNameRE)
		}
		if tt.want != "" && got != tt.want {
			t.Errorf("ExposedName(%q, %q) = %q, want %q", tt.integration, tt.tool, got, tt.want)
		}
		if marked := plainSuffixRE.MatchString(got); marked != tt.marked {
			t.Errorf("ExposedName(%q, %q) = %q, marked = %v, want %v", tt.integration, tt.tool, got, marked, tt.marked)
		}
		if again := ExposedName(tt.integration, tt.tool); again != got {
			t.Errorf("ExposedName(%q, %q) is not stable: %q then %q", tt.integration, tt.tool, got, again)
		}
	}
	// Readable prefix kept.
	// The marked form of a tool whose plain name another tool has.
	if plain, marked := ExposedName("slack", "post"), MarkedName("slack", "post"); marked == plain || !strings.HasPrefix(marked, "slack_post_") || marked == MarkedName("slack", "slack_post") {
		t.Errorf("MarkedName(slack, post) = %q beside ExposedName %q and MarkedName(slack, slack_post) %q", marked, plain, MarkedName("slack", "slack_post"))
	}
	if got := ExposedName("notion", "a.b"); !strings.HasPrefix(got, "notion_a_b_") {
		t.Errorf("ExposedName(notion, a.b) = %q, want the prefix notion_a_b_", got)
	}
	if got := ExposedName("notion", long); len(got) != 64 || !strings.HasPrefix(got, "notion_xxx") {
		t.Errorf("ExposedName(notion, long) = %q (%d), want 64 characters starting notion_xxx", got, len(got))
	}
}

func TestExposedNameCollisions(t *testing.T) {
	// Names that sanitize or truncate alike must still differ.
	groups := [][2]string{
		{"a.b", "a/b"}, {"a.b", "a_b"}, {"a b", "a\tb"}, {"é", "è"},
		{strings.Repeat("y", 70) + "1", strings.Repeat("y", 70) + "2"},
	}
	for _, g := range groups {
		a, b := ExposedName("svc", g[0]), ExposedName("svc", g[1])
		if a == b {
			t.Errorf("ExposedName(svc, %q) == ExposedName(svc, %q) == %q", g[0], g[1], a)
		}
	}
	// Across integrations: ("a", "b_c") vs ("a_b", "c") look alike joined.
	if ExposedName("a", "b_c") == ExposedName("a_b", "c") {
		t.Error(`("a", "b_c") and ("a_b", "c") collide`)
	}
	// Many tools, all distinct.
	seen := map[string]string{}
	for i := range 5000 {
		tool := fmt.Sprintf("tool.%d/%s", i, strings.Repeat("z", i%90))
		name := ExposedName("integration", tool)
		if prev, dup := seen[name]; dup {
			t.Fatalf("%q and %q both expose as %q", prev, tool, name)
		}
		seen[name] = tool
	}
}

func FuzzExposedName(f *testing.F) {
	f.Add("notion", "API-post-search", "other")
	f.Add("github", "a.b", "a/b")
	f.Add("x", strings.Repeat("long", 30), "日本語")
	f.Add("", "", "_")
	f.Fuzz(func(t *testing.T, integration, tool, other string) {
		name := ExposedName(integration, tool)
		if !ExposedNameRE.MatchString(name) {
			t.Fatalf("ExposedName(%q, %q) = %q does not match %s", integration, tool, name, ExposedNameRE)
		}
		if ExposedName(integration, tool) != name {
			t.Fatal("not deterministic")
		}
		if other != tool && ExposedName(integration, other) == name {
			t.Fatalf("ExposedName(%q, %q) == ExposedName(%q, %q) == %q", integration, tool, integration, other, name)
		}
	})
}
