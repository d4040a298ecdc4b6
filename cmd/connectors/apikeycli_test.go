package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// auditFile is the audit records of the file path with operation op.
func auditFile(t *testing.T, path, op string) []map[string]any {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	var out []map[string]any
	for line := range strings.Lines(string(b)) {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("audit line %q: %v", line, err)
		}
		if rec["operation"] == op {
			out = append(out, rec)
		}
	}
	return out
}

// auditedGateway is newGateway whose commands from now on record in the
// audit trail file it returns.
func auditedGateway(t *testing.T) (*gateway, string) {
	t.Helper()
	g := newGateway(t)
	trail := filepath.Join(t.TempDir(), "audit.log")
	g.env["CONNECTORS_AUDIT_LOG"] = trail
	return g, trail
}

// TestAPIKeyCommands: "apikey create --name" makes a named key, "apikey
// list" shows it in a table and, with --json, exactly as the HTTP route
// lists it, "apikey revoke" revokes it; creation and revocation are in
// the configured audit trail as the routes record them (the key's ID,
// never the key), and nothing of it on the terminal.
func TestAPIKeyCommands(t *testing.T) {
	g, trail := auditedGateway(t)
	g.env["USER"] = "ops-alice"

	key := strings.TrimSpace(g.mustRun("", "apikey", "create", "--tenant", "tenant-a", "--name", "claude-desktop"))
	id := keyID(key)
	g.keys["named"] = key // a planted secret from now on
	if !strings.Contains(g.stderr.String(), "API key "+id+" created for tenant tenant-a") {
		t.Errorf("apikey create told no ID:\n%s", g.stderr)
	}
	created := auditFile(t, trail, "apikey_create")
	if len(created) != 1 || created[0]["apiKeyId"] != id || created[0]["tenantId"] != "tenant-a" ||
		created[0]["subject"] != "cli:ops-alice" || created[0]["success"] != true {
		t.Errorf("apikey_create records %v, want one of %s by cli:ops-alice", created, id)
	}

	table := g.mustRun("", "apikey", "list")
	lines := strings.Split(strings.TrimSpace(table), "\n")
	if got := strings.Fields(lines[0]); !reflect.DeepEqual(got, []string{"ID", "TENANT", "NAME", "ADMIN", "CREATED"}) {
		t.Errorf("apikey list header %q", lines[0])
	}
	var row []string
	for _, l := range lines[1:] {
		if f := strings.Fields(l); len(f) == 5 && f[0] == id {
			row = f
		}
	}
	if len(lines) != 4 || row == nil || row[1] != "tenant-a" || row[2] != "claude-desktop" || row[3] != "no" || !strings.HasPrefix(row[4], "20") {
		t.Errorf("apikey list, want three keys, %s tenant-a's named claude-desktop:\n%s", id, table)
	}
	listed := g.mustRun("", "apikey", "list", "--tenant", "tenant-a", "--json")
	var all struct {
		Tenants []struct {
			TenantID string           `json:"tenantId"`
			Keys     []map[string]any `json:"keys"`
		} `json:"tenants"`
	}
	if err := json.Unmarshal([]byte(g.mustRun("", "apikey", "list", "--json")), &all); err != nil ||
		len(all.Tenants) != 2 || all.Tenants[0].TenantID != "tenant-a" || len(all.Tenants[0].Keys) != 2 || all.Tenants[1].TenantID != "tenant-b" {
		t.Errorf("apikey list --json: %+v, %v, want tenant-a's two keys and tenant-b's", all, err)
	}

	// Revoked: audited with its tenant; again: a failure, audited too.
	if out := g.mustRun("", "apikey", "revoke", id); out != "revoked "+id+"\n" {
		t.Errorf("apikey revoke = %q", out)
	}
	if _, err := g.run("", "apikey", "revoke", id); err == nil || !strings.Contains(err.Error(), "not found") {
		t.Errorf("revoking it again: %v, want not found", err)
	}
	revoked := auditFile(t, trail, "apikey_revoke")
	if len(revoked) != 2 || revoked[0]["apiKeyId"] != id || revoked[0]["tenantId"] != "tenant-a" || revoked[0]["success"] != true ||
		revoked[0]["subject"] != "cli:ops-alice" || revoked[1]["success"] != false || revoked[1]["error"] == nil {
		t.Errorf("apikey_revoke records %v, want the revocation of %s and the failed second one", revoked, id)
	}
	if strings.Contains(g.mustRun("", "apikey", "list"), id) {
		t.Error("the revoked key is still listed")
	}
	if strings.Contains(g.stderr.String(), "tenant_credential_access") {
		t.Errorf("an operator command printed audit records on the terminal:\n%s", g.stderr)
	}

	// The JSON is the HTTP route's, to the byte's meaning.
	g.serve()
	_, _, raw := g.api("tenant-a", "GET", "/tenants/tenant-a/api-keys", "")
	var fromCLI, fromHTTP any
	if json.Unmarshal([]byte(listed), &fromCLI) != nil || json.Unmarshal([]byte(raw), &fromHTTP) != nil {
		t.Fatalf("apikey list --tenant tenant-a --json = %q; the route: %s", listed, raw)
	}
	// The route lists what is left: the CLI's listing less the revoked key.
	cli := fromCLI.(map[string]any)
	cli["keys"] = slicesDeleteKey(cli["keys"].([]any), id)
	if !reflect.DeepEqual(cli, fromHTTP) {
		t.Errorf("apikey list --tenant tenant-a --json (less %s) = %v; GET /tenants/tenant-a/api-keys = %v", id, cli, fromHTTP)
	}
	if b, _ := os.ReadFile(trail); strings.Contains(string(b), key[len("cgw_"+id+"_"):]) {
		t.Error("a key is in the audit trail")
	}
	g.assertNoSecretsIn(table, listed)
}

// slicesDeleteKey is keys (listed as the route lists them) without id's.
func slicesDeleteKey(keys []any, id string) []any {
	var out []any
	for _, k := range keys {
		if k.(map[string]any)["id"] != id {
			out = append(out, k)
		}
	}
	return out
}

// TestAPIKeyCommandsHostile: a name that is not printable, or too long,
// makes no key and is not repeated; a key pasted where its ID belongs is
// refused before the store is opened, not repeated, not audited, and
// stays; a record in the store whose name no gateway would have written
// is listed without it (no escape sequence reaches the terminal).
func TestAPIKeyCommandsHostile(t *testing.T) {
	g, trail := auditedGateway(t)
	before := g.mustRun("", "apikey", "list")
	for _, name := range []string{"a\nb", "\x1b[31mred", "abc\u202egnp.exe", strings.Repeat("n", 65), "bad\xff"} {
		_, err := g.run("", "apikey", "create", "--tenant", "tenant-a", "--name", name)
		if err == nil || exitCode(err) != 2 || !strings.HasPrefix(err.Error(), "--name: ") {
			t.Errorf("apikey create --name %q: %v, want a usage error naming --name", name, err)
			continue
		}
		for _, part := range []string{"red", "gnp", "nnnn", "bad", "a\nb"} {
			if strings.Contains(err.Error(), part) {
				t.Errorf("the error repeats the name: %v", err)
			}
		}
	}
	if after := g.mustRun("", "apikey", "list"); after != before {
		t.Errorf("keys made by refused names:\n%s\nbefore:\n%s", after, before)
	}

	pasted := g.keys["tenant-a"]
	_, err := g.run("", "apikey", "revoke", pasted)
	if err == nil || exitCode(err) != 2 || strings.Contains(err.Error(), pasted[len("cgw_0123456789abcdef_"):]) {
		t.Errorf("apikey revoke <the key itself>: %v, want a usage error that does not repeat it", err)
	}
	if n := len(auditFile(t, trail, "apikey_create")) + len(auditFile(t, trail, "apikey_revoke")); n != 0 {
		t.Errorf("%d audit records of refused commands", n)
	}
	if !strings.Contains(g.mustRun("", "apikey", "list"), keyID(pasted)) {
		t.Error("the pasted key was revoked")
	}

	// A record planted in the store, named with an escape sequence.
	m, _ := g.main("")
	cfg, err := configFromEnv(m.Getenv)
	if err != nil {
		t.Fatal(err)
	}
	st, err := m.openStore(cfg, m.quietLogger())
	if err != nil {
		t.Fatal(err)
	}
	rec := `{"id":"00000000000000aa","tenant":"tenant-b","admin":false,"created_at":"2026-01-02T03:04:05Z",` +
		`"name":"\u001b]0;owned\u0007\u001b[2J","hash":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="}`
	if err := st.PutAPIKey(t.Context(), "00000000000000aa", []byte(rec)); err != nil {
		t.Fatal(err)
	}
	_ = m.Close()
	out := g.mustRun("", "apikey", "list")
	if strings.ContainsAny(out, "\x1b\x07") || !strings.Contains(out, "00000000000000aa") || !strings.Contains(out, "(unprintable)") {
		t.Errorf("apikey list of a record with an escape sequence for a name:\n%q", out)
	}
}

// TestOperatorCommandsPrintNoAudit: an operator command prints no audit
// record on the terminal unless CONNECTORS_AUDIT_LOG asks for one there
// ("stderr", "stdout"); serve still records on stderr by default.
func TestOperatorCommandsPrintNoAudit(t *testing.T) {
	g := newGateway(t) // credential put and apikey create, CONNECTORS_AUDIT_LOG unset
	if strings.Contains(g.stderr.String(), "tenant_credential_access") {
		t.Errorf("operator commands printed audit records on the terminal:\n%s", g.stderr)
	}
	for _, args := range [][]string{
		{"credential", "get", "--tenant", "tenant-a", "--integration", "notion"},
		{"key", "rotate", "--tenant", "tenant-b"},
		{"apikey", "create", "--tenant", "tenant-c"},
		{"tenant", "offboard", "--tenant", "tenant-c"},
	} {
		out := g.mustRun("", args...)
		if strings.Contains(out, "tenant_credential_access") {
			t.Errorf("connectors %s printed an audit record: %q", strings.Join(args, " "), out)
		}
	}
	if strings.Contains(g.stderr.String(), "tenant_credential_access") {
		t.Errorf("operator commands printed audit records on stderr:\n%s", g.stderr)
	}
	// They are recorded all the same, in the data dir.
	trail, err := os.ReadFile(filepath.Join(g.env["CONNECTORS_DATA_DIR"], OperatorAuditFile))
	for _, op := range []string{`"operation":"put"`, `"operation":"get"`, `"operation":"apikey_create"`, `"operation":"offboard"`} {
		if err != nil || !strings.Contains(string(trail), op) {
			t.Errorf("the operator trail has no %s record (%v)", op, err)
		}
	}
	if fi, err := os.Stat(filepath.Join(g.env["CONNECTORS_DATA_DIR"], OperatorAuditFile)); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("the operator trail's mode: %v %v", fi, err)
	}
	for _, dest := range []string{"stderr", "stdout"} {
		g.env["CONNECTORS_AUDIT_LOG"] = dest
		out := g.mustRun("", "credential", "get", "--tenant", "tenant-a", "--integration", "notion")
		if where := map[string]string{"stderr": g.stderr.String(), "stdout": out}[dest]; !strings.Contains(where, `"operation":"get"`) {
			t.Errorf("CONNECTORS_AUDIT_LOG=%s: no record of credential get there", dest)
		}
	}
	delete(g.env, "CONNECTORS_AUDIT_LOG")
	g.stderr = &lockedBuffer{}
	g.serve()
	if status, _, raw := g.api("tenant-a", "GET", "/tenants/tenant-a/integrations/notion", ""); status != 200 {
		t.Fatalf("GET: %d %s", status, raw)
	}
	if !strings.Contains(g.stderr.String(), `"msg":"tenant_credential_access"`) {
		t.Errorf("serve recorded nothing on stderr by default:\n%.2000s", g.stderr)
	}
}
