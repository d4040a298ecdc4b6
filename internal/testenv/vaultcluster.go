package testenv

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/vault/api"
)

// vaultCommandTimeout bounds the wait for the answer to a cluster command
// (a step-down waits up to 30 s in the server for a new active node).
const vaultCommandTimeout = 45 * time.Second

// VaultCluster is a real Vault HA cluster started by [NewVaultCluster]: its
// nodes share integrated Raft storage and one of them is active; a
// standby forwards the requests it gets to the active node.
type VaultCluster struct {
	// Nodes are the nodes' API addresses, https://127.0.0.1:PORT.
	Nodes []string
	// RootToken is the cluster's root token.
	RootToken string
	// CACert is the PEM of the CA that signed every node's certificate, and
	// CAFile a file holding it (for VAULT_CACERT).
	CACert []byte
	CAFile string

	tb     testing.TB
	dev    *vaultDev
	mu     sync.Mutex // one command at a time
	active int        // guarded by mu
}

// vaultClusterStatus is the server's answer to a command.
type vaultClusterStatus struct {
	Active int    `json:"active"`
	Sealed []bool `json:"sealed"`
	Error  string `json:"error"`
}

// DefaultVaultClusterNodes is the size of a [NewVaultCluster] whose args
// give no -cluster N.
const DefaultVaultClusterNodes = 3

// NewVaultCluster starts a Vault HA cluster for tb, unsealed, with KV v2 at
// secret/, Transit at transit/ and AppRole at approle/ as [Vault] sets up
// one server, each node on its own HTTPS listener on 127.0.0.1. args are
// more vaultdev flags: -policy name=file.hcl, and -cluster N for other
// than DefaultVaultClusterNodes nodes. It is stopped when tb ends. Its
// methods fail tb, so call them from the test's goroutine.
func NewVaultCluster(tb testing.TB, args ...string) *VaultCluster {
	tb.Helper()
	n := DefaultVaultClusterNodes
	if i := slices.Index(args, "-cluster"); i >= 0 && i+1 < len(args) {
		n, _ = strconv.Atoi(args[i+1])
	} else {
		args = append([]string{"-cluster", strconv.Itoa(n)}, args...)
	}
	dev := startVaultDev(tb, args)
	var r struct {
		Nodes  []string `json:"nodes"`
		Token  string   `json:"token"`
		CACert string   `json:"ca_cert"`
		Active int      `json:"active"`
	}
	line, err := dev.readLine(vaultStartTimeout)
	if err != nil || json.Unmarshal(line, &r) != nil || len(r.Nodes) != n || r.Token == "" || r.CACert == "" {
		tb.Fatalf("the development Vault cluster did not start (%v):\n%s", err, dev.stderr.String())
	}
	caFile := filepath.Join(tb.TempDir(), "vault-ca.pem")
	if err := os.WriteFile(caFile, []byte(r.CACert), 0o600); err != nil {
		tb.Fatal(err)
	}
	return &VaultCluster{
		Nodes:     r.Nodes,
		RootToken: r.Token,
		CACert:    []byte(r.CACert),
		CAFile:    caFile,
		tb:        tb,
		dev:       dev,
		active:    r.Active,
	}
}

// command sends one command and returns the server's answer, failing tb
// when the command failed.
func (c *VaultCluster) command(cmd string) vaultClusterStatus {
	c.tb.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, err := fmt.Fprintln(c.dev.stdin, cmd); err != nil {
		c.tb.Fatalf("vault cluster %q: %v", cmd, err)
	}
	line, err := c.dev.readLine(vaultCommandTimeout)
	var st vaultClusterStatus
	if err == nil {
		err = json.Unmarshal(line, &st)
	}
	if err == nil && st.Error != "" {
		err = fmt.Errorf("%s", st.Error)
	}
	if err != nil {
		c.tb.Fatalf("vault cluster %q: %v\n%s", cmd, err, lastLines(c.dev.stderr.String(), 20))
	}
	c.active = st.Active
	return st
}

// Active returns the index in Nodes of the active node, -1 if none is.
func (c *VaultCluster) Active() int {
	c.tb.Helper()
	return c.command("status").Active
}

// Sealed reports which nodes are sealed.
func (c *VaultCluster) Sealed() []bool {
	c.tb.Helper()
	return c.command("status").Sealed
}

// StepDown makes the active node step down and returns the node active
// after it, once there is one.
func (c *VaultCluster) StepDown() int {
	c.tb.Helper()
	return c.command("step-down").Active
}

// Seal seals node i (a standby or the active node, which another node
// then replaces).
func (c *VaultCluster) Seal(i int) {
	c.tb.Helper()
	c.command(fmt.Sprintf("seal %d", i))
}

// Unseal unseals node i; it rejoins the cluster as a standby.
func (c *VaultCluster) Unseal(i int) {
	c.tb.Helper()
	c.command(fmt.Sprintf("unseal %d", i))
}

// lastLines returns s's last n lines.
func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// Client returns a Vault API client of the active node with token, which
// trusts the cluster's CA and never retries.
func (c *VaultCluster) Client(token string) *api.Client {
	c.tb.Helper()
	cfg := api.DefaultConfig()
	cfg.Address = c.Nodes[max(c.Active(), 0)]
	cfg.MaxRetries = 0
	if err := cfg.ConfigureTLS(&api.TLSConfig{CACert: c.CAFile}); err != nil {
		c.tb.Fatal(err)
	}
	cl, err := api.NewClient(cfg)
	if err != nil {
		c.tb.Fatal(err)
	}
	cl.SetToken(token)
	return cl
}

// AppRole creates the AppRole role name holding only policy and returns a
// role ID and a secret ID to log in with it.
func (c *VaultCluster) AppRole(name, policy string) (roleID, secretID string) {
	c.tb.Helper()
	root := c.Client(c.RootToken)
	if _, err := root.Logical().Write("auth/approle/role/"+name, map[string]any{"token_policies": policy}); err != nil {
		c.tb.Fatal(err)
	}
	rid, err := root.Logical().Read("auth/approle/role/" + name + "/role-id")
	if err != nil {
		c.tb.Fatal(err)
	}
	sid, err := root.Logical().Write("auth/approle/role/"+name+"/secret-id", nil)
	if err != nil {
		c.tb.Fatal(err)
	}
	return rid.Data["role_id"].(string), sid.Data["secret_id"].(string)
}
