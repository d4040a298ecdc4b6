package oauth_test

import (
	"context"
	"encoding/json"
	"errors"
	"path/filepath"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/connectors-gateway/connectors/oauth"
	"github.com/connectors-gateway/connectors/tenants"
	"github.com/connectors-gateway/connectors/vault"
	"github.com/connectors-gateway/connectors/vault/embedded"
)

// TestFlowRelinksUnreadableRecord: a tenant whose stored credential no
// longer decrypts (here it holds another tenant's ciphertext) links
// again, and the new link replaces the record, which then reads.
func TestFlowRelinksUnreadableRecord(t *testing.T) {
	path := filepath.Join(t.TempDir(), "store.db")
	opts := &embedded.Options{MasterKey: make([]byte, 32)}
	st, err := embedded.Open(path, opts)
	if err != nil {
		t.Fatal(err)
	}
	for _, tenant := range []string{"tenant-a", "tenant-b"} {
		if _, err := st.Put(context.Background(), tenant, "crm", vault.Credential{AccessToken: "old-" + tenant}, 0); err != nil {
			t.Fatal(err)
		}
	}
	st.Close()
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Update(func(tx *bolt.Tx) error {
		creds := tx.Bucket([]byte("credentials"))
		var a, b map[string]json.RawMessage
		_ = json.Unmarshal(creds.Bucket([]byte("tenant-a")).Get([]byte("crm")), &a)
		_ = json.Unmarshal(creds.Bucket([]byte("tenant-b")).Get([]byte("crm")), &b)
		a["access_token"] = b["access_token"]
		raw, _ := json.Marshal(a)
		return creds.Bucket([]byte("tenant-a")).Put([]byte("crm"), raw)
	}); err != nil {
		t.Fatal(err)
	}
	db.Close()
	if st, err = embedded.Open(path, opts); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if _, _, err := st.Get(context.Background(), "tenant-a", "crm"); !isEncryptionError(err) {
		t.Fatalf("Get of the spoilt record: %v, want *vault.VaultEncryptionError", err)
	}

	ts := newTokenServer(t)
	sealer, err := tenants.NewBrowserSessions([]byte("0123456789abcdef0123456789abcdef"), time.Now)
	if err != nil {
		t.Fatal(err)
	}
	flow, err := oauth.NewFlow(oauth.FlowOptions{
		Providers: map[string]*oauth.Provider{"crm": {
			Integration: "crm", ClientID: "client", ClientSecret: "s3cret",
			AuthorizeURL: ts.URL + "/authorize", TokenURL: ts.URL + "/token", PKCE: true,
		}},
		Store:        st,
		Sealer:       sealer,
		Callbacks:    map[string]string{"crm": "https://gw.example.com/oauth/callback/crm"},
		RedirectURIs: []string{"https://app.example.com/done"},
	})
	if err != nil {
		t.Fatal(err)
	}
	e := &flowEnv{flow: flow, store: st, ts: ts}
	if _, err := e.callback(e.start(t, "tenant-a"), ""); err != nil {
		t.Fatalf("linking over a record that no longer decrypts: %v", err)
	}
	got, _, err := st.Get(context.Background(), "tenant-a", "crm")
	if err != nil || got.AccessToken != "at-linked-secret" {
		t.Errorf("after the new link: %q, %v; want the new token", got.AccessToken, err)
	}
	if got, _, err := st.Get(context.Background(), "tenant-b", "crm"); err != nil || got.AccessToken != "old-tenant-b" {
		t.Errorf("tenant-b's record: %q, %v; want it untouched", got.AccessToken, err)
	}
}

func isEncryptionError(err error) bool {
	_, ok := errors.AsType[*vault.VaultEncryptionError](err)
	return ok
}
