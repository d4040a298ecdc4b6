package tools

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestPoolConcurrentFirstCallsShareOneStart(t *testing.T) {
	t.Parallel()
	p := newTestPool(t, nil, nil)
	in := envIntegration(t, nil)
	conns := make([]*Conn, 10)
	var wg sync.WaitGroup
	for i := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := p.Conn(context.Background(), "tenant-a", in, nil)
			if err != nil {
				t.Error(err)
				return
			}
			conns[i] = c
		}()
	}
	wg.Wait()
	for i, c := range conns {
		if c != conns[0] {
			t.Errorf("conn %d differs from conn 0", i)
		}
	}
	if n := p.starts.Load(); n != 1 {
		t.Errorf("%d upstreams started, want 1", n)
	}
}

func TestPoolEvictsLeastRecentlyUsed(t *testing.T) {
	t.Parallel()
	p := newTestPool(t, &PoolOptions{MaxConns: 2}, nil)
	in := envIntegration(t, nil)
	a := mustConn(t, p, "tenant-a", in, nil)
	b := mustConn(t, p, "tenant-b", in, nil)
	mustConn(t, p, "tenant-a", in, nil) // a is now more recent than b
	c := mustConn(t, p, "tenant-c", in, nil)
	waitFor(t, "b evicted", func() bool { return errors.Is(b.Err(), ErrConnClosed) })
	waitFor(t, "b's process gone", func() bool { return !processAlive(b.pid) })
	if a.Err() != nil || c.Err() != nil {
		t.Errorf("a.Err() = %v, c.Err() = %v; want both live", a.Err(), c.Err())
	}
}

func TestPoolKeepsBusyConnsPastMaxConns(t *testing.T) {
	t.Parallel()
	p := newTestPool(t, &PoolOptions{MaxConns: 1}, nil)
	in := envIntegration(t, nil)
	a := mustConn(t, p, "tenant-a", in, nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := a.CallTool(ctx, callReq("block", map[string]any{"id": "busy"}, nil), nil)
		done <- err
	}()
	waitFor(t, "call in flight", func() bool { busy, _ := a.idle(); return busy })
	b := mustConn(t, p, "tenant-b", in, nil)
	time.Sleep(100 * time.Millisecond)
	if a.Err() != nil {
		t.Errorf("a busy conn was evicted: %v", a.Err())
	}
	cancel()
	if err := <-done; err != context.Canceled {
		t.Errorf("CallTool = %v", err)
	}
	// Once idle, the next start evicts it.
	mustConn(t, p, "tenant-c", in, nil)
	waitFor(t, "an idle conn evicted", func() bool { return a.Err() != nil || b.Err() != nil })
}

func TestPoolReapsIdleConns(t *testing.T) {
	t.Parallel()
	p := newTestPool(t, &PoolOptions{IdleTimeout: 200 * time.Millisecond}, nil)
	c := mustConn(t, p, "tenant-a", envIntegration(t, nil), nil)
	waitFor(t, "idle conn reaped", func() bool { return errors.Is(c.Err(), ErrConnClosed) })
	waitFor(t, "its process gone", func() bool { return !processAlive(c.pid) })
	if again := mustConn(t, p, "tenant-a", envIntegration(t, nil), nil); again == c {
		t.Error("Conn returned the reaped conn")
	}
}

func TestPoolDrop(t *testing.T) {
	t.Parallel()
	p := newTestPool(t, nil, nil)
	in := envIntegration(t, nil)
	a := mustConn(t, p, "tenant-a", in, nil)
	b := mustConn(t, p, "tenant-b", in, nil)
	p.Drop("tenant-a", in.Name)
	waitFor(t, "dropped conn closed", func() bool { return errors.Is(a.Err(), ErrConnClosed) })
	if b.Err() != nil {
		t.Errorf("Drop(tenant-a) closed tenant-b's conn: %v", b.Err())
	}
	p.Drop("tenant-a", "no-such-integration") // no-op
}

func TestPoolCloseEndsProcesses(t *testing.T) {
	t.Parallel()
	p := NewPool(nil)
	conns := []*Conn{
		mustConn(t, p, "tenant-a", envIntegration(t, nil), nil),
		mustConn(t, p, "tenant-b", everythingStdio(t), nil),
	}
	p.Close()
	for _, c := range conns {
		if !errors.Is(c.Err(), ErrConnClosed) {
			t.Errorf("after Close, Err() = %v", c.Err())
		}
		if processAlive(c.pid) {
			t.Errorf("process %d still running after Close", c.pid)
		}
	}
	if _, err := p.Conn(context.Background(), "tenant-a", envIntegration(t, nil), nil); !errors.Is(err, ErrPoolClosed) {
		t.Errorf("Conn after Close = %v, want ErrPoolClosed", err)
	}
}

// TestFailedStartIsRemembered: an upstream that cannot start is not spawned
// again by every call for RetryAfter, and each call still gets the error.
func TestFailedStartIsRemembered(t *testing.T) {
	t.Parallel()
	p := newTestPool(t, nil, nil)
	in := Integration{Name: "broken", Upstream: Upstream{Command: "/nonexistent/mcp-server"}}
	for i := range 5 {
		if _, err := p.Conn(context.Background(), "tenant-a", in, nil); err == nil || !strings.Contains(err.Error(), "starting upstream broken") {
			t.Fatalf("call %d: err = %v", i, err)
		}
	}
	if n := p.starts.Load(); n != 1 {
		t.Errorf("%d starts for 5 calls within RetryAfter, want 1", n)
	}
	// Another tenant's start is its own.
	if _, err := p.Conn(context.Background(), "tenant-b", in, nil); err == nil {
		t.Fatal("tenant-b started a broken upstream")
	}
	if n := p.starts.Load(); n != 2 {
		t.Errorf("starts = %d after tenant-b's call, want 2", n)
	}
}
