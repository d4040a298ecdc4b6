package transport

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

// toolCall2026 is a 2026-07-28 tools/call of tool with args (JSON) and the
// headers that era sends.
func toolCall2026(id int, tool, args string) (string, map[string]string) {
	body := fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"method":"tools/call","params":{"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{}},"name":%q,"arguments":%s}}`, id, tool, args)
	return body, map[string]string{"MCP-Protocol-Version": "2026-07-28", "Mcp-Method": "tools/call", "Mcp-Name": tool}
}

// rawRequest is the head of a POST to /mcp as key, with header, for a
// body of length bytes.
func rawRequest(key string, length int, header map[string]string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer %s\r\nContent-Type: application/json\r\nAccept: application/json, text/event-stream\r\nContent-Length: %d\r\n", key, length)
	for k, v := range header {
		fmt.Fprintf(&b, "%s: %s\r\n", k, v)
	}
	b.WriteString("\r\n")
	return b.String()
}

// TestSlowBodyCut: a client that sends its body at 10 bytes a second has
// its connection answered and closed once the read timeout passes, however
// long the body would take.
func TestSlowBodyCut(t *testing.T) {
	const timeout = 300 * time.Millisecond
	b := newBoundsServer(t, HTTPOptions{ReadTimeout: timeout})
	const clients = 20
	var wg sync.WaitGroup
	took := make(chan time.Duration, clients)
	for range clients {
		conn, err := net.Dial("tcp", b.Listener.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close() })
		if _, err := io.WriteString(conn, rawRequest("key-a", 2000, nil)); err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		stop := make(chan struct{})
		wg.Go(func() { // 10 bytes a second
			for {
				select {
				case <-stop:
					return
				case <-time.After(100 * time.Millisecond):
					if _, err := conn.Write([]byte(" ")); err != nil {
						return
					}
				}
			}
		})
		wg.Go(func() {
			defer close(stop)
			_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
			_, err := io.Copy(io.Discard, conn) // until the gateway closes it
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				took <- 5 * time.Second
				return
			}
			took <- time.Since(start)
		})
	}
	wg.Wait()
	close(took)
	for d := range took {
		if d > timeout+time.Second {
			t.Errorf("a slow body held its connection %v; the read timeout is %v", d, timeout)
			break
		}
	}
}

// TestStalledReaderCut: clients that ask for a large answer and never read
// it are cut off once the write timeout passes, and what their answers
// held (goroutines, heap) is given back.
func TestStalledReaderCut(t *testing.T) {
	const timeout = 300 * time.Millisecond
	b := newBoundsServer(t, HTTPOptions{WriteTimeout: timeout})
	const clients, size = 10, 8 << 20 // more than loopback's socket buffers hold
	settle := func() (int, uint64) {
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		return runtime.NumGoroutine(), ms.HeapAlloc
	}
	g0, heap0 := settle()
	for i := range clients {
		conn, err := net.Dial("tcp", b.Listener.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		_ = conn.(*net.TCPConn).SetReadBuffer(4096)
		t.Cleanup(func() { conn.Close() })
		body, header := toolCall2026(i+1, "big", fmt.Sprintf(`{"bytes":%d}`, size))
		if _, err := io.WriteString(conn, rawRequest("key-a", len(body), header)+body); err != nil {
			t.Fatal(err)
		}
		// and never read
	}
	// Generous: the answers are made (8 MiB each, encoded under -race on
	// a shared machine) before the write timeout can cut them; the loop
	// below ends as soon as everything is freed.
	const settleWithin = 30 * time.Second
	deadline := time.Now().Add(settleWithin)
	for b.calls.Load() < clients && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	var g int
	var heap uint64
	for {
		time.Sleep(100 * time.Millisecond)
		if g, heap = settle(); g <= g0+2 && heap < heap0+16<<20 || time.Now().After(deadline) {
			break
		}
	}
	if g > g0+2 || heap > heap0+16<<20 {
		t.Errorf("%d clients that never read a %d MiB answer: %d goroutines (%d before), heap %d MiB (%d before), %v after the write timeout of %v",
			clients, size>>20, g, g0, heap>>20, heap0>>20, settleWithin, timeout)
	}
}

// TestQuietWaitsSurvive: a call that takes longer than both timeouts, and
// a listening stream with nothing to say, are not cut: they wait on
// nobody. (A server-wide WriteTimeout would cut them.)
func TestQuietWaitsSurvive(t *testing.T) {
	const timeout = 200 * time.Millisecond
	b := newBoundsServer(t, HTTPOptions{ReadTimeout: timeout, WriteTimeout: timeout})
	session := b.Open(t, "/mcp", "key-a")

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	r, _ := http.NewRequestWithContext(ctx, "GET", b.URL+"/mcp", nil)
	r.Header.Set("Accept", "text/event-stream")
	r.Header.Set("Authorization", "Bearer key-a")
	r.Header.Set("MCP-Protocol-Version", "2025-11-25")
	r.Header.Set("Mcp-Session-Id", session)
	stream, err := http.DefaultClient.Do(r)
	if err != nil || stream.StatusCode != http.StatusOK {
		t.Fatalf("GET stream: %v %v", stream, err)
	}
	defer stream.Body.Close()
	ended := make(chan error, 1)
	go func() {
		_, err := io.Copy(io.Discard, stream.Body)
		ended <- err
	}()

	resp, raw := b.Send(t, "POST", "/mcp", "key-a", session,
		`{"jsonrpc":"2.0","id":5,"method":"tools/call","params":{"name":"sleep","arguments":{"ms":1000}}}`, nil)
	if resp.StatusCode != http.StatusOK || !strings.Contains(raw, "slept") {
		t.Errorf("a 2025-11-25 call of 1s, timeouts %v: %d %s, want its answer", timeout, resp.StatusCode, raw)
	}
	body, header := toolCall2026(6, "sleep", `{"ms":1000}`)
	resp, raw = b.Send(t, "POST", "/mcp", "key-a", "", body, header)
	if resp.StatusCode != http.StatusOK || !strings.Contains(raw, "slept") {
		t.Errorf("a 2026-07-28 call of 1s, timeouts %v: %d %s, want its answer", timeout, resp.StatusCode, raw)
	}
	select {
	case err := <-ended:
		t.Errorf("a quiet listening stream ended after 2s (timeouts %v): %v", timeout, err)
	default:
	}
}

// rawPost is one POST to /mcp from any goroutine: its status and body.
func rawPost(url, key, session, body string, header map[string]string) (int, string, error) {
	r, _ := http.NewRequest("POST", url+"/mcp", strings.NewReader(body))
	r.Header.Set("Content-Type", "application/json")
	r.Header.Set("Accept", "application/json, text/event-stream")
	r.Header.Set("MCP-Protocol-Version", "2025-11-25")
	r.Header.Set("Authorization", "Bearer "+key)
	if session != "" {
		r.Header.Set("Mcp-Session-Id", session)
	}
	for k, v := range header {
		r.Header.Set(k, v)
	}
	resp, err := (&http.Client{Timeout: 20 * time.Second}).Do(r)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(raw), err
}

// TestDrain: once the drain begins, new requests get 503 (and /readyz
// too); the calls in flight on both eras that finish within the drain get
// their answers; those still running at its end get a JSON-RPC error
// naming their ID, and are cancelled; the listening stream ends.
func TestDrain(t *testing.T) {
	b := newBoundsServer(t, HTTPOptions{})
	session := b.Open(t, "/mcp", "key-a")

	r, _ := http.NewRequest("GET", b.URL+"/mcp", nil)
	r.Header.Set("Accept", "text/event-stream")
	r.Header.Set("Authorization", "Bearer key-a")
	r.Header.Set("MCP-Protocol-Version", "2025-11-25")
	r.Header.Set("Mcp-Session-Id", session)
	stream, err := http.DefaultClient.Do(r)
	if err != nil || stream.StatusCode != http.StatusOK {
		t.Fatalf("GET stream: %v %v", stream, err)
	}
	defer stream.Body.Close()
	streamEnded := make(chan struct{})
	go func() { _, _ = bufio.NewReader(stream.Body).WriteTo(io.Discard); close(streamEnded) }()

	type answer struct {
		status int
		body   string
		err    error
	}
	calls := map[string]struct {
		id      int
		ms      int
		session bool
	}{
		"2025 short": {11, 400, true}, "2025 long": {12, 30000, true},
		"2026 short": {21, 400, false}, "2026 long": {22, 30000, false},
	}
	answers := map[string]chan answer{}
	for name, c := range calls {
		ch := make(chan answer, 1)
		answers[name] = ch
		go func() {
			var a answer
			if c.session {
				a.status, a.body, a.err = rawPost(b.URL, "key-a", session,
					fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"method":"tools/call","params":{"name":"sleep","arguments":{"ms":%d}}}`, c.id, c.ms), nil)
			} else {
				body, header := toolCall2026(c.id, "sleep", fmt.Sprintf(`{"ms":%d}`, c.ms))
				a.status, a.body, a.err = rawPost(b.URL, "key-a", "", body, header)
			}
			ch <- a
		}()
	}
	deadline := time.Now().Add(5 * time.Second)
	for b.calls.Load() < 4 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if b.calls.Load() < 4 {
		t.Fatal("the calls never started")
	}

	const drainTime = 1500 * time.Millisecond
	ctx, cancel := context.WithTimeout(context.Background(), drainTime)
	defer cancel()
	start := time.Now()
	cut := make(chan int, 1)
	go func() { cut <- b.h.Drain(ctx) }()
	time.Sleep(100 * time.Millisecond)

	body, header := toolCall2026(31, "whoami", `{}`)
	if status, raw, err := rawPost(b.URL, "key-a", "", body, header); status != http.StatusServiceUnavailable || !strings.Contains(raw, "Shutting down") {
		t.Errorf("a new call during the drain: %d %s %v, want 503 Shutting down", status, raw, err)
	}
	for path, want := range map[string]int{"/readyz": 503, "/healthz": 200} {
		resp, err := http.Get(b.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("GET %s during the drain: %d, want %d", path, resp.StatusCode, want)
		}
	}

	for name, c := range calls {
		a := <-answers[name]
		switch {
		case a.err != nil:
			t.Errorf("%s: %v, want an answer", name, a.err)
		case c.ms < 1000 && (a.status != 200 || !strings.Contains(a.body, "slept")):
			t.Errorf("%s, done within the drain: %d %s, want its result", name, a.status, a.body)
		case c.ms > 1000 && (!strings.Contains(a.body, fmt.Sprintf(`"id":%d`, c.id)) || !strings.Contains(a.body, "-32000") || !strings.Contains(a.body, "Shutting down")):
			t.Errorf("%s, still running at the drain's end: %d %s, want a JSON-RPC error for id %d", name, a.status, a.body, c.id)
		}
	}
	if n := <-cut; n != 2 {
		t.Errorf("Drain cut %d calls, want 2", n)
	}
	if took := time.Since(start); took > drainTime+time.Second {
		t.Errorf("the drain of %v took %v", drainTime, took)
	}
	select {
	case <-streamEnded:
	case <-time.After(2 * time.Second):
		t.Error("the listening stream is still open after the drain")
	}
	deadline = time.Now().Add(2 * time.Second)
	for b.cancelled.Load() < 2 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := b.cancelled.Load(); n != 2 {
		t.Errorf("%d calls cancelled after the drain, want the 2 it cut", n)
	}
}
