package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/connectors-gateway/connectors/vault"
	"github.com/connectors-gateway/connectors/vault/embedded"
	"github.com/connectors-gateway/connectors/vault/hashicorp"
)

// doctorStore checks the credential store serve would open: Vault when
// VAULT_ADDR is set, else the embedded store.
func (m *Main) doctorStore(ctx context.Context, r *doctorReport, cfg Config, timeout time.Duration) {
	if cfg.VaultAddr != "" {
		m.doctorVault(ctx, r, cfg, timeout)
		return
	}
	if !doctorDataDir(r, cfg) {
		return
	}
	key, ok := doctorMasterKey(r, cfg)
	if gatewayAnswers(cfg) { // adminsock.go
		r.ok("store", "embedded store %s is served by a running gateway (its admin socket answers): that is fine, operator commands go through it", cfg.storePath())
		return
	}
	if !ok || key == nil {
		return
	}
	doctorOpenEmbedded(r, cfg, key)
}

// doctorDataDir checks the data dir and the store file in it; false when
// there is no store to open.
func doctorDataDir(r *doctorReport, cfg Config) bool {
	dir := cfg.DataDir
	fi, err := os.Stat(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		r.warn("store.data_dir", dir+" does not exist: serve creates it and an empty store",
			"none on a first start; if the store is elsewhere, set CONNECTORS_DATA_DIR to it (a relative one is relative to the working directory)")
		return false
	case err != nil:
		r.fail("store.data_dir", err.Error(), "make "+dir+" readable by the gateway's user")
		return false
	case !fi.IsDir():
		r.fail("store.data_dir", dir+" is not a directory", "set CONNECTORS_DATA_DIR to a directory")
		return false
	case fi.Mode().Perm()&0o077 != 0:
		r.fail("store.data_dir", fmt.Sprintf("%s has mode %04o, not 0700: other users may reach the store and its key", dir, fi.Mode().Perm()), "chmod 700 "+dir)
	case fi.Mode().Perm() != 0o700:
		r.fail("store.data_dir", fmt.Sprintf("%s has mode %04o, not 0700: the gateway cannot use it", dir, fi.Mode().Perm()), "chmod 700 "+dir)
	default:
		r.ok("store.data_dir", "%s exists, mode 0700", dir)
	}
	path := cfg.storePath()
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		r.warn("store.file", path+" does not exist: serve creates an empty store", "none on a first start; otherwise restore it from your backup")
		return false
	}
	if err != nil {
		r.fail("store.file", err.Error(), "chown it to the gateway's user and chmod 600 "+path)
		return false
	}
	defer f.Close()
	if fi, err := f.Stat(); err == nil && fi.Mode().Perm()&0o077 != 0 {
		r.warn("store.file", fmt.Sprintf("%s has mode %04o", path, fi.Mode().Perm()), "chmod 600 "+path)
	} else {
		r.ok("store.file", "%s is readable", path)
	}
	return true
}

// doctorMasterKey checks the master key (CONNECTORS_MASTER_KEY or the key
// file) without showing it; the key is nil when there is none yet.
func doctorMasterKey(r *doctorReport, cfg Config) ([]byte, bool) {
	if cfg.MasterKey != nil {
		r.ok("store.master_key", "from CONNECTORS_MASTER_KEY")
		return cfg.MasterKey, true
	}
	path := cfg.keyFilePath()
	fi, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		r.fail("store.master_key", "the store exists but its master key "+path+" is missing, and CONNECTORS_MASTER_KEY is not set: nothing in it can be read",
			"restore "+path+" (mode 0600) from your backup, or set CONNECTORS_MASTER_KEY to the key the store was made with")
		return nil, false
	}
	if err != nil {
		r.fail("store.master_key", err.Error(), "make "+path+" readable by the gateway's user only")
		return nil, false
	}
	if fi.Mode().Perm()&0o077 != 0 {
		r.fail("store.master_key", fmt.Sprintf("%s has mode %04o: the gateway refuses a key others can read", path, fi.Mode().Perm()), "chmod 600 "+path)
		return nil, false
	}
	text, err := os.ReadFile(path)
	if err != nil {
		r.fail("store.master_key", err.Error(), "chown it to the gateway's user")
		return nil, false
	}
	key, err := embedded.ParseMasterKey(string(text)) // its error never echoes the text
	if err != nil {
		r.fail("store.master_key", path+": "+err.Error(), "restore the key file from your backup")
		return nil, false
	}
	r.ok("store.master_key", "%s, mode %04o", path, fi.Mode().Perm())
	return key, true
}

// doctorOpenEmbedded opens the store with its key, which proves the key is
// the one it was made with.
func doctorOpenEmbedded(r *doctorReport, cfg Config, key []byte) {
	st, err := embedded.Open(cfg.storePath(), &embedded.Options{MasterKey: key, KeyFile: cfg.keyFilePath()})
	switch {
	case errors.Is(err, embedded.ErrLocked):
		r.warn("store", "another process holds "+cfg.storePath()+" and answers on no admin socket (connectors stdio, or a gateway without one): serve cannot open it meanwhile",
			"stop that process before serve, or let that gateway serve")
	case errors.Is(err, embedded.ErrMasterKeyMismatch):
		r.fail("store", "the master key does not open "+cfg.storePath()+": it was made under another key", "give the key it was made with (the right "+cfg.keyFilePath()+" or CONNECTORS_MASTER_KEY)")
	case err != nil:
		r.fail("store", err.Error(), "restore the store from your backup")
	default:
		st.Close()
		r.ok("store", "embedded store %s opens with its master key", cfg.storePath())
	}
}

// doctorVault checks the Vault backend with the token or AppRole login
// serve would use: Vault answers, the mounts are KV v2 and Transit, and
// the token has every capability the gateway needs.
func (m *Main) doctorVault(ctx context.Context, r *doctorReport, cfg Config, timeout time.Duration) {
	if cfg.VaultTimeout == 0 {
		cfg.VaultTimeout = timeout
	}
	b, err := m.openVault(cfg, nil, slog.New(slog.DiscardHandler)) // run.go
	if err != nil {
		r.fail("store.vault", "Vault at "+cfg.VaultAddr+": "+err.Error(), vaultFix(err))
		return
	}
	st, ok := b.(*hashicorp.Store)
	if !ok {
		r.fail("store.vault", "not a HashiCorp Vault store", "report this")
		return
	}
	if err := st.Ping(ctx); err != nil {
		r.fail("store.vault", "Vault at "+cfg.VaultAddr+": "+err.Error(), vaultFix(err))
		return
	}
	r.ok("store.vault", "Vault at %s answers with the gateway's %s", cfg.VaultAddr, vaultAuthKind(cfg))
	if err := st.CheckMounts(ctx); err != nil {
		for _, e := range unjoin(err) {
			r.fail("store.vault_mounts", e.Error(), "vault secrets enable -path="+cfg.kvMount()+" kv-v2 / vault secrets enable -path="+cfg.transitMount()+" transit (the one named), or set VAULT_KV_ENGINE / VAULT_TRANSIT_ENGINE to yours")
		}
	} else {
		r.ok("store.vault_mounts", "%s/ is KV v2, %s/ is Transit", cfg.kvMount(), cfg.transitMount())
	}
	lacks, err := st.MissingCapabilities(ctx)
	if err != nil {
		r.warn("store.vault_policy", "cannot read the token's capabilities ("+err.Error()+")",
			`grant path "sys/capabilities-self" {capabilities = ["update"]}, as vault/hashicorp/policies/gateway-service-policy.hcl does`)
		return
	}
	for _, l := range lacks {
		r.fail("store.vault_policy", fmt.Sprintf("the token lacks %s on %s (%s)", strings.Join(l.Missing, ", "), l.Path, l.For),
			"give the token vault/hashicorp/policies/gateway-service-policy.hcl (vault policy write gateway-service …), with your mount names")
	}
	if len(lacks) == 0 {
		r.ok("store.vault_policy", "the token has every capability the gateway needs (%d paths)", len(st.Needs()))
	}
}

// vaultFix is the fix for a Vault that did not let the gateway in.
func vaultFix(err error) string {
	var ve *vault.VaultError
	switch {
	case errors.Is(err, hashicorp.ErrUnreachable):
		return "check VAULT_ADDR, that Vault runs and is unsealed, and the network between (VAULT_CACERT for its TLS)"
	case errors.As(err, &ve) && strings.Contains(err.Error(), "HTTP 403"):
		return "check VAULT_TOKEN (or VAULT_ROLE_ID and VAULT_SECRET_ID): Vault refused it, or its policy lacks the gateway's paths"
	default:
		return "check VAULT_ADDR, VAULT_TOKEN or VAULT_ROLE_ID and VAULT_SECRET_ID, and VAULT_CACERT"
	}
}

func vaultAuthKind(cfg Config) string {
	if cfg.VaultToken != "" {
		return "token (VAULT_TOKEN)"
	}
	return "AppRole login (VAULT_ROLE_ID, VAULT_SECRET_ID)"
}

func (c Config) kvMount() string      { return cmp.Or(c.VaultKVEngine, "secret") }
func (c Config) transitMount() string { return cmp.Or(c.VaultTransitEngine, "transit") }

// unjoin splits an errors.Join error into its parts.
func unjoin(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}
