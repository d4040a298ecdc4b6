package main

import (
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/vault/api"
	"github.com/mark3labs/mcp-go/mcp"
	bolt "go.etcd.io/bbolt"
)

// Fail closed: a tenant whose settings or credential cannot be read is
// refused with the store's error on every route and MCP method, on both
// lanes, on both stores; never served as if nothing were turned off, nor
// as if nothing were linked.

// atRest is one store under test, with the ways to spoil what it keeps
// that an outage, a retired key or a hostile copy leave behind.
type atRest struct {
	name string
	// env is the environment of a gateway on this store.
	env func(t *testing.T) map[string]string
	// corruptSettings makes tenant's settings record unreadable;
	// copySecret puts fromTenant's access-token ciphertext of integration
	// into tenant's record. Both run while the gateway is stopped.
	corruptSettings func(t *testing.T, g *gateway, tenant string)
	copySecret      func(t *testing.T, g *gateway, tenant, integration, fromTenant string)
}

func storesAtRest() []atRest {
	var root *api.Client
	return []atRest{
		{
			name: "embedded",
			env:  func(*testing.T) map[string]string { return nil },
			corruptSettings: func(t *testing.T, g *gateway, tenant string) {
				boltUpdate(t, g, func(tx *bolt.Tx) error {
					b, err := tx.CreateBucketIfNotExists([]byte("settings"))
					if err != nil {
						return err
					}
					return b.Put([]byte(tenant), append(binary.BigEndian.AppendUint64(nil, 1), `{"disabled":["ech`...))
				})
			},
			copySecret: func(t *testing.T, g *gateway, tenant, integration, fromTenant string) {
				boltUpdate(t, g, func(tx *bolt.Tx) error {
					creds := tx.Bucket([]byte("credentials"))
					var src, dst map[string]json.RawMessage
					if err := json.Unmarshal(creds.Bucket([]byte(fromTenant)).Get([]byte(integration)), &src); err != nil {
						return err
					}
					if err := json.Unmarshal(creds.Bucket([]byte(tenant)).Get([]byte(integration)), &dst); err != nil {
						return err
					}
					dst["access_token"] = src["access_token"]
					raw, _ := json.Marshal(dst)
					return creds.Bucket([]byte(tenant)).Put([]byte(integration), raw)
				})
			},
		},
		{
			name: "vault",
			env: func(t *testing.T) map[string]string {
				addr, rc, token := gatewayVault(t)
				root = rc
				return map[string]string{"VAULT_ADDR": addr, "VAULT_TOKEN": token}
			},
			corruptSettings: func(t *testing.T, g *gateway, tenant string) {
				if _, err := root.KVv2("secret").Put(t.Context(), "_settings/"+tenant,
					map[string]any{"settings": base64.StdEncoding.EncodeToString([]byte(`{"disabled":["ech`))}); err != nil {
					t.Fatal(err)
				}
			},
			copySecret: func(t *testing.T, g *gateway, tenant, integration, fromTenant string) {
				kv := root.KVv2("secret")
				src, err := kv.Get(t.Context(), fromTenant+"/"+integration)
				if err != nil {
					t.Fatal(err)
				}
				dst, err := kv.Get(t.Context(), tenant+"/"+integration)
				if err != nil {
					t.Fatal(err)
				}
				dst.Data["access_token"] = src.Data["access_token"]
				if _, err := kv.Put(t.Context(), tenant+"/"+integration, dst.Data); err != nil {
					t.Fatal(err)
				}
			},
		},
	}
}

// boltUpdate changes the embedded store's file of a stopped gateway.
func boltUpdate(t *testing.T, g *gateway, fn func(tx *bolt.Tx) error) {
	t.Helper()
	db, err := bolt.Open(filepath.Join(g.env["CONNECTORS_DATA_DIR"], "connectors.db"), 0o600, &bolt.Options{Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.Update(fn); err != nil {
		t.Fatalf("tampering with the store: %v", err)
	}
}

// TestFailClosedSettings: tenant-a's settings record cannot be read and
// none are in memory. Nothing is served to tenant-a that its settings
// might turn off: tools/list and tools/call (usual and direct lane, both
// endpoints) get a JSON-RPC error naming VaultError, REST gets 503
// VaultError, and no call reaches the upstream. tenant-b is served.
func TestFailClosedSettings(t *testing.T) {
	for _, st := range storesAtRest() {
		t.Run(st.name, func(t *testing.T) {
			g, up := failClosedGateway(t, st)
			st.corruptSettings(t, g, "tenant-a")
			g.serve()
			assertFailsClosed(t, g, up, "VaultError")
		})
	}
}

// TestFailClosedUndecryptable: tenant-a's echo record holds tenant-b's
// ciphertext (a copy from another tenant's record). Every route and
// method that reads the credential answers VaultEncryptionError: not
// "connect your account", not "not found", not a list without echo.
func TestFailClosedUndecryptable(t *testing.T) {
	for _, st := range storesAtRest() {
		t.Run(st.name, func(t *testing.T) {
			g, up := failClosedGateway(t, st)
			st.copySecret(t, g, "tenant-a", "echo", "tenant-b")
			g.serve()
			assertFailsClosed(t, g, up, "VaultEncryptionError")
			if status, out, raw := g.api("tenant-a", "GET", "/tenants/tenant-a/integrations/echo", ""); status != http.StatusServiceUnavailable || out["error"] != "VaultEncryptionError" {
				t.Errorf("GET /tenants/tenant-a/integrations/echo = %d %s, want 503 VaultEncryptionError", status, raw)
			}
			if status, out, raw := g.api("tenant-a", "GET", "/tenants/tenant-a/integrations", ""); status != http.StatusServiceUnavailable || out["error"] != "VaultEncryptionError" {
				t.Errorf("GET /tenants/tenant-a/integrations = %d %s, want 503 VaultEncryptionError", status, raw)
			}
			// The tenant mends it: deletes the record (nothing to revoke
			// with), or stores a new credential over it.
			if status, out, raw := g.api("tenant-a", "DELETE", "/tenants/tenant-a/integrations/echo/credentials", ""); status != http.StatusOK || out["providerRevoked"] != false {
				t.Errorf("DELETE of the unreadable credential = %d %s, want 200, not revoked", status, raw)
			}
			body := `{"accessToken": "` + extraToken("tenant-a", "echo") + `"}`
			if status, _, raw := g.api("tenant-a", "POST", "/tenants/tenant-a/integrations/echo/credentials", body); status != http.StatusCreated {
				t.Errorf("storing a new credential = %d %s", status, raw)
			}
			if status, body := g.post("tenant-a", "/mcp", "echo_echo", callBody("9", "echo_echo", `"arguments":{"text":"mended"}`), nil); status != http.StatusOK || !strings.Contains(body, "mended") {
				t.Errorf("tools/call once mended: %d %s", status, body)
			}
		})
	}
}

// failClosedGateway is a gateway on st with the echo upstream (2026-07-28,
// so that calls take the direct lane) linked for tenant-a and tenant-b.
func failClosedGateway(t *testing.T, st atRest) (*gateway, *upstreamLog) {
	t.Helper()
	upURL, up := recordedEcho(t)
	g := newGatewayWithCredentials(t, st.env(t), map[string]any{"name": "echo", "upstream": map[string]any{
		"url": upURL, "headers": map[string]string{"Authorization": "Bearer {{access_token}}"}}})
	return g, up
}

// assertFailsClosed checks that tenant-a is refused with name on every
// lane and that tenant-b is served.
func assertFailsClosed(t *testing.T, g *gateway, up *upstreamLog, name string) {
	t.Helper()
	wantRefused := func(what string, err error) {
		t.Helper()
		if err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("%s: err = %v, want a JSON-RPC error naming %s", what, err, name)
			return
		}
		for _, leak := range []string{"tenant-a/", "secret/", "_settings", "transit"} {
			if strings.Contains(err.Error(), leak) {
				t.Errorf("%s: error %q names a store path (%s)", what, err, leak)
			}
		}
	}
	for _, path := range []string{"/mcp", "/mcp/echo"} {
		c := g.dialPath("tenant-a", path, nil)
		res, err := c.ListTools(t.Context(), mcp.ListToolsRequest{})
		if err == nil {
			t.Errorf("tools/list on %s: %d tools, want an error naming %s", path, len(res.Tools), name)
		} else {
			wantRefused("tools/list on "+path, err)
		}
		tool := "echo_echo"
		if path != "/mcp" {
			tool = "echo"
		}
		call, err := c.CallTool(t.Context(), mcp.CallToolRequest{Params: mcp.CallToolParams{Name: tool, Arguments: map[string]any{"text": "hi"}}})
		if err == nil {
			t.Errorf("tools/call %s on %s answered %+v, want an error naming %s", tool, path, call, name)
		} else {
			wantRefused("tools/call on "+path, err)
		}
	}
	single := g.dialPath("tenant-a", "/mcp/echo", nil)
	if _, err := single.ListResources(t.Context(), mcp.ListResourcesRequest{}); err == nil {
		t.Errorf("resources/list on /mcp/echo answered, want an error naming %s", name)
	} else {
		wantRefused("resources/list", err)
	}
	if _, err := single.ListPrompts(t.Context(), mcp.ListPromptsRequest{}); err == nil {
		t.Errorf("prompts/list on /mcp/echo answered, want an error naming %s", name)
	} else {
		wantRefused("prompts/list", err)
	}

	// The direct lane: a 2026-07-28 tools/call.
	status, body := g.post("tenant-a", "/mcp", "echo_echo", callBody("7", "echo_echo", `"arguments":{"text":"direct"}`), nil)
	var rpc struct {
		Result json.RawMessage
		Error  *struct {
			Code    int
			Message string
		}
	}
	if err := json.Unmarshal([]byte(body), &rpc); err != nil || rpc.Error == nil || !strings.Contains(rpc.Error.Message, name) {
		t.Errorf("2026-07-28 tools/call: %d %s, want a JSON-RPC error naming %s", status, body, name)
	}
	// 2026-07-28 maps errors to HTTP statuses: the store's, not the client's.
	if status != http.StatusServiceUnavailable {
		t.Errorf("2026-07-28 tools/call refused with HTTP %d, want 503", status)
	}

	// REST: 503, and Retry-After when waiting may help (not for a record
	// that does not decrypt).
	req, _ := http.NewRequest("POST", "http://"+g.addr+"/api/v1/tools/invoke", strings.NewReader(`{"toolId":"echo.echo","parameters":{"text":"rest"}}`))
	req.Header.Set("Authorization", "Bearer "+g.keys["tenant-a"])
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var out struct{ Error, Message string }
	_ = json.Unmarshal(raw, &out)
	if resp.StatusCode != http.StatusServiceUnavailable || out.Error != name {
		t.Errorf("POST /api/v1/tools/invoke = %d %s, want 503 %s", resp.StatusCode, raw, name)
	}
	if retry := resp.Header.Get("Retry-After"); (retry != "") != (name == "VaultError") {
		t.Errorf("POST /api/v1/tools/invoke answering %s: Retry-After %q", name, retry)
	}
	if n := len(up.calls()); n != 0 {
		t.Errorf("%d tools/call reached the upstream for tenant-a, want 0", n)
	}

	// tenant-b is untouched, on both lanes.
	b := g.client("tenant-b")
	if names := toolNames(t, b); !containsPrefix(names, "echo_") {
		t.Errorf("tenant-b's tools/list = %v, want echo's tools", names)
	}
	if status, body := g.post("tenant-b", "/mcp", "echo_echo", callBody("8", "echo_echo", `"arguments":{"text":"fine"}`), nil); status != http.StatusOK || !strings.Contains(body, "fine") {
		t.Errorf("tenant-b's 2026-07-28 tools/call: %d %s", status, body)
	}
	g.assertNoSecretsIn(body)
}
