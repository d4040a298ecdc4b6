// Command vaultdev runs a development HashiCorp Vault server for the
// gateway's tests and `make vault-dev`: an unsealed, in-memory Vault core on
// loopback with KV v2 at secret/, Transit at transit/ and the AppRole auth
// method enabled (the seed's init-vault.sh steps).
//
// It is its own module so the product's go.mod never carries Vault's server
// code. The full `vault` command does not build from Go modules: v1.21 needs
// a vault/sdk that was never published, and the built-in database plugins of
// v1.19 and v1.20 fail checksum verification. This links only the core, the
// HTTP handler, Transit, AppRole and the KV plugin, with vault v1.19.5 and
// vault/sdk pinned at v0.17.0 (go mod tidy raises it and breaks the build:
// see the Makefile). It is for tests and development only: every secret is lost
// when it stops, and Vault's BSL license does not cover production use.
//
// # Usage
//
//	vaultdev [-addr 127.0.0.1:0] [-cluster N] [-log-level warn] [-policy name=file.hcl ...]
//
// Once serving, it prints one JSON line on stdout,
//
//	{"addr":"http://127.0.0.1:PORT","token":"<root token>"}
//
// and serves until SIGINT or SIGTERM, or until stdin is closed when started
// with -exit-on-stdin-close (how the tests make sure it never outlives them).
//
// With -cluster N (N ≥ 2) it starts N cores with HA on integrated Raft
// storage instead (cluster.go), each with its own HTTPS API listener on
// 127.0.0.1 (-addr does not apply), and prints
//
//	{"nodes":["https://127.0.0.1:P1",...],"token":"...","ca_cert":"PEM","active":i}
//
// Then each line on stdin is a command, answered by one JSON line on
// stdout, {"active":i,"sealed":[false,...]} plus "error" when it failed
// (active -1: no node is active):
//
//	status       the active node and which are sealed
//	step-down    the active node steps down; answered once another is active
//	seal I       seals node I (0-based)
//	unseal I     unseals node I with the cluster's keys
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"testing"

	"github.com/hashicorp/go-hclog"
	kv "github.com/hashicorp/vault-plugin-secrets-kv"
	"github.com/hashicorp/vault/api"
	"github.com/hashicorp/vault/builtin/credential/approle"
	"github.com/hashicorp/vault/builtin/logical/transit"
	vaulthttp "github.com/hashicorp/vault/http"
	"github.com/hashicorp/vault/sdk/logical"
	"github.com/hashicorp/vault/vault"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "vaultdev:", err)
		os.Exit(1)
	}
}

// policyFlags collects repeated -policy name=file flags.
type policyFlags []string

func (p *policyFlags) String() string     { return strings.Join(*p, ",") }
func (p *policyFlags) Set(v string) error { *p = append(*p, v); return nil }

func run(args []string) error {
	fs := flag.NewFlagSet("vaultdev", flag.ContinueOnError)
	addr := fs.String("addr", "127.0.0.1:0", "listen address; port 0 picks a free port. Loopback only.")
	logLevel := fs.String("log-level", "warn", "Vault's log level on stderr: trace, debug, info, warn, error")
	stdinClose := fs.Bool("exit-on-stdin-close", false, "exit when stdin reaches EOF (the parent process died)")
	nodes := fs.Int("cluster", 0, "start this many cores with HA on integrated Raft storage, each on its own HTTPS listener on 127.0.0.1, taking commands on stdin (0: one core over HTTP)")
	var policies policyFlags
	fs.Var(&policies, "policy", "name=path.hcl: write an ACL policy at start (repeatable)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	host, _, err := net.SplitHostPort(*addr)
	if err != nil {
		return fmt.Errorf("-addr %q: %w", *addr, err)
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("-addr %q: this development server listens on loopback only", *addr)
	}

	if *nodes < 0 || *nodes == 1 {
		return fmt.Errorf("-cluster %d: want 2 or more nodes (0: a single core)", *nodes)
	}

	tb := &mainTB{}
	defer tb.runCleanups()

	logger := hclog.New(&hclog.LoggerOptions{
		Name:   "vaultdev",
		Output: os.Stderr,
		Level:  hclog.LevelFromString(*logLevel),
	})
	coreCfg := &vault.CoreConfig{
		Logger: logger,
		LogicalBackends: map[string]logical.Factory{
			"kv":      kv.Factory,
			"transit": transit.Factory,
		},
		CredentialBackends: map[string]logical.Factory{
			"approle": approle.Factory,
		},
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if *nodes > 0 {
		return runCluster(ctx, stop, tb, *nodes, logger, coreCfg, policies, *stdinClose)
	}

	core, _, rootToken := vault.TestCoreUnsealedWithConfig(tb, coreCfg)
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	url := "http://" + ln.Addr().String()
	vaulthttp.TestServerWithListener(tb, ln, url, core)
	defer ln.Close()

	cfg := api.DefaultConfig()
	cfg.Address = url
	c, err := api.NewClient(cfg)
	if err != nil {
		return err
	}
	c.SetToken(rootToken)
	if err := initVault(c, policies); err != nil {
		return fmt.Errorf("initialising: %w", err)
	}

	line, _ := json.Marshal(map[string]string{"addr": url, "token": rootToken})
	if _, err := fmt.Fprintf(os.Stdout, "%s\n", line); err != nil {
		return err
	}
	if *stdinClose {
		go func() {
			io.Copy(io.Discard, os.Stdin)
			stop()
		}()
	}
	<-ctx.Done()
	return nil
}

// runCluster serves a -cluster run until ctx is done, or until stdin ends
// when stdinClose is set. Its first line on stdout is
//
//	{"nodes":["https://127.0.0.1:P1",...],"token":"...","ca_cert":"PEM","active":i}
//
// and then it answers each command line on stdin with one JSON line.
func runCluster(ctx context.Context, stop func(), tb *mainTB, n int, logger hclog.Logger, coreCfg *vault.CoreConfig, policies []string, stdinClose bool) error {
	c, err := startCluster(tb, n, logger, coreCfg)
	if err != nil {
		return err
	}
	active := c.active()
	if err := initVault(c.tc.Cores[active].Client, policies); err != nil {
		return fmt.Errorf("initialising: %w", err)
	}
	line, _ := json.Marshal(map[string]any{
		"nodes":   c.nodes,
		"token":   c.tc.RootToken,
		"ca_cert": string(c.tc.CACertPEM),
		"active":  active,
	})
	if _, err := fmt.Fprintf(os.Stdout, "%s\n", line); err != nil {
		return err
	}
	go func() {
		c.serveCommands(os.Stdin, os.Stdout)
		if stdinClose {
			stop()
		}
	}()
	<-ctx.Done()
	return nil
}

// initVault does what the seed's init-vault.sh does: KV v2 at secret/
// (the test core mounts KV v1 there), Transit at transit/, AppRole at
// approle/, and the policies given on the command line.
func initVault(c *api.Client, policies []string) error {
	sys := c.Sys()
	if err := sys.Unmount("secret"); err != nil {
		return fmt.Errorf("unmounting secret/: %w", err)
	}
	if err := sys.Mount("secret", &api.MountInput{Type: "kv", Options: map[string]string{"version": "2"}}); err != nil {
		return fmt.Errorf("mounting KV v2 at secret/: %w", err)
	}
	if err := sys.Mount("transit", &api.MountInput{Type: "transit"}); err != nil {
		return fmt.Errorf("mounting transit/: %w", err)
	}
	if err := sys.EnableAuthWithOptions("approle", &api.EnableAuthOptions{Type: "approle"}); err != nil {
		return fmt.Errorf("enabling approle: %w", err)
	}
	for _, p := range policies {
		name, path, ok := strings.Cut(p, "=")
		if !ok {
			return fmt.Errorf("-policy %q: want name=path", p)
		}
		rules, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if err := sys.PutPolicy(name, string(rules)); err != nil {
			return fmt.Errorf("writing policy %s: %w", name, err)
		}
	}
	return nil
}

// mainTB lets Vault's test helpers run outside `go test`. testing.TB has an
// unexported method, so it is embedded (nil); every method the helpers call
// is defined here, and anything else would panic loudly rather than
// misbehave.
type mainTB struct {
	testing.TB
	cleanups []func()
	failed   bool
}

func (t *mainTB) Helper()          {}
func (t *mainTB) Name() string     { return "vaultdev" }
func (t *mainTB) Cleanup(f func()) { t.cleanups = append(t.cleanups, f) }
func (t *mainTB) Failed() bool     { return t.failed }
func (t *mainTB) Log(a ...any)     { fmt.Fprintln(os.Stderr, a...) }
func (t *mainTB) Logf(f string, a ...any) {
	fmt.Fprintf(os.Stderr, f+"\n", a...)
}
func (t *mainTB) Error(a ...any)            { t.failed = true; t.Log(a...) }
func (t *mainTB) Errorf(f string, a ...any) { t.failed = true; t.Logf(f, a...) }
func (t *mainTB) Fatal(a ...any) {
	t.Log(a...)
	t.runCleanups()
	os.Exit(1)
}
func (t *mainTB) Fatalf(f string, a ...any) {
	t.Logf(f, a...)
	t.runCleanups()
	os.Exit(1)
}
func (t *mainTB) Skip(a ...any)            { t.Fatal(a...) }
func (t *mainTB) Skipf(f string, a ...any) { t.Fatalf(f, a...) }
func (t *mainTB) Setenv(key, value string) { os.Setenv(key, value) }
func (t *mainTB) Context() context.Context { return context.Background() }

func (t *mainTB) TempDir() string {
	dir, err := os.MkdirTemp("", "vaultdev-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

func (t *mainTB) runCleanups() {
	for i := len(t.cleanups) - 1; i >= 0; i-- {
		t.cleanups[i]()
	}
	t.cleanups = nil
}
