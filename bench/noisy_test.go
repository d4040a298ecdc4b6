package bench

import (
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/connectors-gateway/connectors/internal/testenv"
)

// The noisy-neighbour run's shape: quietTenants tenants, each one agent
// calling at quietRate, well within the per-tenant limit; one noisy tenant
// whose noisyClients agents call at noisyTimes its limit in all.
const (
	quietTenants  = 20
	quietRate     = 5 // calls/s each
	limitPerMin   = 600
	noisyTimes    = 10
	noisyClients  = 4
	noisyCapacity = limitPerMin / 60 * noisyTimes // calls/s the noisy tenant attempts
)

// BenchmarkNoisyNeighbour: one gateway with a per-tenant limit of
// limitPerMin calls a minute, twenty quiet tenants calling at a steady
// pace beside a noisy one that tries ten times its limit. Each round
// measures the quiet tenants alone and then beside the noisy one; the
// quiet tenants' p50 and p99 beside it are put against their own without
// it, in the same run. The noisy tenant's calls past its limit are refused
// by the gateway (nothing reaches the upstream); its admitted rate is
// about its limit.
func BenchmarkNoisyNeighbour(b *testing.B) {
	bin := testenv.Build(b, "./cmd/connectors")
	echoBin := testenv.Build(b, "./testdata/upstream-echo")
	echo, echoAddr := start(b, echoBin, os.Environ(), "--http", "127.0.0.1:0")
	g := newGateway(b, bin, echoBin, "http://"+echoAddr+"/mcp",
		fmt.Sprintf("CONNECTORS_LIMIT_CALLS_PER_MINUTE=%d", limitPerMin), "CONNECTORS_LIMIT_BURST=10")
	keyOf := func(tenant string) string {
		g.cli(b, `{"accessToken": "bench-token-`+tenant+`"}`, "credential", "put", "--tenant", tenant, "--integration", "echo-http")
		return g.cli(b, "", "apikey", "create", "--tenant", tenant)
	}
	// Raw clients (raw_test.go): an SDK client's own CPU per call, on the
	// cores the gateway has, would be most of what the noisy tenant costs.
	var quiet, noisy []caller
	for i := range quietTenants {
		quiet = append(quiet, dialRaw(b, g.url+"/mcp", keyOf(fmt.Sprintf("quiet-%d", i))))
	}
	noisyKey := keyOf("noisy")
	for range noisyClients {
		noisy = append(noisy, dialRaw(b, g.url+"/mcp", noisyKey))
	}

	var alone, beside []time.Duration
	var admitted, refused, upstreamCPU, cpuAlone, cpuBeside int64
	var callsAlone, callsBeside int
	for range *flagRounds {
		lat, cpu := paced(b, quiet, quietRate, nil, g.process)
		alone, cpuAlone, callsAlone = append(alone, lat...), cpuAlone+cpu, callsAlone+len(lat)
		e0 := echo.cpu()
		var n noisyCount
		lat, cpu = paced(b, quiet, quietRate, func(stop <-chan struct{}, wg *sync.WaitGroup) {
			for _, c := range noisy {
				wg.Go(func() { n.drive(c, noisyCapacity/noisyClients, stop) })
			}
		}, g.process)
		beside, cpuBeside, callsBeside = append(beside, lat...), cpuBeside+cpu, callsBeside+len(lat)
		admitted, refused = admitted+n.admitted.Load(), refused+n.refused.Load()
		upstreamCPU += int64(echo.cpu() - e0)
	}
	slices.Sort(alone)
	slices.Sort(beside)
	measured := time.Duration(*flagRounds) * *flagDuration

	var r report
	r.line("## Noisy neighbour (%s measured per phase, %d round(s))\n", *flagDuration, *flagRounds)
	r.line("%d quiet tenants, each one agent calling at %d calls/s; a noisy tenant's %d agents trying %d calls/s in all, %d× its limit of %d calls a minute (burst 10).\n",
		quietTenants, quietRate, noisyClients, noisyCapacity, noisyTimes, limitPerMin)
	r.line("Every agent a raw HTTP client (raw_test.go), so that the load generator's own CPU takes little of the two cores.\n")
	r.line("| quiet tenants | calls | p50 ms | p99 ms | gateway CPU ms/s |")
	r.line("|---|---|---|---|---|")
	r.line("| alone | %d | %s | %s | %.0f |", callsAlone, ms(pctOf(alone, 0.5)), ms(pctOf(alone, 0.99)), float64(cpuAlone)/1e6/measured.Seconds())
	r.line("| beside the noisy one | %d | %s | %s | %.0f |", callsBeside, ms(pctOf(beside, 0.5)), ms(pctOf(beside, 0.99)), float64(cpuBeside)/1e6/measured.Seconds())
	r.line("| ratio | | %.0f %% | %.0f %% | |\n", 100*float64(pctOf(beside, 0.5))/float64(pctOf(alone, 0.5)), 100*float64(pctOf(beside, 0.99))/float64(pctOf(alone, 0.99)))
	// The noisy tenant's calls are counted over each whole phase, warm-up
	// included; the upstream's CPU over the same.
	driven := time.Duration(*flagRounds) * (*flagWarmup + *flagDuration)
	r.line("The noisy tenant: %.1f calls/s admitted (its limit: %.1f a second, after a burst of 10), %.0f/s refused by the gateway; the upstream's CPU meanwhile %.0f ms/s.\n",
		float64(admitted)/driven.Seconds(), float64(limitPerMin)/60, float64(refused)/driven.Seconds(),
		float64(upstreamCPU)/1e6/driven.Seconds())
	r.flush(b)
}

// paced runs one worker per client, each calling echo at rate calls/s
// (its next call due 1/rate after the last was due, so a slow answer is
// not followed by a pause), for warm-up and then the measured duration,
// with more (the noisy tenant) running beside it when set; it returns the
// measured latencies and the gateway's CPU over them, in ns.
func paced(b *testing.B, clients []caller, rate int, more func(<-chan struct{}, *sync.WaitGroup), gw *process) ([]time.Duration, int64) {
	b.Helper()
	var (
		mu       sync.Mutex
		all      []time.Duration
		firstErr error
		wg       sync.WaitGroup
		stop     = make(chan struct{})
		measure  atomic.Bool
	)
	if more != nil {
		more(stop, &wg)
	}
	every := time.Second / time.Duration(rate)
	for i, c := range clients {
		wg.Go(func() {
			next := time.Now().Add(every * time.Duration(i) / time.Duration(len(clients))) // spread
			var mine []time.Duration
			for {
				select {
				case <-stop:
					mu.Lock()
					all = append(all, mine...)
					mu.Unlock()
					return
				case <-time.After(time.Until(next)):
				}
				next = next.Add(every)
				begin := time.Now()
				if err := c.call("echo-http_echo"); err != nil {
					mu.Lock()
					firstErr = cmpErr(firstErr, err)
					mu.Unlock()
					continue
				}
				if measure.Load() {
					mine = append(mine, time.Since(begin))
				}
			}
		})
	}
	time.Sleep(*flagWarmup)
	cpu0 := gw.cpu()
	measure.Store(true)
	time.Sleep(*flagDuration)
	used := gw.cpu() - cpu0
	close(stop)
	wg.Wait()
	if firstErr != nil {
		b.Fatalf("a quiet tenant's call: %v", firstErr)
	}
	return all, int64(used)
}

func cmpErr(first, err error) error {
	if first != nil {
		return first
	}
	return err
}

// noisyCount counts the noisy tenant's calls: admitted, and refused for
// its limit (a tool error naming it).
type noisyCount struct{ admitted, refused atomic.Int64 }

// drive calls echo through c at rate calls/s until stop.
func (n *noisyCount) drive(c caller, rate int, stop <-chan struct{}) {
	every := time.Second / time.Duration(rate)
	next := time.Now()
	for {
		select {
		case <-stop:
			return
		case <-time.After(time.Until(next)):
		}
		next = next.Add(every)
		switch err := c.call("echo-http_echo"); {
		case err == nil:
			n.admitted.Add(1)
		case strings.Contains(err.Error(), "rate limited"):
			n.refused.Add(1)
		}
	}
}

// pctOf is the p quantile of sorted latencies.
func pctOf(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	return result{latencies: sorted}.pct(p)
}
