package testenv

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// RunMain runs a package's tests, then fails the run if a child process of
// the test binary is still alive: every upstream a test started must be
// gone once its gateway or pool closed. Use it as TestMain's body.
func RunMain(m *testing.M) int {
	code := m.Run()
	builds.Range(func(_, v any) bool {
		if b := v.(*build); b.dir != "" {
			os.RemoveAll(b.dir)
		}
		return true
	})
	if kids := waitNoChildren(5 * time.Second); len(kids) > 0 {
		fmt.Fprintf(os.Stderr, "child processes left running: %v\n", kids)
		code = 1
	}
	return code
}

// children returns the live processes whose parent is this process.
func children() []string {
	stats, _ := filepath.Glob("/proc/[0-9]*/stat")
	me := strconv.Itoa(os.Getpid())
	var kids []string
	for _, s := range stats {
		b, err := os.ReadFile(s)
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...: comm may hold spaces, so cut at ')'.
		i := bytes.LastIndexByte(b, ')')
		fields := strings.Fields(string(b[i+1:]))
		if len(fields) > 1 && fields[1] == me && fields[0] != "Z" {
			kids = append(kids, strings.Fields(string(b))[0])
		}
	}
	return kids
}

func waitNoChildren(d time.Duration) []string {
	deadline := time.Now().Add(d)
	for {
		kids := children()
		if len(kids) == 0 || time.Now().After(deadline) {
			return kids
		}
		time.Sleep(50 * time.Millisecond)
	}
}

type build struct {
	once     sync.Once
	dir, bin string
	err      error
}

var builds sync.Map // package path → *build

// Build builds a main package of this module (for example
// "./testdata/upstream-env") once per test binary and returns the binary.
func Build(tb testing.TB, pkg string) string {
	tb.Helper()
	v, _ := builds.LoadOrStore(pkg, &build{})
	b := v.(*build)
	b.once.Do(func() {
		if b.dir, b.err = os.MkdirTemp("", "connectors-test-"); b.err != nil {
			return
		}
		b.bin = filepath.Join(b.dir, filepath.Base(pkg))
		cmd := exec.Command("go", "build", "-o", b.bin, pkg)
		cmd.Dir = Root()
		if out, err := cmd.CombinedOutput(); err != nil {
			b.err = fmt.Errorf("go build %s: %v\n%s", pkg, err, out)
		}
	})
	if b.err != nil {
		tb.Fatal(b.err)
	}
	return b.bin
}
