package main

import (
	"bufio"
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/client/transport"
	"github.com/mark3labs/mcp-go/mcp"

	"github.com/connectors-gateway/connectors/internal/testenv"
	"github.com/connectors-gateway/connectors/tenants"
)

// replica is one gateway process (the built binary, `serve`), killed or
// stopped when the test ends.
type replica struct {
	addr string
	cmd  *exec.Cmd
	done chan struct{}
}

// startReplica runs `connectors serve` as a process of its own with g's
// environment and extra, and returns it once it listens.
func startReplica(t *testing.T, g *gateway, extra map[string]string) *replica {
	t.Helper()
	cmd := exec.Command(testenv.Build(t, "./cmd/connectors"), "serve", "--addr", "127.0.0.1:0")
	cmd.Env = os.Environ()
	for k, v := range g.env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	for k, v := range extra {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	r := &replica{cmd: cmd, done: make(chan struct{})}
	listening := make(chan string, 1)
	var logged lockedBuffer
	go func() {
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			logged.Write(append(sc.Bytes(), '\n'))
			var line struct{ Msg, Addr string }
			if json.Unmarshal(sc.Bytes(), &line) == nil && line.Msg == "gateway_listening" {
				select {
				case listening <- line.Addr:
				default:
				}
			}
		}
	}()
	go func() { _ = cmd.Wait(); close(r.done) }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-r.done:
		case <-time.After(15 * time.Second):
			_ = cmd.Process.Kill()
			<-r.done
		}
		if t.Failed() {
			t.Logf("replica %s:\n%s", r.addr, logged.String())
		}
	})
	select {
	case r.addr = <-listening:
	case <-r.done:
		t.Fatalf("replica ended before it listened:\n%s", logged.String())
	case <-time.After(60 * time.Second):
		t.Fatalf("replica did not listen:\n%s", logged.String())
	}
	return r
}

// kill ends r at once (SIGKILL): what a node's death does.
func (r *replica) kill() {
	_ = r.cmd.Process.Kill()
	<-r.done
}

// replicaSet is three gateway processes on one Vault (the gateway policy
// only), sharing CONNECTORS_BROWSER_SESSION_KEY, behind a real HAProxy
// with no affinity, with testdata/upstream-echo over HTTP as integration
// echo and credentials for tenant-a and tenant-b.
type replicaSet struct {
	g        *gateway
	replicas []*replica
	lb       string // the load balancer's host:port
}

func startReplicaSet(t *testing.T, n int) *replicaSet {
	t.Helper()
	vaddr, _, token := gatewayVault(t)
	key := make([]byte, tenants.BrowserSessionKeySize)
	for i := range key {
		key[i] = byte(i*13 + 1)
	}
	echo := "http://" + startHTTPFixture(t, "upstream-echo") + "/mcp"
	entry := map[string]any{"name": "echo", "category": "testing", "upstream": map[string]any{
		"url": echo, "headers": map[string]string{"Authorization": "Bearer {{access_token}}"}}}
	g := newGatewayWithEnv(t, map[string]string{
		"VAULT_ADDR": vaddr, "VAULT_TOKEN": token,
		"CONNECTORS_BROWSER_SESSION_KEY": hex.EncodeToString(key),
		"CONNECTORS_LOG_FORMAT":          "json",
	}, entry)
	for _, tenant := range []string{"tenant-a", "tenant-b"} {
		g.mustRun(`{"accessToken": "echo-token-`+tenant+`"}`, "credential", "put", "--tenant", tenant, "--integration", "echo")
	}
	s := &replicaSet{g: g}
	var backends []string
	for range n {
		r := startReplica(t, g, nil)
		s.replicas = append(s.replicas, r)
		backends = append(backends, r.addr)
	}
	s.lb = testenv.HAProxy(t, backends)
	return s
}

// client is an initialize-era MCP client of tenant through the load
// balancer, initialized.
func (s *replicaSet) client(t *testing.T, tenant string) *client.Client {
	t.Helper()
	c, err := client.NewStreamableHttpClient("http://"+s.lb+"/mcp",
		transport.WithHTTPHeaders(map[string]string{"Authorization": "Bearer " + s.g.keys[tenant]}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	if err := c.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Initialize(t.Context(), mcp.InitializeRequest{}); err != nil {
		t.Fatal(err)
	}
	return c
}

// TestReplicaDiesUnderLoad: an agent's session, made through HAProxy on
// one of three gateway processes, keeps working while its calls are spread
// over all three; when one process is killed (SIGKILL) in the middle of
// the load, only the calls in flight on it fail, the session goes on on
// the others with no new initialize, and every answer is its own call's.
func TestReplicaDiesUnderLoad(t *testing.T) {
	s := startReplicaSet(t, 3)
	c := s.client(t, "tenant-a")
	const workers = 8
	var (
		calls, failed atomic.Int64
		mu            sync.Mutex
		lastFailure   time.Time
		failures      []string
	)
	ctx, stop := context.WithCancel(t.Context())
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := 0; ctx.Err() == nil; i++ {
				text := fmt.Sprintf("worker %d call %d", w, i)
				res, err := c.CallTool(ctx, mcp.CallToolRequest{Params: mcp.CallToolParams{Name: "echo_echo", Arguments: map[string]any{"text": text}}})
				if ctx.Err() != nil {
					return
				}
				calls.Add(1)
				if err == nil && res.IsError {
					err = fmt.Errorf("tool error: %s", toolText(t, res))
				}
				if err != nil {
					failed.Add(1)
					mu.Lock()
					lastFailure = time.Now()
					failures = append(failures, err.Error())
					mu.Unlock()
					continue
				}
				if got := toolText(t, res); got != text {
					t.Errorf("echo through the replicas answered %q, want %q", got, text)
				}
			}
		})
	}
	time.Sleep(1500 * time.Millisecond)
	before := calls.Load()
	s.replicas[0].kill()
	at := time.Now()
	time.Sleep(3 * time.Second)
	stop()
	wg.Wait()

	after := calls.Load() - before
	t.Logf("%d calls before the kill, %d after; %d failed", before, after, failed.Load())
	if before < 30 || after < 60 {
		t.Errorf("too few calls: %d before the kill, %d in the 3 s after it", before, after)
	}
	// The calls in flight on the dead process, at most one per worker,
	// may fail; nothing else.
	if n := failed.Load(); n > workers {
		t.Errorf("%d calls failed, more than the %d that can have been in flight on the dead replica: %q", n, workers, failures)
	}
	if !lastFailure.IsZero() && lastFailure.Sub(at) > 2*time.Second {
		t.Errorf("a call failed %v after the kill: %q", lastFailure.Sub(at), failures)
	}
	// The same session, still: a request of it after the load succeeds.
	if _, err := c.ListTools(t.Context(), mcp.ListToolsRequest{}); err != nil {
		t.Errorf("the session after a replica's death: %v", err)
	}
}
