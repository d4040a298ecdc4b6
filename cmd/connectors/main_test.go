package main

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/client/transport"
	"github.com/mark3labs/mcp-go/mcp"

	"github.com/connectors-gateway/connectors/internal/fakenotion"
	"github.com/connectors-gateway/connectors/internal/testenv"
)

// Tokens planted in the store: recognisable, so a test can search every
// request and every log for them.
const (
	tokenA = "ntn_tenantA_secret_0123456789"
	tokenB = "ntn_tenantB_secret_9876543210"
)

// gateway is one gateway under test, driven through Main as a user would.
type gateway struct {
	t      testing.TB
	env    map[string]string
	notion *fakenotion.Server
	addr   string
	stderr *lockedBuffer
	keys   map[string]string // tenant → API key
	bind   string            // the address serve listens on; "": 127.0.0.1:0
}

// newGateway prepares a data dir, an integrations file that points the
// real notion MCP server at a fake Notion API, and server-everything as a
// second integration; it stores credentials for tenant-a and tenant-b.
func newGateway(t *testing.T) *gateway {
	t.Helper()
	return newGatewayWithIntegrations(t)
}

// newGatewayWithIntegrations is newGateway with extra integrations (config
// file entries) after notion and everything.
func newGatewayWithIntegrations(t testing.TB, extra ...map[string]any) *gateway {
	t.Helper()
	return newGatewayWithEnv(t, nil, extra...)
}

// newGatewayWithEnv is newGatewayWithIntegrations with extra environment
// (VAULT_ADDR, ...) in force from the first command on. An extra named
// notion adds its fields to the notion entry instead.
func newGatewayWithEnv(t testing.TB, env map[string]string, extra ...map[string]any) *gateway {
	t.Helper()
	dir := t.TempDir()
	notion := fakenotion.Start(t, map[string]string{tokenA: "Acme Bot", tokenB: "Beta Bot"})
	node := testenv.Node(t)
	notionCLI := testenv.NodeTool(t, "notion-mcp-server")[1]
	everything := testenv.NodeTool(t, "mcp-server-everything", "stdio")
	integrations := []any{
		map[string]any{
			"name": "notion",
			"upstream": map[string]any{
				"command": node, "args": []string{notionCLI},
				"env": map[string]string{"NOTION_TOKEN": "{{access_token}}", "BASE_URL": notion.URL},
			},
		},
		map[string]any{
			"name": "everything", "category": "testing",
			"upstream": map[string]any{"command": everything[0], "args": everything[1:]},
		},
	}
	for _, e := range extra {
		if e["name"] == "notion" { // more settings for the notion entry (oauth, ...)
			maps.Copy(integrations[0].(map[string]any), e)
			continue
		}
		integrations = append(integrations, e)
	}
	cfg := map[string]any{"integrations": integrations}
	cfgPath := filepath.Join(dir, "integrations.json")
	b, _ := json.Marshal(cfg)
	if err := os.WriteFile(cfgPath, b, 0o600); err != nil {
		t.Fatal(err)
	}
	g := &gateway{
		t: t, notion: notion, stderr: &lockedBuffer{}, keys: map[string]string{},
		env: map[string]string{
			"CONNECTORS_DATA_DIR": filepath.Join(dir, "data"),
			"CONNECTORS_CONFIG":   cfgPath,
			"PATH":                os.Getenv("PATH"),
			"HOME":                dir,
		},
	}
	maps.Copy(g.env, env)
	for tenant, token := range map[string]string{"tenant-a": tokenA, "tenant-b": tokenB} {
		g.mustRun(fmt.Sprintf(`{"accessToken": %q}`, token), "credential", "put", "--tenant", tenant, "--integration", "notion")
		g.mustRun(`{"accessToken": "unused"}`, "credential", "put", "--tenant", tenant, "--integration", "everything")
		g.keys[tenant] = strings.TrimSpace(g.mustRun("", "apikey", "create", "--tenant", tenant))
	}
	return g
}

func (g *gateway) main(stdin string) (*Main, *bytes.Buffer) {
	var out bytes.Buffer
	return &Main{
		Stdin: strings.NewReader(stdin), Stdout: &out, Stderr: g.stderr,
		Getenv: func(k string) string { return g.env[k] },
	}, &out
}

// run runs one subcommand to completion.
func (g *gateway) run(stdin string, args ...string) (string, error) {
	m, out := g.main(stdin)
	err := m.Run(context.Background(), args)
	if cerr := m.Close(); err == nil {
		err = cerr
	}
	return out.String(), err
}

func (g *gateway) mustRun(stdin string, args ...string) string {
	g.t.Helper()
	out, err := g.run(stdin, args...)
	if err != nil {
		g.t.Fatalf("connectors %s: %v\n%s", strings.Join(args, " "), err, g.stderr)
	}
	return out
}

// serve starts "connectors serve" on a free port until the test ends.
func (g *gateway) serve() string {
	g.t.Helper()
	addr, _ := g.start()
	return addr
}

// client connects an MCP client as tenant to /mcp.
func (g *gateway) client(tenant string, opts ...client.ClientOption) *client.Client {
	g.t.Helper()
	return g.dialPath(tenant, "/mcp", nil, opts...)
}

// assertNoSecrets fails if a planted secret appears in the gateway's logs.
func (g *gateway) assertNoSecrets() {
	g.t.Helper()
	g.assertNoSecretsIn()
}

func toolText(t *testing.T, res *mcp.CallToolResult) string {
	t.Helper()
	var b strings.Builder
	for _, c := range res.Content {
		if tc, ok := c.(mcp.TextContent); ok {
			b.WriteString(tc.Text)
		}
	}
	return b.String()
}

// TestTenantsGetTheirOwnCredential is the heart of the product: two tenants
// call the same Notion tool at once through the real notion MCP server, and
// every request that reaches "Notion" carries the caller's own token, never
// the other tenant's and never the agent's API key.
func TestTenantsGetTheirOwnCredential(t *testing.T) {
	g := newGateway(t)
	g.serve()

	want := map[string]string{"tenant-a": "Acme Bot", "tenant-b": "Beta Bot"}
	var wg sync.WaitGroup
	for tenant := range want {
		c := g.client(tenant)
		for range 5 {
			wg.Go(func() {
				ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
				defer cancel()
				res, err := c.CallTool(ctx, mcp.CallToolRequest{Params: mcp.CallToolParams{Name: "notion_API-get-self"}})
				if err != nil {
					t.Errorf("%s: call: %v", tenant, err)
					return
				}
				if text := toolText(t, res); res.IsError || !strings.Contains(text, want[tenant]) {
					t.Errorf("%s: got %q (isError %v), want the answer for %s", tenant, text, res.IsError, want[tenant])
				}
			})
		}
	}
	wg.Wait()

	seen := map[string]int{}
	for _, r := range g.notion.Requests() {
		seen[r.Token]++
	}
	if diff := len(seen); diff != 2 || seen[tokenA] != 5 || seen[tokenB] != 5 {
		t.Errorf("tokens that reached Notion = %v, want 5 requests with each tenant's own token and nothing else", seen)
	}
	g.assertNoSecrets()
}

// TestToolsListIsPerTenant: a tenant sees the tools of the integrations it
// has a credential for, and nothing else.
func TestToolsListIsPerTenant(t *testing.T) {
	g := newGateway(t)
	g.mustRun("", "credential", "delete", "--tenant", "tenant-b", "--integration", "everything")
	g.serve()

	ctx := context.Background()
	count := func(tenant string) map[string]int {
		res, err := g.client(tenant).ListTools(ctx, mcp.ListToolsRequest{})
		if err != nil {
			t.Fatalf("%s: tools/list: %v", tenant, err)
		}
		n := map[string]int{}
		for _, tool := range res.Tools {
			integ, _, _ := strings.Cut(tool.Name, "_")
			n[integ]++
		}
		return n
	}
	a, b := count("tenant-a"), count("tenant-b")
	if a["notion"] == 0 || a["everything"] == 0 {
		t.Errorf("tenant-a sees %v, want notion and everything tools", a)
	}
	if b["notion"] == 0 || b["everything"] != 0 {
		t.Errorf("tenant-b sees %v, want notion tools only", b)
	}

	// The tool b cannot list, b cannot call either.
	_, err := g.client("tenant-b").CallTool(ctx, mcp.CallToolRequest{Params: mcp.CallToolParams{
		Name: "everything_echo", Arguments: map[string]any{"message": "hi"}}})
	if err == nil {
		t.Error("tenant-b called everything_echo without a credential for it")
	}
	res, err := g.client("tenant-a").CallTool(ctx, mcp.CallToolRequest{Params: mcp.CallToolParams{
		Name: "everything_echo", Arguments: map[string]any{"message": "hi"}}})
	if err != nil || !strings.Contains(toolText(t, res), "hi") {
		t.Errorf("tenant-a everything_echo = %v, %v", res, err)
	}
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// newGatewayWith is newGateway with extra integrations appended to the
// config file (each a map in the file's shape). tenant-a and tenant-b both
// get a credential for each extra, whose access token is
// extraToken(tenant, name).
func newGatewayWith(t *testing.T, extra ...map[string]any) *gateway {
	t.Helper()
	return newGatewayWithCredentials(t, nil, extra...)
}

// newGatewayWithCredentials is newGatewayWith with extra environment, as
// in newGatewayWithEnv.
func newGatewayWithCredentials(t *testing.T, env map[string]string, extra ...map[string]any) *gateway {
	t.Helper()
	g := newGatewayWithEnv(t, env, extra...)
	for _, in := range extra {
		name := in["name"].(string)
		for _, tenant := range []string{"tenant-a", "tenant-b"} {
			g.mustRun(fmt.Sprintf(`{"accessToken": %q}`, extraToken(tenant, name)),
				"credential", "put", "--tenant", tenant, "--integration", name)
		}
	}
	return g
}

// extraToken is the planted access token of tenant for an integration
// added by newGatewayWith.
func extraToken(tenant, integration string) string {
	return "xtok_" + tenant + "_" + integration + "_secret_5f3a9c"
}

// start starts "connectors serve" like serve, but returns a stop function
// too, so that a test can stop the gateway, use the CLI on the (then
// unlocked) store, and start it again on the same data dir.
func (g *gateway) start() (addr string, stop func()) {
	g.t.Helper()
	m, _ := g.main("")
	ready := make(chan string, 1)
	m.Listening = func(addr string) { ready <- addr }
	ctx, cancel := context.WithCancel(context.Background())
	// finished, not a channel of the error: stop must not wait for a value
	// that the start-up select below already took.
	var serveErr error
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		serveErr = m.Run(ctx, []string{"serve", "--addr", cmp.Or(g.bind, "127.0.0.1:0")})
	}()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			<-finished
			if serveErr != nil {
				g.t.Errorf("serve: %v", serveErr)
			}
			_ = m.Close()
		})
	}
	g.t.Cleanup(stop)
	select {
	case g.addr = <-ready:
	case <-finished:
		g.t.Fatalf("serve ended early: %v\n%s", serveErr, g.stderr)
	case <-time.After(30 * time.Second):
		g.t.Fatal("serve did not start")
	}
	return g.addr, stop
}

// dial connects an MCP client as tenant to /mcp, with transport options
// (an HTTP client that records the exchange, ...) besides the client's own.
func (g *gateway) dial(tenant string, topts []transport.StreamableHTTPCOption, opts ...client.ClientOption) *client.Client {
	g.t.Helper()
	return g.dialPath(tenant, "/mcp", topts, opts...)
}

// dialPath connects an MCP client as tenant to path (/mcp or
// /mcp/{integration}) and initializes it.
func (g *gateway) dialPath(tenant, path string, topts []transport.StreamableHTTPCOption, opts ...client.ClientOption) *client.Client {
	g.t.Helper()
	topts = append([]transport.StreamableHTTPCOption{
		transport.WithHTTPHeaders(map[string]string{"Authorization": "Bearer " + g.keys[tenant]}),
	}, topts...)
	tr, err := transport.NewStreamableHTTP("http://"+g.addr+path, topts...)
	if err != nil {
		g.t.Fatal(err)
	}
	c := client.NewClient(tr, opts...)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := c.Start(ctx); err != nil {
		g.t.Fatal(err)
	}
	g.t.Cleanup(func() { _ = c.Close() })
	if _, err := c.Initialize(ctx, mcp.InitializeRequest{Params: mcp.InitializeParams{
		ProtocolVersion: mcp.LATEST_PROTOCOL_VERSION,
		ClientInfo:      mcp.Implementation{Name: "connectors-test", Version: "1"},
	}}); err != nil {
		g.t.Fatalf("initialize %s as %s: %v", path, tenant, err)
	}
	return c
}

// secrets returns every planted secret: the notion tokens, the extra
// integrations' tokens and the API keys.
func (g *gateway) secrets() []string {
	s := []string{tokenA, tokenB}
	for _, k := range g.keys {
		s = append(s, k)
	}
	b, _ := os.ReadFile(g.env["CONNECTORS_CONFIG"])
	var cfg struct {
		Integrations []struct{ Name string } `json:"integrations"`
	}
	_ = json.Unmarshal(b, &cfg)
	for _, in := range cfg.Integrations {
		for _, tenant := range []string{"tenant-a", "tenant-b"} {
			s = append(s, extraToken(tenant, in.Name))
		}
	}
	return s
}

// assertNoSecretsIn fails if a planted secret appears in any of texts
// (errors and results the client got) or in the gateway's logs.
func (g *gateway) assertNoSecretsIn(texts ...string) {
	g.t.Helper()
	texts = append(texts, g.stderr.String())
	for _, s := range g.secrets() {
		for _, text := range texts {
			if s != "" && strings.Contains(text, s) {
				g.t.Errorf("a secret (%.12s…) appears in %.200q", s, text)
			}
		}
	}
}
