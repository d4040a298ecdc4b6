package main

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/connectors-gateway/connectors/tenants"
)

// TestSessionOnAnyReplica: two gateway processes on one Vault (the
// gateway policy only), sharing CONNECTORS_BROWSER_SESSION_KEY, with no
// affinity: an agent initializes on A and goes on on B. B lists and calls
// the tools, relays the upstream's elicitation on the call's stream and its
// sampling on B's GET stream (the agent's capabilities, declared on A, are
// known on B), and answers 404 to the session presented by another
// tenant, altered, or sealed with another key. A DELETE ends it on the
// replica it is sent to (on the others once the gossip tells them:
// server's TestSealedSessionEnded).
func TestSessionOnAnyReplica(t *testing.T) {
	key := make([]byte, tenants.BrowserSessionKeySize)
	for i := range key {
		key[i] = byte(i * 7)
	}
	a, b := replicas(t, key)
	const path = "/mcp/conformance"
	session := a.oldSession("tenant-a", path, `{"elicitation":{},"sampling":{}}`)
	if !strings.HasPrefix(session, "cgw1.") {
		t.Fatalf("session %q is not sealed", session)
	}
	if status, _, body := b.postOld("tenant-a", path, session, `{"jsonrpc":"2.0","id":1,"method":"tools/list"}`); status != 200 || !strings.Contains(body, "test_elicitation") {
		t.Fatalf("tools/list on B: %d %.300s", status, body)
	}
	if status, _, body := b.postOld("tenant-a", path, session, oldCall("2", "test_simple_text", "")); status != 200 || !strings.Contains(body, `"text"`) || strings.Contains(body, `"isError":true`) {
		t.Errorf("tools/call on B: %d %.300s", status, body)
	}

	// Elicitation, on the call's own stream on B.
	call := b.stream("tenant-a", path, session, oldCall("3", "test_elicitation", `"arguments":{"message":"Who are you?"}`))
	asked := call.next(t, "elicitation/create")
	b.answer(t, path, session, fmt.Sprintf(`{"jsonrpc":"2.0","id":%s,"result":{"action":"accept","content":{"username":"ada","email":"ada@example.com"}}}`, asked))
	if res := call.next(t, ""); !strings.Contains(res, "action=accept") || !strings.Contains(res, "ada@example.com") {
		t.Errorf("the elicitation's call on B answered %s", res)
	}

	samplesOnListenStream(t, b, path, session)

	// Refused: another tenant, an altered ID, an ID sealed with another key.
	tampered := []byte(session)
	tampered[len(tampered)-5] ^= 1
	// The same claims sealed with another key, and (served) with the key
	// replicas share.
	shared, _ := tenants.NewBrowserSessions(key, nil)
	claims, err := shared.OpenData("cgw-mcp-session/v1", strings.TrimPrefix(session, "cgw1."))
	if err != nil {
		t.Fatal(err)
	}
	other, _ := tenants.NewBrowserSessions(make([]byte, tenants.BrowserSessionKeySize), nil)
	forged, _ := other.SealData("cgw-mcp-session/v1", claims, time.Hour)
	resealed, _ := shared.SealData("cgw-mcp-session/v1", claims, time.Hour)
	ping := `{"jsonrpc":"2.0","id":5,"method":"ping"}`
	for what, c := range map[string]struct{ tenant, session string }{
		"another tenant": {"tenant-b", session}, "an altered ID": {"tenant-a", string(tampered)}, "another key's ID": {"tenant-a", "cgw1." + forged},
	} {
		if status, _, body := b.postOld(c.tenant, path, c.session, ping); status != 404 || !strings.Contains(body, "SessionNotFound") {
			t.Errorf("%s on B: %d %.200s, want 404", what, status, body)
		}
	}
	if status, _, body := b.postOld("tenant-a", path, "cgw1."+resealed, ping); status != 200 {
		t.Errorf("its claims sealed again with the shared key, on B: %d %.200s", status, body)
	}

	// Ended by a DELETE on the replica it is sent to.
	if status, _, _ := b.send("tenant-a", "DELETE", path, "", "", map[string]string{"Mcp-Session-Id": session, "Mcp-Protocol-Version": "2025-11-25"}); status != 200 {
		t.Fatalf("DELETE on B: %d", status)
	}
	if status, _, _ := b.postOld("tenant-a", path, session, ping); status != 404 {
		t.Errorf("after its DELETE, B: %d, want 404", status)
	}
	if status, _, _ := a.postOld("tenant-a", path, session, ping); status != 200 {
		t.Errorf("A, not told of the DELETE (no gossip here): %d", status)
	}
}

// replicas starts two gateway processes on one Vault (the gateway policy
// only), sharing key as CONNECTORS_BROWSER_SESSION_KEY, with the
// conformance fixture as integration "conformance" (its upstream session
// pinned to 2025-11-25, so that it asks the agent itself), tenant-a's and
// tenant-b's credentials for it.
func replicas(t *testing.T, key []byte) (a, b *gateway) {
	t.Helper()
	vaddr, _, token := gatewayVault(t)
	entry := map[string]any{"name": "conformance", "category": "testing", "protocol": "2025-11-25", "upstream": map[string]any{
		"url": startConformanceFixture(t), "headers": map[string]string{"X-Upstream-Token": "{{access_token}}"}}}
	g := newGatewayWithEnv(t, map[string]string{"VAULT_ADDR": vaddr, "VAULT_TOKEN": token, "CONNECTORS_BROWSER_SESSION_KEY": hex.EncodeToString(key)}, entry)
	for _, tenant := range []string{"tenant-a", "tenant-b"} {
		g.mustRun(`{"accessToken": "conformance-token-`+tenant+`"}`, "credential", "put", "--tenant", tenant, "--integration", "conformance")
	}
	ra, rb := *g, *g
	ra.addr, _ = g.start()
	rb.addr, _ = g.start()
	return &ra, &rb
}

// samplesOnListenStream has the upstream ask tenant-a's agent of session
// for a sampling through g, on g's GET stream of the session, and checks
// that the agent's answer completes the call.
func samplesOnListenStream(t *testing.T, g *gateway, path, session string) {
	t.Helper()
	events := g.listen("tenant-a", path, session)
	answer := make(chan string, 1)
	go func() {
		_, _, body := g.postOld("tenant-a", path, session, oldCall("4", "test_sampling", `"arguments":{"prompt":"capital?"}`))
		answer <- body
	}()
	select {
	case ev := <-events:
		var req struct {
			ID     json.RawMessage `json:"id"`
			Method string          `json:"method"`
		}
		if json.Unmarshal([]byte(ev.data), &req) != nil || req.Method != "sampling/createMessage" {
			t.Fatalf("first event of the GET stream: %s", ev.data)
		}
		g.answer(t, path, session, fmt.Sprintf(`{"jsonrpc":"2.0","id":%s,"result":{"role":"assistant","content":{"type":"text","text":"Paris"},"model":"m","stopReason":"endTurn"}}`, req.ID))
	case <-time.After(15 * time.Second):
		t.Fatal("the sampling request never reached the GET stream")
	}
	select {
	case body := <-answer:
		if !strings.Contains(body, "Paris") || strings.Contains(body, `"isError":true`) {
			t.Errorf("the sampling call answered %s", body)
		}
	case <-time.After(15 * time.Second):
		t.Error("the sampling call did not complete")
	}
}

// callStream is the event stream of a call's POST.
type callStream struct{ events <-chan sseEvent }

// stream posts body on session and returns its answer's event stream.
func (g *gateway) stream(tenant, path, session, body string) *callStream {
	g.t.Helper()
	req, _ := http.NewRequest("POST", "http://"+g.addr+path, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+g.keys[tenant])
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	req.Header.Set("Mcp-Session-Id", session)
	req.Header.Set("Mcp-Protocol-Version", "2025-11-25")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		g.t.Fatal(err)
	}
	g.t.Cleanup(func() { resp.Body.Close() })
	return &callStream{events: readEvents(resp.Body)}
}

// next returns the ID of the next request of method on s, or with method
// "", the data of the next event that is not a notification.
func (s *callStream) next(t *testing.T, method string) string {
	t.Helper()
	timeout := time.After(15 * time.Second)
	for {
		select {
		case ev, ok := <-s.events:
			if !ok {
				t.Fatalf("the call's stream ended before %q", method)
			}
			var m struct {
				ID     json.RawMessage `json:"id"`
				Method string          `json:"method"`
			}
			if json.Unmarshal([]byte(ev.data), &m) != nil || m.ID == nil {
				continue
			}
			if method == "" && m.Method == "" {
				return ev.data
			}
			if m.Method == method {
				return string(m.ID)
			}
		case <-timeout:
			t.Fatalf("no %q on the call's stream", method)
		}
	}
}

// answer posts an agent's answer to a server's request on session.
func (g *gateway) answer(t *testing.T, path, session, body string) {
	t.Helper()
	if status, _, raw := g.postOld("tenant-a", path, session, body); status != 202 {
		t.Fatalf("answering: %d %s", status, raw)
	}
}
