package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/client"

	"github.com/connectors-gateway/connectors/internal/fakeoauth"
	"github.com/connectors-gateway/connectors/internal/testenv"
)

// oauthIntegration is the upstream-env fixture as integration name, linked
// through fake's provider.
func oauthIntegration(t *testing.T, name string, fake *fakeoauth.Server) map[string]any {
	in := envIntegration(t, name, "cgw-"+name, "")
	o := fake.OAuth()
	in["oauth"] = map[string]any{
		"kind": o.Kind, "authorizeUrl": o.AuthorizeURL, "tokenUrl": o.TokenURL, "revokeUrl": o.RevokeURL,
		"scopes": o.Scopes, "authStyle": o.AuthStyle, "pkce": o.UsesPKCE(),
	}
	return in
}

// oauthEnv is the environment of a gateway whose integration name has an
// OAuth client at a fake provider, refreshing quickly after failures.
func oauthEnv(name string, extra map[string]string) map[string]string {
	prefix := envPrefix(name)
	env := map[string]string{
		"CONNECTORS_PUBLIC_URL":          "http://gateway.test",
		"CONNECTORS_BROWSER_SESSION_KEY": strings.Repeat("ef", 32),
		"CONNECTORS_OAUTH_REDIRECT_URIS": appCallback,
		"CONNECTORS_REFRESH_MIN_BACKOFF": "50ms",
		"CONNECTORS_REFRESH_MAX_BACKOFF": "200ms",
		prefix + "_CLIENT_ID":            name + "-client",
		prefix + "_CLIENT_SECRET":        name + "-s3cret",
	}
	maps.Copy(env, extra)
	return env
}

// putExpiring stores, through the CLI, a credential for tenant that
// expires at once (within the gateway's skew) with a live refresh token
// from fake, and returns its access token.
func (g *gateway) putExpiring(tenant, integration string, fake *fakeoauth.Server) string {
	g.t.Helper()
	access, refresh := fake.IssueToken()
	g.mustRun(fmt.Sprintf(`{"accessToken": %q, "refreshToken": %q, "expiresIn": 1}`, access, refresh),
		"credential", "put", "--tenant", tenant, "--integration", integration)
	return access
}

// callConcurrently makes n concurrent calls of tool through c and returns
// the PROBE_TOKEN each saw.
func callConcurrently(t *testing.T, c *client.Client, tool string, n int) []string {
	t.Helper()
	tokens := make([]string, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { tokens[i] = probe(t, c, tool) })
	}
	wg.Wait()
	return tokens
}

// TestExpiredTokenRefreshedOnce: 50 concurrent calls find the tenant's
// token expired; the provider sees exactly one refresh, and every call
// runs with the new token.
func TestExpiredTokenRefreshedOnce(t *testing.T) {
	fake := fakeoauth.New(t, fakeoauth.GitHub, "gh-client", "gh-client-s3cret")
	g := newGatewayWithEnv(t, oauthEnv("gh", map[string]string{"GH_CLIENT_ID": "gh-client", "GH_CLIENT_SECRET": "gh-client-s3cret"}),
		oauthIntegration(t, "gh", fake))
	old := g.putExpiring("tenant-a", "gh", fake)
	g.serve()
	tokens := callConcurrently(t, g.client("tenant-a"), "gh_env", 50)
	for _, tok := range tokens {
		if tok != tokens[0] {
			t.Fatalf("calls ran with different tokens: %.12q and %.12q", tok, tokens[0])
		}
	}
	if tokens[0] == old || !fake.Valid(tokens[0]) {
		t.Errorf("the calls ran with %.12q: the old token, or one the provider does not accept", tokens[0])
	}
	if n, a := fake.Refreshes(), fake.RefreshAttempts(); n != 1 || a != 1 {
		t.Errorf("the provider saw %d refreshes (%d attempts), want exactly 1", n, a)
	}
	g.assertNoSecretsIn(old, tokens[0])
	if s := g.stderr.String(); strings.Contains(s, old) || strings.Contains(s, tokens[0]) {
		t.Error("a token appears in the gateway's log")
	}
}

// TestTwoGatewaysOneRefresh: two gateways on one real Vault race on the
// same expired token; exactly one refresh reaches the provider (a second
// would spend the single-use refresh token twice: invalid_grant), and both
// end up calling with the new token.
func TestTwoGatewaysOneRefresh(t *testing.T) {
	addr, root := testenv.Vault(t)
	fake := fakeoauth.New(t, fakeoauth.GitHub, "gh-client", "gh-client-s3cret")
	env := oauthEnv("gh", map[string]string{
		"GH_CLIENT_ID": "gh-client", "GH_CLIENT_SECRET": "gh-client-s3cret",
		"VAULT_ADDR": addr, "VAULT_TOKEN": root,
	})
	g1 := newGatewayWithEnv(t, env, oauthIntegration(t, "gh", fake))
	old := g1.putExpiring("tenant-a", "gh", fake)
	g2 := g1.twin()
	g1.serve()
	g2.addr = g2.serveProcess(buildGateway(t)) // a second process, as a second replica is
	c1, c2 := g1.client("tenant-a"), g2.client("tenant-a")
	var t1, t2 []string
	var wg sync.WaitGroup
	wg.Go(func() { t1 = callConcurrently(t, c1, "gh_env", 20) })
	wg.Go(func() { t2 = callConcurrently(t, c2, "gh_env", 20) })
	wg.Wait()
	for _, tok := range append(t1, t2...) {
		if tok == old || !fake.Valid(tok) {
			t.Fatalf("a call ran with %.12q: the old token, or one the provider refuses", tok)
		}
	}
	if n, a := fake.Refreshes(), fake.RefreshAttempts(); n != 1 || a != 1 {
		t.Errorf("the provider saw %d refreshes (%d attempts), want exactly 1", n, a)
	}
	for _, g := range []*gateway{g1, g2} {
		if strings.Contains(g.stderr.String(), "bad_refresh_token") {
			t.Error("a gateway spent a refresh token twice")
		}
	}
}

// serveProcess runs "bin serve" as its own process with g's environment
// until the test ends, and returns its address.
func (g *gateway) serveProcess(bin string) string {
	g.t.Helper()
	cmd := exec.Command(bin, "serve", "--addr", "127.0.0.1:0")
	for k, v := range g.env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		g.t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		g.t.Fatal(err)
	}
	g.t.Cleanup(func() { _ = cmd.Process.Signal(os.Interrupt); _ = cmd.Wait() })
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			line := sc.Text()
			g.stderr.Write([]byte(line + "\n"))
			var rec struct{ Msg, Addr string }
			if json.Unmarshal([]byte(line), &rec) == nil && rec.Msg == "gateway_listening" {
				addr <- rec.Addr
			}
		}
	}()
	select {
	case a := <-addr:
		return a
	case <-time.After(30 * time.Second):
		g.t.Fatalf("%s serve did not start:\n%s", bin, g.stderr)
		return ""
	}
}

// twin returns a second gateway on g's store, configuration and keys (for
// a shared Vault), with its own log.
func (g *gateway) twin() *gateway {
	return &gateway{t: g.t, env: maps.Clone(g.env), notion: g.notion, stderr: &lockedBuffer{}, keys: g.keys}
}

// TestRefreshProviderDown: while the provider is down, a call with an
// expired token fails clearly, the old credential is kept, and the health
// routes say so; when it is back, the next call refreshes and works.
func TestRefreshProviderDown(t *testing.T) {
	fake := fakeoauth.New(t, fakeoauth.GitHub, "gh-client", "gh-client-s3cret")
	// Backing off 50ms to 200ms, five failures would come in a second.
	g := newGatewayWithEnv(t, oauthEnv("gh", map[string]string{"GH_CLIENT_ID": "gh-client", "GH_CLIENT_SECRET": "gh-client-s3cret",
		"CONNECTORS_REFRESH_MAX_FAILURES": "1000"}),
		oauthIntegration(t, "gh", fake))
	g.withAdmin()
	g.serve()
	// A working credential first (the catalogue is learnt through it), then
	// one that has expired, while the provider is down.
	access, refresh := fake.IssueToken()
	body := fmt.Sprintf(`{"accessToken": %q, "refreshToken": %q, "expiresIn": 3600}`, access, refresh)
	if status, _, raw := g.api("tenant-a", "POST", "/tenants/tenant-a/integrations/gh/credentials", body); status != http.StatusCreated {
		t.Fatalf("POST credentials: %d %s", status, raw)
	}
	c := g.client("tenant-a")
	if tok := probe(t, c, "gh_env"); tok != access {
		t.Fatal("the call did not run with the stored token")
	}
	fake.SetMode(fakeoauth.Down)
	access, refresh = fake.IssueToken()
	body = fmt.Sprintf(`{"accessToken": %q, "refreshToken": %q, "expiresIn": 1}`, access, refresh)
	if status, _, raw := g.api("tenant-a", "POST", "/tenants/tenant-a/integrations/gh/credentials", body); status != http.StatusCreated {
		t.Fatalf("POST credentials: %d %s", status, raw)
	}
	time.Sleep(time.Second) // expired: a token that is only close to it is still used
	res, err := call(t.Context(), c, "gh_env", map[string]any{"hex": true})
	if err != nil || !res.IsError || !strings.Contains(toolText(t, res), "could not be refreshed") {
		t.Fatalf("call while the provider is down: %v %v, want a tool error saying the token could not be refreshed", res, err)
	}
	_, out, raw := g.api("tenant-a", "GET", "/tenants/tenant-a/integrations/gh", "")
	if out["status"] != "refresh_failed" || out["hasCredentials"] != true {
		t.Errorf("health while the provider is down: %s, want refresh_failed with the credential kept", raw)
	}
	_, out, raw = g.api("admin", "GET", "/admin/tenants/health", "")
	if out["unhealthy"] != float64(1) || !strings.Contains(raw, `"gh":"refresh_failed"`) {
		t.Errorf("admin health while the provider is down: %s", raw)
	}
	for _, mode := range []fakeoauth.Mode{fakeoauth.Garbage, fakeoauth.Slow(2 * time.Minute)} {
		fake.SetMode(mode)
		ctx, cancel := context.WithTimeout(t.Context(), 3*time.Second)
		res, err := call(ctx, c, "gh_env", map[string]any{"hex": true})
		cancel()
		if err == nil && !res.IsError {
			t.Errorf("call while the provider answers %v: succeeded", mode)
		}
	}
	if fake.Refreshes() != 0 {
		t.Fatal("a refresh succeeded while the provider was down")
	}

	fake.SetMode(fakeoauth.OK)
	deadline := time.Now().Add(20 * time.Second)
	for {
		res, err = call(t.Context(), c, "gh_env", map[string]any{"hex": true})
		if err == nil && !res.IsError {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no recovery once the provider is back: %v %v", res, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if tok := probe(t, c, "gh_env"); !fake.Valid(tok) {
		t.Error("after recovery the call runs with a token the provider refuses")
	}
	if _, out, raw = g.api("tenant-a", "GET", "/tenants/tenant-a/integrations/gh", ""); out["status"] != "active" {
		t.Errorf("health after recovery: %s, want active", raw)
	}
	if fake.Refreshes() != 1 {
		t.Errorf("%d refreshes after recovery, want 1", fake.Refreshes())
	}
}

// TestNotionLinkAndRefreshOn401 links Notion through its (fake) OAuth
// endpoints and runs the real Notion MCP server with the linked token;
// when Notion starts refusing that token (Notion tokens carry no expiry),
// the gateway refreshes once and retries the call.
func TestNotionLinkAndRefreshOn401(t *testing.T) {
	fake := fakeoauth.New(t, fakeoauth.Notion, "notion-client", "notion-s3cret")
	o := fake.OAuth()
	g := newGatewayWithEnv(t, oauthEnv("notion", map[string]string{"NOTION_CLIENT_ID": "notion-client", "NOTION_CLIENT_SECRET": "notion-s3cret"}),
		map[string]any{"name": "notion", "oauth": map[string]any{"authorizeUrl": o.AuthorizeURL, "tokenUrl": o.TokenURL}})
	g.withAdmin()
	g.notion.Accept(func(token string) (string, bool) { return "Linked Bot", fake.Valid(token) })
	base := "http://" + g.serve()

	// tenant-c links Notion.
	c := g.client("tenant-c")
	if names := toolNames(t, c); !containsPrefix(names, "notion_connect_account") || containsPrefix(names, "notion_API") {
		t.Fatalf("tenant-c before linking lists %v", names)
	}
	browser, authURL, _ := g.linkState(base, "tenant-c", "notion")
	cb, err := fake.Authorize(t.Context(), authURL)
	if err != nil {
		t.Fatal(err)
	}
	resp, body := g.visit(browser, http.MethodGet, base+cb.Path+"?"+cb.RawQuery, "")
	if resp.StatusCode != http.StatusFound || !strings.Contains(resp.Header.Get("Location"), "status=success") {
		t.Fatalf("notion callback: %s %s %s", resp.Status, resp.Header.Get("Location"), body)
	}
	if got := mustCall(t, c, "notion_API-get-self", nil); !strings.Contains(got, "Linked Bot") {
		t.Fatalf("notion_API-get-self after linking: %s", got)
	}
	_, out, raw := g.api("tenant-c", "GET", "/tenants/tenant-c/integrations/notion", "")
	if out["hasCredentials"] != true || out["expiresAt"] != nil || out["status"] != "active" {
		t.Errorf("the linked notion credential: %s", raw)
	}

	// Notion refuses the token now: one refresh, one retry, and the call works.
	reqs := g.notion.Requests()
	linked := reqs[len(reqs)-1].Token
	g.notion.Reject(linked)
	if got := mustCall(t, c, "notion_API-get-self", nil); !strings.Contains(got, "Linked Bot") {
		t.Fatalf("notion_API-get-self after Notion refused the token: %s", got)
	}
	if fake.Refreshes() != 1 {
		t.Errorf("%d refreshes, want 1", fake.Refreshes())
	}
	reqs = g.notion.Requests()
	if last := reqs[len(reqs)-1].Token; last == linked || !fake.Valid(last) {
		t.Error("the retried call did not carry the refreshed token")
	}
	for _, r := range reqs {
		if r.Token == tokenA || r.Token == tokenB {
			t.Error("another tenant's token reached Notion for tenant-c")
		}
	}
	g.assertNoSecretsIn(linked)
	if strings.Contains(g.stderr.String(), linked) {
		t.Error("the linked token appears in the log")
	}
}

// jsonRPCBody returns the JSON-RPC message of a response body, plain JSON
// or the last data line of an event stream.
func jsonRPCBody(t *testing.T, body string) map[string]any {
	t.Helper()
	raw := body
	for line := range strings.Lines(body) {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "data:"); ok && strings.TrimSpace(v) != "" {
			raw = v
		}
	}
	var m map[string]any
	if err := json.Unmarshal([]byte(raw), &m); err != nil {
		t.Fatalf("not a JSON-RPC message: %q", body)
	}
	return m
}

// TestLinkOffer: a tenant that has not linked an integration gets its
// connect tool; calling it answers with the provider's consent URL, as a
// URL-mode elicitation (MCP 2025-11-25, error -32042) to a client that
// declared it, as text to the others. The link works: after it, the
// integration's tools appear and the connect tool goes.
func TestLinkOffer(t *testing.T) {
	fake := fakeoauth.New(t, fakeoauth.Slack, "sl-client", "sl-client-s3cret")
	g := newGatewayWithEnv(t, oauthEnv("sl", map[string]string{"SL_CLIENT_ID": "sl-client", "SL_CLIENT_SECRET": "sl-client-s3cret"}),
		oauthIntegration(t, "sl", fake))
	g.serve()
	o := fake.OAuth()

	session := func(capabilities string) http.Header {
		body := `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":` + capabilities + `,"clientInfo":{"name":"t","version":"1"}}}`
		resp, _ := post(t, g, http.MethodPost, body, http.Header{"Authorization": {"Bearer " + g.keys["tenant-a"]}})
		h := http.Header{
			"Authorization":        {"Bearer " + g.keys["tenant-a"]},
			"Mcp-Session-Id":       {resp.Header.Get("Mcp-Session-Id")},
			"Mcp-Protocol-Version": {"2025-11-25"},
		}
		post(t, g, http.MethodPost, `{"jsonrpc":"2.0","method":"notifications/initialized"}`, h)
		return h
	}
	callConnect := `{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"sl_connect_account","arguments":{}}}`

	// A client that takes URL-mode elicitation.
	_, body := post(t, g, http.MethodPost, callConnect, session(`{"elicitation":{"url":{}}}`))
	msg := jsonRPCBody(t, body)
	e, _ := msg["error"].(map[string]any)
	if e == nil || e["code"] != float64(-32042) {
		t.Fatalf("connect tool with URL elicitation: %s, want error -32042", body)
	}
	els, _ := e["data"].(map[string]any)["elicitations"].([]any)
	if len(els) != 1 {
		t.Fatalf("elicitations: %s", body)
	}
	el := els[0].(map[string]any)
	link, _ := el["url"].(string)
	if el["mode"] != "url" || !strings.HasPrefix(link, "http://gateway.test/oauth/link/") || el["elicitationId"] == "" {
		t.Errorf("elicitation = %v", el)
	}

	// A client without it: the link as text.
	_, body = post(t, g, http.MethodPost, callConnect, session(`{}`))
	res, _ := jsonRPCBody(t, body)["result"].(map[string]any)
	if res == nil || res["isError"] != true || !strings.Contains(body, "http://gateway.test/oauth/link/") && !strings.Contains(body, `http:\/\/gateway.test\/oauth\/link\/`) {
		t.Fatalf("connect tool without URL elicitation: %s, want a tool error holding the link", body)
	}

	// Following the link, and confirming on the consent page, links the account.
	browser := linkBrowser()
	base := "http://" + g.addr
	authURL := g.confirm(base, browser, link)
	if !strings.HasPrefix(authURL, o.AuthorizeURL+"?") {
		t.Fatalf("confirmed, the browser goes to %s, want the provider", authURL)
	}
	cb, err := fake.Authorize(t.Context(), authURL)
	if err != nil {
		t.Fatal(err)
	}
	resp, page := g.visit(browser, http.MethodGet, base+cb.Path+"?"+cb.RawQuery, "")
	if resp.StatusCode != http.StatusOK || !strings.Contains(page, "sl is connected") {
		t.Fatalf("callback of a link from an agent: %s %s, want the gateway's own page", resp.Status, page)
	}
	c := g.client("tenant-a")
	names := toolNames(t, c)
	if !containsPrefix(names, "sl_env") || containsPrefix(names, "sl_connect_account") {
		t.Errorf("after linking: %v", names)
	}
	if tok := probe(t, c, "sl_env"); !fake.Valid(tok) || !strings.HasPrefix(tok, "xoxe.xoxb-") {
		t.Errorf("the upstream got %.12q, not the bot token the provider issued", tok)
	}
	_, st, raw := g.apiStatus("tenant-a", "/tenants/tenant-a/integrations/sl")
	if st != "active" {
		t.Errorf("linked slack credential: %s", raw)
	}
}

// apiStatus GETs path as tenant and returns the HTTP status, the
// credential status field and the body.
func (g *gateway) apiStatus(tenant, path string) (int, string, string) {
	g.t.Helper()
	code, out, raw := g.api(tenant, "GET", path, "")
	s, _ := out["status"].(string)
	return code, s, raw
}
