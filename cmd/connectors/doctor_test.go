package main

import (
	"encoding/base64"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hashicorp/vault/api"

	"github.com/connectors-gateway/connectors/internal/testenv"
	"github.com/connectors-gateway/connectors/internal/testidp"
)

// doctorSecret is a credential planted in the store and OAuth client
// secrets: no doctor output may hold it.
const doctorSecret = "ntn_doctor_secret_5f3a9c1e"

// doctorGateway is a gateway's environment with an empty data dir, an
// empty npm cache and integrations file entries.
func doctorGateway(t *testing.T, env map[string]string, integrations ...map[string]any) *gateway {
	t.Helper()
	dir := t.TempDir()
	g := &gateway{t: t, stderr: &lockedBuffer{}, keys: map[string]string{}, env: map[string]string{
		"CONNECTORS_DATA_DIR": filepath.Join(dir, "data"),
		"PATH":                os.Getenv("PATH"),
		"npm_config_cache":    filepath.Join(dir, "npm"),
	}}
	if len(integrations) > 0 {
		b, _ := json.Marshal(map[string]any{"integrations": integrations})
		path := filepath.Join(dir, "integrations.json")
		if err := os.WriteFile(path, b, 0o600); err != nil {
			t.Fatal(err)
		}
		g.env["CONNECTORS_CONFIG"] = path
	}
	for k, v := range env {
		g.env[k] = v
	}
	return g
}

// doctor runs "connectors doctor" and returns its output and exit status.
func (g *gateway) doctor() (string, int) {
	g.t.Helper()
	out, err := g.run("", "doctor", "--timeout", "2s")
	if strings.Contains(out, doctorSecret) || strings.Contains(g.stderr.String(), doctorSecret) {
		g.t.Errorf("doctor printed a secret:\n%s", out)
	}
	if err != nil {
		return out, exitCode(err)
	}
	return out, 0
}

// doctorLine returns the line of check at level ("ok", "warn", "FAIL"),
// failing t when there is none.
func doctorLine(t *testing.T, out, level, check string) string {
	t.Helper()
	for line := range strings.Lines(out) {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == level && f[1] == check {
			return line
		}
	}
	t.Fatalf("no %q line for %s in:\n%s", level, check, out)
	return ""
}

// wantDoctor runs doctor and checks the exit status and that check's line
// is at level and says want.
func wantDoctor(t *testing.T, g *gateway, status int, level, check, want string) string {
	t.Helper()
	out, got := g.doctor()
	if got != status {
		t.Errorf("doctor exit status = %d, want %d:\n%s", got, status, out)
	}
	if line := doctorLine(t, out, level, check); !strings.Contains(line, want) {
		t.Errorf("%s line = %q, want it to say %q; all:\n%s", check, line, want, out)
	}
	return out
}

// TestDoctorEmbeddedStore runs doctor on a real embedded store holding a
// credential, then breaks it in the ways operators do.
func TestDoctorEmbeddedStore(t *testing.T) {
	g := doctorGateway(t, nil)
	wantDoctor(t, g, 0, "warn", "store.data_dir", "does not exist: serve creates it")
	g.mustRun(`{"accessToken": "`+doctorSecret+`"}`, "credential", "put", "--tenant", "tenant-a", "--integration", "notion")
	dir := g.env["CONNECTORS_DATA_DIR"]
	keyFile := filepath.Join(dir, "master.key")
	key, err := os.ReadFile(keyFile)
	if err != nil {
		t.Fatal(err)
	}
	out := wantDoctor(t, g, 0, "ok", "store", "opens with its master key")
	doctorLine(t, out, "ok", "store.data_dir")
	doctorLine(t, out, "ok", "store.master_key")
	if strings.Contains(out, strings.TrimSpace(string(key))) {
		t.Errorf("doctor printed the master key:\n%s", out)
	}

	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	wantDoctor(t, g, 1, "FAIL", "store.data_dir", "fix: chmod 700 "+dir)
	os.Chmod(dir, 0o700)

	if err := os.Chmod(keyFile, 0o644); err != nil {
		t.Fatal(err)
	}
	wantDoctor(t, g, 1, "FAIL", "store.master_key", "mode 0644")
	os.Chmod(keyFile, 0o600)

	other := base64.StdEncoding.EncodeToString(make([]byte, 32))
	g.env["CONNECTORS_MASTER_KEY"] = other
	wantDoctor(t, g, 1, "FAIL", "store", "the master key does not open")
	delete(g.env, "CONNECTORS_MASTER_KEY")

	if err := os.Rename(keyFile, keyFile+".bak"); err != nil {
		t.Fatal(err)
	}
	wantDoctor(t, g, 1, "FAIL", "store.master_key", "its master key "+keyFile+" is missing")
	os.Rename(keyFile+".bak", keyFile)
	wantDoctor(t, g, 0, "ok", "store", "opens with its master key")
}

// TestDoctorServedStore: with a gateway serving the embedded store, doctor
// says so and does not fail.
func TestDoctorServedStore(t *testing.T) {
	g := doctorGateway(t, nil)
	g.start()
	wantDoctor(t, g, 0, "ok", "store", "served by a running gateway")
}

// TestDoctorVault runs doctor against a real Vault server: with the
// shipped gateway policy, with a token that lacks a capability, with a
// missing mount, a refused token and a Vault that is not there.
func TestDoctorVault(t *testing.T) {
	addr, root, token := gatewayVault(t)
	policy, err := os.ReadFile(filepath.Join(testenv.Root(), "vault", "hashicorp", "policies", "gateway-service-policy.hcl"))
	if err != nil {
		t.Fatal(err)
	}
	noDecrypt := strings.Replace(string(policy), `path "transit/decrypt/*"`, `path "transit/nothing/*"`, 1)
	if err := root.Sys().PutPolicy("no-decrypt", noDecrypt); err != nil {
		t.Fatal(err)
	}
	tok, err := root.Auth().Token().Create(&api.TokenCreateRequest{Policies: []string{"no-decrypt"}, NoDefaultPolicy: true})
	if err != nil {
		t.Fatal(err)
	}
	lacking := tok.Auth.ClientToken
	roleID, secretID := doctorAppRole(t, root)
	for _, tc := range []struct {
		name         string
		env          map[string]string
		status       int
		level, check string
		want         string
	}{
		{"gateway policy", map[string]string{"VAULT_TOKEN": token}, 0, "ok", "store.vault_policy", "every capability the gateway needs"},
		{"AppRole", map[string]string{"VAULT_ROLE_ID": roleID, "VAULT_SECRET_ID": secretID}, 0, "ok", "store.vault", "answers with the gateway's AppRole login"},
		{"mounts", map[string]string{"VAULT_TOKEN": token}, 0, "ok", "store.vault_mounts", "secret/ is KV v2, transit/ is Transit"},
		{"lacks decrypt", map[string]string{"VAULT_TOKEN": lacking}, 1, "FAIL", "store.vault_policy", "lacks update on transit/decrypt/example-tenant (opening secrets)"},
		{"no such mount", map[string]string{"VAULT_TOKEN": token, "VAULT_TRANSIT_ENGINE": "transit2"}, 1, "FAIL", "store.vault_mounts", "mount transit2/: wrong mount: not found"},
		{"refused token", map[string]string{"VAULT_TOKEN": "hvs.not-a-token"}, 1, "FAIL", "store.vault", "permission denied"},
		{"no Vault", map[string]string{"VAULT_TOKEN": token, "VAULT_ADDR": closedAddr(t)}, 1, "FAIL", "store.vault", "check VAULT_ADDR, that Vault runs"},
		{"no credentials", map[string]string{}, 1, "FAIL", "store.vault", "give VAULT_TOKEN, or VAULT_ROLE_ID and VAULT_SECRET_ID"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env := map[string]string{"VAULT_ADDR": addr}
			for k, v := range tc.env {
				env[k] = v
			}
			g := doctorGateway(t, env)
			out := wantDoctor(t, g, tc.status, tc.level, tc.check, tc.want)
			for _, secret := range []string{token, lacking, root.Token(), secretID} {
				if strings.Contains(out, secret) {
					t.Errorf("doctor printed a Vault token:\n%s", out)
				}
			}
		})
	}
}

// doctorAppRole makes an AppRole with the gateway policy and returns its
// role ID and a secret ID.
func doctorAppRole(t *testing.T, root *api.Client) (roleID, secretID string) {
	t.Helper()
	if _, err := root.Logical().Write("auth/approle/role/doctor", map[string]any{"token_policies": "gateway-service"}); err != nil {
		t.Fatal(err)
	}
	r, err := root.Logical().Read("auth/approle/role/doctor/role-id")
	if err != nil {
		t.Fatal(err)
	}
	s, err := root.Logical().Write("auth/approle/role/doctor/secret-id", nil)
	if err != nil {
		t.Fatal(err)
	}
	return r.Data["role_id"].(string), s.Data["secret_id"].(string)
}

// closedAddr is a loopback URL nothing listens on.
func closedAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return "http://" + addr
}

// TestDoctorUpstreams: a stdio command that is not on PATH fails; an HTTP
// upstream that does not answer warns, one that answers (any status) is
// ok; an npx package not in npx's cache warns with the command that
// prepares it; no URL's query is printed.
func TestDoctorUpstreams(t *testing.T) {
	answers := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusMethodNotAllowed)
	}))
	t.Cleanup(answers.Close)
	http := func(name, url string) map[string]any {
		return map[string]any{"name": name, "upstream": map[string]any{"url": url}}
	}
	stdio := func(name, command string, args ...string) map[string]any {
		return map[string]any{"name": name, "upstream": map[string]any{"command": command, "args": args}}
	}
	g := doctorGateway(t, nil,
		http("down", closedAddr(t)+"/mcp?key="+doctorSecret),
		http("up", answers.URL+"/mcp?key="+doctorSecret),
		stdio("cached", "npx", "-y", "cached-mcp-server@1.2.3"),
		stdio("uncached", "npx", "-y", "uncached-mcp-server@1.0.0"),
	)
	pkg := filepath.Join(g.env["npm_config_cache"], "_npx", "0123abcd", "node_modules", "cached-mcp-server")
	if err := os.MkdirAll(pkg, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(pkg, "package.json"), []byte(`{"name":"cached-mcp-server","version":"1.2.3"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	out := wantDoctor(t, g, 0, "warn", "upstream.down", "did not answer")
	doctorLine(t, out, "ok", "upstream.up")
	if line := doctorLine(t, out, "ok", "upstream.up"); !strings.Contains(line, "(HTTP 405)") {
		t.Errorf("upstream.up = %q, want any HTTP answer to count", line)
	}
	if line := doctorLine(t, out, "ok", "upstream.cached"); !strings.Contains(line, "cached-mcp-server@1.2.3 is in npx's cache") {
		t.Errorf("upstream.cached = %q", line)
	}
	if line := doctorLine(t, out, "warn", "upstream.uncached"); !strings.Contains(line, "fix: connectors integrations prepare uncached") {
		t.Errorf("upstream.uncached = %q", line)
	}

	g = doctorGateway(t, nil, stdio("missing", "connectors-doctor-no-such-server"))
	wantDoctor(t, g, 1, "FAIL", "upstream.missing", `the command "connectors-doctor-no-such-server" is not on PATH — fix: install it`)
}

// TestDoctorOAuth checks the OAuth clients as serve reads them.
func TestDoctorOAuth(t *testing.T) {
	for _, tc := range []struct {
		name        string
		env         map[string]string
		status      int
		level, want string
		check       string
	}{
		{"off", nil, 0, "ok", "linking off (NOTION_CLIENT_ID is not set)", "oauth.notion"},
		{"no secret", map[string]string{"NOTION_CLIENT_ID": "id"}, 1, "FAIL", "NOTION_CLIENT_SECRET is needed too", "oauth.notion"},
		{"good", map[string]string{"NOTION_CLIENT_ID": "id", "NOTION_CLIENT_SECRET": doctorSecret, "CONNECTORS_PUBLIC_URL": "https://gw.example.com"},
			0, "ok", "callback https://gw.example.com/oauth/callback/notion", "oauth.notion"},
		{"plain http", map[string]string{"NOTION_CLIENT_ID": "id", "NOTION_CLIENT_SECRET": doctorSecret, "NOTION_REDIRECT_URI": "http://gw.example.com/oauth/callback/notion"},
			1, "FAIL", "plain http on a host other than loopback", "oauth.notion"},
		{"loopback http", map[string]string{"NOTION_CLIENT_ID": "id", "NOTION_CLIENT_SECRET": doctorSecret, "NOTION_REDIRECT_URI": "http://127.0.0.1:3000/oauth/callback/notion"},
			0, "ok", "callback http://127.0.0.1:3000/oauth/callback/notion", "oauth.notion"},
		{"another host", map[string]string{"NOTION_CLIENT_ID": "id", "NOTION_CLIENT_SECRET": doctorSecret,
			"CONNECTORS_PUBLIC_URL": "https://gw.example.com", "NOTION_REDIRECT_URI": "https://old.example.com/oauth/callback/notion"},
			0, "warn", "NOTION_REDIRECT_URI is on host old.example.com, CONNECTORS_PUBLIC_URL on gw.example.com", "oauth.notion"},
		{"not a URL", map[string]string{"NOTION_CLIENT_ID": "id", "NOTION_CLIENT_SECRET": doctorSecret, "NOTION_REDIRECT_URI": "/oauth/callback/notion"},
			1, "FAIL", "NOTION_REDIRECT_URI is not an absolute http(s) URL", "oauth.notion"},
		{"public URL http", map[string]string{"CONNECTORS_PUBLIC_URL": "http://gw.example.com"}, 1, "FAIL", "plain http", "config.public_url"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			wantDoctor(t, doctorGateway(t, tc.env), tc.status, tc.level, tc.check, tc.want)
		})
	}
}

// TestDoctorIssuer checks the OpenID provider serve would verify tokens
// with: a real one on loopback, a server that is not one, and none there.
func TestDoctorIssuer(t *testing.T) {
	idp := testidp.Start(t)
	notIDP := httptest.NewServer(http.NotFoundHandler())
	t.Cleanup(notIDP.Close)
	for _, tc := range []struct {
		issuer, level, want string
		status              int
	}{
		{idp.Issuer, "ok", "serves its discovery document", 0},
		{notIDP.URL, "FAIL", "serve refuses to start", 1},
		{closedAddr(t), "warn", "did not answer", 0},
	} {
		g := doctorGateway(t, map[string]string{"CONNECTORS_OIDC_ISSUER": tc.issuer, "CONNECTORS_RESOURCE": "http://127.0.0.1:3000/mcp"})
		wantDoctor(t, g, tc.status, tc.level, "config.oidc_issuer", tc.want)
	}
}

// TestDoctorAudit checks the audit trail's destination and signing key.
func TestDoctorAudit(t *testing.T) {
	dir := t.TempDir()
	key := filepath.Join(dir, "audit-signing.key")
	if err := os.WriteFile(key, []byte(base64.StdEncoding.EncodeToString(make([]byte, 32))+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		env                map[string]string
		status             int
		level, check, want string
	}{
		{map[string]string{"CONNECTORS_AUDIT_LOG": filepath.Join(dir, "audit.log")}, 0, "ok", "audit.log", "does not exist yet: serve makes it"},
		{map[string]string{"CONNECTORS_AUDIT_LOG": filepath.Join(dir, "nosuch", "audit.log")}, 1, "FAIL", "audit.log", "its directory does not exist"},
		{map[string]string{"CONNECTORS_AUDIT_FSYNC": "sometimes"}, 1, "FAIL", "audit", `CONNECTORS_AUDIT_FSYNC: "sometimes"`},
		{map[string]string{"CONNECTORS_AUDIT_SIGNING_KEY": key}, 1, "FAIL", "audit.signing_key", "mode 0644: whoever reads it can sign"},
		{nil, 0, "ok", "audit.signing_key", "serve makes it (mode 0600) on first use"},
	} {
		wantDoctor(t, doctorGateway(t, tc.env), tc.status, tc.level, tc.check, tc.want)
	}
	os.Chmod(key, 0o600)
	wantDoctor(t, doctorGateway(t, map[string]string{"CONNECTORS_AUDIT_SIGNING_KEY": key}), 0, "ok", "audit.signing_key", key+", mode 0600")
}

// TestDoctorConfig: a configuration serve refuses fails, with the
// variable named, and nothing else is checked.
func TestDoctorConfig(t *testing.T) {
	g := doctorGateway(t, map[string]string{"CONNECTORS_MAX_SESSIONS": "lots"})
	out := wantDoctor(t, g, 1, "FAIL", "config", `CONNECTORS_MAX_SESSIONS: "lots" is not a count`)
	if strings.Contains(out, "store") {
		t.Errorf("doctor went on past a configuration that does not parse:\n%s", out)
	}
	g = doctorGateway(t, map[string]string{"CONNECTORS_MASTER_KEY": doctorSecret})
	wantDoctor(t, g, 1, "FAIL", "config", "CONNECTORS_MASTER_KEY")
	tenantFile := filepath.Join(t.TempDir(), "tenants.json")
	if err := os.WriteFile(tenantFile, []byte(`{"tenants": [{"id": "tenant-a", "integrations": [{"name": "nosuch", "credentials": {"accessToken": "`+doctorSecret+`"}}]}]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	g = doctorGateway(t, map[string]string{"ENABLE_TENANT_CONFIG_FILE": "true", "TENANT_CONFIG_PATH": tenantFile})
	wantDoctor(t, g, 1, "FAIL", "config.tenant_file", `unknown integration "nosuch"`)
	g = doctorGateway(t, nil, map[string]any{"name": "Bad Name", "upstream": map[string]any{"command": "x"}})
	wantDoctor(t, g, 1, "FAIL", "config.integrations", "fix: correct the integrations file")
}
