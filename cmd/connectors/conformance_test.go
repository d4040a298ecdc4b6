package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/connectors-gateway/connectors/internal/testenv"
)

// startConformanceFixture builds and starts testdata/upstream-conformance
// (the upstream the official suite expects: its tools, resources and
// prompts) on a free loopback port, and returns its MCP URL.
func startConformanceFixture(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "conformance-fixture")
	build := exec.Command("go", "build", "-o", bin, "./testdata/upstream-conformance")
	build.Dir = testenv.Root()
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building the conformance fixture: %v\n%s", err, out)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	cmd := exec.Command(bin)
	cmd.Env = append(os.Environ(), "CONFORMANCE_ADDR="+addr)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	for start := time.Now(); ; time.Sleep(50 * time.Millisecond) {
		if resp, err := http.Get("http://" + addr + "/health"); err == nil {
			resp.Body.Close()
			break
		}
		if time.Since(start) > 20*time.Second {
			t.Fatal("the conformance fixture did not start")
		}
	}
	return "http://" + addr + "/mcp"
}

// conformanceGateway is a gateway fronting the conformance fixture (whose
// tools ask the agent for sampling and elicitation with server-initiated
// requests) as integration "conformance", with tenant-a's credential.
func conformanceGateway(t *testing.T) *gateway {
	t.Helper()
	fixture := startConformanceFixture(t)
	g := newGatewayWithIntegrations(t, map[string]any{
		"name": "conformance", "category": "testing",
		// Server-initiated requests exist in the initialize era only.
		"protocol": "2025-11-25",
		"upstream": map[string]any{
			"url":     fixture,
			"headers": map[string]string{"X-Upstream-Token": "{{access_token}}"},
		},
	})
	g.mustRun(`{"accessToken": "conformance-token"}`, "credential", "put", "--tenant", "tenant-a", "--integration", "conformance")
	g.serve()
	return g
}

// TestConformance runs the official MCP conformance suite (active server
// scenarios) against /mcp/conformance, the gateway fronting the fixture
// upstream for a tenant. The suite cannot send credentials, so a loopback
// proxy adds tenant-a's API key, as an agent's MCP client would.
// testdata/conformance/expected-failures.yml lists, with reasons, the
// scenarios that do not pass yet.
func TestConformance(t *testing.T) {
	g := conformanceGateway(t)
	addr := g.addr

	target, _ := url.Parse("http://" + addr)
	proxy := httptest.NewServer(&httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			r.SetURL(target)
			r.Out.Host = r.In.Host // the suite's Host header must reach the gateway
			r.Out.Header.Set("Authorization", "Bearer "+g.keys["tenant-a"])
		},
		FlushInterval: -1,
	})
	t.Cleanup(proxy.Close)
	proxyURL := strings.Replace(proxy.URL, "127.0.0.1", "localhost", 1)

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	out := t.TempDir()
	argv := testenv.NodeTool(t, "conformance", "server",
		"--url", proxyURL+"/mcp/conformance",
		"--expected-failures", filepath.Join(testenv.Root(), "testdata", "conformance", "expected-failures.yml"),
		"-o", out)
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Env = append(os.Environ(), "HOME="+t.TempDir())
	output, err := cmd.CombinedOutput()
	if err != nil {
		t.Errorf("conformance suite: %v\n%s\n%s\ngateway log:\n%s", err, output, failedChecks(out), lastLines(g.stderr.String(), 150))
	}
	t.Logf("conformance suite:\n%s", lastLines(string(output), 60))
}

// failedChecks summarises the failed checks the suite wrote under dir.
func failedChecks(dir string) string {
	var b strings.Builder
	files, _ := filepath.Glob(filepath.Join(dir, "*", "checks.json"))
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		var checks []map[string]any
		if json.Unmarshal(raw, &checks) != nil {
			continue
		}
		for _, c := range checks {
			if s, _ := c["status"].(string); s == "FAILURE" || s == "failure" {
				fmt.Fprintf(&b, "%s: %v: %v\n", filepath.Base(filepath.Dir(f)), c["name"], c["errorMessage"])
			}
		}
	}
	return b.String()
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
