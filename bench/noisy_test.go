package bench

import (
	"flag"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/connectors-gateway/connectors/internal/testenv"
	"github.com/connectors-gateway/connectors/limits"
)

// The quiet tenants call throughout the run while the noisy one drives
// for a phase and rests for a phase, over and over, so that whatever else
// the machine does falls on both alike: a p99 wants many samples, and a
// hiccup of the machine (two shared cores) in one long phase would be
// taken for the noisy tenant's doing.
var (
	flagNoisyRounds   = flag.Int("bench.noisy.rounds", 20, "rounds of the noisy-neighbour run (a phase alone, then one beside the noisy tenant)")
	flagNoisyDuration = flag.Duration("bench.noisy.duration", 5e9, "time per phase of the noisy-neighbour run, the first half second of each not measured")
)

// phaseGuard is the start of each phase not measured: the calls begun
// while the noisy tenant starts or stops.
const phaseGuard = 500 * time.Millisecond

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
// pace, and a noisy tenant that tries ten times its limit in every other
// phase. The quiet tenants' p50 and p99 beside it are put against their
// own without it, in the same run. The noisy tenant's calls past its
// limit are refused by the gateway (nothing reaches the upstream); its
// admitted rate is about its limit.
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

	q := startQuiet(quiet, quietRate)
	time.Sleep(*flagWarmup)
	var ph [2]phase // alone, beside
	var n noisyCount
	for range *flagNoisyRounds {
		for besideIt, p := range []*phase{&ph[0], &ph[1]} {
			stop := make(chan struct{})
			var wg sync.WaitGroup
			if besideIt == 1 {
				for _, c := range noisy {
					wg.Go(func() { n.drive(c, noisyCapacity/noisyClients, stop) })
				}
			}
			time.Sleep(phaseGuard)
			p.measure(q, g.process, echo, *flagNoisyDuration-phaseGuard)
			close(stop)
			wg.Wait()
		}
	}
	if err := q.stop(); err != nil {
		b.Fatalf("a quiet tenant's call: %v", err)
	}
	alone, beside := ph[0].latencies(q), ph[1].latencies(q)
	measured := ph[0].took

	var r report
	r.line("## Noisy neighbour (%d rounds of a %s phase alone and one beside, %s of each measured)\n", *flagNoisyRounds, *flagNoisyDuration, *flagNoisyDuration-phaseGuard)
	r.line("%d quiet tenants, each one agent calling at %d calls/s throughout; a noisy tenant's %d agents trying %d calls/s in all, %d× its limit of %d calls a minute (burst 10), in every other phase.\n",
		quietTenants, quietRate, noisyClients, noisyCapacity, noisyTimes, limitPerMin)
	r.line("Every agent a raw HTTP client (raw_test.go), so that the load generator's own CPU takes little of the two cores.\n")
	r.line("| quiet tenants | calls | p50 ms | p99 ms | gateway CPU ms/s |")
	r.line("|---|---|---|---|---|")
	r.line("| alone | %d | %s | %s | %.0f |", len(alone), ms(pctOf(alone, 0.5)), ms(pctOf(alone, 0.99)), ph[0].cpuPerSecond())
	r.line("| beside the noisy one | %d | %s | %s | %.0f |", len(beside), ms(pctOf(beside, 0.5)), ms(pctOf(beside, 0.99)), ph[1].cpuPerSecond())
	r.line("| ratio, all calls | | %.0f %% | %.0f %% | |", ratio(pctOf(beside, 0.5), pctOf(alone, 0.5)), ratio(pctOf(beside, 0.99), pctOf(alone, 0.99)))
	r.line("| ratio, median of the rounds' | | %.0f %% | %.0f %% | |\n", pairedRatio(q, ph, 0.5), pairedRatio(q, ph, 0.99))
	r.line("A round's two phases are next to each other, so that the machine's own slow spells (seen here: a few seconds in which every call, alone or beside, takes a third longer and the p99 triples) fall on both; the median of the rounds' ratios is the figure such a spell does not move, the ratio of all calls the one it does.\n")
	// The noisy tenant's calls are counted over its whole phases, their
	// first half second included; the upstream's CPU over the measured.
	driven := time.Duration(*flagNoisyRounds) * *flagNoisyDuration
	r.line("The noisy tenant: %.1f calls/s admitted (its limit: %.1f a second, after a burst of 10, which its rest between phases gives back), %.0f/s refused by the gateway; the upstream's CPU %.0f ms/s alone, %.0f beside.\n",
		float64(n.admitted.Load())/driven.Seconds(), float64(limitPerMin)/60, float64(n.refused.Load())/driven.Seconds(),
		float64(ph[0].upstreamCPU)/1e6/measured.Seconds(), float64(ph[1].upstreamCPU)/1e6/measured.Seconds())
	// What a refused call costs the gateway, from the phases' CPU: the
	// CPU beside the noisy one, less the quiet tenants' own and the
	// admitted noisy calls' (at the quiet calls' cost), over the refusals.
	perCall := float64(ph[0].cpu) / float64(max(len(alone), 1))
	share := measured.Seconds() / driven.Seconds()
	extra := float64(ph[1].cpu-ph[0].cpu) - perCall*float64(n.admitted.Load())*share
	r.line("The gateway's CPU per call: %.0f µs admitted (the quiet tenants' alone); about %.0f µs refused (what the phases beside the noisy one cost beyond that, over their refusals).\n",
		perCall/1e3, extra/1e3/(float64(n.refused.Load())*share))
	limiterCost(&r)
	r.flush(b)
}

// quietLoad is the quiet tenants' calls: one worker per client, each
// calling echo at a steady rate (its next call due 1/rate after the last
// was due, so a slow answer is not followed by a pause), each call's
// start and latency kept.
type quietLoad struct {
	mu       sync.Mutex
	calls    []quietCall
	firstErr error
	done     chan struct{}
	wg       sync.WaitGroup
}

type quietCall struct {
	begin time.Time
	took  time.Duration
}

func startQuiet(clients []caller, rate int) *quietLoad {
	q := &quietLoad{done: make(chan struct{})}
	every := time.Second / time.Duration(rate)
	for i, c := range clients {
		q.wg.Go(func() {
			next := time.Now().Add(every * time.Duration(i) / time.Duration(len(clients))) // spread
			for {
				select {
				case <-q.done:
					return
				case <-time.After(time.Until(next)):
				}
				next = next.Add(every)
				begin := time.Now()
				err := c.call("echo-http_echo")
				took := time.Since(begin)
				q.mu.Lock()
				if err != nil {
					q.firstErr = cmpErr(q.firstErr, err)
				} else {
					q.calls = append(q.calls, quietCall{begin, took})
				}
				q.mu.Unlock()
			}
		})
	}
	return q
}

func (q *quietLoad) stop() error {
	close(q.done)
	q.wg.Wait()
	return q.firstErr
}

// phase is one kind of phase (alone or beside) over the run: its
// measured windows, and the gateway's and the upstream's CPU in them.
type phase struct {
	windows          [][2]time.Time
	took             time.Duration
	cpu, upstreamCPU time.Duration
}

// measure adds a window of d to p.
func (p *phase) measure(q *quietLoad, gw, upstream *process, d time.Duration) {
	c0, u0, from := gw.cpu(), upstream.cpu(), time.Now()
	time.Sleep(d)
	p.cpu += gw.cpu() - c0
	p.upstreamCPU += upstream.cpu() - u0
	p.windows = append(p.windows, [2]time.Time{from, time.Now()})
	p.took += d
}

// latencies returns, sorted, the quiet calls begun in p's windows.
func (p *phase) latencies(q *quietLoad) []time.Duration {
	var lat []time.Duration
	for _, c := range q.calls {
		for _, w := range p.windows {
			if !c.begin.Before(w[0]) && c.begin.Before(w[1]) {
				lat = append(lat, c.took)
				break
			}
		}
	}
	slices.Sort(lat)
	return lat
}

// pairedRatio is the median over the rounds of the q quantile of the
// quiet calls beside the noisy tenant over that of the round's calls
// alone, in percent.
func pairedRatio(q *quietLoad, ph [2]phase, p float64) float64 {
	var ratios []float64
	for i := range ph[0].windows {
		alone := phase{windows: ph[0].windows[i : i+1]}
		beside := phase{windows: ph[1].windows[i : i+1]}
		ratios = append(ratios, ratio(pctOf(beside.latencies(q), p), pctOf(alone.latencies(q), p)))
	}
	slices.Sort(ratios)
	if n := len(ratios); n%2 == 0 {
		return (ratios[n/2-1] + ratios[n/2]) / 2
	}
	return ratios[len(ratios)/2]
}

// ratio is a over b in percent.
func ratio(a, b time.Duration) float64 { return 100 * float64(a) / float64(max(b, 1)) }

func (p *phase) cpuPerSecond() float64 { return float64(p.cpu) / 1e6 / p.took.Seconds() }

func cmpErr(first, err error) error {
	if first != nil {
		return first
	}
	return err
}

// limiterCost reports the limiter's own cost per call, in process on one
// goroutine: a call admitted and released with every limit on (the
// tenant's and an integration's), and a call refused (its per-minute
// budget spent). Timed by hand: a benchmark cannot run testing.Benchmark.
func limiterCost(r *report) {
	all := limits.Limits{CallsPerMinute: limits.Max.CallsPerMinute, Burst: limits.Max.Burst, ConcurrentCalls: 1000,
		DailyCalls: limits.Max.DailyCalls, MonthlyCalls: limits.Max.MonthlyCalls}
	o := &limits.Override{Integrations: map[string]limits.Limits{"notion": {CallsPerMinute: limits.Max.CallsPerMinute, ConcurrentCalls: 1000}}}
	l := limits.New(limits.Options{Defaults: all})
	admit := func() {
		if t, refusal := l.Admit("tenant", "notion", o); refusal == nil {
			t.Release()
		}
	}
	spent := limits.New(limits.Options{Defaults: limits.Limits{CallsPerMinute: 1, Burst: 1}})
	spent.Admit("tenant", "notion", nil)
	refuse := func() { spent.Admit("tenant", "notion", nil) }
	if _, refusal := spent.Admit("tenant", "notion", nil); refusal == nil {
		panic("admitted past the limit")
	}
	r.line("The limiter's own cost per call (in process, one goroutine): %.2f µs admitted and released with every limit on (%.0f allocations), %.2f µs refused (%.0f allocations).\n",
		perCallMicros(admit), testing.AllocsPerRun(1000, admit), perCallMicros(refuse), testing.AllocsPerRun(1000, refuse))
}

// perCallMicros is the time f takes, in µs: the best of three runs of a
// million calls.
func perCallMicros(f func()) float64 {
	const n = 1_000_000
	best := time.Duration(1 << 62)
	for range 3 {
		start := time.Now()
		for range n {
			f()
		}
		best = min(best, time.Since(start))
	}
	return float64(best) / n / 1e3
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
