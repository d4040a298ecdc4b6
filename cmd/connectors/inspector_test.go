package main

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/connectors-gateway/connectors/internal/testenv"
)

// inspector runs the real MCP Inspector CLI with args and returns its
// stdout, failing the test on a non-zero exit.
func inspector(t *testing.T, g *gateway, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	argv := testenv.NodeTool(t, "inspector", append([]string{"--cli"}, args...)...)
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	home := t.TempDir()
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + home, "MCP_STORAGE_DIR=" + home}
	for k, v := range g.env {
		if k != "PATH" && k != "HOME" {
			cmd.Env = append(cmd.Env, k+"="+v)
		}
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("inspector %s: %v\nstdout: %s\nstderr: %s", strings.Join(args, " "), err, out, stderr.String())
	}
	return string(out)
}

// buildGateway builds the connectors binary for clients that start it as a
// stdio server.
func buildGateway(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "connectors")
	cmd := exec.Command("go", "build", "-o", bin, ".")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

func TestInspectorOverHTTP(t *testing.T) {
	g := newGateway(t)
	addr := g.serve()
	url := "http://" + addr + "/mcp"
	auth := "Authorization: Bearer " + g.keys["tenant-a"]

	var list struct {
		Tools []struct{ Name string } `json:"tools"`
	}
	out := inspector(t, g, url, "--transport", "http", "--header", auth, "--method", "tools/list")
	if err := json.Unmarshal([]byte(out), &list); err != nil {
		t.Fatalf("tools/list output: %v\n%s", err, out)
	}
	names := map[string]bool{}
	for _, tool := range list.Tools {
		names[tool.Name] = true
	}
	for _, want := range []string{"notion_API-get-self", "notion_API-post-search", "everything_echo"} {
		if !names[want] {
			t.Errorf("tools/list lacks %s (got %d tools)", want, len(list.Tools))
		}
	}

	out = inspector(t, g, url, "--transport", "http", "--header", auth,
		"--method", "tools/call", "--tool-name", "notion_API-post-search", "--tool-args-json", `{"query":"roadmap"}`)
	if !strings.Contains(out, "Acme Bot: roadmap") {
		t.Errorf("tools/call through the Inspector = %s, want tenant-a's search result", out)
	}
	g.assertNoSecrets()
}

func TestInspectorOverStdio(t *testing.T) {
	g := newGateway(t)
	bin := buildGateway(t)
	// The Inspector gives a stdio server only the variables named with -e.
	out := inspector(t, g, "-e", "CONNECTORS_DATA_DIR="+g.env["CONNECTORS_DATA_DIR"],
		"-e", "CONNECTORS_CONFIG="+g.env["CONNECTORS_CONFIG"], bin, "stdio", "--tenant", "tenant-b",
		"--method", "tools/call", "--tool-name", "notion_API-get-self")
	if !strings.Contains(out, "Beta Bot") {
		t.Errorf("stdio tools/call as tenant-b = %s, want Beta Bot", out)
	}
	for _, r := range g.notion.Requests() {
		if r.Token != tokenB {
			t.Errorf("a request reached Notion with another token than tenant-b's")
		}
	}
}
