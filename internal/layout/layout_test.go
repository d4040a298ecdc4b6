// Package layout holds the test that keeps the code to the layout the
// README describes: the packages, what each may import, and the sizes
// that keep a file and a function readable in one sitting.
package layout

import (
	"bufio"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
)

const module = "github.com/connectors-gateway/connectors/"

// Bounds on production code (tests and fixtures are not held to them).
const (
	maxFileLines = 800
	maxFuncLines = 80
)

// root is the repository, two levels up from this package.
const root = "../.."

// pkg is one Go package of the module: its non-test files, parsed.
type pkg struct {
	dir   string // relative to the module, slash-separated
	files map[string]*ast.File
	fset  *token.FileSet
}

// packages parses every production package of the module.
func packages(t *testing.T) []pkg {
	t.Helper()
	var out []pkg
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		name := d.Name()
		if d.IsDir() && p != root && (strings.HasPrefix(name, ".") || name == "testdata" || name == "node_modules") {
			return filepath.SkipDir
		}
		if !d.IsDir() {
			return nil
		}
		fset := token.NewFileSet()
		p2 := pkg{fset: fset, files: map[string]*ast.File{}}
		rel, _ := filepath.Rel(root, p)
		p2.dir = filepath.ToSlash(rel)
		matches, _ := filepath.Glob(filepath.Join(p, "*.go"))
		for _, m := range matches {
			if strings.HasSuffix(m, "_test.go") {
				continue
			}
			f, err := parser.ParseFile(fset, m, nil, parser.ParseComments)
			if err != nil {
				t.Fatal(err)
			}
			p2.files[m] = f
		}
		if len(p2.files) > 0 {
			out = append(out, p2)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestSizes holds every production file to maxFileLines and every function
// to maxFuncLines, unless its doc comment says why it is long ("long
// because ...").
func TestSizes(t *testing.T) {
	for _, p := range packages(t) {
		for name, f := range p.files {
			if n := p.fset.Position(f.End()).Line; n > maxFileLines {
				t.Errorf("%s: %d lines; at most %d", name, n, maxFileLines)
			}
			for _, d := range f.Decls {
				fn, ok := d.(*ast.FuncDecl)
				if !ok || fn.Body == nil {
					continue
				}
				n := p.fset.Position(fn.Body.End()).Line - p.fset.Position(fn.Body.Pos()).Line + 1
				if n > maxFuncLines && !strings.Contains(strings.ToLower(fn.Doc.Text()), "long because") {
					t.Errorf("%s: %s is %d lines; at most %d, or say in its comment why it is long (\"long because ...\")",
						p.fset.Position(fn.Pos()), fn.Name.Name, n, maxFuncLines)
				}
			}
		}
	}
}

// rules reads the README's Layout table: for each package (or folder of
// packages, written with a trailing /…) the packages of the module it may
// import.
func rules(t *testing.T) map[string][]string {
	t.Helper()
	f, err := os.Open(filepath.Join(root, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	code := regexp.MustCompile("`([^`]+)`")
	out := map[string][]string{}
	in := false
	for s := bufio.NewScanner(f); s.Scan(); {
		line := s.Text()
		switch {
		case line == "## Layout":
			in = true
			continue
		case in && strings.HasPrefix(line, "## "):
			in = false
		}
		if !in || !strings.HasPrefix(line, "| `") {
			continue
		}
		cells := strings.Split(strings.Trim(line, "|"), "|")
		if len(cells) < 3 {
			continue
		}
		name := strings.Trim(strings.TrimSpace(cells[0]), "`")
		var may []string
		for _, m := range code.FindAllStringSubmatch(cells[len(cells)-1], -1) {
			may = append(may, m[1])
		}
		if strings.TrimSpace(cells[len(cells)-1]) == "everything" {
			may = []string{"*"}
		}
		out[name] = may
	}
	if len(out) == 0 {
		t.Fatal("README.md has no Layout table")
	}
	return out
}

// ruleFor finds the row of the Layout table that governs dir: its own, or
// that of the nearest folder above it written as "folder/…".
func ruleFor(rows map[string][]string, dir string) ([]string, bool) {
	for d := dir; d != "." && d != "/"; d = path.Dir(d) {
		if may, ok := rows[d]; ok && d == dir {
			return may, true
		}
		if may, ok := rows[d+"/…"]; ok {
			return may, true
		}
	}
	return nil, false
}

// TestImports holds every package to the arrows of the README's Layout
// table, and keeps mcp-go to the two packages that speak MCP.
func TestImports(t *testing.T) {
	rows := rules(t)
	for _, p := range packages(t) {
		if p.dir == "internal/layout" {
			continue
		}
		may, ok := ruleFor(rows, p.dir)
		if !ok {
			t.Errorf("%s: no row in README.md's Layout table", p.dir)
			continue
		}
		for name, f := range p.files {
			for _, imp := range f.Imports {
				ip, _ := strconv.Unquote(imp.Path.Value)
				if strings.HasPrefix(ip, "github.com/mark3labs/mcp-go") && !mcpSpeaker(p.dir) {
					t.Errorf("%s imports %s: only server and tools speak MCP", name, ip)
				}
				rel, ours := strings.CutPrefix(ip, module)
				if !ours || slices.Contains(may, "*") || rel == p.dir {
					continue
				}
				if !allowed(may, rel) {
					t.Errorf("%s imports %s; README.md's Layout lets %s import %v", name, rel, p.dir, may)
				}
			}
		}
	}
}

// allowed reports whether an import of rel is among may ("a/…" stands for
// a and every package beneath it).
func allowed(may []string, rel string) bool {
	for _, m := range may {
		if base, ok := strings.CutSuffix(m, "/…"); ok && (rel == base || strings.HasPrefix(rel, base+"/")) {
			return true
		}
		if m == rel {
			return true
		}
	}
	return false
}

// mcpSpeaker reports whether the package at dir may import mcp-go: server
// serves MCP, tools is its client, and the fixtures are upstream servers.
func mcpSpeaker(dir string) bool {
	return dir == "server" || dir == "tools" || dir == "cmd/connectors" || strings.HasPrefix(dir, "testdata/") || strings.HasPrefix(dir, "internal/")
}

// tenantKey finds a log attribute that names the tenant other than as
// tenantId: "tenant" or "tenant_id" as a key of a log call.
var tenantKey = regexp.MustCompile(`\.(Debug|Info|Warn|Error|Log|With)(Context)?\([^\n]*"(tenant|tenant_id|tenantID)", `)

// TestTenantLogKey keeps one spelling of the tenant in every log line, the
// setup guide's tenantId, so that one query finds a tenant's lines.
func TestTenantLogKey(t *testing.T) {
	for _, p := range packages(t) {
		for name := range p.files {
			b, err := os.ReadFile(name)
			if err != nil {
				t.Fatal(err)
			}
			for i, line := range strings.Split(string(b), "\n") {
				if tenantKey.MatchString(line) {
					t.Errorf("%s:%d: the tenant's log key is tenantId: %s", name, i+1, strings.TrimSpace(line))
				}
			}
		}
	}
}
