package main

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"strings"
	"sync"
	"testing"
	"time"
)

// stdioAgent is "connectors stdio" run in this process, spoken to line by
// line.
type stdioAgent struct {
	t     *testing.T
	in    *io.PipeWriter
	lines chan string
	close func() // ends the server (which holds the embedded store's lock)
}

func (g *gateway) stdio(t *testing.T, tenant string) *stdioAgent {
	t.Helper()
	inR, inW := io.Pipe()
	outR, outW := io.Pipe()
	m := &Main{Stdin: inR, Stdout: outW, Stderr: g.stderr, Getenv: func(k string) string { return g.env[k] }}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = m.Run(context.Background(), []string{"stdio", "--tenant", tenant})
		_ = m.Close()
		outW.Close()
	}()
	a := &stdioAgent{t: t, in: inW, lines: make(chan string, 1000)}
	go func() {
		sc := bufio.NewScanner(outR)
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			a.lines <- sc.Text()
		}
		close(a.lines)
		_, _ = io.Copy(io.Discard, outR)
	}()
	a.close = sync.OnceFunc(func() {
		inW.Close() // EOF: the server ends, and its upstream processes with it
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			t.Error("connectors stdio did not end after its input closed")
		}
	})
	t.Cleanup(a.close)
	return a
}

func (a *stdioAgent) send(msg string) {
	a.t.Helper()
	if _, err := io.WriteString(a.in, msg+"\n"); err != nil {
		a.t.Fatal(err)
	}
}

// until returns every message written until one answers id (included),
// and then those written in the quiet period after it.
func (a *stdioAgent) until(id string, quiet time.Duration) []string {
	a.t.Helper()
	var got []string
	deadline := time.After(60 * time.Second)
	answered := false
	var grace <-chan time.Time
	for {
		select {
		case l, ok := <-a.lines:
			if !ok {
				return got
			}
			got = append(got, l)
			var r struct{ ID json.RawMessage }
			if !answered && json.Unmarshal([]byte(l), &r) == nil && string(r.ID) == id {
				answered = true
				grace = time.After(quiet)
			}
		case <-grace:
			return got
		case <-deadline:
			a.t.Fatalf("no answer to %s; got %v", id, got)
		}
	}
}

// notifications returns the methods of the notifications among msgs.
func notifications(msgs []string) []string {
	var out []string
	for _, m := range msgs {
		var n struct {
			ID     json.RawMessage
			Method string
		}
		if json.Unmarshal([]byte(m), &n) == nil && n.ID == nil && n.Method != "" {
			out = append(out, n.Method)
		}
	}
	return out
}

// TestStdioModernAgentGetsWhatItAsks: over stdio, a 2026-07-28 agent gets
// no list_changed it did not ask for (neither the gateway's own, from
// discovering catalogues, nor an upstream's, which upstream-env's grow
// sends), still gets its calls' progress, and gets list_changed while a
// subscriptions/listen of its own asks for them. An initialize-era agent
// still gets them unasked.
func TestStdioModernAgentGetsWhatItAsks(t *testing.T) {
	g := newGatewayWith(t, envIntegration(t, "probe", "era-stdio", ""))
	meta := `"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{},"io.modelcontextprotocol/clientInfo":{"name":"t","version":"1"}}`
	a := g.stdio(t, "tenant-a")
	var got []string
	a.send(`{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{` + meta + `}}`)
	got = append(got, a.until("1", 200*time.Millisecond)...)
	a.send(`{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{` + meta + `,"name":"probe_grow","arguments":{}}}`)
	got = append(got, a.until("2", time.Second)...)
	progressMeta := strings.Replace(meta, `"_meta":{`, `"_meta":{"progressToken":"p-3",`, 1)
	a.send(`{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{` + progressMeta + `,"name":"everything_trigger-long-running-operation","arguments":{"duration":0.4,"steps":2}}}`)
	got = append(got, a.until("3", 200*time.Millisecond)...)
	progress := 0
	for _, n := range notifications(got) {
		if n == "notifications/progress" {
			progress++
			continue
		}
		t.Errorf("a 2026-07-28 agent over stdio was sent %s unasked", n)
	}
	if progress == 0 {
		t.Errorf("no progress for the call that asked for it: %v", got)
	}

	// Asked for: tools/list_changed flows while the listen is open.
	a.send(`{"jsonrpc":"2.0","id":"listen","method":"subscriptions/listen","params":{` + meta + `,"notifications":{"toolsListChanged":true}}}`)
	time.Sleep(200 * time.Millisecond)
	a.send(`{"jsonrpc":"2.0","id":4,"method":"tools/call","params":{` + meta + `,"name":"probe_grow","arguments":{}}}`)
	listened := a.until("4", time.Second)
	if !contains(notifications(listened), "notifications/tools/list_changed") {
		t.Errorf("with a subscriptions/listen for tools, no list_changed came: %v", listened)
	}
	a.send(`{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":"listen"}}`)

	// An initialize-era agent is told unasked, as its protocol wants.
	a.close()
	b := g.stdio(t, "tenant-b")
	b.send(`{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}`)
	b.until("1", 0)
	b.send(`{"jsonrpc":"2.0","method":"notifications/initialized"}`)
	b.send(`{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"probe_grow","arguments":{}}}`)
	if legacy := b.until("2", time.Second); !contains(notifications(legacy), "notifications/tools/list_changed") {
		t.Errorf("an initialize-era agent over stdio was not told its tools changed: %v", legacy)
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
