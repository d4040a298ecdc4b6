package main

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/vault/api"
	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/client/transport"
	"github.com/mark3labs/mcp-go/mcp"

	"github.com/connectors-gateway/connectors/cluster"
	"github.com/connectors-gateway/connectors/internal/fakeoauth"
	"github.com/connectors-gateway/connectors/internal/testenv"
)

// propagationBound is how soon a change through one replica must be seen
// through another (issue 19).
const propagationBound = 2 * time.Second

// replica is g's twin (another gateway on g's store, configuration and
// keys, with a log of its own) with env added.
func (g *gateway) replica(env map[string]string) *gateway {
	r := g.twin()
	maps.Copy(r.env, env)
	return r
}

// listening connects an initialize-era (2025-11-25) MCP session of tenant
// with its GET stream open, where the gateway's notifications arrive.
func (g *gateway) listening(t *testing.T, tenant string) *client.Client {
	t.Helper()
	c, err := client.NewStreamableHttpClient("http://"+g.addr+"/mcp",
		transport.WithHTTPHeaders(map[string]string{"Authorization": "Bearer " + g.keys[tenant]}),
		transport.WithContinuousListening())
	if err != nil {
		t.Fatal(err)
	}
	client.WithLegacyProtocolOnly()(c)
	if err := c.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	if _, err := c.Initialize(t.Context(), mcp.InitializeRequest{Params: mcp.InitializeParams{
		ProtocolVersion: "2025-11-25", ClientInfo: mcp.Implementation{Name: "connectors-test", Version: "1"}}}); err != nil {
		t.Fatalf("initialize as %s: %v", tenant, err)
	}
	return c
}

// clusterAddr waits for g's cluster_started record and returns the
// address it reports (g binds port 0: the system chooses).
func (g *gateway) clusterAddr(t *testing.T) string {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		for line := range strings.Lines(g.stderr.String()) {
			var rec struct{ Msg, Addr string }
			if json.Unmarshal([]byte(line), &rec) == nil && rec.Msg == "cluster_started" {
				return rec.Addr
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no cluster_started in the log:\n%s", g.stderr)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// clusteredPair starts replicas a and b on one real Vault (the gateway
// policy only), gossiping on loopback, with credential caches of a minute:
// without the cluster, b would serve a deleted credential for that long.
// env and extra add to newGatewayWithEnv's.
func clusteredPair(t *testing.T, env map[string]string, extra ...map[string]any) (a, b *gateway, root *api.Client) {
	t.Helper()
	vaultAddr, root, token := gatewayVault(t)
	a, b = clusteredPairOn(t, vaultAddr, token, env, extra...)
	return a, b, root
}

// clusteredPairOn is clusteredPair on the Vault at vaultAddr, with token.
func clusteredPairOn(t *testing.T, vaultAddr, token string, env map[string]string, extra ...map[string]any) (a, b *gateway) {
	t.Helper()
	key := base64.StdEncoding.EncodeToString([]byte("0123456789abcdef0123456789abcdef"))
	all := map[string]string{
		"VAULT_ADDR": vaultAddr, "VAULT_TOKEN": token, "CONNECTORS_VAULT_CACHE_TTL": "60s",
		"CONNECTORS_CLUSTER_BIND": "127.0.0.1:0", "CONNECTORS_CLUSTER_KEY": key,
	}
	maps.Copy(all, env)
	a = newGatewayWithEnv(t, all, extra...)
	a.withAdmin()
	a.serve()
	addrA := a.clusterAddr(t)
	b = a.replica(map[string]string{"CONNECTORS_CLUSTER_PEERS": addrA})
	b.serve()
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(b.stderr.String(), `"msg":"cluster_member_joined"`) ||
		!strings.Contains(b.stderr.String(), `"addr":"`+addrA+`"`) {
		if time.Now().After(deadline) {
			t.Fatalf("replica b did not see a join:\n%s", b.stderr)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return a, b
}

// TestClusterPropagatesChanges: two replicas on one Vault. A credential
// deleted through a's REST route stops being served by b, and b's session
// of that tenant hears list_changed, within 2 s; an integration turned off
// through a leaves b's tools/list within 2 s; another tenant's session on
// b hears nothing.
func TestClusterPropagatesChanges(t *testing.T) {
	a, b, root := clusteredPair(t, nil)
	const notion = "/tenants/tenant-a/integrations/notion"

	sessionA := b.listening(t, "tenant-a")
	heardA := collect(sessionA, mcp.MethodNotificationToolsListChanged)
	heardB := collect(b.listening(t, "tenant-b"), mcp.MethodNotificationToolsListChanged)
	callSelf := func(c *client.Client) (*mcp.CallToolResult, error) {
		return c.CallTool(t.Context(), mcp.CallToolRequest{Params: mcp.CallToolParams{Name: "notion_API-get-self"}})
	}
	// b reads (and caches) tenant-a's notion credential.
	if res, err := callSelf(sessionA); err != nil || !strings.Contains(toolText(t, res), "Acme Bot") {
		t.Fatalf("tenant-a's call through b before the delete: %v, %v", res, err)
	}
	if _, out, raw := b.api("tenant-a", "GET", notion, ""); out["hasCredentials"] != true {
		t.Fatalf("b before the delete: %s", raw)
	}

	start := time.Now()
	if status, _, raw := a.api("tenant-a", "DELETE", notion+"/credentials", ""); status != http.StatusOK {
		t.Fatalf("DELETE through a: %d %s", status, raw)
	}
	for {
		_, out, raw := b.api("tenant-a", "GET", notion, "")
		if out["hasCredentials"] == false {
			t.Logf("b stopped serving the deleted credential %v after the delete through a", time.Since(start).Round(time.Millisecond))
			break
		}
		if time.Since(start) > propagationBound {
			t.Fatalf("b still serves the credential deleted through a %v ago: %s", propagationBound, raw)
		}
		time.Sleep(10 * time.Millisecond)
	}
	got := heardA.waitFor(propagationBound-time.Since(start), func(n []map[string]any) bool { return len(n) > 0 })
	if len(got) == 0 {
		t.Fatalf("tenant-a's session on b heard no tools list_changed within %v of the delete through a", propagationBound)
	}
	t.Logf("tenant-a's session on b heard list_changed %v after the delete through a", time.Since(start).Round(time.Millisecond))
	if res, err := callSelf(sessionA); err == nil && !res.IsError {
		t.Errorf("tenant-a's notion call through b after the delete through a succeeded: %s", toolText(t, res))
	}

	testClusterDisable(t, a, sessionA, heardA)
	testClusterOperator(t, a, b, root, heardA)
	time.Sleep(300 * time.Millisecond)
	if n := heardB.list(); len(n) != 0 {
		t.Errorf("tenant-b's session on b heard %v of tenant-a's changes", n)
	}
	a.assertNoSecrets()
	b.assertNoSecrets()
}

// testClusterDisable turns tenant-a's everything integration off through
// a: session, on the other replica, stops listing its tools within 2 s.
func testClusterDisable(t *testing.T, a *gateway, session *client.Client, heard *notes) {
	t.Helper()
	hasEverything := func() bool {
		res, err := session.ListTools(t.Context(), mcp.ListToolsRequest{})
		if err != nil {
			t.Fatalf("tools/list on b: %v", err)
		}
		for _, tool := range res.Tools {
			if strings.HasPrefix(tool.Name, "everything_") {
				return true
			}
		}
		return false
	}
	if !hasEverything() { // b reads (and caches) tenant-a's settings
		t.Fatal("tenant-a's tools/list on b lists no everything tool before it is turned off")
	}
	before := len(heard.list())
	start := time.Now()
	if status, _, raw := a.api("admin", "DELETE", "/tenants/tenant-a/integrations/everything", ""); status != http.StatusOK {
		t.Fatalf("disabling everything through a: %d %s", status, raw)
	}
	for hasEverything() {
		if time.Since(start) > propagationBound {
			t.Fatalf("tenant-a's tools/list on b still lists everything %v after it was turned off through a", propagationBound)
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Logf("b's tools/list dropped the integration turned off through a after %v", time.Since(start).Round(time.Millisecond))
	got := heard.waitFor(propagationBound-time.Since(start), func(n []map[string]any) bool { return len(n) > before })
	if len(got) <= before {
		t.Errorf("tenant-a's session on b heard no list_changed within %v of the disable through a", propagationBound)
	}
}

// testClusterOperator runs operator commands beside replica a, with a's
// cluster settings: each joins the cluster from a port of its own and
// tells it. A credential put reaches the tenant's session on b; an
// off-boarding drops b's cached credential and reaches the session.
func testClusterOperator(t *testing.T, a, b *gateway, root *api.Client, heard *notes) {
	t.Helper()
	// The commands run with a's settings, their peers the serving a.
	cli := a.replica(map[string]string{"CONNECTORS_CLUSTER_PEERS": b.env["CONNECTORS_CLUSTER_PEERS"]})
	before := len(heard.list())
	start := time.Now()
	cli.mustRun(`{"accessToken": "`+tokenA+`"}`, "credential", "put", "--tenant", "tenant-a", "--integration", "notion")
	got := heard.waitFor(propagationBound, func(n []map[string]any) bool { return len(n) > before })
	if len(got) <= before {
		t.Fatalf("tenant-a's session on b heard no list_changed within %v of \"credential put\" beside a", propagationBound)
	}
	t.Logf("\"credential put\" beside a: b's session heard list_changed %v after the command started", time.Since(start).Round(time.Millisecond))

	// Off-boarding destroys the tenant's key: it needs the admin policy.
	ops := cli.replica(map[string]string{"VAULT_TOKEN": adminVaultToken(t, root)})
	const notion = "/tenants/tenant-a/integrations/notion"
	if _, out, raw := b.api("admin", "GET", notion, ""); out["hasCredentials"] != true { // b caches it
		t.Fatalf("b before the off-boarding: %s", raw)
	}
	before = len(heard.list())
	start = time.Now()
	ops.mustRun("", "tenant", "offboard", "--tenant", "tenant-a")
	ran := time.Since(start)
	for {
		_, out, raw := b.api("admin", "GET", notion, "")
		if out["hasCredentials"] == false {
			break
		}
		if time.Since(start) > ran+propagationBound {
			t.Fatalf("b still serves tenant-a's credential %v after \"tenant offboard\" beside a: %s", propagationBound, raw)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if got := heard.waitFor(propagationBound, func(n []map[string]any) bool { return len(n) > before }); len(got) <= before {
		t.Errorf("tenant-a's session on b heard no list_changed after \"tenant offboard\" beside a")
	}
	t.Logf("\"tenant offboard\" beside a (%v): b dropped the credential and its session heard list_changed %v after it started", ran.Round(time.Millisecond), time.Since(start).Round(time.Millisecond))
}

// TestClusterReschedules: with OAuth configured, a credential stored
// through replica a is scheduled for refresh by b too, read from Vault
// (b's refresh queue holds it within 2 s), and forgotten by b when it is
// deleted through a; b refreshes nothing (the provider sees no refresh).
func TestClusterReschedules(t *testing.T) {
	fake := fakeoauth.New(t, fakeoauth.GitHub, "gh-client", "gh-client-s3cret")
	env := oauthEnv("gh", map[string]string{"GH_CLIENT_ID": "gh-client", "GH_CLIENT_SECRET": "gh-client-s3cret"})
	a, b, _ := clusteredPair(t, env, oauthIntegration(t, "gh", fake))
	queued := func(g *gateway) string {
		_, _, text := g.api("admin", "GET", "/metrics", "")
		for line := range strings.Lines(text) {
			if v, ok := strings.CutPrefix(line, "connectors_token_refresh_queue_length "); ok {
				return strings.TrimSpace(v)
			}
		}
		t.Fatalf("no refresh queue length in the metrics:\n%s", text)
		return ""
	}
	waitQueued := func(g *gateway, want string, what string) {
		t.Helper()
		start := time.Now()
		for queued(g) != want {
			if time.Since(start) > propagationBound {
				t.Fatalf("%s: b's refresh queue holds %s after %v, want %s", what, queued(g), propagationBound, want)
			}
			time.Sleep(10 * time.Millisecond)
		}
		t.Logf("%s: b's refresh queue holds %s after %v", what, want, time.Since(start).Round(time.Millisecond))
	}
	if got := queued(b); got != "0" {
		t.Fatalf("b's refresh queue before: %s", got)
	}
	access, refresh := fake.IssueToken()
	body := fmt.Sprintf(`{"accessToken": %q, "refreshToken": %q, "expiresIn": 3600}`, access, refresh)
	if status, _, raw := a.api("tenant-a", "POST", "/tenants/tenant-a/integrations/gh/credentials", body); status != http.StatusCreated {
		t.Fatalf("POST through a: %d %s", status, raw)
	}
	waitQueued(b, "1", "stored through a")
	if status, _, raw := a.api("tenant-a", "DELETE", "/tenants/tenant-a/integrations/gh/credentials", ""); status != http.StatusOK {
		t.Fatalf("DELETE through a: %d %s", status, raw)
	}
	waitQueued(b, "0", "deleted through a")
	if _, out, raw := b.api("tenant-a", "GET", "/tenants/tenant-a/integrations/gh", ""); out["hasCredentials"] != false {
		t.Errorf("b after the delete through a: %s", raw)
	}
	if n := fake.RefreshAttempts(); n != 0 {
		t.Errorf("the provider saw %d refresh attempts: a change heard must not refresh", n)
	}
}

// TestClusterHostileChanges: a holder of the key (the worst case: a
// compromised replica) publishes changes naming no valid tenant or
// integration, a session no one ends, and an off-boarding of a tenant that
// was not off-boarded. The invalid ones are ignored and logged; the
// off-boarding costs b a re-read of Vault, and tenant-a's credential, still
// there, is served as before: a change heard grants and deletes nothing.
func TestClusterHostileChanges(t *testing.T) {
	a, b, _ := clusteredPair(t, nil)
	session := b.listening(t, "tenant-a")
	heard := collect(session, mcp.MethodNotificationToolsListChanged)
	forger, err := cluster.New(cluster.Options{
		Bind: "127.0.0.1:0", Peers: []string{b.env["CONNECTORS_CLUSTER_PEERS"]},
		Secret: []byte("0123456789abcdef0123456789abcdef"),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = forger.Close() })
	for _, c := range []cluster.Change{
		{Kind: cluster.KindCredential, Tenant: "../tenant-a", Integration: "notion"},
		{Kind: cluster.KindSettings, Tenant: "TENANT-A"},
		{Kind: cluster.KindCredential, Tenant: "tenant-a", Integration: "no-such-integration"},
		{Kind: cluster.KindSessionEnded, Tenant: "tenant-a", Session: "no-such-session"},
	} {
		if err := forger.Publish(c); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(propagationBound)
	for strings.Count(b.stderr.String(), `"msg":"cluster_change_ignored"`) < 3 {
		if time.Now().After(deadline) {
			t.Fatalf("b did not log the three invalid changes as ignored:\n%s", b.stderr)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if n := heard.list(); len(n) != 0 {
		t.Errorf("tenant-a's session on b heard %v from invalid changes", n)
	}
	if err := forger.Publish(cluster.Change{Kind: cluster.KindOffboarded, Tenant: "tenant-a"}); err != nil {
		t.Fatal(err)
	}
	heard.waitFor(propagationBound, func(n []map[string]any) bool { return len(n) > 0 })
	res, err := session.CallTool(t.Context(), mcp.CallToolRequest{Params: mcp.CallToolParams{Name: "notion_API-get-self"}})
	if err != nil || !strings.Contains(toolText(t, res), "Acme Bot") {
		t.Errorf("tenant-a's call through b after a forged off-boarding: %v, %v", res, err)
	}
	for _, g := range []*gateway{a, b} {
		if strings.Contains(g.stderr.String(), g.env["CONNECTORS_CLUSTER_KEY"]) {
			t.Error("the cluster key appears in a gateway's log")
		}
	}
}

// TestClusterConfig: the cluster's variables are checked before anything
// starts; a key is required, and a cluster needs Vault.
func TestClusterConfig(t *testing.T) {
	key := base64.StdEncoding.EncodeToString(make([]byte, 32))
	vault := map[string]string{"VAULT_ADDR": "http://127.0.0.1:8200"}
	for _, tc := range []struct {
		name string
		env  map[string]string
		want string // in the error; "": no error
	}{
		{"off", nil, ""},
		{"on", map[string]string{"CONNECTORS_CLUSTER_BIND": "0.0.0.0:7946", "CONNECTORS_CLUSTER_PEERS": "gw-0.gw:7946, gw-1.gw:7946", "CONNECTORS_CLUSTER_KEY": key}, ""},
		{"no key", map[string]string{"CONNECTORS_CLUSTER_BIND": "0.0.0.0:7946"}, "CONNECTORS_CLUSTER_KEY is required"},
		{"short key", map[string]string{"CONNECTORS_CLUSTER_BIND": "0.0.0.0:7946", "CONNECTORS_CLUSTER_KEY": base64.StdEncoding.EncodeToString(make([]byte, 8))}, "CONNECTORS_CLUSTER_KEY is required"},
		{"key not base64", map[string]string{"CONNECTORS_CLUSTER_BIND": "0.0.0.0:7946", "CONNECTORS_CLUSTER_KEY": "not base64!"}, "CONNECTORS_CLUSTER_KEY is required"},
		{"bad bind", map[string]string{"CONNECTORS_CLUSTER_BIND": "7946", "CONNECTORS_CLUSTER_KEY": key}, "CONNECTORS_CLUSTER_BIND"},
		{"bad peer", map[string]string{"CONNECTORS_CLUSTER_BIND": ":7946", "CONNECTORS_CLUSTER_PEERS": "gw-0", "CONNECTORS_CLUSTER_KEY": key}, "CONNECTORS_CLUSTER_PEERS"},
		{"peers without bind", map[string]string{"CONNECTORS_CLUSTER_PEERS": "gw-0:7946"}, "need CONNECTORS_CLUSTER_BIND"},
		{"embedded store", map[string]string{"VAULT_ADDR": "", "CONNECTORS_CLUSTER_BIND": ":7946", "CONNECTORS_CLUSTER_KEY": key}, "needs VAULT_ADDR"},
	} {
		env := maps.Clone(vault)
		maps.Copy(env, tc.env)
		cfg, err := configFromEnv(func(k string) string { return env[k] })
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%s: %v", tc.name, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%s: error %v, want one naming %q", tc.name, err, tc.want)
		case tc.want != "" && strings.Contains(err.Error(), key):
			t.Errorf("%s: the error quotes the key", tc.name)
		case tc.name == "on" && len(cfg.Cluster.Peers) != 2:
			t.Errorf("on: peers %q", cfg.Cluster.Peers)
		}
	}
}

// adminVaultToken writes the shipped gateway-admin policy to the Vault of
// root and returns a token holding it and the gateway-service policy, as
// off-boarding needs (it destroys the tenant's key).
func adminVaultToken(t *testing.T, root *api.Client) string {
	t.Helper()
	rules, err := os.ReadFile(filepath.Join(testenv.Root(), "vault", "hashicorp", "policies", "gateway-admin-policy.hcl"))
	if err != nil {
		t.Fatal(err)
	}
	if err := root.Sys().PutPolicy("gateway-admin", string(rules)); err != nil {
		t.Fatal(err)
	}
	tok, err := root.Auth().Token().Create(&api.TokenCreateRequest{Policies: []string{"gateway-service", "gateway-admin"}, NoDefaultPolicy: true})
	if err != nil {
		t.Fatal(err)
	}
	return tok.Auth.ClientToken
}
