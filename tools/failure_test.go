package tools

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"syscall"
	"testing"
	"time"
)

// closedPort returns a loopback address nothing listens on.
func closedPort(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

// assertPublic checks that msg, an error an agent would see, names the
// integration and the kind and nothing of where: no address, port, URL or
// path; and that the log has the details.
func assertPublic(t *testing.T, msg, integration, kind string, logs *lockedBuffer, details ...string) {
	t.Helper()
	if !strings.Contains(msg, integration) || !strings.Contains(msg, kind) {
		t.Errorf("answer %q does not name the integration %q and the kind %q", msg, integration, kind)
	}
	for _, where := range []string{"127.0.0.1", "localhost", "http://", "https://", ".invalid", "/", "dial tcp", "transport error"} {
		if strings.Contains(msg, where) {
			t.Errorf("answer %q holds %q", msg, where)
		}
	}
	for _, f := range strings.FieldsFunc(msg, func(r rune) bool { return r < '0' || r > '9' }) {
		if len(f) >= 4 {
			t.Errorf("answer %q holds a number like a port: %s", msg, f)
		}
	}
	for _, d := range details {
		if logs != nil && !strings.Contains(logs.String(), d) {
			t.Errorf("the log lacks %q:\n%s", d, logs.String())
		}
	}
}

// TestFailuresSayWhatNotWhere: every kind of upstream failure, at the
// start and during a call, on the usual and the direct lane, reaches the
// caller as the integration and the kind, with the addresses in the log.
// Before, answers carried the transport's text: `transport error: Post
// "http://127.0.0.1:PORT/mcp": dial tcp 127.0.0.1:PORT: connect:
// connection refused`.
func TestFailuresSayWhatNotWhere(t *testing.T) {
	t.Parallel()
	refused := closedPort(t)
	tlsSrv := httptest.NewTLSServer(http.NotFoundHandler())
	t.Cleanup(tlsSrv.Close)
	tlsHost := strings.TrimPrefix(tlsSrv.URL, "https://")

	starts := []struct {
		name, kind string
		in         Integration
		details    []string // in the log
	}{
		{"refused", "unreachable", Integration{Name: "refusing", Upstream: Upstream{URL: "http://" + refused + "/mcp"}}, []string{refused, "connection refused"}},
		{"dns", "unreachable", Integration{Name: "nowhere", Upstream: Upstream{URL: "http://no-such-host.invalid/mcp"}}, []string{"no-such-host.invalid"}},
		{"tls", "unreachable", Integration{Name: "badtls", Upstream: Upstream{URL: tlsSrv.URL + "/mcp"}}, []string{tlsHost, "certificate"}},
		{"no command", "command could not be run", Integration{Name: "nocommand", Upstream: Upstream{Command: "/nonexistent/dir/mcp-server"}}, []string{"/nonexistent/dir/mcp-server"}},
		{"exits", "crashed", Integration{Name: "exits", Upstream: Upstream{Command: "/bin/sh", Args: []string{"-c", "echo oops >&2; exit 3"}}}, []string{"exit status 3"}},
	}
	for _, tc := range starts {
		t.Run("start/"+tc.name, func(t *testing.T) {
			t.Parallel()
			var logs lockedBuffer
			p := newTestPool(t, &PoolOptions{StartTimeout: 5 * time.Second}, &logs)
			_, err := p.Conn(context.Background(), "tenant-a", tc.in, nil)
			if err == nil {
				t.Fatal("Conn succeeded")
			}
			if !Public(err) {
				t.Errorf("Public(%v) = false", err)
			}
			assertPublic(t, err.Error(), tc.in.Name, tc.kind, &logs, tc.details...)
		})
	}

	// During a session: the upstream answers HTTP 500, goes away, takes
	// too long; a stdio process crashes.
	for _, l := range lanes {
		t.Run(l.name, func(t *testing.T) {
			t.Parallel()
			for _, tc := range []struct {
				name, kind string
				breakIt    func(t *testing.T, u *goUpstream)
				tool       string
			}{
				{"http 500", "HTTP 500", func(t *testing.T, u *goUpstream) {
					fail := func(w http.ResponseWriter, r *http.Request) bool {
						http.Error(w, "boom at "+r.Host+r.URL.Path, http.StatusInternalServerError)
						return true
					}
					u.failWith.Store(&fail)
				}, "whoami"},
				{"gone", "unreachable", func(t *testing.T, u *goUpstream) {
					u.Listener.Close()
					u.CloseClientConnections()
					time.Sleep(100 * time.Millisecond) // for the client to see its idle connections end
				}, "whoami"},
				{"timeout", "timed out", func(*testing.T, *goUpstream) {}, "block"},
			} {
				t.Run(tc.name, func(t *testing.T) {
					u := newGoUpstream(t, false)
					var logs lockedBuffer
					p := newTestPool(t, nil, &logs)
					in := u.integration(nil)
					in.Timeout = 300 * time.Millisecond
					c := mustConn(t, p, "tenant-a", in, nil)
					tc.breakIt(t, u)
					err := l.call(context.Background(), c, tc.tool, nil)
					if err == nil {
						t.Fatal("call succeeded")
					}
					if !Public(err) {
						t.Errorf("Public(%v) = false", err)
					}
					uu, _ := url.Parse(u.URL)
					details := []string{}
					if tc.name != "timeout" {
						details = append(details, uu.Host)
					}
					assertPublic(t, err.Error(), in.Name, tc.kind, &logs, details...)
				})
			}
			t.Run("crash", func(t *testing.T) {
				var logs lockedBuffer
				p := newTestPool(t, nil, &logs)
				in := envIntegration(t, nil)
				c := mustConn(t, p, "tenant-a", in, nil)
				if err := l.call(context.Background(), c, "env", nil); err != nil {
					t.Fatal(err)
				}
				errc := make(chan error, 1)
				go func() { errc <- l.call(context.Background(), c, "block", map[string]any{"id": "crash"}) }()
				waitFor(t, "block in flight", func() bool { busy, _ := c.idle(); return busy })
				time.Sleep(100 * time.Millisecond)
				if err := syscall.Kill(c.pid, syscall.SIGKILL); err != nil {
					t.Fatal(err)
				}
				err := <-errc
				if !errors.Is(err, ErrUpstreamExited) || !Public(err) {
					t.Errorf("call when the process died = %v, want a public ErrUpstreamExited", err)
				}
				assertPublic(t, err.Error(), in.Name, "crashed", &logs, "upstream_call_failed")
			})
		})
	}
}
