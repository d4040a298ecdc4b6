package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/vault/helper/namespace"
	vaulthttp "github.com/hashicorp/vault/http"
	"github.com/hashicorp/vault/physical/raft"
	"github.com/hashicorp/vault/vault"
)

// clusterReadyTimeout bounds the wait for every node to join Raft as a
// voter and for an active node after a step-down.
const clusterReadyTimeout = 30 * time.Second

// cluster is a -cluster N run: N Vault cores, each with its own HTTPS API
// listener on 127.0.0.1 (a CA generated at start signs every node's
// certificate), HA on integrated Raft storage. Each core keeps its Raft log
// and state in a temporary folder of its own (on /dev/shm when there is
// one, so it stays in memory), removed when the program stops.
type cluster struct {
	tb    *mainTB
	tc    *vault.TestCluster
	nodes []string
}

// startCluster starts n cores and waits until each is unsealed and a Raft
// voter, with one active.
func startCluster(tb *mainTB, n int, logger hclog.Logger, coreCfg *vault.CoreConfig) (*cluster, error) {
	// Autopilot would add the joining nodes as non-voters for its 10 s
	// stabilisation time; without it they vote at once.
	coreCfg.DisableAutopilot = true
	bridge := raft.NewClusterAddrBridge()
	backends := make([]*raft.RaftBackend, n)
	opts := &vault.TestClusterOptions{
		NumCores:           n,
		HandlerFunc:        vaulthttp.Handler,
		Logger:             logger,
		KeepStandbysSealed: true, // they join Raft first (below)
		KVVersion:          "2",
		PhysicalFactory: func(t testing.TB, idx int, logger hclog.Logger, _ map[string]any) *vault.PhysicalBackendBundle {
			dir, err := os.MkdirTemp(tempBase(), "vaultdev-raft-")
			if err != nil {
				t.Fatal(err)
			}
			b, err := raft.NewRaftBackend(map[string]string{
				"path":    dir,
				"node_id": fmt.Sprintf("node-%d", idx),
				// 1 is Raft's own timing (1 s heartbeat and election
				// timeouts); Vault's default of 5 would wait 5 s to notice
				// that a sealed leader is gone.
				"performance_multiplier": "1",
			}, logger.Named("raft"))
			if err != nil {
				os.RemoveAll(dir)
				t.Fatal(err)
			}
			rb := b.(*raft.RaftBackend)
			rb.SetServerAddressProvider(bridge)
			backends[idx] = rb
			return &vault.PhysicalBackendBundle{
				Backend:          b,
				Cleanup:          func() { os.RemoveAll(dir) },
				MutateCoreConfig: func(c *vault.CoreConfig) { c.ClusterAddrBridge = bridge },
			}
		},
	}
	opts.SetupFunc = func(t testing.TB, c *vault.TestCluster) {
		leader := []*raft.LeaderJoinInfo{{
			LeaderAPIAddr: c.Cores[0].Client.Address(),
			TLSConfig:     c.Cores[0].TLSConfig(),
		}}
		for _, core := range c.Cores[1:] {
			if _, err := core.JoinRaftCluster(namespace.RootContext(context.Background()), leader, false); err != nil {
				t.Fatal(err)
			}
			c.UnsealCore(t, core)
		}
	}
	tc := vault.NewTestCluster(tb, coreCfg, opts)
	tb.Cleanup(tc.Cleanup)
	c := &cluster{tb: tb, tc: tc}
	for _, core := range tc.Cores {
		c.nodes = append(c.nodes, core.Client.Address())
	}
	if err := c.waitVoters(backends[0], n); err != nil {
		return nil, err
	}
	return c, nil
}

// tempBase is where the Raft folders go: memory when /dev/shm exists.
func tempBase() string {
	if fi, err := os.Stat("/dev/shm"); err == nil && fi.IsDir() {
		return "/dev/shm"
	}
	return ""
}

// waitVoters waits until Raft's configuration has n voters and every core
// is unsealed, with one active.
func (c *cluster) waitVoters(leader *raft.RaftBackend, n int) error {
	deadline := time.Now().Add(clusterReadyTimeout)
	for {
		voters := 0
		if cfg, err := leader.GetConfiguration(context.Background()); err == nil {
			for _, s := range cfg.Servers {
				if s.Voter {
					voters++
				}
			}
		}
		sealed := false
		for _, core := range c.tc.Cores {
			sealed = sealed || core.Sealed()
		}
		if voters == n && !sealed && c.active() >= 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the cluster was not ready within %s: %d of %d Raft voters", clusterReadyTimeout, voters, n)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// active returns the active core's index, -1 if none is.
func (c *cluster) active() int {
	for i, core := range c.tc.Cores {
		if core.Sealed() {
			continue
		}
		if standby, err := core.Standby(); err == nil && !standby {
			return i
		}
	}
	return -1
}

// status is the answer to every command: the active node (-1: none) and
// which are sealed, or what went wrong.
type status struct {
	Active int    `json:"active"`
	Sealed []bool `json:"sealed"`
	Error  string `json:"error,omitempty"`
}

func (c *cluster) status(err error) status {
	s := status{Active: c.active()}
	for _, core := range c.tc.Cores {
		s.Sealed = append(s.Sealed, core.Sealed())
	}
	if err != nil {
		s.Error = err.Error()
	}
	return s
}

// serveCommands answers the commands read from in, one JSON line each on
// out, until in ends: status, step-down, seal I, unseal I.
func (c *cluster) serveCommands(in io.Reader, out io.Writer) {
	sc := bufio.NewScanner(in)
	enc := json.NewEncoder(out)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" {
			continue
		}
		enc.Encode(c.status(c.command(line)))
	}
}

func (c *cluster) command(line string) error {
	verb, arg, _ := strings.Cut(line, " ")
	switch verb {
	case "status":
		return nil
	case "step-down":
		return c.stepDown()
	case "seal", "unseal":
		i, err := strconv.Atoi(strings.TrimSpace(arg))
		if err != nil || i < 0 || i >= len(c.tc.Cores) {
			return fmt.Errorf("%s: want a node index from 0 to %d", verb, len(c.tc.Cores)-1)
		}
		core := c.tc.Cores[i]
		if verb == "seal" {
			if !core.Sealed() {
				// Core.Seal refuses a standby (it has no token store to
				// check the token in); this seals any node, as a restart
				// would. It exits on failure.
				core.Seal(c.tb)
			}
			return nil
		}
		return c.tc.AttemptUnsealCore(core)
	}
	return fmt.Errorf("unknown command %q: want status, step-down, seal I or unseal I", verb)
}

// stepDown makes the active node step down and answers once another node
// is active.
func (c *cluster) stepDown() error {
	old := c.active()
	if old < 0 {
		return fmt.Errorf("step-down: no node is active")
	}
	if err := c.tc.Cores[old].Client.Sys().StepDown(); err != nil {
		return fmt.Errorf("step-down: %w", err)
	}
	deadline := time.Now().Add(clusterReadyTimeout)
	for {
		if a := c.active(); a >= 0 && a != old {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("step-down: no other node became active within %s", clusterReadyTimeout)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
