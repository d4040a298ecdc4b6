package testenv

import (
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// replica is a tiny HTTP backend: GET / answers its name, GET /readyz 200
// or, once unready, 503.
type replica struct {
	name    string
	ln      net.Listener
	srv     *http.Server
	unready atomic.Bool
}

func startReplica(t *testing.T, name string) *replica {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &replica{name: name, ln: ln}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		if r.unready.Load() {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		io.WriteString(w, "ready")
	})
	mux.HandleFunc("GET /", func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, name) })
	r.srv = &http.Server{Handler: mux}
	go r.srv.Serve(ln)
	t.Cleanup(func() { r.srv.Close() })
	return r
}

func (r *replica) addr() string { return r.ln.Addr().String() }

// call sends GET / through the balancer on one keep-alive client and
// returns the replica that answered, or the failure.
func call(t *testing.T, c *http.Client, lb string) (string, error) {
	t.Helper()
	resp, err := c.Get("http://" + lb + "/")
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		return "", &statusError{resp.StatusCode}
	}
	return string(b), nil
}

type statusError struct{ code int }

func (e *statusError) Error() string { return http.StatusText(e.code) }

// untilGone calls through lb until name has answered none of the last
// window calls, and returns how long that took since start; it fails t on
// any failed call or after limit.
func untilGone(t *testing.T, c *http.Client, lb, name string, start time.Time, limit time.Duration) time.Duration {
	t.Helper()
	const window = 30
	lastSeen := start
	for since := 0; since < window; {
		got, err := call(t, c, lb)
		if err != nil {
			t.Fatalf("a call failed while %s was being taken out: %v", name, err)
		}
		if got == name {
			lastSeen, since = time.Now(), 0
		} else {
			since++
		}
		if time.Since(start) > limit {
			t.Fatalf("%s still answered %v after it stopped being ready", name, limit)
		}
		time.Sleep(5 * time.Millisecond)
	}
	return lastSeen.Sub(start)
}

func TestHAProxy(t *testing.T) {
	rs := []*replica{startReplica(t, "a"), startReplica(t, "b"), startReplica(t, "c")}
	lb := HAProxy(t, []string{rs[0].addr(), rs[1].addr(), rs[2].addr()})
	c := &http.Client{Timeout: 5 * time.Second} // keep-alive: one connection to haproxy
	defer c.CloseIdleConnections()

	// Round robin with no affinity: every replica answers, though every
	// call comes on the same client connection (evenly, 10 each, unless a
	// check timed out on a loaded machine).
	counts := map[string]int{}
	for range 30 {
		got, err := call(t, c, lb)
		if err != nil {
			t.Fatal(err)
		}
		counts[got]++
	}
	for _, r := range rs {
		if counts[r.name] < 5 {
			t.Fatalf("30 calls were spread %v, want about 10 each", counts)
		}
	}
	t.Logf("30 calls on one connection: %v", counts)

	// A replica whose /readyz answers 503 gets no new calls within a check
	// interval (plus a check's own time); nothing fails meanwhile.
	rs[1].unready.Store(true)
	took := untilGone(t, c, lb, "b", time.Now(), 5*time.Second)
	t.Logf("unready replica: last call reached it %v after /readyz turned 503 (check interval %v)", took, HAProxyCheckInterval)
	if bound := HAProxyCheckInterval + HAProxyCheckTimeout; took > bound {
		t.Errorf("the unready replica was still sent calls %v after it turned unready, want ≤ %v", took, bound)
	}

	// Ready again: it is put back.
	rs[1].unready.Store(false)
	deadline := time.Now().Add(5 * time.Second)
	for back := false; !back; {
		got, err := call(t, c, lb)
		if err != nil {
			t.Fatal(err)
		}
		back = got == "b"
		if time.Now().After(deadline) {
			t.Fatal("the replica ready again got no call within 5s")
		}
	}

	// A killed replica (its port refuses connections): its calls are
	// retried on the others at once, none fails, and the check takes it out.
	rs[2].srv.Close()
	killed := time.Now()
	var down time.Duration
	for i := 0; i < 60; i++ {
		got, err := call(t, c, lb)
		if err != nil {
			t.Fatalf("call %d after a replica was killed failed: %v", i, err)
		}
		if got == "c" {
			t.Fatalf("call %d was answered by the killed replica", i)
		}
		time.Sleep(5 * time.Millisecond)
	}
	down = time.Since(killed)
	t.Logf("killed replica: 60 calls over %v, none failed", down.Round(time.Millisecond))
}

func TestHAProxyConfig(t *testing.T) {
	cfg := haproxyConfig("127.0.0.1:1", []string{"127.0.0.1:2", "127.0.0.1:3"})
	for _, want := range []string{
		"balance roundrobin", "option httpchk GET /readyz", "timeout tunnel 1h",
		"server r0 127.0.0.1:2", "server r1 127.0.0.1:3", "bind 127.0.0.1:1",
	} {
		if !strings.Contains(cfg, want) {
			t.Errorf("config lacks %q:\n%s", want, cfg)
		}
	}
	for _, never := range []string{"cookie", "stick", "balance source", "hash-type"} {
		if strings.Contains(cfg, never) {
			t.Errorf("config has %q (affinity):\n%s", never, cfg)
		}
	}
}
