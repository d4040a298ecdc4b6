package bench

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/client/transport"
	"github.com/mark3labs/mcp-go/mcp"
)

// dial connects an MCP client over streamable HTTP (with key as bearer
// token when set) and initializes it.
func dial(b testing.TB, url, key string) caller {
	b.Helper()
	var opts []transport.StreamableHTTPCOption
	if key != "" {
		opts = append(opts, transport.WithHTTPHeaders(map[string]string{"Authorization": "Bearer " + key}))
	}
	c, err := client.NewStreamableHttpClient(url, opts...)
	if err != nil {
		b.Fatal(err)
	}
	return initialize(b, c)
}

// dialSession is dial with a client that speaks the initialize era
// (2025-11-25): a session, its capabilities declared once.
func dialSession(b testing.TB, url, key string) caller {
	b.Helper()
	tr, err := transport.NewStreamableHTTP(url, transport.WithHTTPHeaders(map[string]string{"Authorization": "Bearer " + key}))
	if err != nil {
		b.Fatal(err)
	}
	c := client.NewClient(tr, client.WithProtocolVersion(mcp.ProtocolVersion20251125), client.WithLegacyProtocolOnly())
	return initializeAs(b, c, mcp.ProtocolVersion20251125)
}

// dialStdio starts bin as a stdio MCP server and connects to it.
func dialStdio(b testing.TB, bin string) caller {
	b.Helper()
	c, err := client.NewStdioMCPClient(bin, nil)
	if err != nil {
		b.Fatal(err)
	}
	return initialize(b, c)
}

// dialStdioSession is dialStdio with a client that speaks the initialize
// era (2025-11-25).
func dialStdioSession(b testing.TB, bin string) caller {
	b.Helper()
	tr := transport.NewStdio(bin, nil)
	if err := tr.Start(context.Background()); err != nil {
		b.Fatal(err)
	}
	c := client.NewClient(tr, client.WithProtocolVersion(mcp.ProtocolVersion20251125), client.WithLegacyProtocolOnly())
	return initializeAs(b, c, mcp.ProtocolVersion20251125)
}

func initialize(b testing.TB, c *client.Client) caller {
	b.Helper()
	return initializeAs(b, c, mcp.LATEST_PROTOCOL_VERSION)
}

func initializeAs(b testing.TB, c *client.Client, version string) caller {
	b.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := c.Start(ctx); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = c.Close() })
	if _, err := c.Initialize(ctx, mcp.InitializeRequest{Params: mcp.InitializeParams{
		ProtocolVersion: version, ClientInfo: mcp.Implementation{Name: "bench", Version: "1"},
	}}); err != nil {
		b.Fatal(err)
	}
	return sdk{c}
}

// caller makes echo calls for one worker of the load generator.
type caller interface {
	call(tool string) error
	Close() error
}

// sdk calls through an mcp-go client, as an agent built on an SDK does.
type sdk struct{ *client.Client }

func (c sdk) call(tool string) error {
	res, err := c.CallTool(context.Background(), mcp.CallToolRequest{Params: mcp.CallToolParams{Name: tool, Arguments: map[string]any{"text": "hello"}}})
	if err == nil && res.IsError {
		err = fmt.Errorf("tool error: %v", res.Content)
	}
	return err
}

// mustCall makes one call on the benchmark's own goroutine, failing b on
// error, and returns how long it took.
func mustCall(b testing.TB, c caller, tool string) time.Duration {
	b.Helper()
	begin := time.Now()
	if err := c.call(tool); err != nil {
		b.Fatalf("call %s: %v", tool, err)
	}
	return time.Since(begin)
}

// result is one cell's figures.
type result struct {
	calls     int
	elapsed   time.Duration
	latencies []time.Duration // sorted
	cpu       time.Duration   // the hop's CPU (gateway, proxy) in the measured window; 0 for direct
	clientCPU time.Duration   // the load generator's CPU (this process) in that window
}

func (r result) rate() float64 { return float64(r.calls) / r.elapsed.Seconds() }

func (r result) pct(p float64) time.Duration {
	if len(r.latencies) == 0 {
		return 0
	}
	return r.latencies[min(len(r.latencies)-1, int(p*float64(len(r.latencies))))]
}

// run holds concurrency workers, each calling tool in a loop through its
// own client from clients, for warmup and then duration, and records every
// latency of the measured part. cpu, if set, is read around it.
func run(b testing.TB, clients []caller, tool string, warmup, duration time.Duration, cpu func() time.Duration) result {
	b.Helper()
	var (
		mu       sync.Mutex
		all      []time.Duration
		firstErr error // guarded by mu
		wg       sync.WaitGroup
		stop     = make(chan struct{})
		meas     = make(chan struct{})
	)
	for _, c := range clients {
		wg.Go(func() {
			var mine []time.Duration
			measuring := false
			for {
				select {
				case <-stop:
					mu.Lock()
					all = append(all, mine...)
					mu.Unlock()
					return
				case <-meas:
					measuring = true
				default:
				}
				begin := time.Now()
				err := c.call(tool)
				d := time.Since(begin)
				if err != nil { // reported below, from the benchmark's goroutine
					err = fmt.Errorf("call %s: %w", tool, err)
					mu.Lock()
					if firstErr == nil {
						firstErr = err
					}
					mu.Unlock()
					<-stop
					continue
				}
				if measuring {
					mine = append(mine, d)
				}
			}
		})
	}
	time.Sleep(warmup)
	var cpu0 time.Duration
	if cpu != nil {
		cpu0 = cpu()
	}
	client0 := selfCPU()
	begin := time.Now()
	close(meas)
	time.Sleep(duration)
	close(stop)
	elapsed := time.Since(begin)
	clientUsed := selfCPU() - client0
	var used time.Duration
	if cpu != nil {
		used = cpu() - cpu0
	}
	wg.Wait()
	if firstErr != nil {
		b.Fatal(firstErr)
	}
	slices.Sort(all)
	return result{calls: len(all), elapsed: elapsed, latencies: all, cpu: used, clientCPU: clientUsed}
}

// selfCPU is the CPU time this process (the load generator) has used.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func ms(d time.Duration) string { return fmt.Sprintf("%.3f", float64(d)/float64(time.Millisecond)) }
