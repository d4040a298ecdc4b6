package audit_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/connectors-gateway/connectors/audit"
)

func signingKey(t *testing.T) (ed25519.PrivateKey, map[string]ed25519.PublicKey) {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	return priv, map[string]ed25519.PublicKey{audit.KeyID(pub): pub}
}

// writeTrail writes n records (tenant-0 …) to a chained file trail at path
// with checkpoints every 4 records, and closes it.
func writeTrail(t *testing.T, path string, key ed25519.PrivateKey, from, n int) {
	t.Helper()
	l, err := audit.OpenWith(path, audit.Options{Chain: true, SigningKey: key, CheckpointEvery: 4})
	if err != nil {
		t.Fatal(err)
	}
	for i := from; i < from+n; i++ {
		l.Record(context.Background(), audit.Record{TenantID: fmt.Sprintf("tenant-%d", i), Integration: "notion", Operation: audit.OpGet, Success: true})
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
}

func verify(t *testing.T, trail []byte, keys map[string]ed25519.PublicKey) audit.Report {
	t.Helper()
	rep, err := audit.Verify(bytes.NewReader(trail), keys)
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

func lines(b []byte) [][]byte {
	return bytes.SplitAfter(bytes.TrimSuffix(b, []byte("\n")), []byte("\n"))
}

// relink rewrites the chain of ls from line i on, as one who can edit the
// file but does not hold the signing key would: every prev made right again.
func relink(t *testing.T, ls [][]byte, from int) [][]byte {
	t.Helper()
	for i := max(from, 1); i < len(ls); i++ {
		var m map[string]any
		if err := json.Unmarshal(ls[i], &m); err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(bytes.TrimSuffix(ls[i-1], []byte("\n")))
		old := `"prev":"` + m["prev"].(string) + `"`
		ls[i] = bytes.Replace(ls[i], []byte(old), []byte(`"prev":"`+hex.EncodeToString(sum[:])+`"`), 1)
	}
	return ls
}

// TestChainVerifies: a chained trail, written over two opens of its file,
// verifies whole (seq counting on across the reopening, a signed
// checkpoint every 4 records and at each close), and each kind of
// tampering is found, at the line where it is.
func TestChainVerifies(t *testing.T) {
	key, keys := signingKey(t)
	path := filepath.Join(t.TempDir(), "audit.log")
	writeTrail(t, path, key, 0, 6)
	writeTrail(t, path, key, 6, 5)
	trail, _ := os.ReadFile(path)
	rep := verify(t, trail, keys)
	// 11 records; checkpoints after records 4 and 6 (at close) of the
	// first open and 4 (10th) and 5 (at close) of the second.
	if len(rep.Problems) > 0 || rep.Records != 15 || rep.Checkpoints != 4 || rep.AfterCheckpoint != 0 || rep.Segments != 1 {
		t.Fatalf("intact trail: %+v\n%s", rep, trail)
	}
	if !strings.Contains(string(lines(trail)[14]), `"seq":15,`) {
		t.Errorf("seq did not count on across the reopening: %s", lines(trail)[14])
	}

	tamper := map[string]func([][]byte) [][]byte{
		"a field changed": func(ls [][]byte) [][]byte {
			ls[2] = bytes.Replace(ls[2], []byte("tenant-2"), []byte("tenant-9"), 1)
			return ls
		},
		"a record removed": func(ls [][]byte) [][]byte { return append(ls[:2], ls[3:]...) },
		"two records swapped": func(ls [][]byte) [][]byte {
			ls[1], ls[2] = ls[2], ls[1]
			return ls
		},
		"a record copied in": func(ls [][]byte) [][]byte {
			return append(ls[:3], append([][]byte{ls[1]}, ls[3:]...)...)
		},
		"the beginning cut": func(ls [][]byte) [][]byte { return ls[2:] },
		"changed and relinked without the key": func(ls [][]byte) [][]byte {
			ls[2] = bytes.Replace(ls[2], []byte("tenant-2"), []byte("tenant-9"), 1)
			return relink(t, ls, 3)
		},
		"an unchained record inserted": func(ls [][]byte) [][]byte {
			return append(ls[:3], append([][]byte{[]byte(`{"msg":"tenant_credential_access","tenantId":"x"}` + "\n")}, ls[3:]...)...)
		},
	}
	for name, f := range tamper {
		t.Run(name, func(t *testing.T) {
			ls := f(lines(bytes.Clone(trail)))
			rep := verify(t, bytes.Join(ls, nil), keys)
			if len(rep.Problems) == 0 {
				t.Errorf("not found: %+v", rep)
			}
			t.Log(rep.Problems)
		})
	}
	if rep := verify(t, trail, nil); len(rep.Problems) == 0 || !strings.Contains(rep.Problems[0], "which was not given") {
		t.Errorf("checkpoints with no key given: %+v", rep)
	}
}

// TestChainTwoWriters: two trails open on one file at once (two
// processes), their records interleaved, make one chain.
func TestChainTwoWriters(t *testing.T) {
	key, keys := signingKey(t)
	path := filepath.Join(t.TempDir(), "audit.log")
	if err := os.WriteFile(path, []byte(`{"msg":"tenant_credential_access","tenantId":"before-chaining"}`+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var ls []*audit.Logger
	for range 2 {
		l, err := audit.OpenWith(path, audit.Options{Chain: true, SigningKey: key})
		if err != nil {
			t.Fatal(err)
		}
		ls = append(ls, l)
	}
	for i := range 10 {
		ls[i%2].Record(context.Background(), audit.Record{TenantID: fmt.Sprint("t", i), Operation: audit.OpGet, Success: true})
	}
	for _, l := range ls {
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
	}
	trail, _ := os.ReadFile(path)
	rep := verify(t, trail, keys)
	if len(rep.Problems) > 0 || rep.Unchained != 1 || rep.Records != 13 || rep.Checkpoints != 2 {
		t.Errorf("%+v\n%s", rep, trail)
	}
}

func ed25519Key() (ed25519.PublicKey, ed25519.PrivateKey, error) { return ed25519.GenerateKey(nil) }
