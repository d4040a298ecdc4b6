package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hashicorp/vault/api"
	"github.com/mark3labs/mcp-go/mcp"

	"github.com/connectors-gateway/connectors/internal/testenv"
)

// TestVaultBackend runs the gateway on a real Vault server, with a token
// that holds only the shipped gateway policy: operator commands write the
// seed's records, agents' calls carry each tenant's token, and Vault holds
// only ciphertext.
func TestVaultBackend(t *testing.T) {
	addr, rootClient, token := gatewayVault(t)
	g := newGatewayWithEnv(t, map[string]string{"VAULT_ADDR": addr, "VAULT_TOKEN": token})
	if _, err := os.Stat(g.env["CONNECTORS_DATA_DIR"]); !os.IsNotExist(err) {
		t.Errorf("with VAULT_ADDR set, the embedded store's data dir exists: %v", err)
	}
	if out := g.mustRun("", "credential", "list", "--tenant", "tenant-a"); out != "everything\nnotion\n" {
		t.Errorf("credential list from Vault = %q", out)
	}
	// The operator's trail is in its own state dir, not on the terminal.
	trail, err := os.ReadFile(filepath.Join(g.env["HOME"], ".local", "state", "connectors", OperatorAuditFile))
	if err != nil || !strings.Contains(string(trail), `"operation":"put"`) || strings.Contains(g.stderr.String(), "tenant_credential_access") {
		t.Errorf("the operator's trail with Vault: %v %q; on the terminal: %q", err, trail, g.stderr)
	}
	rec, err := rootClient.KVv2("secret").Get(t.Context(), "tenant-a/notion")
	if err != nil {
		t.Fatal(err)
	}
	if at, _ := rec.Data["access_token"].(string); !strings.HasPrefix(at, "vault:v1:") {
		t.Errorf("secret/tenant-a/notion access_token = %q, want Transit ciphertext", at)
	}

	g.serve()
	res, err := g.client("tenant-a").CallTool(t.Context(), mcp.CallToolRequest{Params: mcp.CallToolParams{Name: "notion_API-get-self"}})
	if err != nil || !strings.Contains(toolText(t, res), "Acme Bot") {
		t.Fatalf("call through the Vault backend: %v, %v", res, err)
	}
	res, err = g.client("tenant-b").CallTool(t.Context(), mcp.CallToolRequest{Params: mcp.CallToolParams{Name: "notion_API-get-self"}})
	if err != nil || !strings.Contains(toolText(t, res), "Beta Bot") {
		t.Fatalf("tenant-b through the Vault backend: %v, %v", res, err)
	}
	// With Vault, the operator commands run beside a serving gateway.
	if out := g.mustRun("", "key", "rotate", "--tenant", "tenant-a"); !strings.Contains(out, "rotated") {
		t.Errorf("key rotate = %q", out)
	}
	// Retiring old versions needs the admin policy: the service token is refused.
	if _, err := g.run("", "key", "rotate", "--tenant", "tenant-a", "--retire-old"); err == nil || !strings.Contains(err.Error(), "Failed to connect to Vault") {
		t.Errorf("key rotate --retire-old with the service policy only: err = %v, want a VaultError", err)
	}
	res, err = g.client("tenant-a").CallTool(t.Context(), mcp.CallToolRequest{Params: mcp.CallToolParams{Name: "notion_API-get-self"}})
	if err != nil || !strings.Contains(toolText(t, res), "Acme Bot") {
		t.Fatalf("call after rotation: %v, %v", res, err)
	}
	g.assertNoSecrets()
	if strings.Contains(g.stderr.String(), token) || strings.Contains(g.stderr.String(), rootClient.Token()) {
		t.Error("a Vault token appears in the gateway's logs")
	}
}

// gatewayVault starts a real Vault server with the shipped gateway-service
// policy and returns its address, a root client, and a token holding only
// that policy.
func gatewayVault(t *testing.T) (addr string, root *api.Client, token string) {
	t.Helper()
	addr, rootToken := testenv.Vault(t, "-policy",
		"gateway-service="+filepath.Join(testenv.Root(), "vault", "hashicorp", "policies", "gateway-service-policy.hcl"))
	root, err := api.NewClient(&api.Config{Address: addr})
	if err != nil {
		t.Fatal(err)
	}
	root.SetToken(rootToken)
	tok, err := root.Auth().Token().Create(&api.TokenCreateRequest{Policies: []string{"gateway-service"}, NoDefaultPolicy: true})
	if err != nil {
		t.Fatal(err)
	}
	return addr, root, tok.Auth.ClientToken
}
