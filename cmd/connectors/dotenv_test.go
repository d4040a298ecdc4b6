package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/connectors-gateway/connectors/internal/testenv"
	"github.com/connectors-gateway/connectors/tools"
)

// notGateways are variables the command reads that are not its
// configuration: the OS's and Go's.
var notGateways = []string{"USER", "GOGC", "PATH", "HOME", "XDG_STATE_HOME"}

// vaultLibrary are variables Vault's client library reads (api.DefaultConfig)
// that the README and .env.example name, though no code of ours reads them.
var vaultLibrary = []string{"VAULT_CLIENT_CERT", "VAULT_CLIENT_KEY"}

// codeEnv is every variable the command's code names: each "CONNECTORS_…"
// or "VAULT_…" string and each getenv("…") of its production files and of
// telemetry's (the OTEL_* variables it reads with the command's getenv),
// and the OAuth client variables of every preset integration with a
// provider.
func codeEnv(t *testing.T) []string {
	t.Helper()
	files, _ := filepath.Glob("*.go")
	more, _ := filepath.Glob("../../telemetry/*.go")
	files = append(files, more...)
	lit := regexp.MustCompile(`"((?:CONNECTORS|VAULT|OTEL)_[A-Z0-9_]+)"`)
	get := regexp.MustCompile(`[gG]etenv\("([A-Z][A-Z0-9_]*)"\)`)
	var names []string
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, re := range []*regexp.Regexp{lit, get} {
			for _, m := range re.FindAllSubmatch(src, -1) {
				names = append(names, string(m[1]))
			}
		}
	}
	for _, in := range tools.Presets() {
		if in.OAuth != nil {
			p := envPrefix(in.Name)
			names = append(names, p+"_CLIENT_ID", p+"_CLIENT_SECRET", p+"_REDIRECT_URI")
		}
	}
	names = slices.DeleteFunc(names, func(n string) bool { return slices.Contains(notGateways, n) })
	return sortedSet(names)
}

// sortedSet is names sorted, each once.
func sortedSet(names []string) []string {
	slices.Sort(names)
	return slices.Compact(names)
}

// rootFile is the repository's file name.
func rootFile(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(testenv.Root(), name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// exampleEnv is every variable .env.example sets or shows commented out.
func exampleEnv(t *testing.T) []string {
	b := rootFile(t, ".env.example")
	re := regexp.MustCompile(`(?m)^#? ?([A-Z][A-Z0-9_]*)=`)
	var names []string
	for _, m := range re.FindAllSubmatch(b, -1) {
		names = append(names, string(m[1]))
	}
	return sortedSet(names)
}

// readmeEnv is every variable the first column of the README's
// Environment table names; {NAME}_X stands for each preset integration
// with an OAuth provider.
func readmeEnv(t *testing.T) []string {
	_, section, ok := strings.Cut(string(rootFile(t, "README.md")), "\n## Environment\n")
	if !ok {
		t.Fatal("README.md has no Environment section")
	}
	section, _, _ = strings.Cut(section, "\n## ")
	name := regexp.MustCompile("`([A-Z{][A-Z0-9_{}]*)`")
	var names []string
	for line := range strings.Lines(section) {
		cells := strings.Split(line, "|")
		if len(cells) < 3 || !strings.HasPrefix(line, "| `") {
			continue
		}
		for _, m := range name.FindAllStringSubmatch(cells[1], -1) {
			n := m[1]
			if rest, ok := strings.CutPrefix(n, "{NAME}"); ok {
				for _, in := range tools.Presets() {
					if in.OAuth != nil {
						names = append(names, envPrefix(in.Name)+rest)
					}
				}
				continue
			}
			names = append(names, n)
		}
	}
	return sortedSet(names)
}

// TestEnvDocumented: every variable the code reads is in .env.example and
// in the README's Environment table, and neither names one it does not
// read (Vault's client library's own aside), so the three cannot drift.
func TestEnvDocumented(t *testing.T) {
	code := codeEnv(t)
	if len(code) < 40 || !slices.Contains(code, "CONNECTORS_DATA_DIR") || !slices.Contains(code, "NOTION_CLIENT_ID") {
		t.Fatalf("the code's variables, as found: %v", code) // the scan itself broke
	}
	known := append(slices.Clone(code), vaultLibrary...)
	slices.Sort(known)
	for _, doc := range []struct {
		name  string
		names []string
	}{
		{".env.example", exampleEnv(t)},
		{"README.md's Environment table", readmeEnv(t)},
	} {
		var missing, unknown []string
		for _, n := range code {
			if !slices.Contains(doc.names, n) {
				missing = append(missing, n)
			}
		}
		for _, n := range doc.names {
			if !slices.Contains(known, n) {
				unknown = append(unknown, n)
			}
		}
		if len(missing) > 0 || len(unknown) > 0 {
			t.Errorf("%s: missing %v; names what the code does not read: %v", doc.name, missing, unknown)
		}
	}
}

// TestDotEnv: Run reads the .env file it is given: its values configure
// the command, the real environment wins, a missing file is fine, and a
// malformed one is an error naming it, before anything runs.
func TestDotEnv(t *testing.T) {
	dir := t.TempDir()
	dotenv := filepath.Join(dir, ".env")
	run := func(env map[string]string, args ...string) (string, error) {
		var stdout, stderr bytes.Buffer
		m := &Main{Stdin: strings.NewReader(""), Stdout: &stdout, Stderr: &stderr, DotEnv: dotenv,
			Getenv: func(k string) string { return env[k] }}
		err := m.Run(context.Background(), args)
		m.Close()
		return stdout.String() + stderr.String(), err
	}
	fromFile := filepath.Join(dir, "from-file")
	fromEnv := filepath.Join(dir, "from-env")
	if err := os.WriteFile(dotenv, []byte("# a comment\nexport CONNECTORS_DATA_DIR=\""+fromFile+"\"\nCONNECTORS_LOG_FORMAT=text\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := run(nil, "credential", "list", "--tenant", "tenant-a"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(fromFile, "connectors.db")); err != nil {
		t.Errorf(".env's CONNECTORS_DATA_DIR was not used: %v", err)
	}
	if _, err := run(map[string]string{"CONNECTORS_DATA_DIR": fromEnv}, "credential", "list", "--tenant", "tenant-a"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(fromEnv, "connectors.db")); err != nil {
		t.Errorf("the real environment's CONNECTORS_DATA_DIR did not win over .env: %v", err)
	}

	if err := os.WriteFile(dotenv, []byte("CONNECTORS_DATA_DIR=\"unterminated\nCONNECTORS_LOG_FORMAT='x\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := run(nil, "credential", "list", "--tenant", "tenant-a")
	if err == nil || !strings.Contains(err.Error(), dotenv) {
		t.Errorf("a malformed .env: %v (%q), want an error naming it", err, out)
	}

	if err := os.Remove(dotenv); err != nil {
		t.Fatal(err)
	}
	if _, err := run(map[string]string{"CONNECTORS_DATA_DIR": fromEnv}, "credential", "list", "--tenant", "tenant-a"); err != nil {
		t.Errorf("without a .env: %v", err)
	}
}

// TestNewStoreAnnounced: an operator command that creates the embedded
// store (a relative CONNECTORS_DATA_DIR, from another directory) says so on
// stderr with the absolute path; the next one, on the same store, does not.
func TestNewStoreAnnounced(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	run := func() string {
		var stdout, stderr bytes.Buffer
		m := &Main{Stdin: strings.NewReader(""), Stdout: &stdout, Stderr: &stderr,
			Getenv: func(k string) string { return map[string]string{"CONNECTORS_DATA_DIR": "rel/data"}[k] }}
		if err := m.Run(context.Background(), []string{"credential", "list", "--tenant", "tenant-a"}); err != nil {
			t.Fatal(err)
		}
		m.Close()
		return stderr.String()
	}
	abs, _ := filepath.Abs(filepath.Join("rel", "data", "connectors.db"))
	if diff := cmp.Diff("created a new empty store at "+abs+"\n", run()); diff != "" {
		t.Errorf("first command's stderr (-want +got):\n%s", diff)
	}
	if got := run(); got != "" {
		t.Errorf("second command's stderr = %q, want nothing", got)
	}
}
