package audit

import (
	"context"
	"go/parser"
	"go/token"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestFileRecordsSynced checks that a file sink fsyncs once per record,
// after the record's write.
func TestFileRecordsSynced(t *testing.T) {
	l, err := Open(filepath.Join(t.TempDir(), "audit.log"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	if l.out.sync == nil {
		t.Fatal("a file sink does not sync")
	}
	syncs := 0
	fsync := l.out.sync
	l.out.sync = func() error { syncs++; return fsync() }
	for range 3 {
		l.Record(context.Background(), Record{TenantID: "t", Integration: "notion", Operation: OpGet, Success: true})
	}
	if syncs != 3 {
		t.Errorf("%d syncs for 3 records", syncs)
	}
}

func TestStreamsNotSynced(t *testing.T) {
	for _, dest := range []string{"", "stdout", "stderr"} {
		l, err := Open(dest)
		if err != nil {
			t.Fatal(err)
		}
		if l.out.sync != nil || l.out.closer != nil {
			t.Errorf("Open(%q) would sync or close a standard stream", dest)
		}
	}
}

// TestImports keeps audit importable by every package that touches
// credentials: it may know the identity in a context (tenants), nothing else
// of the gateway's.
func TestImports(t *testing.T) {
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	const module = "github.com/connectors-gateway/connectors/"
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(token.NewFileSet(), name, nil, parser.ImportsOnly)
		if err != nil {
			t.Fatal(err)
		}
		for _, imp := range f.Imports {
			path, _ := strconv.Unquote(imp.Path.Value)
			if strings.HasPrefix(path, module) && path != module+"tenants" {
				t.Errorf("%s imports %s; audit may import only tenants", name, path)
			}
		}
	}
}
