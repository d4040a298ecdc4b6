package server

import (
	"context"
	"io"
	"net/http"
	"runtime"
	"testing"
	"time"
)

// TestSweptSessionsFreed: sessions opened and left, each with a GET stream
// whose client went away, give back their goroutines once the streams'
// connections are gone and their memory once the idle sweep has ended
// them.
func TestSweptSessionsFreed(t *testing.T) {
	const ttl, n = 2 * time.Second, 300
	b := newBoundsServer(t, HTTPOptions{SessionIdleTTL: ttl, MaxSessionsPerIdentity: 2 * n, MaxSessionsPerTenant: 2 * n})
	settle := func() (int, uint64) {
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		return runtime.NumGoroutine(), ms.HeapAlloc
	}
	// One session first: what every session shares (mcp-go's and the
	// client's pools) is then in the baseline.
	b.Open(t, "/mcp", "key-a")
	g0, heap0 := settle()
	for range n {
		session := b.Open(t, "/mcp", "key-a")
		ctx, cancel := context.WithCancel(context.Background())
		r, _ := http.NewRequestWithContext(ctx, "GET", b.URL+"/mcp", nil)
		r.Header.Set("Accept", "text/event-stream")
		r.Header.Set("Authorization", "Bearer key-a")
		r.Header.Set("MCP-Protocol-Version", "2025-11-25")
		r.Header.Set("Mcp-Session-Id", session)
		resp, err := http.DefaultClient.Do(r)
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("GET stream: %v %v", resp, err)
		}
		cancel() // the client goes away
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	_, heap1 := settle()
	deadline := time.Now().Add(10 * time.Second)
	for (b.live() > 0 || b.forgotten.Load() < n+1) && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	http.DefaultClient.CloseIdleConnections()
	var g int
	var heap uint64
	for {
		if g, heap = settle(); g <= g0+2 && heap < heap0+(heap1-heap0)/4 || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("%d sessions: heap %d KiB before, %d KiB open, %d KiB swept; goroutines %d before, %d after", n, heap0>>10, heap1>>10, heap>>10, g0, g)
	if n := b.live(); n != 0 {
		t.Errorf("%d sessions live after the sweep", n)
	}
	if g > g0+2 {
		t.Errorf("%d goroutines after the streams' clients left and the sweep, %d before", g, g0)
	}
	if heap >= heap0+(heap1-heap0)/4 {
		t.Errorf("heap %d KiB after the sweep: %d KiB before the sessions, %d KiB with them open", heap>>10, heap0>>10, heap1>>10)
	}
}
