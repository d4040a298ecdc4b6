package tools

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// lane is one way a tools/call goes to an upstream: mcp-go's client (the
// usual path) or bytes (the direct path).
type lane struct {
	name string
	call func(ctx context.Context, c *Conn, tool string, args map[string]any) error
}

var lanes = []lane{
	{"usual", func(ctx context.Context, c *Conn, tool string, args map[string]any) error {
		_, err := c.CallTool(ctx, callReq(tool, args, nil), nil)
		return err
	}},
	{"direct", func(ctx context.Context, c *Conn, tool string, args map[string]any) error {
		raw, _ := json.Marshal(args)
		if args == nil {
			raw = nil
		}
		_, err := c.CallDirect(ctx, DirectCall{Name: tool, Arguments: raw})
		return err
	}},
}

// gone reports whether pid has exited and been reaped (not merely
// stopped, nor a zombie).
func gone(pid int) bool {
	_, err := os.Stat("/proc/" + strconv.Itoa(pid))
	return errors.Is(err, os.ErrNotExist)
}

// TestStdioHung: a process that stops answering while its stdin still has
// room (SIGSTOP standing in for a deadlock) fails one call at the
// timeout; then its process is gone and the next call runs on a fresh
// one. Before, every call waited the timeout and the process stayed.
func TestStdioHung(t *testing.T) {
	t.Parallel()
	for _, l := range lanes {
		t.Run(l.name, func(t *testing.T) {
			t.Parallel()
			var logs lockedBuffer
			p := newTestPool(t, nil, &logs)
			in := envIntegration(t, nil)
			in.Timeout = 500 * time.Millisecond
			c := mustConn(t, p, "tenant-a", in, nil)
			if err := l.call(context.Background(), c, "env", nil); err != nil {
				t.Fatal(err)
			}
			if l.name == "direct" && !c.Direct() {
				t.Fatal("no direct calls to upstream-env")
			}
			pid := c.pid
			if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = syscall.Kill(pid, syscall.SIGKILL) })

			start := time.Now()
			err := l.call(context.Background(), c, "env", nil)
			var timeout *TimeoutError
			if !errors.As(err, &timeout) {
				t.Errorf("call to a stopped process = %v, want a *TimeoutError", err)
			}
			if d := time.Since(start); d > 4*time.Second {
				t.Errorf("the call took %s", d)
			}
			waitFor(t, "the hung process to be gone", func() bool { return gone(pid) })
			if !errors.Is(c.Err(), ErrUpstreamHung) {
				t.Errorf("Err() = %v, want ErrUpstreamHung", c.Err())
			}
			if !strings.Contains(logs.String(), `"msg":"upstream_hung"`) {
				t.Errorf("no upstream_hung in the log:\n%s", logs.String())
			}

			c2 := mustConn(t, p, "tenant-a", in, nil)
			if c2 == c || c2.pid == pid {
				t.Fatal("Conn returned the hung conn")
			}
			if err := l.call(context.Background(), c2, "env", nil); err != nil {
				t.Errorf("call on the fresh process: %v", err)
			}
		})
	}
}

// TestStdioSlowNotKilled: a call that times out on a process that answers
// other calls meanwhile, or answers a ping, leaves the process serving:
// it is slow on that call, not hung.
func TestStdioSlowNotKilled(t *testing.T) {
	t.Parallel()
	for _, l := range lanes {
		t.Run(l.name, func(t *testing.T) {
			t.Parallel()
			p := newTestPool(t, nil, nil)
			in := envIntegration(t, nil)
			in.Timeout = 700 * time.Millisecond
			c := mustConn(t, p, "tenant-a", in, nil)
			if err := l.call(context.Background(), c, "env", nil); err != nil {
				t.Fatal(err)
			}

			// One call sleeps past the timeout while others are answered.
			done := make(chan error, 1)
			go func() { done <- l.call(context.Background(), c, "block", map[string]any{"id": "busy-" + l.name}) }()
			var wg sync.WaitGroup
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					select {
					case err := <-done:
						done <- err
						return
					case <-time.After(100 * time.Millisecond):
						if err := l.call(context.Background(), c, "env", nil); err != nil {
							t.Errorf("a call beside the slow one: %v", err)
						}
					}
				}
			}()
			wg.Wait()
			if err := <-done; !errors.As(err, new(*TimeoutError)) {
				t.Errorf("slow call = %v, want a *TimeoutError", err)
			}

			// One call sleeps past the timeout alone: the ping is answered.
			if err := l.call(context.Background(), c, "block", map[string]any{"id": "alone-" + l.name}); !errors.As(err, new(*TimeoutError)) {
				t.Errorf("lone slow call = %v, want a *TimeoutError", err)
			}
			time.Sleep(200 * time.Millisecond)
			if c.Err() != nil || !processAlive(c.pid) {
				t.Fatalf("a slow but live upstream was ended: Err() = %v", c.Err())
			}
			if again := mustConn(t, p, "tenant-a", in, nil); again != c {
				t.Error("a slow but live upstream was replaced")
			}
			if err := l.call(context.Background(), c, "env", nil); err != nil {
				t.Errorf("call after the slow ones: %v", err)
			}
		})
	}
}

// TestHTTPHung: an HTTP upstream that accepts and never answers fails the
// call at its timeout; the session is dropped and the connection the call
// hung on is never used again: once the upstream answers again, the next
// call goes on a new session over another connection. Before, the conn
// kept its session, and a hung server's idle connections were reused.
func TestHTTPHung(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		legacy bool
		lane   lane
	}{
		{"2025-11-25", true, lanes[0]},
		{"2026-07-28/usual", false, lanes[0]},
		{"2026-07-28/direct", false, lanes[1]},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			u := newGoUpstream(t, tc.legacy)
			var mu sync.Mutex
			hungOn := map[string]bool{} // remote addresses of hung requests
			var reused []string
			hang := func(w http.ResponseWriter, r *http.Request) bool {
				mu.Lock()
				hungOn[r.RemoteAddr] = true
				mu.Unlock()
				// (The server sees the client go only once the body is read.)
				_, _ = io.Copy(io.Discard, r.Body)
				<-r.Context().Done() // accepted, never answered
				return true
			}
			answer := func(w http.ResponseWriter, r *http.Request) bool {
				mu.Lock()
				if hungOn[r.RemoteAddr] {
					reused = append(reused, r.RemoteAddr)
				}
				mu.Unlock()
				return false
			}
			u.failWith.Store(&answer)

			p := newTestPool(t, nil, nil)
			in := u.integration(nil)
			in.Timeout = 500 * time.Millisecond
			c := mustConn(t, p, "tenant-a", in, nil)
			if err := tc.lane.call(context.Background(), c, "whoami", nil); err != nil {
				t.Fatal(err)
			}
			if tc.lane.name == "direct" && !c.Direct() {
				t.Fatal("no direct calls to the upstream")
			}

			u.failWith.Store(&hang)
			start := time.Now()
			if err := tc.lane.call(context.Background(), c, "whoami", nil); !errors.As(err, new(*TimeoutError)) {
				t.Errorf("call to a hung upstream = %v, want a *TimeoutError", err)
			}
			if d := time.Since(start); d > 4*time.Second {
				t.Errorf("the call took %s", d)
			}
			waitFor(t, "the hung session to end", func() bool { return errors.Is(c.Err(), ErrUpstreamHung) })

			u.failWith.Store(&answer) // the upstream recovers
			_, _, sessionsBefore := u.snapshot()
			c2 := mustConn(t, p, "tenant-a", in, nil)
			if c2 == c {
				t.Fatal("Conn returned the hung session")
			}
			if err := tc.lane.call(context.Background(), c2, "whoami", nil); err != nil {
				t.Errorf("call after the upstream recovered: %v", err)
			}
			if _, _, sessions := u.snapshot(); tc.legacy && len(sessions) == len(sessionsBefore) {
				t.Errorf("no new session after the hung one: %v", sessions)
			}
			mu.Lock()
			defer mu.Unlock()
			if len(hungOn) == 0 {
				t.Fatal("no request hung")
			}
			if len(reused) > 0 {
				t.Errorf("connections a call hung on were used again: %v", reused)
			}
		})
	}
}

// TestHTTPSlowNotKilled: an HTTP upstream slow on one call, with nothing
// else in flight, keeps its session: it answers the probe. (Over
// 2026-07-28 a cancelled call's stream just ends, so the probe is the
// only thing it answers.)
func TestHTTPSlowNotKilled(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		legacy bool
		lane   lane
	}{
		{"2025-11-25", true, lanes[0]},
		{"2026-07-28/usual", false, lanes[0]},
		{"2026-07-28/direct", false, lanes[1]},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			u := newGoUpstream(t, tc.legacy)
			p := newTestPool(t, nil, nil)
			in := u.integration(nil)
			in.Timeout = 500 * time.Millisecond
			c := mustConn(t, p, "tenant-a", in, nil)
			if err := tc.lane.call(context.Background(), c, "block", nil); !errors.As(err, new(*TimeoutError)) {
				t.Errorf("slow call = %v, want a *TimeoutError", err)
			}
			time.Sleep(200 * time.Millisecond)
			if c.Err() != nil {
				t.Fatalf("a slow but live upstream was ended: %v", c.Err())
			}
			if err := tc.lane.call(context.Background(), c, "whoami", nil); err != nil {
				t.Errorf("call after the slow one: %v", err)
			}
		})
	}
}
