package testenv

import (
	"go/parser"
	"go/token"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// Module is the gateway's module path, with a trailing slash.
const Module = "github.com/connectors-gateway/connectors/"

// CheckImports fails tb if a non-test Go file of the current directory
// imports one of the gateway's packages other than allowed (paths relative
// to the module, such as "tenants"): the test that keeps a package's
// dependencies pointing one way.
func CheckImports(tb testing.TB, allowed ...string) {
	tb.Helper()
	for name, paths := range imports(tb) {
		for _, path := range paths {
			if rel, ours := strings.CutPrefix(path, Module); ours && !slices.Contains(allowed, rel) {
				tb.Errorf("%s imports %s; allowed: %v", name, path, allowed)
			}
		}
	}
}

// Importers returns the non-test Go files of the current directory that
// import path or a package under it (such as "github.com/mark3labs/mcp-go").
func Importers(tb testing.TB, path string) []string {
	tb.Helper()
	var out []string
	for name, paths := range imports(tb) {
		if slices.ContainsFunc(paths, func(p string) bool { return p == path || strings.HasPrefix(p, path+"/") }) {
			out = append(out, name)
		}
	}
	slices.Sort(out)
	return out
}

// imports returns the imports of each non-test Go file of the current
// directory.
func imports(tb testing.TB) map[string][]string {
	tb.Helper()
	files, err := filepath.Glob("*.go")
	if err != nil {
		tb.Fatal(err)
	}
	out := map[string][]string{}
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(token.NewFileSet(), name, nil, parser.ImportsOnly)
		if err != nil {
			tb.Fatal(err)
		}
		for _, imp := range f.Imports {
			path, _ := strconv.Unquote(imp.Path.Value)
			out[name] = append(out[name], path)
		}
	}
	return out
}
