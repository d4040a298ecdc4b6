package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/connectors-gateway/connectors/tools"
)

// TestIntegrationsPrepare: "connectors integrations prepare" has npx
// install each package a stdio integration runs through it, at its pinned
// version, with the environment a stdio upstream gets (not the gateway's);
// HTTP upstreams and other commands have nothing to prepare; a package npx
// cannot install fails the command naming the integration, after the
// others were prepared; an unknown name is a usage error.
func TestIntegrationsPrepare(t *testing.T) {
	bin, record := t.TempDir(), filepath.Join(t.TempDir(), "npx-calls")
	npx := "#!/bin/sh\n" +
		`echo "$@" "HOME=$HOME" "SECRET=$CONNECTORS_TEST_SECRET" >> ` + record + "\n" +
		`case "$*" in *broken@*) echo "npm error 404 Not Found - broken@9.9.9" >&2; exit 1;; esac` + "\n" +
		"echo v22.0.0\n"
	if err := os.WriteFile(filepath.Join(bin, "npx"), []byte(npx), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", bin+string(os.PathListSeparator)+os.Getenv("PATH"))
	t.Setenv("CONNECTORS_TEST_SECRET", "must-not-reach-npx")

	g := newGatewayWithIntegrations(t, map[string]any{"name": "broken", "upstream": map[string]any{
		"command": "npx", "args": []string{"-y", "broken@9.9.9"}, "env": map[string]string{"T": "{{access_token}}"}}})
	out, err := g.run("", "integrations", "prepare", "slack", "github", "notion")
	if err != nil {
		t.Fatalf("prepare slack github notion: %v\n%s", err, out)
	}
	for _, want := range []string{
		"slack            prepared slack-mcp-server@" + tools.SlackServerVersion,
		"github           nothing to prepare (an HTTP upstream)",
		"notion           nothing to prepare (runs ", // the tests' notion runs node itself
	} {
		if !strings.Contains(out, want) {
			t.Errorf("prepare said:\n%s\nwant %q in it", out, want)
		}
	}
	calls, _ := os.ReadFile(record)
	if want := "--yes --package=slack-mcp-server@" + tools.SlackServerVersion + " -- node --version HOME=" + os.Getenv("HOME") + " SECRET=\n"; string(calls) != want {
		t.Errorf("npx was run as:\n%s\nwant:\n%s", calls, want)
	}

	out, err = g.run("", "integrations", "prepare")
	if err == nil || !strings.Contains(err.Error(), "broken") || !strings.Contains(out, "broken           FAILED to prepare broken@9.9.9") ||
		!strings.Contains(out, "404 Not Found") || !strings.Contains(out, "slack            prepared") {
		t.Errorf("prepare with a broken package: %v\n%s", err, out)
	}
	if _, err := g.run("", "integrations", "prepare", "nope"); err == nil || !strings.Contains(err.Error(), `no integration "nope"`) {
		t.Errorf("prepare nope: %v", err)
	}
}
