package tools

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// h1Server is an upstream on loopback counting the connections it accepts.
func h1Server(t *testing.T, h http.HandlerFunc, configure ...func(*http.Server)) (string, *atomic.Int64) {
	t.Helper()
	var conns atomic.Int64
	srv := httptest.NewUnstartedServer(h)
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	for _, f := range configure {
		f(srv.Config)
	}
	srv.Start()
	t.Cleanup(srv.Close)
	return srv.URL + "/mcp", &conns
}

// echoBody answers with the request's body.
func echoBody(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	w.Header().Set("Content-Type", "application/json")
	w.Write(b)
}

// post sends body through h and returns the answer's body.
func post(ctx context.Context, h *h1, u, body string) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, strings.NewReader(body))
	if err != nil {
		return "", err
	}
	resp, err := h.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return string(b), err
}

func newTestH1(t *testing.T) *h1 {
	h := newH1()
	t.Cleanup(h.closeIdle)
	return h
}

func TestH1ReusesOneConnection(t *testing.T) {
	u, conns := h1Server(t, echoBody)
	h := newTestH1(t)
	for i := range 50 {
		want := fmt.Sprintf(`{"call":%d}`, i)
		got, err := post(t.Context(), h, u, want)
		if err != nil || got != want {
			t.Fatalf("call %d: %q, %v; want %q", i, got, err, want)
		}
	}
	if n := conns.Load(); n != 1 {
		t.Errorf("%d connections for 50 calls one after another, want 1", n)
	}
}

func TestH1Concurrent(t *testing.T) {
	u, conns := h1Server(t, echoBody)
	h := newTestH1(t)
	const workers = 16
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Go(func() {
			for i := range 50 {
				want := fmt.Sprintf(`{"worker":%d,"call":%d,"pad":%q}`, w, i, strings.Repeat("x", i*97))
				if got, err := post(t.Context(), h, u, want); err != nil || got != want {
					errs <- fmt.Errorf("worker %d call %d: %.40q, %v", w, i, got, err)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if n := conns.Load(); n > workers {
		t.Errorf("%d connections for %d concurrent callers", n, workers)
	}
}

// An upstream closes a kept-alive connection while it is idle: the next
// call goes out on a new one, and succeeds.
func TestH1UpstreamClosedIdleConnection(t *testing.T) {
	u, conns := h1Server(t, echoBody, func(s *http.Server) { s.IdleTimeout = 20 * time.Millisecond })
	h := newTestH1(t)
	for i := range 3 {
		if got, err := post(t.Context(), h, u, "{}"); err != nil || got != "{}" {
			t.Fatalf("call %d: %q, %v", i, got, err)
		}
		time.Sleep(150 * time.Millisecond) // the upstream closes the idle connection
	}
	if n := conns.Load(); n != 3 {
		t.Errorf("%d connections, want 3 (one per call, each after the upstream closed the last)", n)
	}
}

func TestH1ConnectionClose(t *testing.T) {
	u, conns := h1Server(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Connection", "close")
		echoBody(w, r)
	})
	h := newTestH1(t)
	for i := range 5 {
		if got, err := post(t.Context(), h, u, "{}"); err != nil || got != "{}" {
			t.Fatalf("call %d: %q, %v", i, got, err)
		}
	}
	if n := conns.Load(); n != 5 {
		t.Errorf("%d connections, want 5", n)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	for host, l := range h.idle {
		if len(l) > 0 {
			t.Errorf("%d idle connections to %s kept after Connection: close", len(l), host)
		}
	}
}

// A body closed before its end leaves its connection unusable: it is
// closed, and the next call opens another.
func TestH1UnreadBodyClosesConnection(t *testing.T) {
	u, conns := h1Server(t, func(w http.ResponseWriter, r *http.Request) {
		w.Write(bytes.Repeat([]byte("x"), 64<<10))
	})
	h := newTestH1(t)
	req, _ := http.NewRequest(http.MethodPost, u, strings.NewReader("{}"))
	resp, err := h.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if _, err := resp.Body.Read(make([]byte, 1)); !errors.Is(err, http.ErrBodyReadAfterClose) {
		t.Errorf("read after close: %v", err)
	}
	got, err := post(t.Context(), h, u, "{}")
	if err != nil || len(got) != 64<<10 {
		t.Fatalf("next call: %d bytes, %v", len(got), err)
	}
	if n := conns.Load(); n != 2 {
		t.Errorf("%d connections, want 2", n)
	}
}

func TestH1ChunkedAnswer(t *testing.T) {
	u, conns := h1Server(t, func(w http.ResponseWriter, r *http.Request) {
		for i := range 5 {
			fmt.Fprintf(w, "part %d;", i)
			w.(http.Flusher).Flush()
		}
	})
	h := newTestH1(t)
	for range 3 {
		if got, err := post(t.Context(), h, u, "{}"); err != nil || got != "part 0;part 1;part 2;part 3;part 4;" {
			t.Fatalf("%q, %v", got, err)
		}
	}
	if n := conns.Load(); n != 1 {
		t.Errorf("%d connections, want 1", n)
	}
}

// Cancelling a call ends it at once with the context's error, ends the
// upstream's handling of it, and leaves the client usable.
func TestH1Cancel(t *testing.T) {
	upstreamDone := make(chan error, 1)
	u, _ := h1Server(t, func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("X-Hang") == "" {
			echoBody(w, r)
			return
		}
		io.ReadAll(r.Body) // as an MCP server does; net/http then watches the connection
		select {
		case <-r.Context().Done():
			upstreamDone <- r.Context().Err()
		case <-time.After(10 * time.Second):
			upstreamDone <- errors.New("the upstream's handler was never cancelled")
		}
	})
	h := newTestH1(t)
	if _, err := post(t.Context(), h, u, "{}"); err != nil { // a kept-alive connection
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, u, strings.NewReader("{}"))
	req.Header.Set("X-Hang", "1")
	start := time.Now()
	_, err := h.Do(req)
	var ue *url.Error
	if !errors.As(err, &ue) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("cancelled call: %v, want a *url.Error holding context.DeadlineExceeded", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("cancelled call returned after %s", d)
	}
	if err := <-upstreamDone; !errors.Is(err, context.Canceled) {
		t.Errorf("upstream handler: %v", err)
	}
	if got, err := post(t.Context(), h, u, `{"after":1}`); err != nil || got != `{"after":1}` {
		t.Fatalf("call after the cancelled one: %q, %v", got, err)
	}
}

// An upstream sending header lines without end gets an error, not the
// gateway's memory.
func TestH1EndlessHeader(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				io.WriteString(c, "HTTP/1.1 200 OK\r\n")
				line := []byte("X-Filler: " + strings.Repeat("y", 1000) + "\r\n")
				for {
					if _, err := c.Write(line); err != nil {
						return
					}
				}
			}()
		}
	}()
	h := newTestH1(t)
	_, err = post(t.Context(), h, "http://"+ln.Addr().String()+"/mcp", "{}")
	if !errors.Is(err, errH1HeaderTooLarge) {
		t.Fatalf("err = %v, want %v", err, errH1HeaderTooLarge)
	}
}

// Failures read as http.Client's.
func TestH1ErrorsAsHTTPClient(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	u := "http://" + ln.Addr().String() + "/mcp"
	ln.Close() // nothing listens there any more
	_, got := post(t.Context(), newTestH1(t), u, "{}")
	req, _ := http.NewRequest(http.MethodPost, u, strings.NewReader("{}"))
	_, want := http.DefaultClient.Do(req)
	if got == nil || want == nil || got.Error() != want.Error() {
		t.Errorf("h1: %v\nhttp.Client: %v", got, want)
	}
}

func TestH1Takes(t *testing.T) {
	h := newH1()
	for _, tc := range []struct {
		url  string
		want bool
	}{
		{"http://127.0.0.1:8080/mcp", true},
		{"http://upstream.internal/mcp", true},
		{"https://mcp.notion.com/mcp", false},
		{"http://user:pass@127.0.0.1/mcp", false},
	} {
		u, _ := url.Parse(tc.url)
		if got := h.takes(u); got != tc.want {
			t.Errorf("takes(%s) = %v, want %v", tc.url, got, tc.want)
		}
	}
	var none *h1
	if none.takes(&url.URL{Scheme: "http", Host: "x"}) {
		t.Error("a nil h1 takes calls")
	}
}

// testTarget is the direct calls' target of a conn to u, on a lane with
// h1.
func testTarget(t *testing.T, u string) *directTarget {
	lane := &httpLane{client: &http.Client{}, fast: newTestH1(t)}
	return lane.target(&launch{in: Integration{Upstream: Upstream{URL: u}}})
}

// Redirects are the http.Client's to follow, with the request's body.
func TestDirectTargetFollowsRedirect(t *testing.T) {
	u, _ := h1Server(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/mcp" {
			http.Redirect(w, r, "/moved", http.StatusTemporaryRedirect)
			return
		}
		echoBody(w, r)
	})
	target := testTarget(t, u)
	req, _ := http.NewRequest(http.MethodPost, u, strings.NewReader(`{"x":1}`))
	resp, err := target.send(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.Request.URL.Path != "/moved" || string(b) != `{"x":1}` {
		t.Errorf("answered from %s: %q", resp.Request.URL.Path, b)
	}
}

// TestDirectTargetEarlyAnswer: an upstream that answers a large call before
// reading it (an auth check refusing the token, which then never reads
// the body) gets its answer to the caller, as net/http's client gives it,
// not a broken pipe or a write stalled until the timeout: h1 takes only
// bodies that fit the socket's buffer whole.
func TestDirectTargetEarlyAnswer(t *testing.T) {
	u, _ := h1Server(t, func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("X-Auth") == "" {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		echoBody(w, r)
	})
	target := testTarget(t, u)
	// A kept-alive connection first, as a tenant's earlier calls leave one.
	req, _ := http.NewRequest(http.MethodPost, u, strings.NewReader(`{}`))
	req.Header.Set("X-Auth", "1")
	resp, err := target.send(req)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	for _, size := range []int{h1MaxBody / 2, 8 << 20} {
		ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, u, strings.NewReader(strings.Repeat("a", size)))
		resp, err := target.send(req)
		cancel()
		if err != nil || resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("%d-byte body: %v %v, want the upstream's 401", size, resp, err)
		}
		resp.Body.Close()
	}
}

// TestH1ClosesStale: idle connections unused for the idle timeout are
// closed by the pool's reaper (closeStale), not only when their host is
// used again; fresher ones stay.
func TestH1ClosesStale(t *testing.T) {
	u, _ := h1Server(t, echoBody)
	h := newTestH1(t)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			if _, err := post(t.Context(), h, u, "{}"); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	idle := func() (n int) {
		h.mu.Lock()
		defer h.mu.Unlock()
		for _, l := range h.idle {
			n += len(l)
		}
		return n
	}
	before := idle()
	if before == 0 {
		t.Fatal("no idle connections after the calls")
	}
	h.mu.Lock()
	var conns []net.Conn
	for _, l := range h.idle {
		for _, c := range l {
			conns = append(conns, c.nc)
		}
	}
	h.mu.Unlock()
	h.closeStale(time.Now()) // none is stale yet
	if idle() != before {
		t.Fatalf("closeStale closed fresh connections: %d of %d left", idle(), before)
	}
	h.closeStale(time.Now().Add(h.idleTimeout))
	if n := idle(); n != 0 {
		t.Fatalf("%d stale connections left", n)
	}
	for _, c := range conns {
		if _, err := c.Write([]byte("x")); err == nil {
			t.Fatal("a stale connection is still open")
		}
	}
	// And the next call dials afresh.
	if got, err := post(t.Context(), h, u, `{"after":1}`); err != nil || got != `{"after":1}` {
		t.Fatalf("after closeStale: %q %v", got, err)
	}
}
