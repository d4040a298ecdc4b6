package embedded_test

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	bolt "go.etcd.io/bbolt"

	"github.com/connectors-gateway/connectors/tenants"
	"github.com/connectors-gateway/connectors/vault"
	"github.com/connectors-gateway/connectors/vault/embedded"
	"github.com/connectors-gateway/connectors/vault/storetest"
)

func newMasterKey(t *testing.T) []byte {
	t.Helper()
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		t.Fatal(err)
	}
	return key
}

// openEmbedded opens the store at path and closes it when the test ends.
func openEmbedded(t *testing.T, path string, opts *embedded.Options) *embedded.Store {
	t.Helper()
	s, err := embedded.Open(path, opts)
	if err != nil {
		t.Fatalf("OpenEmbedded(%s): %v", path, err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func mustClose(t *testing.T, s *embedded.Store) {
	t.Helper()
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
}

func TestEmbeddedStoreContract(t *testing.T) {
	storetest.Run(t, func(t *testing.T) vault.Store {
		return openEmbedded(t, filepath.Join(t.TempDir(), "creds.db"), &embedded.Options{MasterKey: newMasterKey(t)})
	})
}

func TestEmbeddedObserver(t *testing.T) {
	storetest.RunObserver(t, func(t *testing.T, obs vault.Observer) vault.Backend {
		return openEmbedded(t, filepath.Join(t.TempDir(), "creds.db"), &embedded.Options{MasterKey: newMasterKey(t), Observer: obs})
	})
}

func TestEmbeddedStoreContractWithKeyFile(t *testing.T) {
	storetest.Run(t, func(t *testing.T) vault.Store {
		return openEmbedded(t, filepath.Join(t.TempDir(), "creds.db"), nil)
	})
}

func TestEmbeddedConflictReportsActualVersion(t *testing.T) {
	s := openEmbedded(t, filepath.Join(t.TempDir(), "creds.db"), &embedded.Options{MasterKey: newMasterKey(t)})
	ctx := t.Context()
	for v := int64(0); v < 3; v++ {
		if _, err := s.Put(ctx, "tenant-1", "notion", vault.Credential{AccessToken: "a"}, v); err != nil {
			t.Fatal(err)
		}
	}
	_, err := s.Put(ctx, "tenant-1", "notion", vault.Credential{AccessToken: "b"}, 1)
	var ce *vault.ConflictError
	if !errors.As(err, &ce) {
		t.Fatalf("Put(stale) error = %v, want *ConflictError", err)
	}
	want := vault.ConflictError{Tenant: "tenant-1", Integration: "notion", Expected: 1, Actual: 3}
	if diff := cmp.Diff(want, *ce); diff != "" {
		t.Errorf("ConflictError mismatch (-want +got):\n%s", diff)
	}
	if _, err := s.Put(ctx, "tenant-1", "notion", vault.Credential{}, -2); err == nil {
		t.Error("Put with version -2 succeeded, want an error")
	}
}

func TestEmbeddedStampsWithClock(t *testing.T) {
	now := time.Date(2025, 5, 1, 10, 0, 0, 0, time.UTC)
	s := openEmbedded(t, filepath.Join(t.TempDir(), "creds.db"), &embedded.Options{
		MasterKey: newMasterKey(t),
		Now:       func() time.Time { return now },
	})
	ctx := t.Context()
	if _, err := s.Put(ctx, "tenant-1", "notion", vault.Credential{AccessToken: "a"}, 0); err != nil {
		t.Fatal(err)
	}
	created := now
	now = now.Add(time.Hour)
	if _, err := s.Put(ctx, "tenant-1", "notion", vault.Credential{AccessToken: "b"}, 1); err != nil {
		t.Fatal(err)
	}
	got, _, err := s.Get(ctx, "tenant-1", "notion")
	if err != nil {
		t.Fatal(err)
	}
	want := vault.Credential{AccessToken: "b", CreatedAt: created, UpdatedAt: now}
	if diff := cmp.Diff(want, got, cmpopts.EquateEmpty()); diff != "" {
		t.Errorf("Get mismatch (-want +got):\n%s", diff)
	}
}

func TestOpenEmbeddedFileModes(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "creds.db")
	s := openEmbedded(t, path, nil)
	if _, err := s.Put(t.Context(), "tenant-1", "notion", vault.Credential{AccessToken: "a"}, 0); err != nil {
		t.Fatal(err)
	}
	mustClose(t, s)

	for _, p := range []string{path, path + ".key"} {
		info, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if got := info.Mode().Perm(); got != 0o600 {
			t.Errorf("%s has mode %04o, want 0600", filepath.Base(p), got)
		}
	}

	// The key file holds the key as text that ParseMasterKey reads, so the
	// same store opens with it given directly (as CONNECTORS_MASTER_KEY).
	text, err := os.ReadFile(path + ".key")
	if err != nil {
		t.Fatal(err)
	}
	key, err := embedded.ParseMasterKey(string(text))
	if err != nil {
		t.Fatalf("ParseMasterKey(key file): %v", err)
	}
	for name, opts := range map[string]*embedded.Options{
		"key file":   nil,
		"master key": {MasterKey: key},
	} {
		s := openEmbedded(t, path, opts)
		if got, _, err := s.Get(t.Context(), "tenant-1", "notion"); err != nil || got.AccessToken != "a" {
			t.Errorf("reopened with %s: Get = %q, %v; want a, nil", name, got.AccessToken, err)
		}
		mustClose(t, s)
	}
}

func TestOpenEmbeddedExplicitKeyFile(t *testing.T) {
	keyFile := filepath.Join(t.TempDir(), "master.key")
	path := filepath.Join(t.TempDir(), "creds.db")
	mustClose(t, openEmbedded(t, path, &embedded.Options{KeyFile: keyFile}))
	info, err := os.Stat(keyFile)
	if err != nil {
		t.Fatalf("key file not created: %v", err)
	}
	if got := info.Mode().Perm(); got != 0o600 {
		t.Errorf("key file has mode %04o, want 0600", got)
	}
	if _, err := os.Stat(path + ".key"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("default key file was created beside the store although KeyFile was set: %v", err)
	}
}

func TestOpenEmbeddedKeyFileModes(t *testing.T) {
	tests := []struct {
		mode os.FileMode
		ok   bool
	}{
		{0o600, true},
		{0o400, true},
		{0o700, true},
		{0o644, false},
		{0o640, false},
		{0o604, false},
		{0o660, false},
		{0o620, false},
		{0o602, false},
		{0o666, false},
	}
	for _, tt := range tests {
		t.Run(tt.mode.String(), func(t *testing.T) {
			dir := t.TempDir()
			keyFile := filepath.Join(dir, "master.key")
			key := newMasterKey(t)
			if err := os.WriteFile(keyFile, []byte(base64.StdEncoding.EncodeToString(key)+"\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(keyFile, tt.mode); err != nil {
				t.Fatal(err)
			}
			s, err := embedded.Open(filepath.Join(dir, "creds.db"), &embedded.Options{KeyFile: keyFile})
			if tt.ok {
				if err != nil {
					t.Fatalf("OpenEmbedded with key file mode %v: %v", tt.mode, err)
				}
				mustClose(t, s)
				return
			}
			if err == nil {
				s.Close()
				t.Fatalf("OpenEmbedded with key file mode %v succeeded, want ErrInsecureKeyFile", tt.mode)
			}
			if !errors.Is(err, embedded.ErrInsecureKeyFile) {
				t.Errorf("error = %v, want ErrInsecureKeyFile", err)
			}
			if !strings.Contains(err.Error(), keyFile) || !strings.Contains(err.Error(), "chmod 600") {
				t.Errorf("error %q should name the key file and the fix", err)
			}
			assertNoKey(t, err.Error(), key)
		})
	}
}

func TestOpenEmbeddedBadKeyFile(t *testing.T) {
	dir := t.TempDir()
	keyFile := filepath.Join(dir, "master.key")
	if err := os.WriteFile(keyFile, []byte("too-short\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := embedded.Open(filepath.Join(dir, "creds.db"), &embedded.Options{KeyFile: keyFile})
	if !errors.Is(err, embedded.ErrInvalidMasterKey) {
		t.Errorf("OpenEmbedded with a malformed key file: error = %v, want ErrInvalidMasterKey", err)
	}
}

func TestOpenEmbeddedInvalidMasterKey(t *testing.T) {
	for _, n := range []int{0, 16, 31, 33, 64} {
		_, err := embedded.Open(filepath.Join(t.TempDir(), "creds.db"), &embedded.Options{MasterKey: make([]byte, n)})
		if !errors.Is(err, embedded.ErrInvalidMasterKey) {
			t.Errorf("OpenEmbedded with a %d-byte master key: error = %v, want ErrInvalidMasterKey", n, err)
		}
	}
}

func TestOpenEmbeddedWrongMasterKey(t *testing.T) {
	path := filepath.Join(t.TempDir(), "creds.db")
	right, wrong := newMasterKey(t), newMasterKey(t)
	s := openEmbedded(t, path, &embedded.Options{MasterKey: right})
	if _, err := s.Put(t.Context(), "tenant-1", "notion", vault.Credential{AccessToken: "a"}, 0); err != nil {
		t.Fatal(err)
	}
	mustClose(t, s)

	_, err := embedded.Open(path, &embedded.Options{MasterKey: wrong})
	if !errors.Is(err, embedded.ErrMasterKeyMismatch) {
		t.Fatalf("OpenEmbedded with the wrong master key: error = %v, want ErrMasterKeyMismatch", err)
	}
	assertNoKey(t, err.Error(), wrong)
	assertNoKey(t, err.Error(), right)

	// A key file (here created afresh) is a wrong key too.
	_, err = embedded.Open(path, &embedded.Options{KeyFile: filepath.Join(t.TempDir(), "other.key")})
	if !errors.Is(err, embedded.ErrMasterKeyMismatch) {
		t.Errorf("OpenEmbedded with a new key file: error = %v, want ErrMasterKeyMismatch", err)
	}

	// The failed opens left the store intact and unlocked.
	s = openEmbedded(t, path, &embedded.Options{MasterKey: right})
	if got, _, err := s.Get(t.Context(), "tenant-1", "notion"); err != nil || got.AccessToken != "a" {
		t.Errorf("Get with the right key after failed opens = %q, %v; want a, nil", got.AccessToken, err)
	}
}

func TestOpenEmbeddedMissingKeyFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "creds.db")
	mustClose(t, openEmbedded(t, path, nil))
	if err := os.Remove(path + ".key"); err != nil {
		t.Fatal(err)
	}
	_, err := embedded.Open(path, nil)
	if !errors.Is(err, embedded.ErrMasterKeyMismatch) || !strings.Contains(err.Error(), "missing") {
		t.Errorf("OpenEmbedded after the key file was lost: error = %v, want ErrMasterKeyMismatch saying it is missing", err)
	}
	if _, err := os.Stat(path + ".key"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a new key file was created for an existing store: %v", err)
	}
}

func TestOpenEmbeddedLocked(t *testing.T) {
	path := filepath.Join(t.TempDir(), "creds.db")
	key := newMasterKey(t)
	openEmbedded(t, path, &embedded.Options{MasterKey: key})
	_, err := embedded.Open(path, &embedded.Options{MasterKey: key})
	if !errors.Is(err, embedded.ErrLocked) || !strings.Contains(err.Error(), "locked") {
		t.Errorf("second OpenEmbedded of an open store: error = %v, want ErrLocked, saying it is locked", err)
	}
}

func TestOpenEmbeddedLogsDevelopmentWarning(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(slog.NewJSONHandler(&buf, nil))
	openEmbedded(t, filepath.Join(t.TempDir(), "creds.db"), &embedded.Options{MasterKey: newMasterKey(t), Logger: log})
	var entry struct {
		Level, Msg, Event string
	}
	for line := range strings.Lines(buf.String()) {
		if err := json.Unmarshal([]byte(line), &entry); err != nil {
			t.Fatal(err)
		}
		if entry.Event == "vault_embedded_open" {
			break
		}
	}
	if entry.Event != "vault_embedded_open" || entry.Level != "WARN" || !strings.Contains(entry.Msg, "development and single-node") {
		t.Errorf("open log = %q, want a WARN vault_embedded_open saying development and single-node use", buf.String())
	}
}

// tamper opens the closed store's file with bbolt and runs fn in a write
// transaction.
func tamper(t *testing.T, path string, fn func(tx *bolt.Tx) error) {
	t.Helper()
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.Update(fn); err != nil {
		t.Fatalf("tampering: %v", err)
	}
}

// rawRecord reads a record's JSON fields from tx.
func rawRecord(t *testing.T, tx *bolt.Tx, tenant, integration string) map[string]json.RawMessage {
	t.Helper()
	raw := tx.Bucket(embedded.BucketCredentials).Bucket([]byte(tenant)).Get([]byte(integration))
	if raw == nil {
		t.Fatalf("no record %s/%s in the file", tenant, integration)
	}
	var rec map[string]json.RawMessage
	if err := json.Unmarshal(raw, &rec); err != nil {
		t.Fatal(err)
	}
	return rec
}

func putRawRecord(t *testing.T, tx *bolt.Tx, tenant, integration string, rec map[string]json.RawMessage) error {
	t.Helper()
	raw, err := json.Marshal(rec)
	if err != nil {
		t.Fatal(err)
	}
	return tx.Bucket(embedded.BucketCredentials).Bucket([]byte(tenant)).Put([]byte(integration), raw)
}

func TestEmbeddedCiphertextBoundToRecord(t *testing.T) {
	type tamperFunc func(t *testing.T, tx *bolt.Tx) error
	// moveField copies field from one record into tenant-a/notion's field to.
	moveField := func(fromTenant, fromIntegration, from, to string) tamperFunc {
		return func(t *testing.T, tx *bolt.Tx) error {
			src := rawRecord(t, tx, fromTenant, fromIntegration)
			dst := rawRecord(t, tx, "tenant-a", "notion")
			dst[to] = src[from]
			return putRawRecord(t, tx, "tenant-a", "notion", dst)
		}
	}
	tests := []struct {
		name   string
		tamper tamperFunc
	}{
		{"access token from another tenant", moveField("tenant-b", "notion", "access_token", "access_token")},
		{"refresh token from another tenant", moveField("tenant-b", "notion", "refresh_token", "refresh_token")},
		{"access token from another integration", moveField("tenant-a", "github", "access_token", "access_token")},
		{"refresh token into the access token field", moveField("tenant-a", "notion", "refresh_token", "access_token")},
		{"access token into the refresh token field", moveField("tenant-a", "notion", "access_token", "refresh_token")},
		{"whole record and data key from another tenant", func(t *testing.T, tx *bolt.Tx) error {
			rec := rawRecord(t, tx, "tenant-b", "notion")
			if err := putRawRecord(t, tx, "tenant-a", "notion", rec); err != nil {
				return err
			}
			keys := tx.Bucket(embedded.BucketDataKeys)
			return keys.Bucket([]byte("tenant-b")).ForEach(func(k, v []byte) error {
				return keys.Bucket([]byte("tenant-a")).Put(k, v)
			})
		}},
		{"missing data-key version", func(t *testing.T, tx *bolt.Tx) error {
			rec := rawRecord(t, tx, "tenant-a", "notion")
			rec["key_version"] = json.RawMessage("7")
			return putRawRecord(t, tx, "tenant-a", "notion", rec)
		}},
		{"flipped ciphertext bit", func(t *testing.T, tx *bolt.Tx) error {
			rec := rawRecord(t, tx, "tenant-a", "notion")
			var ct []byte
			if err := json.Unmarshal(rec["access_token"], &ct); err != nil {
				return err
			}
			ct[len(ct)/2] ^= 1
			rec["access_token"], _ = json.Marshal(ct)
			return putRawRecord(t, tx, "tenant-a", "notion", rec)
		}},
		{"corrupted wrapped data key", func(t *testing.T, tx *bolt.Tx) error {
			b := tx.Bucket(embedded.BucketDataKeys).Bucket([]byte("tenant-a"))
			k, v := b.Cursor().First()
			v = bytes.Clone(v)
			v[len(v)-1] ^= 1
			return b.Put(bytes.Clone(k), v)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "creds.db")
			opts := &embedded.Options{MasterKey: newMasterKey(t)}
			s := openEmbedded(t, path, opts)
			ctx := t.Context()
			records := []struct{ tenant, integration string }{
				{"tenant-a", "notion"}, {"tenant-a", "github"}, {"tenant-b", "notion"},
			}
			for _, r := range records {
				cred := vault.Credential{AccessToken: "access-" + r.tenant + "-" + r.integration, RefreshToken: "refresh-" + r.tenant + "-" + r.integration}
				if _, err := s.Put(ctx, r.tenant, r.integration, cred, 0); err != nil {
					t.Fatal(err)
				}
			}
			mustClose(t, s)

			tamper(t, path, func(tx *bolt.Tx) error { return tt.tamper(t, tx) })

			s = openEmbedded(t, path, opts)
			got, _, err := s.Get(ctx, "tenant-a", "notion")
			var ee *vault.VaultEncryptionError
			if !errors.As(err, &ee) {
				t.Fatalf("Get of the tampered record = %+v, %v; want *VaultEncryptionError", got, err)
			}
			for _, r := range records {
				for _, secret := range []string{"access-", "refresh-"} {
					if strings.Contains(err.Error(), secret+r.tenant+"-"+r.integration) {
						t.Errorf("error %q reveals a token", err)
					}
				}
			}
			// The other tenant's record is untouched.
			if got, _, err := s.Get(ctx, "tenant-b", "notion"); err != nil || got.AccessToken != "access-tenant-b-notion" {
				t.Errorf("Get(tenant-b/notion) = %q, %v; want it intact", got.AccessToken, err)
			}
		})
	}
}

func assertNoKey(t *testing.T, text string, key []byte) {
	t.Helper()
	for _, form := range []string{
		string(key), hex.EncodeToString(key),
		base64.StdEncoding.EncodeToString(key), base64.RawURLEncoding.EncodeToString(key),
	} {
		if strings.Contains(text, form) {
			t.Errorf("master key appears in %.80q", text)
		}
	}
}

func TestEmbeddedNoPlaintextOnDisk(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "creds.db")
	key := newMasterKey(t)
	var logs bytes.Buffer
	s := openEmbedded(t, path, &embedded.Options{
		MasterKey: key,
		Logger:    slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	})
	ctx := t.Context()

	var planted []string
	plant := func(kind string) string {
		tok := "PLANTED-" + kind + "-" + hex.EncodeToString(newMasterKey(t)[:12])
		planted = append(planted, tok)
		return tok
	}
	for _, tenant := range []string{"tenant-a", "tenant-b"} {
		for _, integration := range []string{"notion", "github"} {
			for v := int64(0); v < 3; v++ { // several versions, so freed pages hold old records
				cred := vault.Credential{
					AccessToken:  plant("ACCESS"),
					RefreshToken: plant("REFRESH"),
					Scopes:       []string{"read"},
				}
				if _, err := s.Put(ctx, tenant, integration, cred, v); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	if err := s.RotateTenantKey(ctx, "tenant-a"); err != nil {
		t.Fatal(err)
	}
	if err := s.Delete(ctx, "tenant-b", "github"); err != nil {
		t.Fatal(err)
	}
	mustClose(t, s)

	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(raw, []byte("tenant-a")) || !bytes.Contains(raw, []byte(`"scopes":["read"]`)) {
		t.Fatal("the file does not hold the records in the expected form; the search below would prove nothing")
	}
	for _, tok := range planted {
		for _, form := range []string{tok, base64.StdEncoding.EncodeToString([]byte(tok)), hex.EncodeToString([]byte(tok))} {
			if bytes.Contains(raw, []byte(form)) {
				t.Errorf("token %s appears in the file (as %.20q...)", tok, form)
			}
			if strings.Contains(logs.String(), form) {
				t.Errorf("token %s appears in the logs", tok)
			}
		}
	}
	assertNoKey(t, string(raw), key)
	assertNoKey(t, logs.String(), key)
}

// recordsOnDisk returns, from the closed store at path, each record's JSON
// by "tenant/integration" and each tenant's data-key versions.
func recordsOnDisk(t *testing.T, path string) (map[string]map[string]json.RawMessage, map[string][]uint64) {
	t.Helper()
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	records := map[string]map[string]json.RawMessage{}
	keys := map[string][]uint64{}
	err = db.View(func(tx *bolt.Tx) error {
		creds := tx.Bucket(embedded.BucketCredentials)
		err := creds.ForEachBucket(func(tenant []byte) error {
			return creds.Bucket(tenant).ForEach(func(integration, _ []byte) error {
				records[string(tenant)+"/"+string(integration)] = rawRecord(t, tx, string(tenant), string(integration))
				return nil
			})
		})
		if err != nil {
			return err
		}
		dk := tx.Bucket(embedded.BucketDataKeys)
		return dk.ForEachBucket(func(tenant []byte) error {
			return dk.Bucket(tenant).ForEach(func(k, _ []byte) error {
				keys[string(tenant)] = append(keys[string(tenant)], binary.BigEndian.Uint64(k))
				return nil
			})
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	return records, keys
}

func TestEmbeddedRotateTenantKey(t *testing.T) {
	path := filepath.Join(t.TempDir(), "creds.db")
	opts := &embedded.Options{MasterKey: newMasterKey(t)}
	s := openEmbedded(t, path, opts)
	ctx := t.Context()
	want := map[string]vault.Credential{}
	for _, r := range []string{"tenant-a/notion", "tenant-a/github", "tenant-b/notion"} {
		tenant, integration, _ := strings.Cut(r, "/")
		cred := vault.Credential{AccessToken: "access-" + r, RefreshToken: "refresh-" + r, Scopes: []string{"x"}}
		if _, err := s.Put(ctx, tenant, integration, cred, 0); err != nil {
			t.Fatal(err)
		}
		got, _, err := s.Get(ctx, tenant, integration)
		if err != nil {
			t.Fatal(err)
		}
		want[r] = got // with its stamps
	}
	mustClose(t, s)
	before, keysBefore := recordsOnDisk(t, path)
	if diff := cmp.Diff(map[string][]uint64{"tenant-a": {1}, "tenant-b": {1}}, keysBefore); diff != "" {
		t.Errorf("data-key versions before rotation (-want +got):\n%s", diff)
	}

	s = openEmbedded(t, path, opts)
	if _, _, err := s.Get(ctx, "tenant-a", "notion"); err != nil { // cache the old key
		t.Fatal(err)
	}
	if err := s.RotateTenantKey(ctx, "tenant-a"); err != nil {
		t.Fatalf("RotateTenantKey: %v", err)
	}
	checkAll := func(when string) {
		t.Helper()
		for r, w := range want {
			tenant, integration, _ := strings.Cut(r, "/")
			got, v, err := s.Get(ctx, tenant, integration)
			if err != nil {
				t.Fatalf("%s: Get(%s): %v", when, r, err)
			}
			if v != 1 {
				t.Errorf("%s: Get(%s) version = %d, want 1 (rotation does not change credentials)", when, r, v)
			}
			if diff := cmp.Diff(w, got, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("%s: Get(%s) mismatch (-want +got):\n%s", when, r, diff)
			}
		}
	}
	checkAll("after rotation")
	mustClose(t, s)

	after, keysAfter := recordsOnDisk(t, path)
	if diff := cmp.Diff(map[string][]uint64{"tenant-a": {2}, "tenant-b": {1}}, keysAfter); diff != "" {
		t.Errorf("data-key versions after rotation (-want +got):\n%s", diff)
	}
	for r := range want {
		rotated := strings.HasPrefix(r, "tenant-a/")
		for _, field := range []string{"access_token", "refresh_token"} {
			changed := !bytes.Equal(before[r][field], after[r][field])
			if changed != rotated {
				t.Errorf("%s %s: ciphertext changed = %t, want %t", r, field, changed, rotated)
			}
		}
		wantKV := "1"
		if rotated {
			wantKV = "2"
		}
		if got := string(after[r]["key_version"]); got != wantKV {
			t.Errorf("%s key_version = %s, want %s", r, got, wantKV)
		}
	}

	// Reopened (nothing cached), the rotated records still read, new writes
	// use the new key, and rotation repeats.
	s = openEmbedded(t, path, opts)
	checkAll("after reopening")
	if err := s.RotateTenantKey(ctx, "tenant-a"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Put(ctx, "tenant-a", "slack", vault.Credential{AccessToken: "s"}, 0); err != nil {
		t.Fatal(err)
	}
	if err := s.RotateTenantKey(ctx, "tenant-new"); err != nil { // no records yet
		t.Errorf("RotateTenantKey of a tenant without records: %v", err)
	}
	if err := s.RotateTenantKey(ctx, "../x"); !errors.Is(err, tenants.ErrInvalidID) {
		t.Errorf("RotateTenantKey(../x) error = %v, want ErrInvalidID", err)
	}
	checkAll("after second rotation")
	mustClose(t, s)
	after, keysAfter = recordsOnDisk(t, path)
	if diff := cmp.Diff([]uint64{3}, keysAfter["tenant-a"]); diff != "" {
		t.Errorf("tenant-a data-key versions after second rotation (-want +got):\n%s", diff)
	}
	if got := string(after["tenant-a/slack"]["key_version"]); got != "3" {
		t.Errorf("record written after rotation has key_version %s, want 3", got)
	}
}

func TestEmbeddedRotateDuringReads(t *testing.T) {
	s := openEmbedded(t, filepath.Join(t.TempDir(), "creds.db"), &embedded.Options{MasterKey: newMasterKey(t)})
	ctx := t.Context()
	if _, err := s.Put(ctx, "tenant-1", "notion", vault.Credential{AccessToken: "a"}, 0); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	errs := make(chan error, 100)
	for range 4 {
		wg.Go(func() {
			for {
				select {
				case <-done:
					return
				default:
				}
				if got, _, err := s.Get(ctx, "tenant-1", "notion"); err != nil || got.AccessToken != "a" {
					errs <- err
					return
				}
			}
		})
	}
	for range 10 {
		if err := s.RotateTenantKey(ctx, "tenant-1"); err != nil {
			t.Error(err)
		}
	}
	close(done)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("Get during rotation: %v", err)
	}
}

func TestEmbeddedReopenPersists(t *testing.T) {
	path := filepath.Join(t.TempDir(), "creds.db")
	opts := &embedded.Options{MasterKey: newMasterKey(t)}
	s := openEmbedded(t, path, opts)
	ctx := t.Context()
	want := vault.Credential{
		AccessToken: "a", RefreshToken: "r", TokenType: "Bearer",
		ExpiresAt: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC),
		Scopes:    []string{"read"}, Extra: map[string]string{"bot_id": "b"},
	}
	for v := int64(0); v < 2; v++ {
		if _, err := s.Put(ctx, "tenant-1", "notion", want, v); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.Put(ctx, "tenant-2", "github", want, 0); err != nil {
		t.Fatal(err)
	}
	if err := s.PutAPIKey(ctx, "0123456789abcdef", []byte(`{"id":"0123456789abcdef"}`)); err != nil {
		t.Fatal(err)
	}
	mustClose(t, s)

	s = openEmbedded(t, path, opts)
	got, v, err := s.Get(ctx, "tenant-1", "notion")
	if err != nil {
		t.Fatal(err)
	}
	if v != 2 {
		t.Errorf("version after reopen = %d, want 2", v)
	}
	got.CreatedAt, got.UpdatedAt = time.Time{}, time.Time{}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Get after reopen (-want +got):\n%s", diff)
	}
	if v, err := s.Put(ctx, "tenant-1", "notion", want, 2); err != nil || v != 3 {
		t.Errorf("Put after reopen = %d, %v; want 3, nil", v, err)
	}
	ids, err := s.Tenants(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"tenant-1", "tenant-2"}, ids); diff != "" {
		t.Errorf("Tenants after reopen (-want +got):\n%s", diff)
	}
	if _, err := s.GetAPIKey(ctx, "0123456789abcdef"); err != nil {
		t.Errorf("GetAPIKey after reopen: %v", err)
	}
}

func TestEmbeddedClosed(t *testing.T) {
	s := openEmbedded(t, filepath.Join(t.TempDir(), "creds.db"), &embedded.Options{MasterKey: newMasterKey(t)})
	mustClose(t, s)
	_, _, err := s.Get(t.Context(), "tenant-1", "notion")
	var ve *vault.VaultError
	if !errors.As(err, &ve) {
		t.Errorf("Get after Close: error = %v, want *VaultError", err)
	}
}

func BenchmarkEmbeddedGet(b *testing.B) {
	key := make([]byte, 32)
	rand.Read(key)
	s, err := embedded.Open(filepath.Join(b.TempDir(), "creds.db"), &embedded.Options{MasterKey: key})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	ctx := b.Context()
	cred := vault.Credential{AccessToken: strings.Repeat("a", 200), RefreshToken: strings.Repeat("r", 100), Scopes: []string{"read", "write"}}
	if _, err := s.Put(ctx, "tenant-1", "notion", cred, 0); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, _, err := s.Get(ctx, "tenant-1", "notion"); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// TestEmbeddedReadsFollowWrites: Gets of an unchanged store answer from
// memory, yet a Get after a write (Put, Delete, rotation) has returned sees
// it, and readers running beside the writes never go back to an older
// version.
func TestEmbeddedReadsFollowWrites(t *testing.T) {
	s := openEmbedded(t, filepath.Join(t.TempDir(), "creds.db"), &embedded.Options{MasterKey: newMasterKey(t)})
	ctx := t.Context()
	get := func() (string, int64, error) {
		c, v, err := s.Get(ctx, "tenant-1", "notion")
		return c.AccessToken, v, err
	}
	var version int64
	done := make(chan struct{})
	var wg sync.WaitGroup
	errs := make(chan error, 100)
	for range 4 {
		wg.Go(func() {
			var last int64
			for {
				select {
				case <-done:
					return
				default:
				}
				tok, v, err := get()
				if vault.IsNotFound(err) {
					continue
				}
				if err != nil || v < last || tok != fmt.Sprintf("token-%d", v) {
					errs <- fmt.Errorf("Get = %q, version %d after %d, %v", tok, v, last, err)
					return
				}
				last = v
			}
		})
	}
	for i := range 200 {
		var err error
		version, err = s.Put(ctx, "tenant-1", "notion", vault.Credential{AccessToken: fmt.Sprintf("token-%d", version+1)}, version)
		if err != nil {
			t.Fatal(err)
		}
		if tok, v, err := get(); err != nil || v != version || tok != fmt.Sprintf("token-%d", version) {
			t.Fatalf("Get after Put %d = %q, version %d, %v; want version %d", i, tok, v, err, version)
		}
		if i%50 == 49 {
			if err := s.RotateTenantKey(ctx, "tenant-1"); err != nil {
				t.Fatal(err)
			}
		}
	}
	close(done)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if err := s.Delete(ctx, "tenant-1", "notion"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := get(); !vault.IsNotFound(err) {
		t.Errorf("Get after Delete = %v, want not found", err)
	}
}
