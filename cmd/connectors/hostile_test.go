package main

import (
	"context"
	"encoding/base64"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/mcp"
	mcpserver "github.com/mark3labs/mcp-go/server"

	"github.com/connectors-gateway/connectors/vault/embedded"
)

// These tests come at the gateway the way a hostile or careless party
// would: tenant IDs built to escape or alias, bad API keys, credentials
// changed under it, upstreams that echo secrets.

// storeTenants opens the data dir's store (the gateway must not be
// running) and returns its tenants.
func storeTenants(t *testing.T, g *gateway) []string {
	t.Helper()
	dir := g.env["CONNECTORS_DATA_DIR"]
	st, err := embedded.Open(filepath.Join(dir, "connectors.db"), &embedded.Options{KeyFile: filepath.Join(dir, "master.key")})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ts, err := st.Tenants(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return ts
}

// tree lists every path under dir, with sizes of nothing: names only.
func tree(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		out = append(out, p)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestHostileTenantIDs: every subcommand that takes a tenant refuses IDs
// outside the grammar with a usage error naming the tenant, before
// anything touches the store; nothing is written anywhere.
func TestHostileTenantIDs(t *testing.T) {
	g := newGateway(t)
	root := filepath.Dir(g.env["CONNECTORS_DATA_DIR"])
	before := tree(t, root)
	beforeA := g.mustRun("", "credential", "list", "--tenant", "tenant-a")
	beforeKeys := g.mustRun("", "apikey", "list")
	dbBefore, err := os.ReadFile(filepath.Join(g.env["CONNECTORS_DATA_DIR"], "connectors.db"))
	if err != nil {
		t.Fatal(err)
	}

	const planted = "ntn_hostile_secret_42424242"
	ids := []string{
		"../x", "../../etc/passwd", "a/b", "/abs", "%2F", "%2e%2e", "..", ".", "",
		strings.Repeat("a", 65), "Tenant", "TENANT-A", "tenant-A",
		"tenаnt-a",      // Cyrillic а
		"tenant\u2010a", // Unicode hyphen
		"ｔenant-a",      // full-width t
		"tenant-a\n", " tenant-a", "tenant-a ", "tenant-a\x00", "tenant a",
		"-a", "_a", "tenant.a", "tenant:a", "tenant\\a", "*", "tenant-a;rm",
	}
	for _, id := range ids {
		cmds := []struct {
			stdin string
			args  []string
		}{
			{"", []string{"stdio", "--tenant", id}},
			{`{"accessToken": "` + planted + `"}`, []string{"credential", "put", "--tenant", id, "--integration", "notion"}},
			{"", []string{"credential", "get", "--tenant", id, "--integration", "notion"}},
			{"", []string{"credential", "delete", "--tenant", id, "--integration", "notion"}},
			{"", []string{"credential", "list", "--tenant", id}},
			{"", []string{"apikey", "create", "--tenant", id}},
			// The last --tenant wins: a valid one first must not help.
			{`{"accessToken": "` + planted + `"}`, []string{"credential", "put", "--tenant", "tenant-a", "--tenant", id, "--integration", "notion"}},
			{"", []string{"credential", "put", "--tenant=" + id, "--integration", "notion"}},
		}
		for _, c := range cmds {
			out, err := g.run(c.stdin, c.args...)
			if err == nil {
				t.Errorf("connectors %q: accepted (stdout %q)", c.args, out)
				continue
			}
			if exitCode(err) != 2 || !strings.Contains(err.Error(), "tenant") {
				t.Errorf("connectors %q: %v (exit %d), want a usage error (exit 2) naming the tenant", c.args, err, exitCode(err))
			}
			if out != "" {
				t.Errorf("connectors %q wrote %q to stdout", c.args, out)
			}
			if strings.Contains(err.Error(), planted) {
				t.Errorf("connectors %q: the error shows the credential", c.args)
			}
		}
	}

	if after := tree(t, root); !slices.Equal(before, after) {
		t.Errorf("files changed under %s:\nbefore %v\nafter  %v", root, before, after)
	}
	dbAfter, _ := os.ReadFile(filepath.Join(g.env["CONNECTORS_DATA_DIR"], "connectors.db"))
	if string(dbAfter) != string(dbBefore) {
		t.Errorf("the store file changed")
	}
	if got := storeTenants(t, g); !slices.Equal(got, []string{"tenant-a", "tenant-b"}) {
		t.Errorf("store tenants = %q, want only tenant-a and tenant-b", got)
	}
	if got := g.mustRun("", "credential", "list", "--tenant", "tenant-a"); got != beforeA {
		t.Errorf("tenant-a's credentials changed: %q → %q", beforeA, got)
	}
	if got := g.mustRun("", "apikey", "list"); got != beforeKeys {
		t.Errorf("API keys changed: %q → %q", beforeKeys, got)
	}
	if strings.Contains(g.stderr.String(), planted) {
		t.Error("the planted credential appears in the logs")
	}
	g.assertNoSecrets()
}

// post sends body to /mcp with the given headers and returns the response.
func post(t *testing.T, g *gateway, method, body string, header http.Header) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(method, "http://"+g.addr+"/mcp", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	for k, v := range header {
		req.Header[k] = v
	}
	// Bounded: a request wrongly let through may open an endless stream.
	resp, err := (&http.Client{Timeout: 30 * time.Second}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

const (
	initializeBody = `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}`
	discoverBody   = `{"jsonrpc":"2.0","id":1,"method":"server/discover","params":{"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28"}}}`
)

// keyID returns the ID part of an API key (cgw_<id>_<secret>).
func keyID(key string) string { return key[len("cgw_") : len("cgw_")+16] }

// TestAPIKeys: requests without a valid, unrevoked key get 401 with
// WWW-Authenticate on every verb and in both eras; a key revoked while
// the gateway serves (through its admin socket) is refused at once, and
// after a restart.
func TestAPIKeys(t *testing.T) {
	g := newGateway(t)
	revoked := strings.TrimSpace(g.mustRun("", "apikey", "create", "--tenant", "tenant-a"))
	g.mustRun("", "apikey", "revoke", keyID(revoked))
	later := strings.TrimSpace(g.mustRun("", "apikey", "create", "--tenant", "tenant-a"))
	g.keys["later"] = later // among the secrets to look for
	// A key whose ID has a letter, so that upper-casing it changes it (an
	// ID of 16 random hex digits is all decimal digits once in ~1800).
	cased := later
	for !strings.ContainsAny(keyID(cased), "abcdef") {
		cased = strings.TrimSpace(g.mustRun("", "apikey", "create", "--tenant", "tenant-a"))
		g.keys["cased-"+keyID(cased)] = cased
	}
	_, stop := g.start()

	a, b := g.keys["tenant-a"], g.keys["tenant-b"]
	flip := func(s string, i int) string {
		c := byte('A')
		if s[i] == 'A' {
			c = 'B'
		}
		return s[:i] + string(c) + s[i+1:]
	}
	bearer := func(k string) http.Header { return http.Header{"Authorization": {"Bearer " + k}} }
	refused := []struct {
		name   string
		header http.Header
	}{
		{"missing", nil},
		{"empty bearer", http.Header{"Authorization": {"Bearer "}}},
		{"scheme only", http.Header{"Authorization": {"Bearer"}}},
		{"basic", http.Header{"Authorization": {"Basic " + base64.StdEncoding.EncodeToString([]byte("tenant-a:"+a))}}},
		{"raw key, no scheme", http.Header{"Authorization": {a}}},
		{"garbage", bearer("not-a-key")},
		{"prefix only", bearer("cgw_")},
		{"unknown id", bearer("cgw_0123456789abcdef" + a[len("cgw_")+16:])},
		{"wrong secret", bearer(flip(a, len(a)-5))},
		{"b's id, a's secret", bearer(b[:len("cgw_")+16] + a[len("cgw_")+16:])},
		{"trailing junk", bearer(a + "x")},
		{"truncated", bearer(a[:len(a)-1])},
		{"upper-case id", bearer("cgw_" + strings.ToUpper(keyID(cased)) + cased[len("cgw_")+16:])},
		{"revoked", bearer(revoked)},
		{"x-api-key unknown", http.Header{"X-Api-Key": {"cgw_0123456789abcdef" + a[len("cgw_")+16:]}}},
		{"x-api-key revoked", http.Header{"X-Api-Key": {revoked}}},
		{"two keys, one bad", http.Header{"Authorization": {"Bearer not-a-key"}, "X-Api-Key": {a}}},
	}
	var bodies []string
	for _, tt := range refused {
		for _, body := range []string{initializeBody, discoverBody} {
			for _, method := range []string{http.MethodPost, http.MethodGet, http.MethodDelete} {
				if method != http.MethodPost && body == discoverBody {
					continue
				}
				h := tt.header.Clone()
				if h == nil {
					h = http.Header{}
				}
				if body == discoverBody {
					h.Set("Mcp-Protocol-Version", "2026-07-28")
					h.Set("Mcp-Method", "server/discover")
				}
				resp, got := post(t, g, method, body, h)
				bodies = append(bodies, got)
				if resp.StatusCode != http.StatusUnauthorized || !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Bearer") {
					t.Errorf("%s, %s %.30s: %d (WWW-Authenticate %q) %s, want 401 with a Bearer challenge",
						tt.name, method, body, resp.StatusCode, resp.Header.Get("WWW-Authenticate"), got)
				}
			}
		}
	}

	// The good keys work, by either header, whatever tenant the request
	// claims besides.
	for _, h := range []http.Header{
		bearer(a), {"Authorization": {"bearer " + a}}, {"X-Api-Key": {a}}, bearer(later),
	} {
		h.Set("X-Tenant-Id", "tenant-b")
		if resp, got := post(t, g, http.MethodPost, initializeBody, h); resp.StatusCode != http.StatusOK {
			t.Errorf("valid key %v: %d %s", h, resp.StatusCode, got)
		}
	}

	// Revoking while serving: the serving gateway holds the store, and
	// revokes it (the admin socket, adminsock.go): refused at once, and
	// after a restart.
	g.mustRun("", "apikey", "revoke", keyID(later))
	if resp, got := post(t, g, http.MethodPost, initializeBody, bearer(later)); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("key revoked while serving: %d %s, want 401", resp.StatusCode, got)
	}
	stop()
	g.start()
	if resp, got := post(t, g, http.MethodPost, initializeBody, bearer(later)); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("key revoked before the restart: %d %s, want 401", resp.StatusCode, got)
	}
	if resp, got := post(t, g, http.MethodPost, initializeBody, bearer(a)); resp.StatusCode != http.StatusOK {
		t.Errorf("tenant-a's other key after revoking one: %d %s", resp.StatusCode, got)
	}
	g.assertNoSecretsIn(bodies...)
}

// TestCredentialChange: after a tenant's credential is replaced (the
// gateway stopped, "credential put", started again on the same data dir)
// its calls carry the new token and never the old one; deleting a
// credential takes the integration's tools away.
func TestCredentialChange(t *testing.T) {
	g := newGateway(t)
	_, stop := g.start()
	if got := mustCall(t, g.client("tenant-a"), "notion_API-get-self", nil); !strings.Contains(got, "Acme Bot") {
		t.Fatalf("before the change: %q", got)
	}
	stop()

	const rotated = "ntn_tenantA_rotated_5566778899"
	g.mustRun(`{"accessToken": "`+rotated+`"}`, "credential", "put", "--tenant", "tenant-a", "--integration", "notion")
	seen := len(g.notion.Requests())
	_, stop = g.start()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	res, err := call(ctx, g.client("tenant-a"), "notion_API-get-self", nil)
	if err != nil {
		t.Fatal(err)
	}
	text := toolText(t, res)
	// The fake Notion knows only the old tokens: it answers 401 to the new
	// one, and records it.
	reqs := g.notion.Requests()[seen:]
	if len(reqs) == 0 {
		t.Fatal("no request reached Notion after the change")
	}
	for _, r := range reqs {
		if r.Token != rotated {
			t.Errorf("after the change a request reached Notion with %.12s…, want the new token", r.Token)
		}
	}
	if strings.Contains(text, rotated) {
		t.Errorf("the result shows the new token: %q", text)
	}
	if got := mustCall(t, g.client("tenant-b"), "notion_API-get-self", nil); !strings.Contains(got, "Beta Bot") {
		t.Errorf("tenant-b after tenant-a's change: %q", got)
	}
	stop()

	g.mustRun("", "credential", "delete", "--tenant", "tenant-a", "--integration", "notion")
	g.start()
	c := g.client("tenant-a")
	list, err := c.ListTools(ctx, mcp.ListToolsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	for _, tool := range list.Tools {
		if strings.HasPrefix(tool.Name, "notion_") {
			t.Errorf("after deleting its credential, tenant-a still lists %s", tool.Name)
			break
		}
	}
	if _, err := call(ctx, c, "notion_API-get-self", nil); err == nil {
		t.Error("after deleting its credential, tenant-a could still call notion_API-get-self")
	}
	if strings.Contains(g.stderr.String(), rotated) {
		t.Error("the new token appears in the logs")
	}
	g.assertNoSecretsIn(text)
}

// echoingGateway serves integrations whose upstreams put tenant-a's token
// where an agent could see it:
//
//   - echoer (a real MCP server over streamable HTTP): whoami fails with a
//     JSON-RPC error quoting the Authorization header it got; whoami_result
//     returns an isError result quoting it;
//   - badhttp: no MCP server at all, it answers 500 with the header in the
//     body;
//   - leaky (stdio): prints its token on stderr and stdout, then exits
//     before any handshake.
func echoingGateway(t *testing.T) *gateway {
	t.Helper()
	echo := mcpserver.NewMCPServer("echo-auth", "1")
	echo.AddTool(mcp.NewTool("whoami"), func(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		return nil, errors.New("credential rejected: " + req.Header.Get("Authorization"))
	})
	echo.AddTool(mcp.NewTool("whoami_result"), func(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		return mcp.NewToolResultError("credential rejected: " + req.Header.Get("Authorization")), nil
	})
	ts := httptest.NewServer(mcpserver.NewStreamableHTTPServer(echo))
	t.Cleanup(ts.Close)
	bad := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "bad token "+r.Header.Get("Authorization"), http.StatusInternalServerError)
	}))
	t.Cleanup(bad.Close)
	g := newGatewayWith(t,
		map[string]any{"name": "echoer", "upstream": map[string]any{
			"url": ts.URL + "/mcp", "headers": map[string]string{"Authorization": "Bearer {{access_token}}"}}},
		map[string]any{"name": "badhttp", "upstream": map[string]any{
			"url": bad.URL + "/mcp", "headers": map[string]string{"Authorization": "Bearer {{access_token}}"}}},
		map[string]any{"name": "leaky", "upstream": map[string]any{
			"command": "/bin/sh",
			"args":    []string{"-c", `echo "my token is $LEAKY_TOKEN" >&2; echo "$LEAKY_TOKEN"; exit 3`},
			"env":     map[string]string{"LEAKY_TOKEN": "{{access_token}}"}}},
	)
	g.serve()
	return g
}

// callAll calls each tool as tenant-a in both eras and returns every
// error and result text the agent got, each prefixed with the tool name.
func callAll(t *testing.T, g *gateway, tools ...string) []string {
	t.Helper()
	var texts []string
	for _, e := range eras {
		c := g.dial("tenant-a", nil, e.opts...)
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		list, err := c.ListTools(ctx, mcp.ListToolsRequest{})
		if err != nil {
			t.Fatalf("%s: tools/list: %v", e.name, err)
		}
		var names []string
		for _, tool := range list.Tools {
			names = append(names, tool.Name)
		}
		if !slices.Contains(names, "echoer_whoami") {
			t.Errorf("%s: tools/list lacks echoer_whoami: %v", e.name, names)
		}
		for _, name := range tools {
			res, err := call(ctx, c, name, map[string]any{})
			if err != nil {
				texts = append(texts, name+": "+err.Error())
				continue
			}
			text := toolText(t, res)
			texts = append(texts, name+": "+text)
			if strings.HasPrefix(name, "echoer_") && (!res.IsError || !strings.Contains(text, "credential rejected")) {
				t.Errorf("%s: %s = %q, want the upstream's error", e.name, name, text)
			}
		}
		cancel()
	}
	return texts
}

// TestUpstreamsThatEchoSecrets: an upstream's JSON-RPC error quoting the
// token, an HTTP error body quoting it, a crashing upstream printing it:
// none of it reaches the agent or the gateway's logs.
func TestUpstreamsThatEchoSecrets(t *testing.T) {
	g := echoingGateway(t)
	texts := callAll(t, g, "echoer_whoami", "badhttp_x", "leaky_x")
	if !strings.Contains(g.stderr.String(), "leaky") {
		t.Errorf("the logs say nothing of the leaky upstream's failure")
	}
	g.assertNoSecretsIn(texts...)
}

// TestUpstreamErrorResultHidesCredential: a tool error *result* (isError)
// in which the upstream quotes the tenant's credential must not hand that
// credential to the agent either: the gateway redacts JSON-RPC errors, and
// an isError result is the same message by another route.
func TestUpstreamErrorResultHidesCredential(t *testing.T) {
	g := echoingGateway(t)
	texts := callAll(t, g, "echoer_whoami_result")
	g.assertNoSecretsIn(texts...)
}
