package server

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http/httptest"
	"strings"
	"testing"
	"testing/iotest"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/mark3labs/mcp-go/mcp"
	mcpserver "github.com/mark3labs/mcp-go/server"

	"github.com/connectors-gateway/connectors/internal/mcptest"
	"github.com/connectors-gateway/connectors/tenants"
)

// The tests of the workarounds in mcpgo.go that no other test holds.

// TestNotificationsDuringStreamSetup: a progress notification a tool
// sends just before its result reaches the agent on the call's stream,
// every time (mcp-go v1.2.1 drops it, now and then, without an event
// store: streamableOptions).
func TestNotificationsDuringStreamSetup(t *testing.T) {
	srv := mcpserver.NewMCPServer("test", "1")
	srv.AddTool(mcp.NewTool("notify"), func(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		s := mcpserver.ServerFromContext(ctx)
		_ = s.SendNotificationToClient(ctx, "notifications/progress", map[string]any{
			"progressToken": req.Params.Meta.ProgressToken, "progress": 1, "total": 1,
		})
		return mcp.NewToolResultText("done"), nil
	})
	h := NewHandler(srv, nil, HTTPOptions{})
	ts := httptest.NewServer(endpoints(h))
	t.Cleanup(func() { ts.Close(); _ = h.Close(context.Background()) })
	session := mcptest.Server{Server: ts}.Open(t, "/mcp", "key-a")
	lost := 0
	const calls = 300
	for i := range calls {
		body := fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"method":"tools/call","params":{"name":"notify","_meta":{"progressToken":%d}}}`, i+10, i)
		resp, raw := mcptest.Server{Server: ts}.Send(t, "POST", "/mcp", "key-a", session, body, nil)
		if resp.StatusCode != 200 || !strings.Contains(raw, `"done"`) {
			t.Fatalf("call %d: %d %s", i, resp.StatusCode, raw)
		}
		if !strings.Contains(raw, "notifications/progress") {
			lost++
		}
	}
	if lost > 0 {
		t.Errorf("%d of %d calls lost the progress notification sent before their result", lost, calls)
	}
}

// TestStdioStreams: the agent's lines are read whole however the reads
// cut them; a 2026-07-28 agent is not written list_changed unless a
// listen of its own asks for it, and an initialize-era one always is.
func TestStdioStreams(t *testing.T) {
	const (
		modern   = `{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28"}}}` + "\n"
		listen   = `{"jsonrpc":"2.0","id":"l","method":"subscriptions/listen","params":{"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28"},"notifications":{"toolsListChanged":true}}}` + "\n"
		init     = `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25"}}` + "\n"
		changed  = `{"jsonrpc":"2.0","method":"notifications/tools/list_changed"}` + "\n"
		prompts  = `{"jsonrpc":"2.0","method":"notifications/prompts/list_changed"}` + "\n"
		progress = `{"jsonrpc":"2.0","method":"notifications/progress","params":{"progressToken":1,"progress":1}}` + "\n"
		answer   = `{"jsonrpc":"2.0","id":1,"result":{"content":[{"type":"text","text":"notifications/tools/list_changed"}]}}` + "\n"
		listened = `{"jsonrpc":"2.0","id":"l","result":{}}` + "\n"
	)
	tests := []struct {
		name, in string
		out      []string
		want     string
	}{
		{"modern", modern, []string{changed, progress, answer, prompts}, progress + answer},
		{"modern listening", modern + listen, []string{changed, prompts, listened, changed}, changed + listened},
		{"initialize era", init, []string{changed, answer}, changed + answer},
		{"nothing said yet", "", []string{changed}, changed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var written bytes.Buffer
			in, out := stdioStreams(iotest.OneByteReader(strings.NewReader(tt.in)), &written)
			read, err := io.ReadAll(in)
			if err != nil || string(read) != tt.in {
				t.Fatalf("read %q, %v; want the input as it is", read, err)
			}
			for _, m := range tt.out {
				if n, err := out.Write([]byte(m)); err != nil || n != len(m) {
					t.Fatalf("Write = %d, %v", n, err)
				}
			}
			if diff := cmp.Diff(tt.want, written.String()); diff != "" {
				t.Errorf("written (-want +got):\n%s", diff)
			}
		})
	}
}

// TestStdioBroadcastsWithheld: over stdio a 2026-07-28 agent that listens
// for nothing is not sent the list_changed of a tool added under it, and
// an initialize-era agent is (stdioStreams, in serveStdio).
func TestStdioBroadcastsWithheld(t *testing.T) {
	for _, tc := range []struct {
		name, first string
		sent        bool
	}{
		{"2026-07-28", `{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{}}}}`, false},
		{"initialize era", mcptest.InitBody, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := mcpserver.NewMCPServer("test", "1", mcpserver.WithToolCapabilities(true))
			srv.AddTool(mcp.NewTool("first"), func(context.Context, mcp.CallToolRequest) (*mcp.CallToolResult, error) {
				return mcp.NewToolResultText("first"), nil
			})
			inR, inW := io.Pipe()
			outR, outW := io.Pipe()
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			go func() { _ = serveStdio(ctx, srv, tenants.Identity{Tenant: "tenant-a", Subject: "stdio"}, inR, outW) }()
			lines := make(chan string, 16)
			go func() {
				sc := bufio.NewScanner(outR)
				for sc.Scan() {
					lines <- sc.Text()
				}
				close(lines)
			}()
			next := func() string {
				t.Helper()
				select {
				case l := <-lines:
					return l
				case <-time.After(10 * time.Second):
					t.Fatal("no answer")
					return ""
				}
			}
			_, _ = io.WriteString(inW, tc.first+"\n")
			if l := next(); !strings.Contains(l, `"id":1`) {
				t.Fatalf("first answer: %s", l)
			}
			if tc.sent {
				_, _ = io.WriteString(inW, `{"jsonrpc":"2.0","method":"notifications/initialized"}`+"\n")
			}
			srv.AddTool(mcp.NewTool("second"), func(context.Context, mcp.CallToolRequest) (*mcp.CallToolResult, error) {
				return mcp.NewToolResultText("second"), nil
			})
			time.Sleep(50 * time.Millisecond) // the broadcast is written, or withheld
			_, _ = io.WriteString(inW, `{"jsonrpc":"2.0","id":2,"method":"ping"}`+"\n")
			sent := false
			for l := next(); !strings.Contains(l, `"id":2`); l = next() {
				sent = sent || strings.Contains(l, "notifications/tools/list_changed")
			}
			if sent != tc.sent {
				t.Errorf("list_changed sent: %v, want %v", sent, tc.sent)
			}
			inW.Close()
		})
	}
}

// TestStoreRefusals: a 2026-07-28 request the store could not serve (a
// hook's refusal naming VaultError or VaultEncryptionError, which mcp-go
// v1.2.1 answers HTTP 400) is answered 503, with Retry-After when waiting
// may help; any other refusal keeps its 400 (storeRefusals).
func TestStoreRefusals(t *testing.T) {
	for _, tc := range []struct {
		refusal    string
		status     int
		retryAfter string
	}{
		{"VaultError: Failed to connect to Vault", 503, "5"},
		{"VaultEncryptionError: Failed to decrypt data", 503, ""},
		{"something else", 400, ""},
	} {
		hooks := &mcpserver.Hooks{}
		hooks.AddOnRequestInitialization(func(context.Context, any, any) error { return errors.New(tc.refusal) })
		srv := mcpserver.NewMCPServer("test", "1", mcpserver.WithHooks(hooks))
		srv.AddTool(mcp.NewTool("whoami"), func(context.Context, mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			return mcp.NewToolResultText("never"), nil
		})
		h := NewHandler(srv, nil, HTTPOptions{})
		ts := httptest.NewServer(endpoints(h))
		body := `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{}},"name":"whoami","arguments":{}}}`
		resp, raw := mcptest.Server{Server: ts}.Send(t, "POST", "/mcp", "key-a", "", body,
			map[string]string{"MCP-Protocol-Version": "2026-07-28", "Mcp-Method": "tools/call", "Mcp-Name": "whoami"})
		if resp.StatusCode != tc.status || resp.Header.Get("Retry-After") != tc.retryAfter || !strings.Contains(raw, tc.refusal) {
			t.Errorf("refused with %q: %d (Retry-After %q) %s, want %d (Retry-After %q)",
				tc.refusal, resp.StatusCode, resp.Header.Get("Retry-After"), raw, tc.status, tc.retryAfter)
		}
		ts.Close()
		_ = h.Close(context.Background())
	}
}
