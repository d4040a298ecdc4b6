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
	"regexp"
	"slices"
	"strings"
	"sync"
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

// conformanceGateway is a gateway fronting a conformance fixture of its
// own as integration "conformance", with tenant-a's and tenant-b's credentials, the
// upstream session pinned to 2025-11-25 (where the fixture's questions to
// the agent are requests on the session).
func conformanceGateway(t *testing.T) *gateway {
	t.Helper()
	return fixtureGateway(t, startConformanceFixture(t), "2025-11-25")
}

// fixtureGateway is a gateway fronting the conformance fixture at upstream
// as integration "conformance", with tenant-a's and tenant-b's credentials, its upstream
// session pinned to protocol (empty: negotiated, 2026-07-28 with this
// fixture).
func fixtureGateway(t *testing.T, upstream, protocol string) *gateway {
	t.Helper()
	return fixtureGatewayFor(t, upstream, protocol)
}

// fixtureGatewayFor is fixtureGateway with credentials and an API key for
// each of more tenants too.
func fixtureGatewayFor(t *testing.T, upstream, protocol string, more ...string) *gateway {
	t.Helper()
	entry := map[string]any{
		"name": "conformance", "category": "testing",
		"upstream": map[string]any{
			"url":     upstream,
			"headers": map[string]string{"X-Upstream-Token": "{{access_token}}"},
		},
	}
	if protocol != "" {
		entry["protocol"] = protocol
	}
	g := newGatewayWithIntegrations(t, entry)
	for _, tenant := range append([]string{"tenant-a", "tenant-b"}, more...) {
		g.mustRun(`{"accessToken": "conformance-token-`+tenant+`"}`, "credential", "put", "--tenant", tenant, "--integration", "conformance")
		if g.keys[tenant] == "" {
			g.keys[tenant] = strings.TrimSpace(g.mustRun("", "apikey", "create", "--tenant", tenant))
		}
	}
	g.serve()
	return g
}

// proxiedConformance returns the URL of g's /mcp/conformance behind a
// loopback proxy that adds tenant's API key, as an agent's MCP client
// would (the suite cannot send credentials). What the proxy saw go wrong
// is recorded by a tap, which a failed suite run reports.
func proxiedConformance(t *testing.T, g *gateway, tenant string) string {
	t.Helper()
	tap := &proxyTap{next: http.DefaultTransport}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("gateway log:\n%s", lastLines(g.stderr.String(), 150))
		}
	})
	target, _ := url.Parse("http://" + g.addr)
	proxy := httptest.NewServer(&httputil.ReverseProxy{
		Transport: tap,
		ErrorLog:  tap.logger(),
		Rewrite: func(r *httputil.ProxyRequest) {
			r.SetURL(target)
			r.Out.Host = r.In.Host // the suite's Host header must reach the gateway
			r.Out.Header.Set("Authorization", "Bearer "+g.keys[tenant])
		},
		FlushInterval: -1,
	})
	t.Cleanup(proxy.Close)
	// localhost: the DNS rebinding scenario wants a loopback name.
	u := strings.Replace(proxy.URL, "127.0.0.1", "localhost", 1) + "/mcp/conformance"
	taps.Store(u, tap)
	return u
}

// taps holds each proxied URL's tap (*proxyTap).
var taps sync.Map

// A suite run: which release of the official suite, with which arguments,
// and the baseline of the scenarios that do not pass (with reasons).
type suiteRun struct {
	script   string // testenv.Conformance or testenv.ConformanceAlpha
	args     []string
	baseline string // under testdata/conformance
	// tasks: every scenario of the tasks extension (tasks-*), which the
	// suite runs unscored, must pass too.
	tasks bool
}

var (
	// The 2025-11-25 suite: the pinned stable release, and the alpha's
	// scenarios for that version.
	suite2025      = suiteRun{testenv.Conformance, nil, "expected-failures.yml", false}
	suite2025Alpha = suiteRun{testenv.ConformanceAlpha, []string{"--spec-version", "2025-11-25"}, "expected-failures.yml", false}
	// What 2026-07-28 requires (and the extensions and pending scenarios it
	// runs unscored), at that version's stateless wire.
	suite2026 = suiteRun{testenv.ConformanceAlpha, []string{"--requirements", "2026-07-28"}, "2026-07-28.yml", false}
	// The same through the gateway, whose own shortfalls its baseline
	// names: every scenario passes that passes against the fixture, or
	// the baseline says why not.
	// The tasks extension's scenarios must pass through it as well.
	suite2026Gateway = suiteRun{testenv.ConformanceAlpha, []string{"--requirements", "2026-07-28"}, "2026-07-28-gateway.yml", true}
	// The same through an upstream pinned to 2025-11-25, whose questions to
	// the agent the gateway turns into input rounds of its own (replay.go).
	suite2026Pinned = suiteRun{testenv.ConformanceAlpha, []string{"--requirements", "2026-07-28"}, "2026-07-28-pinned.yml", false}
)

// TestConformance runs the official MCP conformance suite (server scenarios)
// against /mcp/conformance, the gateway fronting the fixture upstream for a
// tenant: the 2025-11-25 suite (both releases) through an upstream session
// pinned to 2025-11-25 and through one that negotiated 2026-07-28, where
// the gateway bridges the eras (the fixture asks for input the 2026-07-28
// way, which the gateway puts to the initialize-era agent as requests); and
// the 2026-07-28 requirements through the negotiated one. The 2026-07-28
// requirements are also run against the fixture itself, with the same
// baseline, so that the gateway passes exactly what the fixture passes.
// Each baseline (testdata/conformance) names, with reasons, the scenarios
// that do not pass; one that starts passing fails the run. The runs are
// parallel: each suite run is once per era, never per scenario.
func TestConformance(t *testing.T) {
	fixture := startConformanceFixture(t)
	runs := []struct {
		name, upstream string // upstream: fixture, pinned or negotiated
		run            suiteRun
	}{
		{"2026-07-28/fixture", "fixture", suite2026},
		{"2026-07-28/negotiated", "negotiated", suite2026Gateway},
		{"2026-07-28/pinned", "pinned", suite2026Pinned},
		{"2025-11-25/pinned", "pinned", suite2025},
		{"2025-11-25/negotiated", "negotiated", suite2025},
		{"2025-11-25-alpha/pinned", "pinned", suite2025Alpha},
		{"2025-11-25-alpha/negotiated", "negotiated", suite2025Alpha},
	}
	// Each run is an agent of a tenant of its own: the gateway's session
	// of an upstream is the tenant's, and a 2025-11-25 upstream's question
	// outside a call (mcp-go asks for sampling on its GET stream) is refused
	// while several agents' calls are in flight on it (tools/proxy.go).
	tenant := func(run string) string { return "suite-" + strings.ReplaceAll(run, "/", "-") }
	tenants := map[string][]string{}
	for _, c := range runs {
		tenants[c.upstream] = append(tenants[c.upstream], tenant(c.name))
	}
	urls := map[string]string{} // by run
	for upstream, protocol := range map[string]string{"pinned": "2025-11-25", "negotiated": ""} {
		g := fixtureGatewayFor(t, fixture, protocol, tenants[upstream]...)
		for _, c := range runs {
			if c.upstream == upstream {
				urls[c.name] = proxiedConformance(t, g, tenant(c.name))
			}
		}
	}
	for _, c := range runs {
		url := urls[c.name]
		if c.upstream == "fixture" {
			url = fixture
		}
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			runSuite(t, url, c.run)
		})
	}
}

// runSuite runs one suite against url and fails t when it fails. A run
// that fails only by a known flake (knownFlake) is run once more, its
// first failure logged; a second failure fails t.
func runSuite(t *testing.T, url string, run suiteRun) {
	out, failure := suiteOnce(t, url, run)
	if failure != "" && knownFlake.MatchString(failure) {
		t.Logf("conformance suite failed by a known flake, run again:\n%s", failure)
		out, failure = suiteOnce(t, url, run)
	}
	if failure != "" {
		t.Error(failure)
		return
	}
	if run.tasks {
		checkTasksScenarios(t, out)
	}
}

// knownFlake is the one failure of a suite run that is run again: a
// tools/list request whose answer the suite's HTTP client saw cut off
// ("terminated"), about one CI run in two under the seven parallel suites
// and -race (2026-12-02: in the pinned and in the negotiated 2026-07-28
// runs; never in a run by itself). Not found yet; it is a warning-level
// check (ToolsListDeterministicOrder) that the baseline would not excuse.
var knownFlake = regexp.MustCompile(`(?m)^\s*✗ tools-list\s*$(?s:.*)repeated tools/list request failed: terminated`)

// suiteOnce runs one suite against url and returns the directory of its
// results and, when it failed, what to report.
func suiteOnce(t *testing.T, url string, run suiteRun) (out, failure string) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	out = t.TempDir()
	args := append([]string{"server", "--url", url,
		"--expected-failures", filepath.Join(testenv.Root(), "testdata", "conformance", run.baseline),
		"-o", out}, run.args...)
	argv := testenv.NodeScript(t, run.script, args...)
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Env = append(os.Environ(), "HOME="+t.TempDir())
	output, err := cmd.CombinedOutput()
	if err != nil {
		seen := "(no proxy: the suite ran against the fixture itself)"
		if tap, ok := taps.Load(url); ok {
			seen = tap.(*proxyTap).String()
		}
		return out, fmt.Sprintf("conformance suite: %v\n%s\n%s\nwhat the test proxy saw:\n%s", err, lastLines(string(output), 80), failedChecks(out), seen)
	}
	t.Logf("conformance suite:\n%s", lastLines(string(output), 60))
	return out, ""
}

// checkTasksScenarios fails t unless the run under dir ran the scenarios
// of the tasks extension (tasks-*) and none of their checks failed.
func checkTasksScenarios(t *testing.T, dir string) {
	t.Helper()
	// One directory a scenario: [server-]{scenario}-{time}.
	all, _ := filepath.Glob(filepath.Join(dir, "*", "checks.json"))
	files := slices.DeleteFunc(all, func(f string) bool {
		return !strings.HasPrefix(strings.TrimPrefix(filepath.Base(filepath.Dir(f)), "server-"), "tasks-")
	})
	if len(files) == 0 {
		t.Errorf("the run wrote no checks of the tasks extension's scenarios under %s", dir)
	}
	for _, f := range files {
		raw, err := os.ReadFile(f)
		var checks []struct {
			ID, Status, ErrorMessage string
		}
		if err == nil {
			err = json.Unmarshal(raw, &checks)
		}
		if err != nil {
			t.Errorf("%s: %v", f, err)
			continue
		}
		for _, c := range checks {
			if c.Status == "FAILURE" {
				t.Errorf("%s: %s failed: %s", filepath.Base(filepath.Dir(f)), c.ID, c.ErrorMessage)
			}
		}
	}
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
			if s, _ := c["status"].(string); s == "FAILURE" || s == "WARNING" {
				fmt.Fprintf(&b, "%s: %v %v: %v\n", filepath.Base(filepath.Dir(f)), c["status"], c["name"], c["errorMessage"])
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

// TestConformanceParamHeaders runs the suite's custom-header scenario by
// itself through the gateway: a 2026-07-28 tools/call whose Mcp-Param
// headers disagree with its arguments (missing, another value, Base64
// that does not decode) is refused with 400 and -32020, the tool's
// annotations being the tenant's catalogue's. In the whole suite the
// scenario passed when an earlier one had left the check to the
// fixture's own, and failed (200) when it ran first on a cold catalogue.
func TestConformanceParamHeaders(t *testing.T) {
	u := proxiedConformance(t, fixtureGateway(t, startConformanceFixture(t), ""), "tenant-a")
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	argv := testenv.NodeScript(t, testenv.ConformanceAlpha, "server", "--url", u,
		"--scenario", "http-custom-header-server-validation", "--spec-version", "2026-07-28", "-o", t.TempDir())
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Env = append(os.Environ(), "HOME="+t.TempDir())
	out, err := cmd.CombinedOutput()
	m := regexp.MustCompile(`Passed: (\d+)/(\d+), 0 failed, 0 warnings`).FindSubmatch(out)
	if err != nil || m == nil || string(m[1]) != string(m[2]) {
		t.Fatalf("the custom-header scenario through the gateway: %v\n%s", err, lastLines(string(out), 60))
	}
}
