package main

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/connectors-gateway/connectors/tenants"
	"github.com/connectors-gateway/connectors/transport"
	"github.com/connectors-gateway/connectors/vault/embedded"
)

// The console's sign-in without an OpenID provider: "connectors console
// link" seals a one-time sign-in link with the key the gateway seals its
// sessions with, which for the embedded store is a key file in the data
// directory when CONNECTORS_BROWSER_SESSION_KEY is not set. The command
// needs only that key, not the store, so it runs beside a serving gateway
// (which holds the store's lock).

// sessionKeyFile names the browser session key file in the data dir.
const sessionKeyFile = "browser-session.key"

// Sign-in links' identities: the subject of their sessions, and the
// tenant an admin's session names.
const (
	linkSubject     = "console-link"
	linkAdminTenant = "admin"
)

// defaultPublicURL is where "make run" serves, for links when
// CONNECTORS_PUBLIC_URL is not set.
const defaultPublicURL = "http://127.0.0.1:3000"

// sessionKey sets cfg.BrowserSessionKey, when CONNECTORS_BROWSER_SESSION_KEY
// is not set and the store is the embedded one, to the key in the data
// dir's key file, creating it: so that browser sessions and OAuth states
// outlive a restart, and "console link" seals with the key the gateway
// opens with. MCP session IDs stay unsealed (cfg.SessionKeyFromFile): a
// single process has no replica to hand a session to, and an unsealed
// session ends when idle. With Vault and no key, nothing changes (the
// replicas must share a key, which a file of one of them is not).
func sessionKey(cfg *Config) error {
	if cfg.BrowserSessionKey != nil || cfg.VaultAddr != "" {
		return nil
	}
	key, err := loadOrCreateSessionKey(filepath.Join(cfg.DataDir, sessionKeyFile))
	if err != nil {
		return err
	}
	cfg.BrowserSessionKey, cfg.SessionKeyFromFile = key, true
	return nil
}

// loadOrCreateSessionKey returns the key in path, first creating the file
// with a random key (mode 0600) if there is none. The file appears whole
// or not at all, and never replaces another: the key is written to a
// temporary file that is then linked to path, which fails if another
// process got there first (whose key is then read).
func loadOrCreateSessionKey(path string) ([]byte, error) {
	key, err := readSessionKey(path)
	if !errors.Is(err, fs.ErrNotExist) {
		return key, err
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("creating data directory: %w", err)
	}
	tmp, err := os.CreateTemp(dir, "."+sessionKeyFile+"-*") // mode 0600
	if err != nil {
		return nil, fmt.Errorf("browser session key file: %w", err)
	}
	defer os.Remove(tmp.Name())
	key = make([]byte, tenants.BrowserSessionKeySize)
	_, _ = rand.Read(key) // never fails (crypto/rand)
	_, err = tmp.WriteString(base64.StdEncoding.EncodeToString(key) + "\n")
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Link(tmp.Name(), path)
	}
	if errors.Is(err, fs.ErrExist) {
		return readSessionKey(path)
	}
	if err != nil {
		return nil, fmt.Errorf("writing browser session key file %s: %w", path, err)
	}
	return key, nil
}

// readSessionKey reads the key file at path: a regular file that neither
// its group nor others may access, holding 32 bytes as base64 or hex.
func readSessionKey(path string) ([]byte, error) {
	info, err := os.Lstat(path)
	if err != nil {
		return nil, err
	}
	switch {
	case !info.Mode().IsRegular():
		return nil, fmt.Errorf("browser session key file %s is not a regular file", path)
	case info.Mode().Perm()&0o077 != 0:
		return nil, fmt.Errorf("browser session key file %s has mode %04o: run chmod 600 on it", path, info.Mode().Perm())
	}
	text, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	key, err := embedded.ParseMasterKey(string(text))
	if err != nil {
		return nil, fmt.Errorf("browser session key file %s: %w", path, err)
	}
	return key, nil
}

// console runs "connectors console link --tenant T | --admin [--ttl D]":
// it prints a sign-in link to the console, valid once for D (10 minutes
// unless said, at most 24 hours).
func (m *Main) console(cfg Config, args []string) error {
	if len(args) == 0 || args[0] != "link" {
		return usageError{"console: want: console link --tenant T | --admin [--ttl 10m]"}
	}
	fs := m.flags("console link")
	tenant := fs.String("tenant", "", "the tenant the link signs in to")
	admin := fs.Bool("admin", false, "sign in as an administrator (not with --tenant)")
	ttl := fs.Duration("ttl", transport.DefaultLinkTTL, "how long the link is valid (at most 24h)")
	if err := parse(fs, args[1:]); err != nil {
		return err
	}
	id := tenants.Identity{Tenant: *tenant, Subject: linkSubject}
	switch {
	case (*tenant == "") == !*admin:
		return usageError{"console link: give --tenant T or --admin, not both"}
	case *ttl <= 0 || *ttl > transport.MaxLinkTTL:
		return usageError{fmt.Sprintf("console link: --ttl must be positive and at most %s", transport.MaxLinkTTL)}
	case *admin:
		id = tenants.Identity{Tenant: linkAdminTenant, Subject: linkSubject, Admin: true}
	case tenants.ValidateID(*tenant) != nil:
		return usageError{fmt.Sprintf("console link: %q is not a tenant ID", *tenant)}
	}
	if cfg.BrowserSessionKey == nil && cfg.VaultAddr != "" {
		return errors.New("console link: set CONNECTORS_BROWSER_SESSION_KEY (32 bytes as base64 or 64 hex digits), the same for every gateway replica and for this command: with Vault and no key each gateway seals with a key of its own, and none would open the link")
	}
	if err := sessionKey(&cfg); err != nil {
		return err
	}
	sessions, err := tenants.NewBrowserSessions(cfg.BrowserSessionKey, nil)
	if err != nil {
		return err
	}
	b, err := transport.NewBrowser(transport.BrowserConfig{Sessions: sessions})
	if err != nil {
		return err
	}
	token, err := b.SignInLink(id, *ttl)
	if err != nil {
		return err
	}
	base := cfg.PublicURL
	if base == "" {
		base = defaultPublicURL
	}
	fmt.Fprintf(m.Stdout, "%s/auth/link?token=%s\n", base, token)
	fmt.Fprintf(m.Stderr, "Valid once, for %s (until %s): it signs in to %s.\n",
		describeTTL(*ttl), time.Now().Add(*ttl).UTC().Format("15:04 MST"), describeLink(id))
	return nil
}

func describeLink(id tenants.Identity) string {
	if id.Admin {
		return "the console as an administrator"
	}
	return "the console of tenant " + id.Tenant
}

// describeTTL says d in minutes when it is whole minutes ("10 minutes").
func describeTTL(d time.Duration) string {
	switch {
	case d == time.Minute:
		return "1 minute"
	case d%time.Minute == 0:
		return fmt.Sprintf("%d minutes", d/time.Minute)
	}
	return d.String()
}
