package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"maps"
	"net/http"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/mcp"
)

// accountOf is upstream-env's account of a token (ACCOUNT_TOOLS): the
// account its catalogue is made for.
func accountOf(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:4])
}

// accountIntegration is upstream-env with a catalogue that depends on the
// tenant's account, as GitHub's MCP server's does on a token's scopes.
func accountIntegration(t *testing.T) map[string]any {
	in := envIntegration(t, "acct", "catalogue-"+t.Name(), "")
	in["upstream"].(map[string]any)["env"].(map[string]string)["ACCOUNT_TOOLS"] = "1"
	return in
}

// catalogueGateway serves the acct integration for tenant-a and tenant-b,
// on the embedded store or a real Vault.
func catalogueGateway(t *testing.T, onVault bool) *gateway {
	var env map[string]string
	if onVault {
		addr, _, token := gatewayVault(t)
		env = map[string]string{"VAULT_ADDR": addr, "VAULT_TOKEN": token}
	}
	g := newGatewayWithCredentials(t, env, accountIntegration(t))
	g.serve()
	return g
}

func onBothStores(t *testing.T, test func(t *testing.T, g *gateway)) {
	for _, store := range []struct {
		name  string
		vault bool
	}{{"embedded", false}, {"vault", true}} {
		t.Run(store.name, func(t *testing.T) { test(t, catalogueGateway(t, store.vault)) })
	}
}

// toolsOf lists the tools c sees, by name.
func toolsOf(t *testing.T, c *client.Client) map[string]mcp.Tool {
	t.Helper()
	res, err := c.ListTools(t.Context(), mcp.ListToolsRequest{})
	if err != nil {
		t.Fatalf("tools/list: %v", err)
	}
	out := map[string]mcp.Tool{}
	for _, tool := range res.Tools {
		out[tool.Name] = tool
	}
	return out
}

// TestTenantCatalogues: each tenant is shown, and may call, what its own
// account's upstream lists, however the catalogues of other tenants were
// listed before: a tool only another tenant's account has is neither
// listed nor callable, and no description carries another account's data.
// Each era, on /mcp and on /mcp/acct, and on both stores.
func TestTenantCatalogues(t *testing.T) {
	onBothStores(t, func(t *testing.T, g *gateway) {
		accounts := map[string]string{
			"tenant-a": accountOf(extraToken("tenant-a", "acct")),
			"tenant-b": accountOf(extraToken("tenant-b", "acct")),
		}
		for _, e := range eras {
			for _, path := range []struct{ path, prefix string }{{"/mcp", "acct_"}, {"/mcp/acct", ""}} {
				t.Run(e.name+path.path, func(t *testing.T) {
					// tenant-a lists first: its listing must not become tenant-b's.
					for _, tenant := range []string{"tenant-a", "tenant-b"} {
						own, other := accounts[tenant], accounts[otherTenant(tenant)]
						c := g.dialPath(tenant, path.path, nil, e.opts...)
						tools := toolsOf(t, c)
						if _, ok := tools[path.prefix+"mine-"+own]; !ok {
							t.Errorf("%s: its own account's tool is not listed: %v", tenant, slices.Sorted(maps.Keys(tools)))
						}
						if _, ok := tools[path.prefix+"mine-"+other]; ok {
							t.Errorf("%s is shown the tool only %s's account has", tenant, otherTenant(tenant))
						}
						desc := tools[path.prefix+"search"].Description
						if !strings.Contains(desc, own) || strings.Contains(desc, other) {
							t.Errorf("%s: search description %q, want its own account %s's", tenant, desc, own)
						}
						for name, tool := range tools {
							raw, _ := json.Marshal(tool)
							if strings.Contains(string(raw), other) {
								t.Errorf("%s: tool %s carries the other account's data: %s", tenant, name, raw)
							}
						}
						if got := mustCall(t, c, path.prefix+"mine-"+own, nil); got != "account "+own {
							t.Errorf("%s: its own account's tool answered %q", tenant, got)
						}
						ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
						res, err := call(ctx, c, path.prefix+"mine-"+other, nil)
						cancel()
						if err == nil {
							t.Errorf("%s called the tool only %s's account has: %v", tenant, otherTenant(tenant), res)
						} else if !strings.Contains(err.Error(), "not found") || strings.Contains(err.Error(), other) && !strings.Contains(err.Error(), "mine-"+other) {
							t.Errorf("%s: calling another account's tool: %v, want not found", tenant, err)
						}
					}
				})
			}
		}
		g.assertNoSecrets()
	})
}

func otherTenant(tenant string) string {
	if tenant == "tenant-a" {
		return "tenant-b"
	}
	return "tenant-a"
}

// TestTenantCatalogueRefresh: a tenant's catalogue is listed again when
// its upstream says it changed (only that tenant's: the other's upstream
// did not change) and when its credential changes (a new account, a new
// catalogue), on both stores.
func TestTenantCatalogueRefresh(t *testing.T) {
	onBothStores(t, func(t *testing.T, g *gateway) {
		a, b := g.client("tenant-a"), g.client("tenant-b")
		if _, ok := toolsOf(t, b)["acct_grown"]; ok {
			t.Fatal("acct_grown listed before grow")
		}
		changed := collect(a, string(mcp.MethodNotificationToolsListChanged))
		mustCall(t, a, "acct_grow", nil)
		changed.waitFor(10*time.Second, func(n []map[string]any) bool { return len(n) > 0 })
		deadline := time.Now().Add(10 * time.Second)
		for {
			if _, ok := toolsOf(t, a)["acct_grown"]; ok {
				break
			}
			if time.Now().After(deadline) {
				t.Fatal("tenant-a's upstream added acct_grown; tenant-a's list never showed it")
			}
			time.Sleep(50 * time.Millisecond)
		}
		if got := mustCall(t, a, "acct_grown", nil); got != "grown" {
			t.Errorf("acct_grown = %q", got)
		}
		if _, ok := toolsOf(t, b)["acct_grown"]; ok {
			t.Error("tenant-b is shown the tool tenant-a's upstream added")
		}
		if res, err := call(t.Context(), b, "acct_grown", nil); err == nil {
			t.Errorf("tenant-b called the tool tenant-a's upstream added: %v", res)
		}

		// A new credential: another account, another catalogue.
		const relinked = "xtok_tenant-a_relinked_secret_77aa55"
		g.keys["relinked"] = relinked // among the secrets to look for
		if status, _, raw := g.api("tenant-a", "POST", "/tenants/tenant-a/integrations/acct/credentials", `{"accessToken": "`+relinked+`"}`); status != http.StatusCreated {
			t.Fatalf("POST credentials: %d %s", status, raw)
		}
		old, fresh := accountOf(extraToken("tenant-a", "acct")), accountOf(relinked)
		tools := toolsOf(t, g.client("tenant-a"))
		if _, ok := tools["acct_mine-"+fresh]; !ok {
			t.Errorf("after the new credential, the new account's tool is not listed: %v", slices.Sorted(maps.Keys(tools)))
		}
		if _, ok := tools["acct_mine-"+old]; ok {
			t.Error("after the new credential, the old account's tool is still listed")
		}
		if got := mustCall(t, g.client("tenant-a"), "acct_mine-"+fresh, nil); got != "account "+fresh {
			t.Errorf("new account's tool = %q", got)
		}
		g.assertNoSecrets()
	})
}

// TestSchemasPassThrough: a tool's input and output schemas reach the agent
// as the upstream wrote them, JSON Schema 2020-12 keywords and key order
// included, on /mcp and /mcp/acct and in both eras' answers.
func TestSchemasPassThrough(t *testing.T) {
	want := upstreamTool(t, "shaped")
	g := catalogueGateway(t, false)
	for _, path := range []struct{ path, name string }{{"/mcp", "acct_shaped"}, {"/mcp/acct", "shaped"}} {
		for _, legacy := range []bool{false, true} {
			got := gatewayTool(t, g, path.path, path.name, legacy)
			for _, field := range []string{"inputSchema", "outputSchema"} {
				if !bytes.Equal(compactKeepingOrder(t, got[field]), compactKeepingOrder(t, want[field])) {
					t.Errorf("%s (legacy %v) %s:\n got %s\nwant %s", path.path, legacy, field, got[field], want[field])
				}
			}
		}
	}
}

// compactKeepingOrder is json.Compact: spaces out, key order kept.
func compactKeepingOrder(t *testing.T, raw json.RawMessage) []byte {
	var b bytes.Buffer
	if err := json.Compact(&b, raw); err != nil {
		t.Fatalf("%s: %v", raw, err)
	}
	return b.Bytes()
}

// upstreamTool lists upstream-env's tools itself, over stdio, and returns
// the named one's JSON members as the server wrote them.
func upstreamTool(t *testing.T, name string) map[string]json.RawMessage {
	t.Helper()
	cmd := exec.CommandContext(t.Context(), upstreamEnvBin(t))
	cmd.Env = []string{"ACCOUNT_TOOLS=1", "PROBE_TOKEN=x"}
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	io.WriteString(stdin, initializeBody+"\n"+`{"jsonrpc":"2.0","method":"notifications/initialized"}`+"\n"+`{"jsonrpc":"2.0","id":2,"method":"tools/list"}`+"\n")
	lines := bufio.NewScanner(stdout)
	lines.Buffer(nil, 1<<20)
	for lines.Scan() {
		var msg struct {
			ID     int `json:"id"`
			Result struct {
				Tools []map[string]json.RawMessage `json:"tools"`
			} `json:"result"`
		}
		if json.Unmarshal(lines.Bytes(), &msg) != nil || msg.ID != 2 {
			continue
		}
		for _, tool := range msg.Result.Tools {
			if string(tool["name"]) == `"`+name+`"` {
				return tool
			}
		}
	}
	t.Fatalf("upstream-env lists no tool %s", name)
	return nil
}

// gatewayTool lists tenant-a's tools on path with a raw request (a
// 2026-07-28 one, or on a 2025-11-25 session when legacy) and returns the
// named one's JSON members.
func gatewayTool(t *testing.T, g *gateway, path, name string, legacy bool) map[string]json.RawMessage {
	t.Helper()
	var tools []map[string]json.RawMessage
	if err := json.Unmarshal(result(t, "tools/list on "+path, rawList(g, "tenant-a", path, legacy))["tools"], &tools); err != nil {
		t.Fatal(err)
	}
	for _, tool := range tools {
		if string(tool["name"]) == `"`+name+`"` {
			return tool
		}
	}
	t.Fatalf("tools/list on %s has no %s", path, name)
	return nil
}

// rawList sends tenant's tools/list to path as a 2026-07-28 request, or on
// a new 2025-11-25 session when legacy, and returns every message of the
// answer.
func rawList(g *gateway, tenant, path string, legacy bool) []json.RawMessage {
	if legacy {
		_, header, _ := g.rpc(tenant, path, initializeBody, nil)
		session := map[string]string{"Mcp-Session-Id": header.Get("Mcp-Session-Id"), "Mcp-Protocol-Version": "2025-11-25"}
		g.rpc(tenant, path, `{"jsonrpc":"2.0","method":"notifications/initialized"}`, session)
		_, _, msgs := g.rpc(tenant, path, `{"jsonrpc":"2.0","id":2,"method":"tools/list"}`, session)
		return msgs
	}
	_, _, msgs := g.rpc(tenant, path, `{"jsonrpc":"2.0","id":2,"method":"tools/list","params":{"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{}}}}`,
		map[string]string{"Mcp-Protocol-Version": "2026-07-28", "Mcp-Method": "tools/list"})
	return msgs
}

// TestDiscoveryAnnouncesNothing: listing a tenant's catalogues makes no
// notifications/tools/list_changed (mcp-go announces every registration,
// inside the answer that caused it; the gateway registers nothing after
// start), in either era, on /mcp and /mcp/acct.
func TestDiscoveryAnnouncesNothing(t *testing.T) {
	for _, path := range []string{"/mcp", "/mcp/acct"} {
		for _, legacy := range []bool{false, true} {
			g := catalogueGateway(t, false) // nothing listed yet
			for _, msg := range rawList(g, "tenant-a", path, legacy) {
				if bytes.Contains(msg, []byte(`"method":"notifications/`)) {
					t.Errorf("%s (legacy %v): the first tools/list answer carries a notification: %s", path, legacy, msg)
				}
			}
		}
	}
}

// TestTaskParameterRunsTheCall: the gateway offers no tasks, so a call with
// a task parameter, even of a tool its upstream lets run as a task, is
// answered as an ordinary call: mcp-go would otherwise keep a task per
// call (and a goroutine per TTL) that no request of the agent can read.
func TestTaskParameterRunsTheCall(t *testing.T) {
	g := catalogueGateway(t, false)
	for _, path := range []struct{ path, name string }{{"/mcp", "acct_tasky"}, {"/mcp/acct", "tasky"}} {
		body := `{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{}},"name":"` + path.name + `","arguments":{},"task":{"ttl":900000}}}`
		_, _, msgs := g.rpc("tenant-a", path.path, body, map[string]string{"Mcp-Protocol-Version": "2026-07-28", "Mcp-Method": "tools/call", "Mcp-Name": path.name})
		res := result(t, "tools/call with a task on "+path.path, msgs)
		if _, task := res["task"]; task || !strings.Contains(string(res["content"]), "ran") {
			t.Errorf("%s: a call with a task parameter answered %v, want the call's own result", path.path, res)
		}
	}
}
