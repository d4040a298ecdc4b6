package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	gocmp "github.com/google/go-cmp/cmp"
	"github.com/mark3labs/mcp-go/mcp"

	"github.com/connectors-gateway/connectors/internal/testenv"
)

// startServe runs "connectors serve" on a free port with the gateway's
// environment and returns its address, cancel (the signal) and the channel
// of Run's result. Unlike start, it leaves Close to the test's end, so
// that a test can see what Run itself stopped.
func (g *gateway) startServe() (addr string, signal context.CancelFunc, done <-chan error) {
	g.t.Helper()
	m, _ := g.main("")
	ready := make(chan string, 1)
	m.Listening = func(addr string) { ready <- addr }
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- m.Run(ctx, []string{"serve", "--addr", "127.0.0.1:0"}) }()
	g.t.Cleanup(func() { cancel(); _ = m.Close() })
	select {
	case g.addr = <-ready:
	case err := <-errc:
		g.t.Fatalf("serve ended early: %v\n%s", err, g.stderr)
	case <-time.After(30 * time.Second):
		g.t.Fatal("serve did not start")
	}
	return g.addr, cancel, errc
}

// TestGracefulDrain: on the signal, calls in flight on both eras that end
// within the drain time get their results, those still running at its end
// get an error that says the gateway is shutting down, a new request gets
// 503, Run returns nil and no upstream process is left.
func TestGracefulDrain(t *testing.T) {
	marker := "drain-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	const drainTime = 4 * time.Second
	g := newGatewayWithCredentials(t, map[string]string{"CONNECTORS_DRAIN_TIMEOUT": drainTime.String()},
		envIntegration(t, "probe", marker, ""))
	addr, signal, done := g.startServe()

	type outcome struct {
		name string
		text string
		err  error
	}
	results := make(chan outcome, 10)
	var wg sync.WaitGroup
	for _, e := range eras {
		c := g.dial("tenant-a", nil, e.opts...)
		mustCall(t, c, "probe_cancelled", nil) // the upstream process runs
		for i := range 2 {
			wg.Go(func() { // done within the drain
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				defer cancel()
				res, err := call(ctx, c, "everything_trigger-long-running-operation", map[string]any{"duration": 2, "steps": 1})
				o := outcome{name: fmt.Sprintf("%s short %d", e.name, i), err: err}
				if err == nil {
					o.text = toolText(t, res)
				}
				results <- o
			})
		}
		wg.Go(func() { // still running when the drain ends
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			res, err := call(ctx, c, "probe_block", map[string]any{"id": "drain-" + e.name})
			o := outcome{name: e.name + " long", err: err}
			if err == nil {
				o.text = toolText(t, res)
			}
			results <- o
		})
		wg.Go(func() { // still running, its answer an event stream (progress)
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			res, err := c.CallTool(ctx, mcp.CallToolRequest{Params: mcp.CallToolParams{
				Name:      "everything_trigger-long-running-operation",
				Arguments: map[string]any{"duration": 20, "steps": 40},
				Meta:      &mcp.Meta{ProgressToken: "drain-" + e.name},
			}})
			o := outcome{name: e.name + " streaming long", err: err}
			if err == nil {
				o.text = toolText(t, res)
			}
			results <- o
		})
	}
	pid := waitMarkedProcess(t, marker, 0)
	time.Sleep(500 * time.Millisecond) // the calls reach their upstreams
	signalled := time.Now()
	signal()
	time.Sleep(300 * time.Millisecond)

	// A new request during the drain.
	r, _ := http.NewRequest("POST", "http://"+addr+"/mcp", strings.NewReader(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{}},"name":"everything_echo","arguments":{"message":"late"}}}`))
	r.Header.Set("Content-Type", "application/json")
	r.Header.Set("Accept", "application/json, text/event-stream")
	r.Header.Set("MCP-Protocol-Version", "2026-07-28")
	r.Header.Set("Mcp-Method", "tools/call")
	r.Header.Set("Mcp-Name", "everything_echo")
	r.Header.Set("Authorization", "Bearer "+g.keys["tenant-a"])
	if resp, err := http.DefaultClient.Do(r); err != nil {
		t.Errorf("a new request during the drain: %v, want 503", err)
	} else {
		raw, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(string(raw), "Shutting down") {
			t.Errorf("a new request during the drain: %d %s, want 503 Shutting down", resp.StatusCode, raw)
		}
	}

	wg.Wait()
	close(results)
	for o := range results {
		t.Logf("%s: %.80q %v", o.name, o.text, o.err)
		switch long := strings.HasSuffix(o.name, "long"); {
		case !long && (o.err != nil || !strings.Contains(o.text, "Long running operation completed")):
			t.Errorf("%s, done within the drain: %q, %v; want its result", o.name, o.text, o.err)
		case long && (o.err == nil || !strings.Contains(o.err.Error(), "Shutting down")):
			t.Errorf("%s, running at the drain's end: %q, %v; want an error saying the gateway is shutting down", o.name, o.text, o.err)
		}
	}
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("serve after the signal: %v, want nil", err)
		}
	case <-time.After(drainTime + 10*time.Second):
		t.Fatal("serve did not return after the drain")
	}
	if took := time.Since(signalled); took > drainTime+6*time.Second {
		t.Errorf("serve took %v to stop, drain time %v", took, drainTime)
	}
	if p := markedProcess(marker); p != 0 {
		t.Errorf("upstream process %d (first %d) still runs after serve returned", p, pid)
	}
	g.assertNoSecrets()
}

// TestHTTPTimeouts: with the timeouts set short, a body or headers sent a
// little at a time, a connection that sends nothing and an idle keep-alive
// connection are closed once they pass,
// while calls longer than both, on both eras, get their answers.
func TestHTTPTimeouts(t *testing.T) {
	const timeout = 300 * time.Millisecond
	g := newGatewayWithEnv(t, map[string]string{
		"CONNECTORS_HTTP_READ_TIMEOUT":  timeout.String(),
		"CONNECTORS_HTTP_WRITE_TIMEOUT": timeout.String(),
		"CONNECTORS_HTTP_IDLE_TIMEOUT":  timeout.String(),
	})
	addr := g.serve()

	// closedWithin reports how long the gateway took to close conn (5s:
	// it did not).
	closedWithin := func(conn net.Conn) time.Duration {
		start := time.Now()
		_ = conn.SetReadDeadline(start.Add(5 * time.Second))
		if _, err := io.Copy(io.Discard, conn); err != nil {
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				return 5 * time.Second
			}
		}
		return time.Since(start)
	}

	t.Run("slow body", func(t *testing.T) {
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		fmt.Fprintf(conn, "POST /mcp HTTP/1.1\r\nHost: %s\r\nAuthorization: Bearer %s\r\nContent-Type: application/json\r\nAccept: application/json, text/event-stream\r\nContent-Length: 2000\r\n\r\n{", addr, g.keys["tenant-a"])
		stop := make(chan struct{})
		defer close(stop)
		go func() {
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
		}()
		if d := closedWithin(conn); d > timeout+time.Second {
			t.Errorf("a body at 10 bytes/s held its connection %v; read timeout %v", d, timeout)
		}
	})
	t.Run("slow headers", func(t *testing.T) {
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		stop := make(chan struct{})
		defer close(stop)
		go func() {
			fmt.Fprintf(conn, "POST /mcp HTTP/1.1\r\nHost: %s\r\n", addr)
			for {
				select {
				case <-stop:
					return
				case <-time.After(100 * time.Millisecond):
					if _, err := conn.Write([]byte("X-Slow: 1\r\n")); err != nil {
						return
					}
				}
			}
		}()
		if d := closedWithin(conn); d > timeout+time.Second {
			t.Errorf("headers sent a line at a time held the connection %v; read timeout %v", d, timeout)
		}
	})
	t.Run("silent connection", func(t *testing.T) {
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		if d := closedWithin(conn); d > timeout+time.Second {
			t.Errorf("a connection that sends nothing held %v; read timeout %v", d, timeout)
		}
	})
	t.Run("idle keep-alive", func(t *testing.T) {
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		fmt.Fprintf(conn, "GET /healthz HTTP/1.1\r\nHost: %s\r\n\r\n", addr)
		buf := make([]byte, 4096)
		_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		if n, err := conn.Read(buf); err != nil || !strings.Contains(string(buf[:n]), "200 OK") {
			t.Fatalf("GET /healthz: %q %v", buf[:n], err)
		}
		if d := closedWithin(conn); d > timeout+time.Second {
			t.Errorf("an idle keep-alive connection held %v; idle timeout %v", d, timeout)
		}
	})
	for _, e := range eras {
		t.Run("long call "+e.name, func(t *testing.T) {
			c := g.dial("tenant-a", nil, e.opts...)
			got := mustCall(t, c, "everything_trigger-long-running-operation", map[string]any{"duration": 1.5, "steps": 1})
			if !strings.Contains(got, "completed") {
				t.Errorf("a call of 1.5s, timeouts %v: %q, want its answer", timeout, got)
			}
		})
	}
	g.assertNoSecrets()
}

// TestSIGTERM: the built binary, sent SIGTERM with a call in flight on
// each era, answers both and exits 0.
func TestSIGTERM(t *testing.T) {
	g := newGatewayWithEnv(t, map[string]string{"CONNECTORS_DRAIN_TIMEOUT": "10s"})
	bin := testenv.Build(t, "./cmd/connectors")
	cmd := exec.Command(bin, "serve", "--addr", "127.0.0.1:0")
	for k, v := range g.env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill() })
	var logs lockedBuffer
	drained := make(chan struct{}) // stderr read to its end: Wait may be called
	listening := gatewayLog(stderr, &logs, drained)
	select {
	case g.addr = <-listening:
	case <-time.After(30 * time.Second):
		t.Fatalf("the gateway did not start\n%s", logs.String())
	}

	var wg sync.WaitGroup
	for _, e := range eras {
		c := g.dial("tenant-a", nil, e.opts...)
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			res, err := call(ctx, c, "everything_trigger-long-running-operation", map[string]any{"duration": 2, "steps": 1})
			if err != nil || !strings.Contains(toolText(t, res), "completed") {
				t.Errorf("%s: a call in flight at SIGTERM: %v %v, want its result", e.name, res, err)
			}
		})
	}
	time.Sleep(500 * time.Millisecond)
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	exited := make(chan error, 1)
	go func() { <-drained; exited <- cmd.Wait() }() // Wait closes the pipe: only once it was read
	select {
	case err := <-exited:
		if err != nil {
			t.Errorf("after SIGTERM: %v, want exit status 0\n%s", err, logs.String())
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the gateway did not exit after SIGTERM")
	}
	if !strings.Contains(logs.String(), `"gateway_stopped"`) {
		t.Errorf("no gateway_stopped in the log:\n%s", logs.String())
	}
}

// TestTimeoutsFromEnv: the HTTP timeouts and the drain time come from the
// environment, with their defaults; a value that is not one is refused.
func TestTimeoutsFromEnv(t *testing.T) {
	type timeouts struct{ Read, Write, Idle, Drain, SessionMaxAge time.Duration }
	of := func(env map[string]string) (timeouts, error) {
		c, err := configFromEnv(func(k string) string { return env[k] })
		return timeouts{c.HTTPReadTimeout, c.HTTPWriteTimeout, c.HTTPIdleTimeout, c.DrainTimeout, c.SessionMaxAge}, err
	}
	for _, c := range []struct {
		env  map[string]string
		want timeouts
	}{
		{nil, timeouts{15 * time.Second, 15 * time.Second, 20 * time.Second, 25 * time.Second, 0}}, // 0: server.DefaultSessionMaxAge
		{map[string]string{
			"CONNECTORS_HTTP_READ_TIMEOUT": "1m", "CONNECTORS_HTTP_WRITE_TIMEOUT": "2s",
			"CONNECTORS_HTTP_IDLE_TIMEOUT": "90s", "CONNECTORS_DRAIN_TIMEOUT": "0s",
			"CONNECTORS_SESSION_MAX_AGE": "8h",
		}, timeouts{time.Minute, 2 * time.Second, 90 * time.Second, 0, 8 * time.Hour}},
	} {
		got, err := of(c.env)
		if err != nil {
			t.Fatalf("%v: %v", c.env, err)
		}
		if diff := gocmp.Diff(c.want, got); diff != "" {
			t.Errorf("%v: (-want +got)\n%s", c.env, diff)
		}
	}
	for _, env := range []map[string]string{
		{"CONNECTORS_HTTP_READ_TIMEOUT": "0s"},
		{"CONNECTORS_HTTP_WRITE_TIMEOUT": "1ms"},
		{"CONNECTORS_HTTP_IDLE_TIMEOUT": "soon"},
		{"CONNECTORS_DRAIN_TIMEOUT": "-1s"},
		{"CONNECTORS_DRAIN_TIMEOUT": "later"},
		{"CONNECTORS_SESSION_MAX_AGE": "30s"},
		{"CONNECTORS_SESSION_MAX_AGE": "forever"},
	} {
		if _, err := of(env); err == nil {
			t.Errorf("%v: accepted", env)
		}
	}
}
