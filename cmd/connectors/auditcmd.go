package main

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/connectors-gateway/connectors/audit"
)

// AuditKeyFile is where, in the data dir, the key that signs the audit
// trail's checkpoints is kept when CONNECTORS_AUDIT_SIGNING_KEY names no
// other file.
const AuditKeyFile = "audit-signing.key"

// maxFsyncWindow bounds CONNECTORS_AUDIT_FSYNC: a record unsynced for
// longer is hardly durable.
const maxFsyncWindow = time.Second

// auditOptions are how the trail is written: chained, its checkpoints
// signed with the key of auditSigningKey, fsync'd as CONNECTORS_AUDIT_FSYNC
// says.
func (m *Main) auditOptions(cfg Config) (audit.Options, error) {
	o := audit.Options{Chain: true}
	var err error
	if o.FsyncWindow, err = auditFsyncWindow(cfg.AuditFsync); err != nil {
		return o, err
	}
	// With Vault the gateway makes no data dir of its own: the key is the
	// one named, or one already there.
	vaultOnly := cfg.AuditSigningKey == "" && cfg.VaultAddr != ""
	key, err := m.auditSigningKey(cfg, !vaultOnly)
	if err == nil && key == nil && vaultOnly && !m.operator {
		m.logger(cfg).Warn("audit_checkpoints_unsigned",
			"fix", "set CONNECTORS_AUDIT_SIGNING_KEY to a file for the key (made on first use), shared by the replicas or one each")
	}
	if err != nil {
		return o, err
	}
	o.SigningKey = key
	return o, nil
}

// auditFsyncWindow reads CONNECTORS_AUDIT_FSYNC: zero for "always" (or
// unset), else the window.
func auditFsyncWindow(v string) (time.Duration, error) {
	if v == "" || v == "always" {
		return 0, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 || d > maxFsyncWindow {
		return 0, fmt.Errorf(`CONNECTORS_AUDIT_FSYNC: %q: want "always" or a window from 1ms to %v, such as "5ms"`, v, maxFsyncWindow)
	}
	return d, nil
}

// auditSigningKey reads the checkpoint signing key: the file
// CONNECTORS_AUDIT_SIGNING_KEY names (an error when it cannot be read or
// made), else AuditKeyFile in the data dir, made on first use when create
// is set; a data dir where it cannot be made leaves the checkpoints
// unsigned, with a warning (the chain still holds). The file holds the
// key's 32-byte seed in base64, mode 0600.
func (m *Main) auditSigningKey(cfg Config, create bool) (ed25519.PrivateKey, error) {
	path, explicit := cfg.AuditSigningKey, cfg.AuditSigningKey != ""
	if !explicit {
		path = filepath.Join(cfg.DataDir, AuditKeyFile)
	}
	key, err := readSigningKey(path)
	if errors.Is(err, fs.ErrNotExist) && create {
		key, err = makeSigningKey(path, explicit)
	}
	switch {
	case err == nil:
		return key, nil
	case explicit:
		return nil, fmt.Errorf("CONNECTORS_AUDIT_SIGNING_KEY: %w", err)
	case errors.Is(err, fs.ErrNotExist):
		return nil, nil
	case create:
		m.logger(cfg).Warn("audit_checkpoints_unsigned", "error", err.Error(),
			"fix", "set CONNECTORS_AUDIT_SIGNING_KEY to a writable file, or make the data dir writable")
		return nil, nil
	}
	return nil, err
}

func readSigningKey(path string) (ed25519.PrivateKey, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	seed, err := base64.StdEncoding.DecodeString(strings.TrimSpace(string(b)))
	if err != nil || len(seed) != ed25519.SeedSize {
		return nil, fmt.Errorf("%s: not an audit signing key (want %d bytes in base64)", path, ed25519.SeedSize)
	}
	return ed25519.NewKeyFromSeed(seed), nil
}

// makeSigningKey makes a new key at path (never over an existing file: a
// concurrent maker's key is read instead).
func makeSigningKey(path string, explicit bool) (ed25519.PrivateKey, error) {
	if !explicit {
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			return nil, err
		}
	}
	seed := make([]byte, ed25519.SeedSize)
	_, _ = rand.Read(seed)
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return readSigningKey(path)
	}
	if err != nil {
		return nil, err
	}
	_, err = f.WriteString(base64.StdEncoding.EncodeToString(seed) + "\n")
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, err
	}
	return ed25519.NewKeyFromSeed(seed), nil
}

// auditCmd runs "connectors audit verify|key".
func (m *Main) auditCmd(cfg Config, args []string) error {
	if len(args) == 0 {
		return usageError{"audit: want verify or key"}
	}
	switch args[0] {
	case "key":
		return m.auditKey(cfg, args[1:])
	case "verify":
		return m.auditVerify(cfg, args[1:])
	}
	return usageError{fmt.Sprintf("audit: unknown command %q (want verify or key)", args[0])}
}

// auditKey prints the public key that verifies the checkpoints, for
// "audit verify --public-key" where the signing key is not.
func (m *Main) auditKey(cfg Config, args []string) error {
	if err := parse(m.flags("audit key"), args); err != nil {
		return err
	}
	key, err := m.auditSigningKey(cfg, false)
	if err != nil {
		return err
	}
	if key == nil {
		return errors.New("no audit signing key yet (it is made when the trail is first written)")
	}
	pub := key.Public().(ed25519.PublicKey)
	fmt.Fprintf(m.Stdout, "%s %s\n", base64.StdEncoding.EncodeToString(pub), audit.KeyID(pub))
	return nil
}

// publicKeys is the repeatable --public-key flag.
type publicKeys map[string]ed25519.PublicKey

func (p publicKeys) String() string { return "" }

func (p publicKeys) Set(v string) error {
	b, err := base64.StdEncoding.DecodeString(strings.Fields(v + " ")[0])
	if err != nil || len(b) != ed25519.PublicKeySize {
		return errors.New("want a public key as audit key prints it (base64)")
	}
	p[audit.KeyID(b)] = b
	return nil
}

// auditVerify checks each FILE's chain and checkpoints: one line per file,
// and each problem found; an error when any file is not intact.
func (m *Main) auditVerify(cfg Config, args []string) error {
	fset := m.flags("audit verify")
	keys := publicKeys{}
	fset.Var(keys, "public-key", "a `key` (base64) that signs checkpoints; repeatable (default: the signing key's)")
	if err := fset.Parse(args); err != nil {
		return usageError{err.Error()}
	}
	if fset.NArg() == 0 {
		return usageError{"audit verify: want the trail FILE(s)"}
	}
	if len(keys) == 0 {
		if key, err := m.auditSigningKey(cfg, false); err != nil {
			return err
		} else if key != nil {
			_ = keys.Set(base64.StdEncoding.EncodeToString(key.Public().(ed25519.PublicKey)))
		}
	}
	var bad []string
	for _, path := range fset.Args() {
		if !m.verifyFile(path, keys) {
			bad = append(bad, path)
		}
	}
	if len(bad) > 0 {
		return fmt.Errorf("audit trail not intact: %s", strings.Join(bad, ", "))
	}
	return nil
}

func (m *Main) verifyFile(path string, keys publicKeys) bool {
	f, err := os.Open(path)
	if err != nil {
		fmt.Fprintf(m.Stdout, "%s: %v\n", path, err)
		return false
	}
	defer f.Close()
	rep, err := audit.Verify(f, keys)
	if err != nil {
		rep.Problems = append(rep.Problems, "reading: "+err.Error())
	}
	state := "intact"
	if len(rep.Problems) > 0 {
		state = "NOT INTACT"
	}
	fmt.Fprintf(m.Stdout, "%s: %s: %d records, %d signed checkpoints", path, state, rep.Records, rep.Checkpoints)
	if rep.AfterCheckpoint > 0 {
		fmt.Fprintf(m.Stdout, ", %d records after the last one (chained, not yet signed)", rep.AfterCheckpoint)
	}
	if rep.Unchained > 0 {
		fmt.Fprintf(m.Stdout, ", %d unchained records before the chain began", rep.Unchained)
	}
	fmt.Fprintln(m.Stdout)
	for _, p := range rep.Problems {
		fmt.Fprintf(m.Stdout, "  %s\n", p)
	}
	return len(rep.Problems) == 0
}

var _ flag.Value = publicKeys{}
