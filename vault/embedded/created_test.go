package embedded_test

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/connectors-gateway/connectors/vault/embedded"
)

// TestOpenEmbeddedCreatedWarning: a new store is announced with a WARN
// vault_embedded_created naming its absolute path, even when opened by a
// relative one (a relative CONNECTORS_DATA_DIR run from another
// directory); reopening it announces nothing.
func TestOpenEmbeddedCreatedWarning(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	key := newMasterKey(t)
	created := func() (events []map[string]any, st *embedded.Store) {
		var buf bytes.Buffer
		st, err := embedded.Open("creds.db", &embedded.Options{MasterKey: key, Logger: slog.New(slog.NewJSONHandler(&buf, nil))})
		if err != nil {
			t.Fatal(err)
		}
		for line := range strings.Lines(buf.String()) {
			var entry map[string]any
			if err := json.Unmarshal([]byte(line), &entry); err != nil {
				t.Fatal(err)
			}
			if entry["event"] == "vault_embedded_created" {
				events = append(events, entry)
			}
		}
		return events, st
	}
	events, st := created()
	if !st.Created() {
		t.Error("Created() = false for a new store")
	}
	st.Close()
	abs, _ := filepath.EvalSymlinks(filepath.Join(dir, "creds.db"))
	if len(events) != 1 || events[0]["level"] != "WARN" {
		t.Fatalf("vault_embedded_created events = %v, want one WARN", events)
	}
	if got, _ := filepath.EvalSymlinks(events[0]["path"].(string)); !filepath.IsAbs(events[0]["path"].(string)) || got != abs {
		t.Errorf("vault_embedded_created path = %v, want the absolute %s", events[0]["path"], abs)
	}

	events, st = created()
	defer st.Close()
	if st.Created() || len(events) != 0 {
		t.Errorf("reopened store: Created() = %v, events %v; want false and none", st.Created(), events)
	}
	if _, err := os.Stat(filepath.Join(dir, "creds.db")); err != nil {
		t.Fatal(err)
	}
}
