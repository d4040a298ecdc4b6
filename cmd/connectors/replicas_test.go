package main

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/client/transport"
	"github.com/mark3labs/mcp-go/mcp"

	"github.com/connectors-gateway/connectors/internal/fakeoauth"
	"github.com/connectors-gateway/connectors/internal/testenv"
	"github.com/connectors-gateway/connectors/internal/testidp"
	"github.com/connectors-gateway/connectors/tenants"
)

// replica is one gateway process (the built binary, `serve`), killed or
// stopped when the test ends.
type replica struct {
	addr    string // HTTP
	gossip  string // the cluster's address
	cmd     *exec.Cmd
	done    chan struct{}
	log     *lockedBuffer
	members atomic.Int32 // cluster_member_joined lines logged, itself included
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
	logged := &lockedBuffer{}
	r := &replica{cmd: cmd, done: make(chan struct{}), log: logged}
	listening, gossiping := make(chan string, 1), make(chan string, 1)
	go func() {
		defer close(r.done)
		defer func() { _ = cmd.Wait() }() // once stderr is read to its end: Wait closes it
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			logged.Write(append(sc.Bytes(), '\n'))
			var line struct{ Msg, Addr string }
			if json.Unmarshal(sc.Bytes(), &line) != nil {
				continue
			}
			switch line.Msg {
			case "gateway_listening":
				listening <- line.Addr
			case "cluster_started":
				gossiping <- line.Addr
			case "cluster_member_joined":
				r.members.Add(1)
			}
		}
	}()
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
	select {
	case r.gossip = <-gossiping:
	default:
		t.Fatalf("replica listens before it joined the cluster:\n%s", logged.String())
	}
	return r
}

// view is g as a client of r alone.
func (r *replica) view(g *gateway) *gateway {
	v := *g
	v.addr = r.addr
	return &v
}

// kill ends r at once (SIGKILL): what a node's death does.
func (r *replica) kill() {
	_ = r.cmd.Process.Kill()
	<-r.done
}

// replicaSet is n gateway processes on one Vault (the gateway policy
// only), sharing CONNECTORS_BROWSER_SESSION_KEY and gossiping on loopback
// (credential caches of a minute: only the gossip makes a change seen
// sooner), behind a real HAProxy with no affinity, with
// testdata/upstream-echo over HTTP as integration echo and credentials
// for tenant-a and tenant-b.
type replicaSet struct {
	g        *gateway
	replicas []*replica
	lb       string // the load balancer's host:port
}

func startReplicaSet(t *testing.T, n int) *replicaSet {
	t.Helper()
	vaddr, _, token := gatewayVault(t)
	return startReplicaSetOn(t, n, map[string]string{"VAULT_ADDR": vaddr, "VAULT_TOKEN": token})
}

// startReplicaSetOn is startReplicaSet on the Vault env names (VAULT_ADDR
// and how to log in); env may also override the set's other settings.
func startReplicaSetOn(t *testing.T, n int, env map[string]string) *replicaSet {
	t.Helper()
	return replicaGateway(t, env).startReplicas(t, n)
}

// replicaGateway prepares what a replicaSet's processes share: the
// configuration (env, and integrations extra besides echo) and the
// credentials and keys of tenant-a, tenant-b and an admin.
func replicaGateway(t *testing.T, env map[string]string, extra ...map[string]any) *gateway {
	t.Helper()
	key := make([]byte, tenants.BrowserSessionKeySize)
	for i := range key {
		key[i] = byte(i*13 + 1)
	}
	echo := "http://" + startHTTPFixture(t, "upstream-echo") + "/mcp"
	entry := map[string]any{"name": "echo", "category": "testing", "upstream": map[string]any{
		"url": echo, "headers": map[string]string{"Authorization": "Bearer {{access_token}}"}}}
	all := map[string]string{
		"CONNECTORS_BROWSER_SESSION_KEY": hex.EncodeToString(key),
		"CONNECTORS_LOG_FORMAT":          "json",
		"CONNECTORS_VAULT_CACHE_TTL":     "60s",
		"CONNECTORS_CLUSTER_BIND":        "127.0.0.1:0",
		"CONNECTORS_CLUSTER_KEY":         base64.StdEncoding.EncodeToString(key),
	}
	maps.Copy(all, env)
	g := newGatewayWithEnv(t, all, append([]map[string]any{entry}, extra...)...)
	g.withAdmin()
	for _, tenant := range []string{"tenant-a", "tenant-b"} {
		g.mustRun(`{"accessToken": "echo-token-`+tenant+`"}`, "credential", "put", "--tenant", tenant, "--integration", "echo")
	}
	return g
}

// startReplicas starts n processes of g, gossiping, behind HAProxy.
func (g *gateway) startReplicas(t *testing.T, n int) *replicaSet {
	t.Helper()
	s := &replicaSet{g: g}
	var backends []string
	var peers map[string]string // the first replica's gossip address, for the others
	for range n {
		r := startReplica(t, g, peers)
		if peers == nil {
			peers = map[string]string{"CONNECTORS_CLUSTER_PEERS": r.gossip}
		}
		s.replicas = append(s.replicas, r)
		backends = append(backends, r.addr)
	}
	deadline := time.Now().Add(15 * time.Second)
	for _, r := range s.replicas {
		for int(r.members.Load()) < n {
			if time.Now().After(deadline) {
				t.Fatalf("replica %s saw %d members of %d:\n%s", r.addr, r.members.Load(), n, r.log)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	s.lb = testenv.HAProxy(t, backends)
	return s
}

// agents are two MCP clients of tenant through the load balancer, one of
// each era, started: a 2026-07-28 agent (stateless requests, any replica
// each) and an initialize-era (2025-11-25) agent, whose one session's
// requests land on every replica.
func (s *replicaSet) agents(t *testing.T, tenant string) []*client.Client {
	t.Helper()
	auth := transport.WithHTTPHeaders(map[string]string{"Authorization": "Bearer " + s.g.keys[tenant]})
	modern, err := client.NewStreamableHttpClient("http://"+s.lb+"/mcp", auth)
	if err != nil {
		t.Fatal(err)
	}
	tr, err := transport.NewStreamableHTTP("http://"+s.lb+"/mcp", auth)
	if err != nil {
		t.Fatal(err)
	}
	old := client.NewClient(tr, client.WithProtocolVersion(mcp.ProtocolVersion20251125), client.WithLegacyProtocolOnly())
	for _, c := range []*client.Client{modern, old} {
		t.Cleanup(func() { _ = c.Close() })
		if err := c.Start(t.Context()); err != nil {
			t.Fatal(err)
		}
		if _, err := c.Initialize(t.Context(), mcp.InitializeRequest{}); err != nil {
			t.Fatal(err)
		}
	}
	if v := modern.ProtocolVersion(); v != "2026-07-28" {
		t.Fatalf("the 2026-07-28 agent speaks %q", v)
	}
	if id := old.GetSessionId(); !strings.HasPrefix(id, "cgw1.") {
		t.Fatalf("the initialize-era agent's session %q is not sealed", id)
	}
	return []*client.Client{modern, old}
}

// load is agents' calls of echo_echo from several workers each at once,
// until stopped, each answer checked to be its own.
type load struct {
	calls  atomic.Int64
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu     sync.Mutex
	failed []loadFailure
}

type loadFailure struct {
	at  time.Time
	err string
}

func startLoad(t *testing.T, agents []*client.Client, workers int) *load {
	l := &load{}
	ctx, cancel := context.WithCancel(t.Context())
	l.cancel = cancel
	for w := range workers {
		c := agents[w%len(agents)]
		l.wg.Go(func() {
			for i := 0; ctx.Err() == nil; i++ {
				text := fmt.Sprintf("worker %d call %d", w, i)
				res, err := c.CallTool(ctx, mcp.CallToolRequest{Params: mcp.CallToolParams{Name: "echo_echo", Arguments: map[string]any{"text": text}}})
				if ctx.Err() != nil {
					return
				}
				l.calls.Add(1)
				if err == nil && res.IsError {
					err = fmt.Errorf("tool error: %s", toolText(t, res))
				}
				if err != nil {
					l.mu.Lock()
					l.failed = append(l.failed, loadFailure{time.Now(), err.Error()})
					l.mu.Unlock()
					continue
				}
				if got := toolText(t, res); got != text {
					t.Errorf("echo through the replicas answered %q, want %q", got, text)
				}
			}
		})
	}
	return l
}

func (l *load) stop() { l.cancel(); l.wg.Wait() }

func (l *load) failures() []loadFailure {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.failed)
}

// TestReplicaDiesUnderLoad: agents of both eras call through HAProxy,
// their calls spread over three gateway processes (the initialize-era
// agent's session made on one of them); when one process is killed
// (SIGKILL) in the middle of the load, only the calls in flight on it
// fail, the session goes on on the others with no new initialize, and
// every answer is its own call's.
func TestReplicaDiesUnderLoad(t *testing.T) {
	s := startReplicaSet(t, 3)
	agents := s.agents(t, "tenant-a")
	const workers = 8
	l := startLoad(t, agents, workers)
	time.Sleep(1500 * time.Millisecond)
	before := l.calls.Load()
	s.replicas[0].kill()
	at := time.Now()
	time.Sleep(3 * time.Second)
	l.stop()

	failures := l.failures()
	after := l.calls.Load() - before
	t.Logf("%d calls before the kill, %d after; %d failed", before, after, len(failures))
	if before < 30 || after < 60 {
		t.Errorf("too few calls: %d before the kill, %d in the 3 s after it", before, after)
	}
	// The calls in flight on the dead process, at most one per worker,
	// may fail; nothing else.
	if len(failures) > workers {
		t.Errorf("%d calls failed, more than the %d that can have been in flight on the dead replica: %v", len(failures), workers, failures)
	}
	for _, f := range failures {
		if f.at.Sub(at) > 2*time.Second {
			t.Errorf("a call failed %v after the kill: %s", f.at.Sub(at), f.err)
		}
	}
	// The same session, still: a request of it after the load succeeds.
	for _, c := range agents {
		if _, err := c.ListTools(t.Context(), mcp.ListToolsRequest{}); err != nil {
			t.Errorf("the %s agent after a replica's death: %v", c.ProtocolVersion(), err)
		}
	}
}

// TestReplicasTellEachOther: three gateway processes gossiping, with
// credential caches of a minute. A session made on one and used on
// another ends on every replica with its DELETE on a third; a credential
// deleted through one is no longer served by the others and the tenant's
// session held on another hears list_changed (the other tenant's does
// not), an integration turned off through one leaves the others'
// tools/list, and an API key revoked by an operator command is refused by
// all, each within 2 s; another tenant's use is untouched.
func TestReplicasTellEachOther(t *testing.T) {
	s := startReplicaSet(t, 3)
	r0, r1, r2 := s.replicas[0].view(s.g), s.replicas[1].view(s.g), s.replicas[2].view(s.g)
	const ping = `{"jsonrpc":"2.0","id":9,"method":"ping"}`

	session := r0.oldSession("tenant-a", "/mcp", `{}`)
	for i, r := range []*gateway{r1, r2} {
		if status, _, body := r.postOld("tenant-a", "/mcp", session, ping); status != 200 {
			t.Fatalf("the session on replica %d: %d %.200s", i+1, status, body)
		}
	}
	if status, _, _ := r1.send("tenant-a", "DELETE", "/mcp", "", "", map[string]string{"Mcp-Session-Id": session, "Mcp-Protocol-Version": "2025-11-25"}); status != 200 {
		t.Fatalf("DELETE on replica 1: %d", status)
	}
	within(t, 2*time.Second, "the session ended everywhere", func() bool {
		a, _, _ := r0.postOld("tenant-a", "/mcp", session, ping)
		c, _, _ := r2.postOld("tenant-a", "/mcp", session, ping)
		return a == 404 && c == 404
	})

	call := func(r *gateway, tenant string) bool {
		_, _, body := r.postOld(tenant, "/mcp", r.oldSession(tenant, "/mcp", `{}`), oldCall("1", "echo_echo", `"arguments":{"text":"hi"}`))
		return strings.Contains(body, `"text":"hi"`) && !strings.Contains(body, `"isError":true`)
	}
	for i, r := range []*gateway{r0, r1, r2} {
		if !call(r, "tenant-a") {
			t.Fatalf("tenant-a's call on replica %d fails before the delete", i)
		}
	}
	// Sessions held on replica 0, listening; the change is made on 2.
	heard := collect(r0.listening(t, "tenant-a"), mcp.MethodNotificationToolsListChanged)
	others := collect(r0.listening(t, "tenant-b"), mcp.MethodNotificationToolsListChanged)
	if status, _, raw := r2.api("tenant-a", "DELETE", "/tenants/tenant-a/integrations/echo/credentials", ""); status != 200 {
		t.Fatalf("deleting tenant-a's credential through replica 2: %d %s", status, raw)
	}
	within(t, 2*time.Second, "list_changed on tenant-a's session held on replica 0", func() bool { return len(heard.list()) > 0 })
	within(t, 2*time.Second, "the deleted credential no longer served by replicas 0 and 1", func() bool {
		return !call(r0, "tenant-a") && !call(r1, "tenant-a")
	})
	if !call(r0, "tenant-b") {
		t.Error("tenant-b's call on replica 0 fails after tenant-a's credential was deleted")
	}
	if n := len(others.list()); n != 0 {
		t.Errorf("tenant-b's session on replica 0 heard %d list_changed of tenant-a's change", n)
	}

	listed := func(r *gateway) bool {
		_, _, body := r.postOld("tenant-b", "/mcp", r.oldSession("tenant-b", "/mcp", `{}`), `{"jsonrpc":"2.0","id":2,"method":"tools/list"}`)
		return strings.Contains(body, "echo_echo")
	}
	if !listed(r0) {
		t.Fatal("tenant-b's tools/list on replica 0 lacks echo_echo")
	}
	if status, _, raw := r2.api("admin", "DELETE", "/tenants/tenant-b/integrations/echo", ""); status != 200 {
		t.Fatalf("turning echo off for tenant-b through replica 2: %d %s", status, raw)
	}
	within(t, 2*time.Second, "echo off for tenant-b on replicas 0 and 1", func() bool { return !listed(r0) && !listed(r1) })

	// An API key revoked by the operator command beside replica 0.
	cli := s.g.replica(map[string]string{"CONNECTORS_CLUSTER_PEERS": s.replicas[0].gossip})
	key := strings.TrimSpace(cli.mustRun("", "apikey", "create", "--tenant", "tenant-c"))
	id, _, _ := strings.Cut(strings.TrimPrefix(key, "cgw_"), "_")
	r0.keys, r2.keys = maps.Clone(r0.keys), maps.Clone(r2.keys)
	r0.keys["tenant-c"], r2.keys["tenant-c"] = key, key
	accepted := func(r *gateway) bool {
		status, _, _ := r.postOld("tenant-c", "/mcp", "", `{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}`)
		return status == 200
	}
	if !accepted(r0) || !accepted(r2) { // and cached
		t.Fatal("a new API key is refused")
	}
	cli.mustRun("", "apikey", "revoke", id)
	within(t, 2*time.Second, "the revoked API key refused by replicas 0 and 2", func() bool { return !accepted(r0) && !accepted(r2) })

	// The gossip in the metrics: three members, changes received.
	status, _, scrape := r0.api("admin", "GET", "/metrics", "")
	received := regexp.MustCompile(`(?m)^connectors_cluster_changes_received_total (\d+)$`).FindStringSubmatch(scrape)
	if status != 200 || !strings.Contains(scrape, "\nconnectors_cluster_members 3\n") || received == nil || received[1] == "0" {
		t.Errorf("replica 0's metrics lack the gossip's members and the changes received (%d): %v", status, received)
	}
}

// within fails t unless ok holds within d (polled), and logs how long it
// took.
func within(t *testing.T, d time.Duration, what string, ok func() bool) {
	t.Helper()
	start := time.Now()
	for !ok() {
		if time.Since(start) > d {
			t.Errorf("%s: not within %v", what, d)
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Logf("%s after %v", what, time.Since(start).Round(time.Millisecond))
}

// TestReplicasFollowVaultFailover: three gateway processes on a
// three-node Vault cluster (integrated Raft storage), logged in with
// AppRole under the least-privilege policy, given every node's address and
// no credential cache, so that every call reads Vault. Under the load of
// agents of both eras, with tokens falling due for refresh all along, the
// active Vault node is sealed, and later the next one steps down: the
// gateways follow the new active node with no operator action, calls
// fail, if at all, only within 2 s of each event, every due token is
// refreshed exactly once and every credential reads back whole.
func TestReplicasFollowVaultFailover(t *testing.T) {
	c := testenv.NewVaultCluster(t, "-policy",
		"gateway-service="+filepath.Join(testenv.Root(), "vault", "hashicorp", "policies", "gateway-service-policy.hcl"))
	roleID, secretID := c.AppRole("gateway", "gateway-service")
	fake := fakeoauth.New(t, fakeoauth.GitHub, "gh-client", "gh-client-s3cret")
	g := replicaGateway(t, oauthEnv("gh", map[string]string{
		"GH_CLIENT_ID": "gh-client", "GH_CLIENT_SECRET": "gh-client-s3cret",
		"VAULT_ADDR": strings.Join(c.Nodes, ","), "VAULT_CACERT": c.CAFile,
		"VAULT_ROLE_ID": roleID, "VAULT_SECRET_ID": secretID,
		"CONNECTORS_VAULT_CACHE_TTL": "0s",
		// Each token refreshed at its expiry: spread over the failovers.
		"CONNECTORS_REFRESH_MARGIN": "1ms", "CONNECTORS_REFRESH_JITTER": "1ms",
	}), oauthIntegration(t, "gh", fake))
	const expiring = 24
	for i := range expiring {
		access, refresh := fake.IssueToken()
		g.mustRun(fmt.Sprintf(`{"accessToken": %q, "refreshToken": %q, "expiresIn": %d}`, access, refresh, 8+i/2),
			"credential", "put", "--tenant", fmt.Sprintf("tenant-x%02d", i), "--integration", "gh")
	}
	s := g.startReplicas(t, 3)
	l := startLoad(t, s.agents(t, "tenant-a"), 6)
	time.Sleep(time.Second)
	sealed := c.Active()
	c.Seal(sealed)
	sealedAt := time.Now()
	active := c.Active()
	for ; active < 0 && time.Since(sealedAt) < 10*time.Second; active = c.Active() {
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("sealed node %d; node %d active after %v", sealed, active, time.Since(sealedAt).Round(10*time.Millisecond))
	time.Sleep(3 * time.Second) // Raft settles before a step-down
	c.Unseal(sealed)
	time.Sleep(2 * time.Second)
	steppedAt := time.Now()
	t.Logf("stepped down; node %d active", c.StepDown())
	time.Sleep(3 * time.Second)
	l.stop()

	const bound = 2 * time.Second // the error window allowed after each event
	for _, f := range l.failures() {
		if !(f.at.After(sealedAt) && f.at.Sub(sealedAt) < bound) && !(f.at.After(steppedAt) && f.at.Sub(steppedAt) < bound) {
			t.Errorf("a call failed %v after the seal / %v after the step-down: %s", f.at.Sub(sealedAt), f.at.Sub(steppedAt), f.err)
		}
	}
	t.Logf("%d calls, %d failed", l.calls.Load(), len(l.failures()))
	if l.calls.Load() < 200 {
		t.Errorf("only %d calls in 9 s", l.calls.Load())
	}

	// The tokens due during the failovers: each refreshed once, none spent
	// twice, every credential readable afterwards.
	deadline := time.Now().Add(30 * time.Second)
	for fake.Refreshes() < expiring && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if n, a := fake.Refreshes(), fake.RefreshAttempts(); n != expiring || a != expiring {
		t.Errorf("the provider saw %d refreshes (%d attempts) of %d tokens, want each exactly once", n, a, expiring)
	}
	for i, r := range s.replicas {
		if strings.Contains(r.log.String(), "invalid_grant") {
			t.Errorf("replica %d spent a refresh token twice", i)
		}
	}
	for i := range expiring {
		var got struct {
			HasRefreshToken bool      `json:"hasRefreshToken"`
			ExpiresAt       time.Time `json:"expiresAt"`
		}
		out := g.mustRun("", "credential", "get", "--tenant", fmt.Sprintf("tenant-x%02d", i), "--integration", "gh")
		if json.Unmarshal([]byte(out), &got) != nil || !got.HasRefreshToken || time.Until(got.ExpiresAt) < time.Minute {
			t.Errorf("tenant-x%02d's credential after the failovers: %s", i, out)
		}
	}
}

// TestReplicasRefreshEachTokenOnce: 100 tenants' tokens expire while
// three gateway processes (the gateway policy only) start on one Vault;
// their refreshers all schedule every one of them, and the provider sees
// each refresh token spent exactly once: 100 refreshes, no second attempt,
// no invalid_grant; and the new tokens, shorter-lived than the refresh
// margin, are not refreshed again by the replicas told of them.
func TestReplicasRefreshEachTokenOnce(t *testing.T) {
	const tenantsN = 100
	fake := fakeoauth.New(t, fakeoauth.GitHub, "gh-client", "gh-client-s3cret")
	// Refreshed tokens live less than the refresh margin (5m): a replica
	// told of another's refresh must not take the new token for one due.
	fake.SetExpiresIn(4 * time.Minute)
	vaddr, _, token := gatewayVault(t)
	g := replicaGateway(t, oauthEnv("gh", map[string]string{
		"GH_CLIENT_ID": "gh-client", "GH_CLIENT_SECRET": "gh-client-s3cret",
		"VAULT_ADDR": vaddr, "VAULT_TOKEN": token, "CONNECTORS_VAULT_CACHE_TTL": "0s",
	}), oauthIntegration(t, "gh", fake))
	for i := range tenantsN {
		g.putExpiring(fmt.Sprintf("tenant-r%03d", i), "gh", fake)
	}
	s := g.startReplicas(t, 3)

	deadline := time.Now().Add(60 * time.Second)
	for fake.Refreshes() < tenantsN && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(2 * time.Second) // a second refresh, if any, would come now
	if n, a := fake.Refreshes(), fake.RefreshAttempts(); n != tenantsN || a != tenantsN {
		t.Errorf("the provider saw %d refreshes (%d attempts) of %d tokens, want each exactly once", n, a, tenantsN)
	}
	by := map[string]int{}
	for i, r := range s.replicas {
		by[fmt.Sprint(i)] = strings.Count(r.log.String(), `"msg":"token_refreshed"`)
		if strings.Contains(r.log.String(), "invalid_grant") {
			t.Errorf("replica %d spent a refresh token twice", i)
		}
	}
	t.Logf("refreshes by replica: %v", by)
}

// TestReplicasLinkAcrossReplicas: an account link begun by an agent on
// one replica is confirmed in the browser on a second and completed by
// the provider's callback on a third (the link state is sealed with the
// key replicas share and claimed once in the store); the linked tools
// then work on the first, and the callback replayed on it is refused.
func TestReplicasLinkAcrossReplicas(t *testing.T) {
	idp := testidp.Start(t)
	const public = "http://gateway.test"
	vaddr, _, token := gatewayVault(t)
	g := replicaGateway(t, map[string]string{
		"VAULT_ADDR": vaddr, "VAULT_TOKEN": token,
		"CONNECTORS_PUBLIC_URL":          public,
		"CONNECTORS_OAUTH_REDIRECT_URIS": appCallback,
		"LINKED_CLIENT_ID":               "linker",
		"LINKED_CLIENT_SECRET":           "linker-s3cret",
		// The provider's tokens last 5 minutes: no refresh (which revokes
		// the token it replaces) while the test checks the linked one.
		"CONNECTORS_REFRESH_MARGIN": "30s",
	}, linkedIntegration(t, idp, public, "cgw-linked"))
	s := g.startReplicas(t, 3)
	r := []*gateway{s.replicas[0].view(g), s.replicas[1].view(g), s.replicas[2].view(g)}
	base := func(i int) string { return "http://" + r[i].addr }

	link, _ := r[0].startLink(base(0), "tenant-a", "linked")
	browser := linkBrowser()
	authURL := r[1].confirm(base(1), browser, link)
	cb, err := idp.SignIn(t.Context(), &http.Client{}, authURL, idp.TestUsername(), testidp.UserPassword)
	if err != nil {
		t.Fatal(err)
	}
	resp, body := r[2].visit(browser, http.MethodGet, base(2)+cb.Path+"?"+cb.RawQuery, "")
	if want := appCallback + "?integration=linked&status=success"; resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != want {
		t.Fatalf("the callback on replica 2: %s to %q (%s), want 302 to %s", resp.Status, resp.Header.Get("Location"), body, want)
	}
	// The upstream on replica 0 got the provider's token, which the
	// provider accepts.
	req, _ := http.NewRequest(http.MethodGet, discover(t, idp.Issuer).UserinfoEndpoint, nil)
	req.Header.Set("Authorization", "Bearer "+probe(t, r[0].client("tenant-a"), "linked_env"))
	if uresp, err := http.DefaultClient.Do(req); err != nil || uresp.StatusCode != http.StatusOK {
		t.Errorf("the provider's userinfo refuses the token of the linked tool on replica 0: %v %v", uresp, err)
	} else {
		uresp.Body.Close()
	}
	if resp, body := r[0].visit(browser, http.MethodGet, base(0)+cb.Path+"?"+cb.RawQuery, ""); resp.StatusCode < 400 {
		t.Errorf("the callback replayed on replica 0: %s %s, want it refused", resp.Status, body)
	}
}
