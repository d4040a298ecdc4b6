package server

import (
	"context"
	"encoding/json"
	"fmt"
	"github.com/connectors-gateway/connectors/tools"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/mark3labs/mcp-go/mcp"

	"github.com/connectors-gateway/connectors/internal/mcptest"
	"github.com/connectors-gateway/connectors/oauth"
	"github.com/connectors-gateway/connectors/vault"
)

// testLink is the link fixedLinker offers.
const testLink = "https://gateway.example/link/whoami?s=1"

// fixedLinker links every integration at testLink.
type fixedLinker struct{}

func (fixedLinker) LinkURL(context.Context, string) (string, bool, error) { return testLink, true, nil }
func (fixedLinker) CanLink(string) bool                                   { return true }

// linkFixture is whoamiGateway with a linker: one integration (whoami)
// that tenant-a must link again, its credential refused and its refresh
// needing a new link. It serves /mcp and /mcp/{integration}, the direct
// lane on.
type linkFixture struct {
	g      *Gateway
	store  vault.Store
	srv    mcptest.Server
	direct atomic.Int32 // the calls the direct lane served
}

// CallDirect is the gateway's direct lane, counted.
func (f *linkFixture) CallDirect(ctx context.Context, c DirectCall) (json.RawMessage, *tools.RPCError, bool) {
	res, refusal, ok := f.g.CallDirect(ctx, c)
	if ok {
		f.direct.Add(1)
	}
	return res, refusal, ok
}

func newLinkFixture(t *testing.T) *linkFixture {
	t.Helper()
	g, st := whoamiGateway(t, vault.Credential{AccessToken: "stale-1", RefreshToken: "r1"}, Options{
		Linker: fixedLinker{}, Refresher: &countingRefresher{err: oauth.ErrNeedsReauth},
	})
	f := &linkFixture{g: g, store: st}
	h := g.Handler(HTTPOptions{Direct: f})
	ts := httptest.NewServer(endpoints(h))
	t.Cleanup(func() { ts.Close(); _ = h.Close(context.Background()) })
	f.srv = mcptest.Server{Server: ts}
	return f
}

// link gives tenant-a a credential the upstream takes, as the OAuth flow
// does.
func (f *linkFixture) link(t *testing.T) {
	t.Helper()
	if _, err := f.store.Put(t.Context(), "tenant-a", "whoami", vault.Credential{AccessToken: "fresh"}, vault.AnyVersion); err != nil {
		t.Fatal(err)
	}
	f.g.NotifyToolsChanged("tenant-a")
}

// Client capabilities of 2026-07-28 agents.
const (
	urlCaps  = `{"elicitation":{"url":{}}}`
	formCaps = `{"elicitation":{"form":{}}}`
)

// rpcAnswer is the JSON-RPC answer to a tools/call.
type rpcAnswer struct {
	Result *struct {
		ResultType    string `json:"resultType"`
		Content       []mcp.TextContent
		IsError       bool `json:"isError"`
		InputRequests map[string]struct {
			Method string                `json:"method"`
			Params mcp.ElicitationParams `json:"params"`
		} `json:"inputRequests"`
		RequestState string `json:"requestState"`
	} `json:"result"`
	Error *struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
	raw string
}

// call2026 sends a 2026-07-28 tools/call of name to path as tenant-a, with
// caps and the extra params (",..." or empty), and returns the answer.
func (f *linkFixture) call2026(t *testing.T, path, name, caps, extra string) rpcAnswer {
	t.Helper()
	body := fmt.Sprintf(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":%s},"name":%q,"arguments":{}%s}}`, caps, name, extra)
	return f.send(t, path, body, map[string]string{"MCP-Protocol-Version": "2026-07-28", "Mcp-Method": "tools/call", "Mcp-Name": name})
}

// send posts body to path as tenant-a with header and decodes the
// JSON-RPC answer, whether plain JSON or the last event of a stream.
func (f *linkFixture) send(t *testing.T, path, body string, header map[string]string) rpcAnswer {
	t.Helper()
	resp, got := f.srv.Send(t, http.MethodPost, path, "key-a", "", body, header)
	raw := got
	if i := strings.LastIndex(raw, "data: "); i >= 0 {
		raw = strings.TrimSpace(raw[i+len("data: "):])
	}
	a := rpcAnswer{raw: raw}
	if err := json.Unmarshal([]byte(raw), &a); err != nil {
		t.Fatalf("%s %s: %d %q: %v", path, body, resp.StatusCode, got, err)
	}
	return a
}

// wantLinkInput fails t unless a is the InputRequiredResult of the link
// offer for whoami, and returns its requestState.
func wantLinkInput(t *testing.T, what string, a rpcAnswer) string {
	t.Helper()
	if a.Result == nil || a.Result.ResultType != "input_required" {
		t.Fatalf("%s: %s, want an input_required result", what, a.raw)
	}
	in, ok := a.Result.InputRequests["link"]
	if len(a.Result.InputRequests) != 1 || !ok || in.Method != "elicitation/create" ||
		in.Params.Mode != mcp.ElicitationModeURL || in.Params.URL != testLink || in.Params.ElicitationID == "" {
		t.Errorf("%s: input requests %s, want one URL-mode elicitation of %s", what, a.raw, testLink)
	}
	if a.Result.RequestState == "" {
		t.Errorf("%s: no requestState in %s", what, a.raw)
	}
	return a.Result.RequestState
}

// retry is the extra params of a retry answering the link offer.
func retry(state string) string {
	return fmt.Sprintf(`,"inputResponses":{"link":{"action":"accept"}},"requestState":%q`, state)
}

// TestLink2026InputRequired: a 2026-07-28 agent that declares URL-mode
// elicitation is offered the link as an InputRequiredResult, on the
// aggregate and on /mcp/{integration}, by the direct lane too; its retry,
// which the usual path takes, is offered the link again until the tenant
// has linked, then runs the call.
func TestLink2026InputRequired(t *testing.T) {
	for _, c := range []struct{ path, name string }{{"/mcp", "whoami_whoami"}, {"/mcp/whoami", "whoami"}} {
		t.Run(c.path, func(t *testing.T) {
			f := newLinkFixture(t)
			// Listed first, the tool is one the direct lane knows: it
			// takes the first call, which the upstream refuses.
			f.send(t, c.path, `{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{}}}}`,
				map[string]string{"MCP-Protocol-Version": "2026-07-28", "Mcp-Method": "tools/list"})
			state := wantLinkInput(t, "first call", f.call2026(t, c.path, c.name, urlCaps, ""))
			if n := f.direct.Load(); n != 1 {
				t.Errorf("the direct lane served %d first calls, want 1 (the upstream's refusal made the offer)", n)
			}
			again := wantLinkInput(t, "retry before linking", f.call2026(t, c.path, c.name, urlCaps, retry(state)))
			f.link(t)
			a := f.call2026(t, c.path, c.name, urlCaps, retry(again))
			if a.Result == nil || a.Result.ResultType != "complete" || a.Result.IsError ||
				len(a.Result.Content) != 1 || a.Result.Content[0].Text != "Bearer fresh" {
				t.Errorf("retry once linked: %s, want the call's result, Bearer fresh", a.raw)
			}
			if n := f.direct.Load(); n != 1 {
				t.Errorf("the direct lane served %d calls, want only the first: it leaves retries of the offer to the usual path", n)
			}
		})
	}
}

// TestLink2026Connect: the aggregate's connect tool offers the link the
// same way, to a tenant holding no credential, and again on a retry while
// the tenant has not linked; once it has, the retry (though the tool is
// no longer listed) answers that the account is connected, and a state
// not made for it is still refused.
func TestLink2026Connect(t *testing.T) {
	f := newLinkFixture(t)
	if err := f.store.Delete(t.Context(), "tenant-a", "whoami"); err != nil {
		t.Fatal(err)
	}
	f.g.NotifyToolsChanged("tenant-a")
	connect := connectToolName("whoami")
	state := wantLinkInput(t, "connect tool", f.call2026(t, "/mcp", connect, urlCaps, ""))
	again := wantLinkInput(t, "connect tool, retry before linking", f.call2026(t, "/mcp", connect, urlCaps, retry(state)))
	f.link(t)
	a := f.call2026(t, "/mcp", connect, urlCaps, retry(again))
	if a.Result == nil || a.Result.IsError || a.Result.ResultType == "input_required" ||
		len(a.Result.Content) != 1 || !strings.Contains(a.Result.Content[0].Text, "is connected") {
		t.Errorf("connect tool, retry once linked: %s, want that the account is connected", a.raw)
	}
	if a := f.call2026(t, "/mcp", connect, urlCaps, retry(linkState("tenant-b", "whoami"))); a.Error == nil {
		t.Errorf("connect tool once linked, another tenant's state: %s, want a JSON-RPC error", a.raw)
	}
}

// TestLink2026ForeignState: a retry whose requestState has the form of
// the gateway's and was not made for the call is refused with a JSON-RPC
// error that shows nothing of the link.
func TestLink2026ForeignState(t *testing.T) {
	f := newLinkFixture(t)
	wantLinkInput(t, "first call", f.call2026(t, "/mcp", "whoami_whoami", urlCaps, ""))
	for _, state := range []string{linkStatePrefix + "forged", linkState("tenant-b", "whoami"), linkState("tenant-a", "other")} {
		a := f.call2026(t, "/mcp", "whoami_whoami", urlCaps, retry(state))
		if a.Error == nil || a.Result != nil || strings.Contains(a.raw, "gateway.example") {
			t.Errorf("retry with state %q: %s, want a JSON-RPC error without the link", state, a.raw)
		}
	}
}

// TestLink2026Text: a 2026-07-28 agent without URL-mode elicitation gets
// the link as a tool error's text.
func TestLink2026Text(t *testing.T) {
	f := newLinkFixture(t)
	for _, caps := range []string{formCaps, `{}`} {
		a := f.call2026(t, "/mcp/whoami", "whoami", caps, "")
		if a.Result == nil || !a.Result.IsError || a.Result.ResultType == "input_required" ||
			len(a.Result.Content) != 1 || !strings.Contains(a.Result.Content[0].Text, testLink) {
			t.Errorf("capabilities %s: %s, want a tool error holding the link", caps, a.raw)
		}
	}
}

// TestLinkInitializeEra: an initialize-era session that declared URL-mode
// elicitation still gets the URLElicitationRequired error (-32042).
func TestLinkInitializeEra(t *testing.T) {
	f := newLinkFixture(t)
	init := strings.Replace(mcptest.InitBody, `"capabilities":{}`, `"capabilities":{"elicitation":{"url":{}}}`, 1)
	s := f.srv
	resp, _ := s.Send(t, "POST", "/mcp", "key-a", "", init, nil)
	session := resp.Header.Get("Mcp-Session-Id")
	s.Send(t, "POST", "/mcp", "key-a", session, `{"jsonrpc":"2.0","method":"notifications/initialized"}`, nil)
	a := f.send(t, "/mcp", `{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"whoami_whoami","arguments":{}}}`,
		map[string]string{"Mcp-Session-Id": session, "MCP-Protocol-Version": "2025-11-25"})
	if a.Error == nil || a.Error.Code != mcp.URL_ELICITATION_REQUIRED || !strings.Contains(a.raw, testLink) {
		t.Errorf("initialize era: %s, want -32042 carrying the link", a.raw)
	}
}
