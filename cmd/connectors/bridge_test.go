package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/client/transport"
	"github.com/mark3labs/mcp-go/mcp"

	"github.com/connectors-gateway/connectors/internal/testidp"
)

// agent is an mcp-go client of one era with answers for everything the
// protocol lets a server ask (sampling, elicitation, roots), each recorded.
type agent struct {
	*client.Client
	tenant string
	// says, when set, is who the agent's sampling answers say they are
	// (its tenant otherwise); onElicit, when set, runs before it answers an
	// elicitation.
	says     string
	onElicit func()
	mu       sync.Mutex
	asked    []string // what it was asked: method and the question's text
	notes    []string // the notifications it received
}

func (a *agent) record(what string) {
	a.mu.Lock()
	a.asked = append(a.asked, what)
	a.mu.Unlock()
}

func (a *agent) CreateMessage(_ context.Context, req mcp.CreateMessageRequest) (*mcp.CreateMessageResult, error) {
	text := ""
	if len(req.Messages) > 0 {
		if c, ok := req.Messages[0].Content.(mcp.TextContent); ok {
			text = c.Text
		}
	}
	a.record("sampling: " + text)
	who := a.tenant
	if a.says != "" {
		who = a.says
	}
	return &mcp.CreateMessageResult{
		SamplingMessage: mcp.SamplingMessage{Role: mcp.RoleAssistant, Content: mcp.NewTextContent(who + " says Paris")},
		Model:           "test-model", StopReason: "endTurn",
	}, nil
}

func (a *agent) Elicit(_ context.Context, req mcp.ElicitationRequest) (*mcp.ElicitationResult, error) {
	a.record("elicitation: " + req.Params.Message)
	if a.onElicit != nil {
		a.onElicit()
	}
	content := map[string]any{"name": a.tenant + "-name", "color": "green", "ok": true, "username": a.tenant, "email": a.tenant + "@example.com"}
	return &mcp.ElicitationResult{ElicitationResponse: mcp.ElicitationResponse{Action: mcp.ElicitationResponseActionAccept, Content: content}}, nil
}

func (a *agent) ListRoots(context.Context, mcp.ListRootsRequest) (*mcp.ListRootsResult, error) {
	a.record("roots")
	return &mcp.ListRootsResult{Roots: []mcp.Root{{URI: "file:///" + a.tenant, Name: a.tenant}}}, nil
}

// eraAgent connects an mcp-go client of protocol (2025-11-25, or
// 2026-07-28 with a subscriptions/listen stream for tools list_changed open)
// as tenant to g's aggregate /mcp.
func eraAgent(t *testing.T, g *gateway, tenant, protocol string) *agent {
	t.Helper()
	a := &agent{tenant: tenant}
	topts := []transport.StreamableHTTPCOption{transport.WithHTTPHeaders(map[string]string{"Authorization": "Bearer " + g.keys[tenant]})}
	if !mcp.IsModernProtocol(protocol) {
		// The GET stream, where mcp-go's server sends its requests.
		topts = append(topts, transport.WithContinuousListening())
	}
	tr, err := transport.NewStreamableHTTP("http://"+g.addr+"/mcp", topts...)
	if err != nil {
		t.Fatal(err)
	}
	a.Client = client.NewClient(tr, client.WithProtocolVersion(protocol),
		client.WithSamplingHandler(a), client.WithElicitationHandler(a), client.WithRootsHandler(a))
	a.OnNotification(func(n mcp.JSONRPCNotification) {
		if n.Method == "notifications/subscriptions/acknowledged" {
			return // its own listen stream's
		}
		a.mu.Lock()
		a.notes = append(a.notes, n.Method)
		a.mu.Unlock()
	})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := a.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = a.Close() })
	if _, err := a.Initialize(ctx, mcp.InitializeRequest{Params: mcp.InitializeParams{
		ProtocolVersion: protocol, ClientInfo: mcp.Implementation{Name: "era-agent", Version: "1"},
		Capabilities: mcp.ClientCapabilities{Sampling: &mcp.SamplingCapability{}, Elicitation: &mcp.ElicitationCapability{}, Roots: &struct {
			ListChanged bool `json:"listChanged,omitempty"`
		}{}},
	}}); err != nil {
		t.Fatalf("initialize %s as %s: %v", protocol, tenant, err)
	}
	if mcp.IsModernProtocol(protocol) {
		stop, err := a.ListenAsync(context.Background(), mcp.SubscriptionFilter{ToolsListChanged: true}, nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(stop)
	}
	return a
}

func (a *agent) call(t *testing.T, tool string, args map[string]any) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	res, err := a.CallTool(ctx, mcp.CallToolRequest{Params: mcp.CallToolParams{Name: tool, Arguments: args}})
	if err != nil {
		t.Fatalf("%s calls %s: %v", a.tenant, tool, err)
	}
	var text []string
	for _, c := range res.Content {
		if tc, ok := c.(mcp.TextContent); ok {
			text = append(text, tc.Text)
		}
	}
	if res.IsError {
		t.Fatalf("%s calls %s: tool error %s", a.tenant, tool, text)
	}
	return strings.Join(text, "\n")
}

func (a *agent) got() (asked, notes []string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]string(nil), a.asked...), append([]string(nil), a.notes...)
}

// TestEraBridge: mcp-go's clients of both eras call the tools of the
// conformance fixture that ask the agent things (sampling, elicitation,
// roots, several at once, over several rounds), through the aggregate /mcp,
// with the gateway's session of the upstream pinned to 2025-11-25 (which
// asks with requests of its own during the call) and negotiated to
// 2026-07-28 (which answers input_required): every pairing gets the
// answers its own agent gave. A second tenant's agents of both eras, on
// the same gateway, are asked nothing and hear nothing. A change to
// tenant-a's integrations reaches its 2026-07-28 subscriptions/listen
// stream and its initialize-era session, and not tenant-b's.
func TestEraBridge(t *testing.T) {
	fixture := startConformanceFixture(t)
	for _, upstream := range []string{"2025-11-25", ""} {
		name := "upstream negotiated"
		if upstream != "" {
			name = "upstream pinned to " + upstream
		}
		t.Run(name, func(t *testing.T) {
			g := fixtureGateway(t, fixture, upstream)
			var quiet []*agent
			for _, protocol := range []string{mcp.ProtocolVersion20251125, mcp.ProtocolVersion20260728} {
				quiet = append(quiet, eraAgent(t, g, "tenant-b", protocol))
			}
			agents := map[string]*agent{}
			for _, protocol := range []string{mcp.ProtocolVersion20251125, mcp.ProtocolVersion20260728} {
				a := eraAgent(t, g, "tenant-a", protocol)
				agents[protocol] = a
				bridgeCalls(t, a, protocol)
			}
			// A change of tenant-a's integrations: both its agents hear it.
			if status, _, raw := g.api("tenant-a", http.MethodDelete, "/tenants/tenant-a/integrations/conformance/credentials", ""); status != http.StatusOK {
				t.Fatalf("DELETE credentials: %d %s", status, raw)
			}
			for protocol, a := range agents {
				waitNote(t, a, protocol)
			}
			// tenant-b's agents were asked nothing and heard nothing of it.
			time.Sleep(300 * time.Millisecond)
			for _, q := range quiet {
				if asked, notes := q.got(); len(asked) > 0 || len(notes) > 0 {
					t.Errorf("tenant-b was asked %q and heard %q", asked, notes)
				}
			}
		})
	}
}

// bridgeCalls makes a's calls and checks that each completed with a's own
// answers.
func bridgeCalls(t *testing.T, a *agent, protocol string) {
	t.Helper()
	for _, c := range []struct {
		tool string
		args map[string]any
		want []string
	}{
		{"conformance_test_sampling", map[string]any{"prompt": "capital?"}, []string{"LLM response: tenant-a says Paris"}},
		{"conformance_test_elicitation", map[string]any{"message": "who?"}, []string{"action=accept", `"username":"tenant-a"`}},
		{"conformance_test_input_required_result_multiple_inputs", nil, []string{"Name: tenant-a-name", "greeting: tenant-a says Paris", "roots: file:///tenant-a"}},
		{"conformance_test_input_required_result_multi_round", nil, []string{"tenant-a-name likes green"}},
		{"conformance_test_input_required_result_request_state", nil, []string{"state-ok"}},
	} {
		got := a.call(t, c.tool, c.args)
		for _, w := range c.want {
			if !strings.Contains(got, w) {
				t.Errorf("%s agent, %s: %q, want %q in it", protocol, c.tool, got, w)
			}
		}
	}
	asked, _ := a.got()
	if want := 1 + 1 + 3 + 2 + 1; len(asked) != want {
		t.Errorf("%s agent was asked %d times, want %d: %q", protocol, len(asked), want, asked)
	}
}

// waitNote waits until a heard tools list_changed.
func waitNote(t *testing.T, a *agent, protocol string) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if _, notes := a.got(); strings.Contains(fmt.Sprint(notes), string(mcp.MethodNotificationToolsListChanged)) {
			return
		}
	}
	_, notes := a.got()
	t.Errorf("the %s agent of tenant-a did not hear tools list_changed: %q", protocol, notes)
}

// TestBridgedStateRefused: the requestState of a 2026-07-28 agent's call
// bridged to an initialize-era upstream is refused, as a JSON-RPC error and
// without a call upstream, when it was altered, when another tenant sends
// it, and when it comes with another tool or other arguments than its own;
// its own tenant's retry with it completes the call.
func TestBridgedStateRefused(t *testing.T) {
	g := fixtureGateway(t, startConformanceFixture(t), "2025-11-25")
	header := map[string]string{"Mcp-Protocol-Version": "2026-07-28", "Mcp-Method": "tools/call"}
	meta := `"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{"elicitation":{}}}`
	call := func(tenant, tool, args, retry string) map[string]json.RawMessage {
		t.Helper()
		header["Mcp-Name"] = tool
		body := `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"` + tool + `","arguments":` + args + `,` + meta + retry + `}}`
		_, _, msgs := g.rpc(tenant, "/mcp", body, header)
		if len(msgs) != 1 {
			t.Fatalf("%s %s: %d messages: %s", tenant, tool, len(msgs), msgs)
		}
		var m map[string]json.RawMessage
		_ = json.Unmarshal(msgs[0], &m)
		return m
	}
	const tool = "conformance_test_elicitation"
	first := call("tenant-a", tool, `{"message":"who?"}`, "")
	var round struct {
		ResultType    string                     `json:"resultType"`
		InputRequests map[string]json.RawMessage `json:"inputRequests"`
		RequestState  string                     `json:"requestState"`
	}
	if err := json.Unmarshal(first["result"], &round); err != nil || round.ResultType != "input_required" || len(round.InputRequests) != 1 || round.RequestState == "" {
		t.Fatalf("first call: %s", first["result"])
	}
	var key string
	for k := range round.InputRequests {
		key = k
	}
	answer := func(state string) string {
		s, _ := json.Marshal(state)
		return `,"requestState":` + string(s) + `,"inputResponses":{"` + key + `":{"action":"accept","content":{"username":"u","email":"e"}}}`
	}
	tampered := []byte(round.RequestState)
	tampered[len(tampered)-5] ^= 1
	for _, c := range []struct{ what, tenant, tool, args, state string }{
		{"altered", "tenant-a", tool, `{"message":"who?"}`, string(tampered)},
		{"another tenant's", "tenant-b", tool, `{"message":"who?"}`, round.RequestState},
		{"other arguments", "tenant-a", tool, `{"message":"someone else?"}`, round.RequestState},
		{"another tool", "tenant-a", "conformance_test_elicitation_sep1034_defaults", `{}`, round.RequestState},
	} {
		got := call(c.tenant, c.tool, c.args, answer(c.state))
		if got["error"] == nil || !strings.Contains(string(got["error"]), "requestState is not valid") {
			t.Errorf("%s state: %s, want a JSON-RPC error refusing it", c.what, got["result"])
		}
	}
	got := call("tenant-a", tool, `{"message":"who?"}`, answer(round.RequestState))
	if !strings.Contains(string(got["result"]), `action=accept`) {
		t.Errorf("the retry with its own state: %s %s", got["result"], got["error"])
	}
}

// TestLinkAgent2026: an mcp-go client of 2026-07-28 that takes URL-mode
// elicitation calls the aggregate's connect tool of an integration its
// tenant has not linked: it is asked to open the link (an
// InputRequiredResult), its user confirms the consent page and signs in at
// the provider, and the client's retry answers that the account is
// connected; the integration's tools are listed and run. tenant-b's agent,
// listening, is asked and told nothing.
func TestLinkAgent2026(t *testing.T) {
	g, idp, base := linkedGateway(t)
	quiet := eraAgent(t, g, "tenant-b", mcp.ProtocolVersion20260728)
	linker := &urlLinker{t: t, g: g, idp: idp, base: base}
	tr, err := transport.NewStreamableHTTP(base+"/mcp",
		transport.WithHTTPHeaders(map[string]string{"Authorization": "Bearer " + g.keys["tenant-a"]}))
	if err != nil {
		t.Fatal(err)
	}
	c := client.NewClient(tr, client.WithProtocolVersion(mcp.ProtocolVersion20260728), client.WithElicitationHandler(linker))
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := c.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Initialize(ctx, mcp.InitializeRequest{Params: mcp.InitializeParams{
		ProtocolVersion: mcp.ProtocolVersion20260728, ClientInfo: mcp.Implementation{Name: "link-agent", Version: "1"},
		Capabilities: mcp.ClientCapabilities{Elicitation: &mcp.ElicitationCapability{URL: &struct{}{}}},
	}}); err != nil {
		t.Fatal(err)
	}
	res, err := c.CallTool(ctx, mcp.CallToolRequest{Params: mcp.CallToolParams{Name: "linked_connect_account"}})
	if err != nil {
		t.Fatal(err)
	}
	if text := fmt.Sprint(res.Content); res.IsError || !strings.Contains(text, "is connected") || linker.opened != 1 {
		t.Fatalf("connect tool: %s (error %v), link opened %d times; want connected after one link", text, res.IsError, linker.opened)
	}
	if names := toolNames(t, c); !containsPrefix(names, "linked_env") {
		t.Errorf("after the link: %v, want the linked tools", names)
	}
	if token := probe(t, c, "linked_env"); token == "" {
		t.Error("the linked tool did not run with the provider's token")
	}
	if asked, notes := quiet.got(); len(asked) > 0 || len(notes) > 0 {
		t.Errorf("tenant-b was asked %q and heard %q", asked, notes)
	}
}

// urlLinker is the user of an agent that takes URL-mode elicitation: it
// opens the link, confirms the consent page and signs in at the provider.
type urlLinker struct {
	t      *testing.T
	g      *gateway
	idp    *testidp.IDP
	base   string
	opened int
}

func (l *urlLinker) Elicit(ctx context.Context, req mcp.ElicitationRequest) (*mcp.ElicitationResult, error) {
	if req.Params.Mode != mcp.ElicitationModeURL || req.Params.URL == "" {
		return nil, fmt.Errorf("not a URL elicitation: %+v", req.Params)
	}
	l.opened++
	browser := linkBrowser()
	authURL := l.g.confirm(l.base, browser, req.Params.URL)
	cb, err := l.idp.SignIn(ctx, &http.Client{}, authURL, l.idp.TestUsername(), testidp.UserPassword)
	if err != nil {
		return nil, err
	}
	if resp, body := l.g.visit(browser, http.MethodGet, l.base+cb.Path+"?"+cb.RawQuery, ""); resp.StatusCode != http.StatusOK || !strings.Contains(body, "is connected") {
		return nil, fmt.Errorf("callback: %s %s", resp.Status, body)
	}
	return &mcp.ElicitationResult{ElicitationResponse: mcp.ElicitationResponse{Action: mcp.ElicitationResponseActionAccept}}, nil
}
