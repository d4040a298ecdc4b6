package tools

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/mark3labs/mcp-go/mcp"
)

func TestEverythingStdio(t *testing.T) {
	t.Parallel()
	testEverything(t, everythingStdio(t))
}

func TestEverythingHTTP(t *testing.T) {
	t.Parallel()
	testEverything(t, everythingHTTP(t))
}

// testEverything runs the conn contract against server-everything.
func testEverything(t *testing.T, in Integration) {
	p := newTestPool(t, nil, nil)
	ctx := context.Background()
	c := mustConn(t, p, "tenant-a", in, nil)

	t.Run("tools", func(t *testing.T) {
		tools, err := c.Tools(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, tool := range tools {
			names = append(names, tool.Name)
		}
		for _, want := range []string{"echo", "trigger-long-running-operation", "get-sum"} {
			if !slices.Contains(names, want) {
				t.Errorf("tools %v lack %q", names, want)
			}
		}
	})

	t.Run("echo", func(t *testing.T) {
		res, err := c.CallTool(ctx, callReq("echo", map[string]any{"message": "hi"}, nil), nil)
		if err != nil {
			t.Fatal(err)
		}
		if got := text(t, res); got != "Echo: hi" || res.IsError {
			t.Errorf("echo = %q (isError %v), want \"Echo: hi\"", got, res.IsError)
		}
		// The same conn is reused.
		if again := mustConn(t, p, "tenant-a", in, nil); again != c {
			t.Error("a second Conn started another session")
		}
	})

	t.Run("structured result unchanged", func(t *testing.T) {
		res, err := c.CallTool(ctx, callReq("get-structured-content", map[string]any{"location": "New York"}, nil), nil)
		if err != nil {
			t.Fatal(err)
		}
		if res.StructuredContent == nil {
			t.Errorf("structuredContent lost: %+v", res)
		}
	})

	t.Run("progress", func(t *testing.T) {
		// Two concurrent calls on one conn, each with its own token (one a
		// string, one a number, as agents send either).
		tokens := []mcp.ProgressToken{"agent-token", int64(42)}
		relays := []*recorder{{}, {}}
		var wg sync.WaitGroup
		for i := range tokens {
			wg.Add(1)
			go func() {
				defer wg.Done()
				args := map[string]any{"duration": 0.6, "steps": 3}
				res, err := c.CallTool(ctx, callReq("trigger-long-running-operation", args, tokens[i]), relays[i])
				if err != nil {
					t.Errorf("call %d: %v", i, err)
					return
				}
				if !strings.Contains(text(t, res), "completed") {
					t.Errorf("call %d: %q", i, text(t, res))
				}
			}()
		}
		wg.Wait()
		for i, r := range relays {
			progress, _ := r.got()
			want := []mcp.ProgressNotificationParams{
				{ProgressToken: tokens[i], Progress: 1, Total: 3},
				{ProgressToken: tokens[i], Progress: 2, Total: 3},
				{ProgressToken: tokens[i], Progress: 3, Total: 3},
			}
			if diff := cmp.Diff(want, progress); diff != "" {
				t.Errorf("call %d progress (-want +got):\n%s", i, diff)
			}
		}
	})

	t.Run("cancel", func(t *testing.T) {
		ctx, cancel := context.WithCancel(ctx)
		time.AfterFunc(300*time.Millisecond, cancel)
		start := time.Now()
		_, err := c.CallTool(ctx, callReq("trigger-long-running-operation", map[string]any{"duration": 10, "steps": 10}, nil), nil)
		if !errors.Is(err, context.Canceled) || err != context.Canceled {
			t.Errorf("CallTool after cancel = %v, want context.Canceled", err)
		}
		if d := time.Since(start); d > 2*time.Second {
			t.Errorf("CallTool returned %s after the cancel", d)
		}
		// The conn still works.
		if _, err := c.CallTool(context.Background(), callReq("echo", map[string]any{"message": "after"}, nil), nil); err != nil {
			t.Errorf("echo after a cancelled call: %v", err)
		}
	})

	t.Run("timeout", func(t *testing.T) {
		short := in
		short.Timeout = 300 * time.Millisecond
		// A changed timeout is a changed integration: a new conn.
		c := mustConn(t, p, "tenant-timeout", short, nil)
		start := time.Now()
		_, err := c.CallTool(ctx, callReq("trigger-long-running-operation", map[string]any{"duration": 10, "steps": 10}, nil), nil)
		var te *TimeoutError
		if !errors.As(err, &te) || err.Error() != "upstream everything timed out: it did not answer within 300ms" {
			t.Errorf("CallTool = %v, want upstream everything timed out: it did not answer within 300ms", err)
		}
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("errors.Is(%v, context.DeadlineExceeded) = false", err)
		}
		if d := time.Since(start); d > 2*time.Second {
			t.Errorf("timeout took %s", d)
		}
		if _, err := c.CallTool(ctx, callReq("echo", map[string]any{"message": "after"}, nil), nil); err != nil {
			t.Errorf("echo after a timed-out call: %v", err)
		}
	})
}

func TestStdioCrash(t *testing.T) {
	t.Parallel()
	in := everythingStdio(t)
	p := newTestPool(t, nil, nil)
	c := mustConn(t, p, "tenant-a", in, nil)

	errc := make(chan error, 1)
	go func() {
		_, err := c.CallTool(context.Background(), callReq("trigger-long-running-operation", map[string]any{"duration": 20, "steps": 20}, nil), nil)
		errc <- err
	}()
	time.Sleep(300 * time.Millisecond)
	if err := syscall.Kill(c.pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-errc:
		if !errors.Is(err, ErrUpstreamExited) {
			t.Errorf("call in flight when the process died = %v, want ErrUpstreamExited", err)
		}
		t.Logf("in-flight call: %v", err)
	case <-time.After(3 * time.Second):
		t.Fatal("call in flight when the process died did not return")
	}
	if !errors.Is(c.Err(), ErrUpstreamExited) {
		t.Errorf("Err() = %v, want ErrUpstreamExited", c.Err())
	}
	if _, err := c.CallTool(context.Background(), callReq("echo", map[string]any{"message": "x"}, nil), nil); !errors.Is(err, ErrUpstreamExited) {
		t.Errorf("call on the dead conn = %v, want ErrUpstreamExited", err)
	}

	// The next Conn starts a new process.
	c2 := mustConn(t, p, "tenant-a", in, nil)
	if c2 == c || c2.pid == c.pid {
		t.Fatal("Conn returned the dead conn")
	}
	res, err := c2.CallTool(context.Background(), callReq("echo", map[string]any{"message": "again"}, nil), nil)
	if err != nil || text(t, res) != "Echo: again" {
		t.Errorf("echo on the restarted conn = %v, %v", res, err)
	}
}

func TestStdioCancelReachesUpstream(t *testing.T) {
	t.Parallel()
	p := newTestPool(t, nil, nil)
	c := mustConn(t, p, "tenant-a", envIntegration(t, nil), nil)
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(200*time.Millisecond, cancel)
	start := time.Now()
	if _, err := c.CallTool(ctx, callReq("block", map[string]any{"id": "call-1"}, nil), nil); err != context.Canceled {
		t.Errorf("CallTool = %v, want context.Canceled", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("CallTool returned %s after the cancel", d)
	}
	// Only notifications/cancelled can cancel the upstream's handler.
	deadline := time.Now().Add(3 * time.Second)
	for {
		res, err := c.CallTool(context.Background(), callReq("cancelled", nil, nil), nil)
		if err != nil {
			t.Fatal(err)
		}
		if text(t, res) == "call-1" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("upstream saw no notifications/cancelled: cancelled = %q", text(t, res))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestStdioEnvIsolation(t *testing.T) {
	// Not parallel: t.Setenv.
	t.Setenv("CONNECTORS_TEST_GATEWAY_SECRET", "gateway-secret-value")
	t.Setenv("LANG", "C.UTF-8")
	p := newTestPool(t, nil, nil)
	in := envIntegration(t, map[string]string{"MY_TOKEN": "{{access_token}}", "TEAM": "{{extra.team_id}}", "HOME": "/from-template"})
	c := mustConn(t, p, "tenant-a", in, map[string]string{"access_token": "tok-tenant-a", "extra.team_id": "T42"})
	res, err := c.CallTool(context.Background(), callReq("env", map[string]any{"hex": true}, nil), nil)
	if err != nil {
		t.Fatal(err)
	}
	env := unhexEnv(t, text(t, res))
	for _, want := range []string{"MY_TOKEN=tok-tenant-a", "TEAM=T42", "LANG=C.UTF-8", "HOME=/from-template"} {
		if !slices.Contains(env, want) {
			t.Errorf("child env lacks %s: %v", want, env)
		}
	}
	for _, kv := range env {
		name, _, _ := strings.Cut(kv, "=")
		if strings.Contains(kv, "gateway-secret-value") {
			t.Errorf("child sees the gateway's secret: %s", kv)
		}
		if !slices.Contains([]string{"PATH", "HOME", "LANG", "TZ", "TMPDIR", "MY_TOKEN", "TEAM"}, name) {
			t.Errorf("child env has %s, which is neither allowlisted nor templated", name)
		}
	}
}

func TestCredentialChangeReplacesConn(t *testing.T) {
	t.Parallel()
	var logs lockedBuffer
	p := newTestPool(t, nil, &logs)
	in := envIntegration(t, map[string]string{"MY_TOKEN": "{{access_token}}"})
	envOf := func(c *Conn) string {
		res, err := c.CallTool(context.Background(), callReq("env", map[string]any{"hex": true}, nil), nil)
		if err != nil {
			t.Fatal(err)
		}
		return strings.Join(unhexEnv(t, text(t, res)), "\n")
	}
	old := mustConn(t, p, "tenant-a", in, map[string]string{"access_token": "tok-first-aaaa"})
	if !strings.Contains(envOf(old), "MY_TOKEN=tok-first-aaaa") {
		t.Fatal("first token not in the child's env")
	}
	if same := mustConn(t, p, "tenant-a", in, map[string]string{"access_token": "tok-first-aaaa"}); same != old {
		t.Error("same credential, yet a new conn")
	}
	c := mustConn(t, p, "tenant-a", in, map[string]string{"access_token": "tok-second-bbbb"})
	if c == old {
		t.Fatal("credential changed, yet the same conn")
	}
	if !strings.Contains(envOf(c), "MY_TOKEN=tok-second-bbbb") {
		t.Error("new token not in the new child's env")
	}
	waitFor(t, "old conn closed", func() bool { return errors.Is(old.Err(), ErrConnClosed) })
	waitFor(t, "old process gone", func() bool { return !processAlive(old.pid) })
	if _, err := old.CallTool(context.Background(), callReq("env", map[string]any{"hex": true}, nil), nil); !errors.Is(err, ErrConnClosed) {
		t.Errorf("call on the replaced conn = %v, want ErrConnClosed", err)
	}
	// Another tenant has its own conn.
	other := mustConn(t, p, "tenant-b", in, map[string]string{"access_token": "tok-other-cccc"})
	if other == c {
		t.Error("two tenants share a conn")
	}
	for _, tok := range []string{"tok-first-aaaa", "tok-second-bbbb", "tok-other-cccc"} {
		if strings.Contains(logs.String(), tok) {
			t.Errorf("logs contain the token %s:\n%s", tok, logs.String())
		}
	}
}

func TestMissingTemplateValue(t *testing.T) {
	t.Parallel()
	p := newTestPool(t, nil, nil)
	in := envIntegration(t, map[string]string{"TEAM": "{{extra.team_id}}"})
	_, err := p.Conn(context.Background(), "tenant-a", in, map[string]string{"access_token": "tok-xyz-123"})
	if err == nil || err.Error() != `integration "envprobe": upstream.env.TEAM: no value for placeholder {{extra.team_id}}` {
		t.Errorf("Conn without extra.team_id = %v", err)
	}
}

func TestStartFailure(t *testing.T) {
	t.Parallel()
	p := newTestPool(t, nil, nil)
	in := Integration{Name: "broken", Upstream: Upstream{Command: "/nonexistent/mcp-server", Env: map[string]string{"T": "{{access_token}}"}}}
	_, err := p.Conn(context.Background(), "tenant-a", in, map[string]string{"access_token": "tok-secret-999"})
	if err == nil || !strings.Contains(err.Error(), "starting upstream broken") || strings.Contains(err.Error(), "tok-secret-999") {
		t.Errorf("Conn = %v", err)
	}
	// A process that exits at once: the handshake fails promptly.
	in = Integration{Name: "exits", Upstream: Upstream{Command: "/bin/sh", Args: []string{"-c", "echo oops >&2; exit 3"}}}
	start := time.Now()
	_, err = p.Conn(context.Background(), "tenant-a", in, nil)
	if err == nil || !errors.Is(err, ErrUpstreamExited) {
		t.Errorf("Conn to a process that exits = %v, want ErrUpstreamExited", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("failing start took %s", d)
	}
}

func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for: %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestLogsGoToEveryCallInFlight(t *testing.T) {
	t.Parallel()
	p := newTestPool(t, nil, nil)
	c := mustConn(t, p, "tenant-a", envIntegration(t, nil), nil)
	blocked, logging := &recorder{}, &recorder{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_, _ = c.CallTool(ctx, callReq("block", map[string]any{"id": "b"}, nil), blocked)
	}()
	waitFor(t, "block in flight", func() bool { busy, _ := c.idle(); return busy })
	if _, err := c.CallTool(context.Background(), callReq("log", map[string]any{"message": "hello"}, nil), logging); err != nil {
		t.Fatal(err)
	}
	cancel()
	<-done
	for name, r := range map[string]*recorder{"block": blocked, "log": logging} {
		_, logs := r.got()
		if diff := cmp.Diff([]string{"info upstream-env hello"}, logs); diff != "" {
			t.Errorf("%s call's relay logs (-want +got):\n%s", name, diff)
		}
	}
	// With no call in flight, a log has nowhere to go (and must not panic).
	if _, err := c.CallTool(context.Background(), callReq("log", map[string]any{"message": "alone"}, nil), nil); err != nil {
		t.Fatal(err)
	}
}

// unhexEnv decodes the env tool's hex output into NAME=value lines.
func unhexEnv(t *testing.T, out string) []string {
	t.Helper()
	var env []string
	for _, kv := range strings.Split(out, "\n") {
		name, value, _ := strings.Cut(kv, "=")
		b, err := hex.DecodeString(value)
		if err != nil {
			t.Fatalf("env tool output %q: %v", kv, err)
		}
		env = append(env, name+"="+string(b))
	}
	return env
}

// TestStdioStuck: a process that stops reading its stdin blocks the
// gateway's write once the pipe's buffer is full, and every call behind
// it. After the integration's timeout the connection ends
// (ErrUpstreamStuck), the calls return, and the next Conn starts the
// process again. Before, they waited for ever: a write does not observe
// its call's context.
func TestStdioStuck(t *testing.T) {
	t.Parallel()
	p := newTestPool(t, nil, nil)
	in := envIntegration(t, nil)
	in.Timeout = 500 * time.Millisecond
	c := mustConn(t, p, "tenant-a", in, nil)
	if _, err := c.CallTool(context.Background(), callReq("deaf", nil, nil), nil); err != nil {
		t.Fatal(err)
	}
	if !c.Direct() {
		t.Fatal("no direct calls to upstream-env")
	}
	big := strings.Repeat("x", 1<<20) // more than a pipe holds
	errs := make(chan error, 2)
	go func() { // the usual way (mcp-go's transport writes)
		_, err := c.CallTool(context.Background(), callReq("env", map[string]any{"pad": big}, nil), nil)
		errs <- err
	}()
	go func() { // the direct way
		_, err := c.CallDirect(context.Background(), DirectCall{Name: "env", Arguments: json.RawMessage(`{"pad":"` + big + `"}`)})
		errs <- err
	}()
	for range 2 {
		select {
		case err := <-errs:
			var timeout *TimeoutError
			if !errors.As(err, &timeout) && !errors.Is(err, ErrUpstreamStuck) {
				t.Errorf("call to a process that does not read = %v", err)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("a call to a process that does not read its input did not return")
		}
	}
	waitFor(t, "the stuck conn to end", func() bool { return errors.Is(c.Err(), ErrUpstreamStuck) })
	c2 := mustConn(t, p, "tenant-a", in, nil)
	if c2 == c || c2.pid == c.pid {
		t.Fatal("Conn returned the stuck conn")
	}
	if _, err := c2.CallTool(context.Background(), callReq("env", nil, nil), nil); err != nil {
		t.Errorf("call on the restarted conn: %v", err)
	}
}
