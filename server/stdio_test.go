package server

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/mcp"
	mcpserver "github.com/mark3labs/mcp-go/server"

	"github.com/connectors-gateway/connectors/tenants"
)

// TestStdioMessageChecks: over stdio too, a bad id or non-object
// arguments are answered with an error and reach no tool; good messages
// are served, in order, answers not interleaved.
func TestStdioMessageChecks(t *testing.T) {
	var calls atomic.Int64
	srv := mcpserver.NewMCPServer("test", "1")
	srv.AddTool(mcp.NewTool("whoami"), func(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		calls.Add(1)
		id, _ := tenants.FromContext(ctx)
		return mcp.NewToolResultText(id.Tenant), nil
	})
	inR, inW := io.Pipe()
	outR, outW := io.Pipe()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		done <- serveStdio(ctx, srv, tenants.Identity{Tenant: "tenant-a", Subject: "stdio"}, inR, outW)
	}()
	answers := bufio.NewScanner(outR)
	send := func(line string) { _, _ = io.WriteString(inW, line+"\n") }
	next := func() map[string]any {
		t.Helper()
		got := make(chan map[string]any, 1)
		go func() {
			var m map[string]any
			if answers.Scan() {
				_ = json.Unmarshal(answers.Bytes(), &m)
			}
			got <- m
		}()
		select {
		case m := <-got:
			return m
		case <-time.After(10 * time.Second):
			t.Fatal("no answer")
			return nil
		}
	}
	send(initBody)
	if m := next(); m["result"] == nil {
		t.Fatalf("initialize: %v", m)
	}
	send(`{"jsonrpc":"2.0","method":"notifications/initialized"}`)
	for _, c := range []struct {
		line string
		code float64
	}{
		{`{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"whoami","arguments":[1]}}`, -32602},
		{`{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"whoami","arguments":"x"}}`, -32602},
		{`{"jsonrpc":"2.0","id":{"a":1},"method":"tools/call","params":{"name":"whoami"}}`, -32600},
		{`{"jsonrpc":"2.0","id":null,"method":"tools/call","params":{"name":"whoami"}}`, -32600},
		{`{"jsonrpc":"2.0","id":4,"method":"tools/call","params":{"name":"whoami","arguments":{}}}`, 0},
	} {
		send(c.line)
		m := next()
		e, _ := m["error"].(map[string]any)
		switch {
		case c.code == 0 && (m["result"] == nil || !strings.Contains(answers.Text(), "tenant-a")):
			t.Errorf("%s: %v, want a result", c.line, m)
		case c.code != 0 && (e == nil || e["code"] != c.code):
			t.Errorf("%s: %v, want error %v", c.line, m, c.code)
		}
	}
	if n := calls.Load(); n != 1 {
		t.Errorf("%d calls reached the tool, want 1", n)
	}
	inW.Close()
	cancel()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Error("ServeStdio did not end")
	}
}
