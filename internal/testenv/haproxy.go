package testenv

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// HAProxyCheckInterval is how often the load balancer HAProxy starts asks
// each backend for GET /readyz. One failed check (a refused connection, a
// timeout or any status but 200) takes the backend out; one good check
// puts it back. So a backend that stops being ready gets no new requests
// after at most one interval plus HAProxyCheckTimeout.
const HAProxyCheckInterval = 200 * time.Millisecond

// HAProxyCheckTimeout bounds one health check: long enough that a
// backend slowed by a loaded machine is not taken for dead.
const HAProxyCheckTimeout = time.Second

// haproxyStartTimeout bounds the wait for HAProxy to serve.
const haproxyStartTimeout = 15 * time.Second

// HAProxyBinary returns the path of Debian's haproxy (`make haproxy`, a
// dependency of `make test-deps`, installs it), failing tb when it is
// missing.
func HAProxyBinary(tb testing.TB) string {
	tb.Helper()
	for _, p := range []string{"haproxy", "/usr/sbin/haproxy"} {
		if bin, err := exec.LookPath(p); err == nil {
			return bin
		}
	}
	tb.Fatalf("haproxy is missing: run `make haproxy` (make test-deps does this; as root it runs apt-get install haproxy)")
	return ""
}

// HAProxy starts a real HAProxy on a free loopback port in front of
// backends (host:port each) and returns its address (host:port). It
// balances round robin with no affinity, each request on its own (a
// keep-alive client is spread too), takes a backend out while its GET
// /readyz fails (HAProxyCheckInterval), and retries a request whose
// connection a backend refused on another one. Its timeouts allow event
// streams that stay quiet for an hour. It returns once a GET /readyz
// through it answers 200, so at least one backend must be ready, and
// stops when tb ends.
func HAProxy(tb testing.TB, backends []string) (addr string) {
	tb.Helper()
	if len(backends) == 0 {
		tb.Fatal("testenv.HAProxy: no backends")
	}
	bin := HAProxyBinary(tb)
	dir := tb.TempDir()
	var lastErr error
	for range 3 { // the free port may be taken between finding and binding it
		addr, err := freeLoopbackAddr()
		if err != nil {
			tb.Fatal(err)
		}
		cfg := filepath.Join(dir, "haproxy.cfg")
		if err := os.WriteFile(cfg, []byte(haproxyConfig(addr, backends)), 0o600); err != nil {
			tb.Fatal(err)
		}
		if lastErr = startHAProxy(tb, bin, cfg, addr); lastErr == nil {
			return addr
		}
	}
	tb.Fatalf("haproxy did not start: %v", lastErr)
	return ""
}

// haproxyConfig is the configuration HAProxy serves addr with.
func haproxyConfig(addr string, backends []string) string {
	var b strings.Builder
	fmt.Fprintf(&b, `global
	maxconn 4096
	log stderr format raw daemon notice

defaults
	mode http
	log global
	option dontlognull
	timeout connect 1s
	timeout http-request 10s
	# Event streams (SSE) may stay quiet long; a tunnel (an upgraded
	# connection) likewise.
	timeout client 1h
	timeout server 1h
	timeout tunnel 1h
	timeout client-fin 1s
	timeout server-fin 1s
	# A connection refused by a dead backend is retried on another.
	retries 3
	option redispatch 1
	retry-on conn-failure empty-response

frontend gateway
	bind %s
	default_backend replicas

backend replicas
	balance roundrobin
	option httpchk GET /readyz
	http-check expect status 200
	timeout check %dms
	default-server check inter %dms fastinter %dms downinter %dms fall 1 rise 1
`, addr, HAProxyCheckTimeout.Milliseconds(), HAProxyCheckInterval.Milliseconds(),
		HAProxyCheckInterval.Milliseconds(), HAProxyCheckInterval.Milliseconds())
	for i, be := range backends {
		fmt.Fprintf(&b, "\tserver r%d %s\n", i, be)
	}
	return b.String()
}

// startHAProxy runs haproxy on cfg and waits until a GET /readyz through
// addr answers 200; on success it stops haproxy when tb ends.
func startHAProxy(tb testing.TB, bin, cfg, addr string) error {
	tb.Helper()
	cmd := exec.Command(bin, "-db", "-f", cfg) // -db: foreground, no daemon
	// Killed with the test binary, should it die before its cleanups.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	var stderr lockedBuffer
	cmd.Stdout, cmd.Stderr = &stderr, &stderr
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("starting %s: %w", bin, err)
	}
	exited := make(chan struct{})
	go func() {
		cmd.Wait()
		close(exited)
	}()
	stop := func() {
		cmd.Process.Signal(syscall.SIGTERM) // hard stop: close every connection
		select {
		case <-exited:
		case <-time.After(5 * time.Second):
			cmd.Process.Kill()
			<-exited
		}
	}
	if err := waitServing(addr, exited, &stderr); err != nil {
		stop()
		return err
	}
	tb.Cleanup(func() {
		stop()
		if tb.Failed() && stderr.Len() > 0 {
			tb.Logf("haproxy output:\n%s", stderr.String())
		}
	})
	return nil
}

// waitServing waits until a GET /readyz through the HAProxy at addr
// answers 200, or it exits.
func waitServing(addr string, exited <-chan struct{}, out *lockedBuffer) error {
	client := &http.Client{Timeout: time.Second}
	defer client.CloseIdleConnections()
	deadline := time.Now().Add(haproxyStartTimeout)
	for {
		select {
		case <-exited:
			return fmt.Errorf("haproxy exited:\n%s", out.String())
		default:
		}
		if resp, err := client.Get("http://" + addr + "/readyz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("no GET /readyz through haproxy answered 200 within %v (is a backend ready?):\n%s", haproxyStartTimeout, out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// freeLoopbackAddr returns a 127.0.0.1 address no one listens on now.
func freeLoopbackAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}
