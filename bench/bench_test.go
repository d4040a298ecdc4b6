package bench

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/mcp"

	"github.com/connectors-gateway/connectors/internal/testenv"
	"github.com/connectors-gateway/connectors/oauth"
	"github.com/connectors-gateway/connectors/tenants"
	"github.com/connectors-gateway/connectors/vault"
	"github.com/connectors-gateway/connectors/vault/embedded"
)

// report collects Markdown and prints it (and appends it to -bench.out).
type report struct{ strings.Builder }

func (r *report) line(format string, args ...any) { fmt.Fprintf(r, format+"\n", args...) }

func (r *report) flush(b *testing.B) {
	fmt.Print(r.String())
	if *flagOut == "" {
		return
	}
	f, err := os.OpenFile(*flagOut, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	_, _ = f.WriteString(r.String())
}

func concurrencies(b *testing.B) []int {
	var out []int
	for _, s := range strings.Split(*flagConc, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 1 {
			b.Fatalf("-bench.conc: %q", s)
		}
		out = append(out, n)
	}
	return out
}

// session ends the names of the rows whose clients speak the initialize
// era (2025-11-25); each is against the direct row of the same era.
const session = ", 2025-11-25 session"

// raw ends the names of the rows whose load generator is a raw client
// (see raw_test.go); each is against the direct row of raw clients.
const raw = ", raw client"

// target is one way to call the echo tool.
type target struct {
	name    string
	tool    string
	clients func(n int) []caller
	// hop is the process between the load generator and the upstream
	// (a gateway, the bare proxy), whose CPU is measured; nil for direct.
	hop *process
}

// baseline is the row a row's ratios and added latency are against: the
// direct call by a client of the same kind (the direct rows against A,
// so that the clients are compared too).
func baseline(name string) string {
	for _, kind := range []string{session, raw} {
		if strings.HasSuffix(name, kind) && !strings.HasPrefix(name, "A direct") {
			return "A direct" + kind
		}
	}
	return "A direct"
}

// BenchmarkGateway: (A) direct to the upstream, (B) through the gateway on
// the embedded store, (C) through the gateway on a real Vault, for an HTTP
// and a stdio upstream, at each concurrency, interleaved A, B, C; for the
// HTTP upstream also (P) through a bare reverse proxy, the least any HTTP
// hop costs on this machine.
func BenchmarkGateway(b *testing.B) {
	bin := testenv.Build(b, "./cmd/connectors")
	echoBin := testenv.Build(b, "./testdata/upstream-echo")
	_, echoAddr := start(b, echoBin, os.Environ(), "--http", "127.0.0.1:0")
	echoURL := "http://" + echoAddr + "/mcp"
	// P: the least an HTTP hop costs here, a bare reverse proxy.
	proxy, proxyAddr := start(b, testenv.Build(b, "./testdata/bare-proxy"), os.Environ(), "http://"+echoAddr)
	proxyURL := "http://" + proxyAddr + "/mcp"
	var pprofEnv []string
	if *flagPprof != "" {
		pprofEnv = append(pprofEnv, "CONNECTORS_PPROF_ADDR="+*flagPprof)
	}
	emb := newGateway(b, bin, echoBin, echoURL, pprofEnv...)
	// B': the same without the direct path (mcp-go on both legs), the
	// gateway as it was before it, for the before/after in one run.
	usual := newGateway(b, bin, echoBin, echoURL, "CONNECTORS_DIRECT_CALLS=off")
	// B, no h1: the same gateway built with -tags noh1, its direct calls to
	// an HTTP upstream sent by net/http rather than tools' HTTP/1.1 client,
	// for the with/without in one run.
	noH1 := newGateway(b, buildTagged(b, "./cmd/connectors", "noh1"), echoBin, echoURL)
	vaultAddr, vaultToken := testenv.Vault(b)
	vlt := newGateway(b, bin, echoBin, echoURL, "VAULT_ADDR="+vaultAddr, "VAULT_TOKEN="+vaultToken)

	var r report
	r.line("## Cost per call (%s measured per cell after %s warm-up, %d round(s))\n", *flagDuration, *flagWarmup, *flagRounds)
	// Cold start of a tenant's stdio upstream: its first call.
	cold := mustCall(b, dial(b, emb.url+"/mcp", emb.key), "echo-stdio_echo")
	r.line("First call through a tenant's stdio upstream (process start included): %s ms.\n", ms(cold))

	// Clients for a cell: n sessions of dial at url, or, over stdio, n
	// handles on one process, as the gateway has one per tenant.
	each := func(dial func(testing.TB, string, string) caller, url, key string) func(int) []caller {
		return func(n int) []caller {
			cs := make([]caller, n)
			for i := range cs {
				cs[i] = dial(b, url, key)
			}
			return cs
		}
	}
	shared := func(dial func(testing.TB, string) caller) func(int) []caller {
		return func(n int) []caller {
			c := dial(b, echoBin)
			cs := make([]caller, n)
			for i := range cs {
				cs[i] = c
			}
			return cs
		}
	}
	rawStdio := func(n int) []caller { return dialRawStdio(b, echoBin, n) }
	matrix := []struct {
		transport string
		targets   []target
	}{
		{"http", []target{
			{name: "A direct", tool: "echo", clients: each(dial, echoURL, "")},
			{name: "A direct" + session, tool: "echo", clients: each(dialSession, echoURL, "")},
			{name: "P bare proxy", tool: "echo", clients: each(dial, proxyURL, ""), hop: proxy},
			{name: "B embedded", tool: "echo-http_echo", clients: each(dial, emb.url+"/mcp", emb.key), hop: emb.process},
			{name: "B embedded, no h1", tool: "echo-http_echo", clients: each(dial, noH1.url+"/mcp", noH1.key), hop: noH1.process},
			{name: "B embedded" + session, tool: "echo-http_echo", clients: each(dialSession, emb.url+"/mcp", emb.key), hop: emb.process},
			{name: "B' embedded, usual path", tool: "echo-http_echo", clients: each(dial, usual.url+"/mcp", usual.key), hop: usual.process},
			{name: "C vault", tool: "echo-http_echo", clients: each(dial, vlt.url+"/mcp", vlt.key), hop: vlt.process},
			{name: "A direct" + raw, tool: "echo", clients: each(dialRaw, echoURL, "")},
			{name: "P bare proxy" + raw, tool: "echo", clients: each(dialRaw, proxyURL, ""), hop: proxy},
			{name: "B embedded" + raw, tool: "echo-http_echo", clients: each(dialRaw, emb.url+"/mcp", emb.key), hop: emb.process},
			{name: "B embedded, no h1" + raw, tool: "echo-http_echo", clients: each(dialRaw, noH1.url+"/mcp", noH1.key), hop: noH1.process},
		}},
		{"stdio", []target{
			{name: "A direct", tool: "echo", clients: shared(dialStdio)},
			{name: "A direct" + session, tool: "echo", clients: shared(dialStdioSession)},
			{name: "B embedded", tool: "echo-stdio_echo", clients: each(dial, emb.url+"/mcp", emb.key), hop: emb.process},
			{name: "B embedded" + session, tool: "echo-stdio_echo", clients: each(dialSession, emb.url+"/mcp", emb.key), hop: emb.process},
			{name: "B' embedded, usual path", tool: "echo-stdio_echo", clients: each(dial, usual.url+"/mcp", usual.key), hop: usual.process},
			{name: "C vault", tool: "echo-stdio_echo", clients: each(dial, vlt.url+"/mcp", vlt.key), hop: vlt.process},
			{name: "A direct" + raw, tool: "echo", clients: rawStdio},
			{name: "B embedded" + raw, tool: "echo-stdio_echo", clients: each(dialRaw, emb.url+"/mcp", emb.key), hop: emb.process},
		}},
	}
	cells := map[cellKey]result{}
	r.line("| upstream | concurrency | path | calls/s | p50 ms | p90 ms | p99 ms | gateway (P: proxy) CPU µs/call | load generator CPU µs/call | calls/s vs A | added p50 ms | added p99 ms |")
	r.line("|---|---|---|---|---|---|---|---|---|---|---|---|")
	for _, m := range matrix {
		for _, conc := range concurrencies(b) {
			results := make([][]result, len(m.targets))
			for range *flagRounds {
				for i, t := range m.targets {
					cs := t.clients(conc)
					var cpu func() time.Duration
					if t.hop != nil {
						cpu = t.hop.cpu
					}
					results[i] = append(results[i], run(b, cs, t.tool, *flagWarmup, *flagDuration, cpu))
					for _, c := range cs {
						_ = c.Close()
					}
				}
			}
			for i, t := range m.targets {
				res := merge(results[i])
				base := merge(results[slices.IndexFunc(m.targets, func(u target) bool { return u.name == baseline(t.name) })])
				cells[cellKey{m.transport, conc, t.name}] = res
				cpu := "—"
				if t.hop != nil && res.calls > 0 {
					cpu = fmt.Sprintf("%.0f", float64(res.cpu.Microseconds())/float64(res.calls))
				}
				client := "—"
				if res.calls > 0 {
					client = fmt.Sprintf("%.0f", float64(res.clientCPU.Microseconds())/float64(res.calls))
				}
				r.line("| %s | %d | %s | %.0f | %s | %s | %s | %s | %s | %.0f %% | %s | %s |", m.transport, conc, t.name, res.rate(),
					ms(res.pct(0.50)), ms(res.pct(0.90)), ms(res.pct(0.99)), cpu, client,
					100*res.rate()/base.rate(), ms(res.pct(0.50)-base.pct(0.50)), ms(res.pct(0.99)-base.pct(0.99)))
			}
		}
	}
	for _, g := range []struct {
		name string
		gw   *gateway
	}{{"embedded", emb}, {"vault", vlt}} {
		_, peak := g.gw.memory()
		r.line("\nPeak RSS of the gateway (%s store): %d MiB.", g.name, peak>>20)
	}
	r.line("")
	targets(&r, cells)
	r.flush(b)
}

type cellKey struct {
	transport string
	conc      int
	target    string
}

// targets reports the cost-per-call targets against this run's cells.
func targets(r *report, cells map[cellKey]result) {
	added := func(transport string, conc int, name string, p float64) (time.Duration, bool) {
		a, okA := cells[cellKey{transport, conc, baseline(name)}]
		x, ok := cells[cellKey{transport, conc, name}]
		return x.pct(p) - a.pct(p), okA && ok
	}
	ratio := func(transport string, conc int, name, base string) (float64, bool) {
		a, okA := cells[cellKey{transport, conc, base}]
		x, ok := cells[cellKey{transport, conc, name}]
		return x.rate() / a.rate(), okA && ok && a.calls > 0
	}
	yes := func(ok bool) string {
		if ok {
			return "yes"
		}
		return "no"
	}
	// verdict is met with SDK clients, and with raw clients if it differs.
	verdict := func(sdk, raw bool) string {
		if sdk == raw {
			return yes(sdk)
		}
		return yes(sdk) + " (raw client: " + yes(raw) + ")"
	}
	r.line("### Against the targets (this run)\n")
	r.line("| target | figure | met |")
	r.line("|---|---|---|")
	for _, t := range []struct {
		label string
		p     float64
		limit time.Duration
	}{{"added latency at concurrency 1: p50 ≤ 0.3 ms", 0.50, 300 * time.Microsecond}, {"added latency at concurrency 1: p99 ≤ 2 ms", 0.99, 2 * time.Millisecond}} {
		h, okH := added("http", 1, "B embedded", t.p)
		st, okS := added("stdio", 1, "B embedded", t.p)
		p, okP := added("http", 1, "P bare proxy", t.p)
		u, okU := added("http", 1, "B' embedded, usual path", t.p)
		sh, okSH := added("http", 1, "B embedded"+session, t.p)
		ss, okSS := added("stdio", 1, "B embedded"+session, t.p)
		rh, okRH := added("http", 1, "B embedded"+raw, t.p)
		rs, okRS := added("stdio", 1, "B embedded"+raw, t.p)
		rp, okRP := added("http", 1, "P bare proxy"+raw, t.p)
		if okH && okS && okP && okU && okSH && okSS && okRH && okRS && okRP {
			r.line("| %s | HTTP %s ms, stdio %s ms; on a 2025-11-25 session HTTP %s ms, stdio %s ms (a bare reverse proxy: %s ms; the usual path: %s ms); raw client HTTP %s ms, stdio %s ms (bare proxy %s ms) | %s |",
				t.label, ms(h), ms(st), ms(sh), ms(ss), ms(p), ms(u), ms(rh), ms(rs), ms(rp),
				verdict(h <= t.limit && st <= t.limit, rh <= t.limit && rs <= t.limit))
		}
	}
	h, okH := ratio("http", 64, "B embedded", "A direct")
	st, okS := ratio("stdio", 64, "B embedded", "A direct")
	u, okU := ratio("http", 64, "B' embedded, usual path", "A direct")
	sh, okSH := ratio("http", 64, "B embedded"+session, "A direct"+session)
	ss, okSS := ratio("stdio", 64, "B embedded"+session, "A direct"+session)
	rh, okRH := ratio("http", 64, "B embedded"+raw, "A direct"+raw)
	rs, okRS := ratio("stdio", 64, "B embedded"+raw, "A direct"+raw)
	if okH && okS && okU && okSH && okSS && okRH && okRS {
		r.line("| throughput at concurrency 64: B ≥ 35 %% of A | HTTP %.0f %%, stdio %.0f %%; on a 2025-11-25 session HTTP %.0f %%, stdio %.0f %% (the usual path: HTTP %.0f %%); raw client HTTP %.0f %%, stdio %.0f %% | %s |",
			100*h, 100*st, 100*sh, 100*ss, 100*u, 100*rh, 100*rs,
			verdict(h >= 0.35 && st >= 0.35 && sh >= 0.35 && ss >= 0.35, rh >= 0.35 && rs >= 0.35))
	}
	// C against B cell by cell: one 5 s cell moves by ±15 % from run to
	// run here (compare A with itself across runs), so the steady state is
	// the median over the cells; the range is shown beside it.
	var ratios []float64
	for k, c := range cells {
		if k.target != "C vault" {
			continue
		}
		if b, ok := cells[cellKey{k.transport, k.conc, "B embedded"}]; ok && b.calls > 0 {
			ratios = append(ratios, c.rate()/b.rate())
		}
	}
	if len(ratios) > 0 {
		slices.Sort(ratios)
		median := ratios[len(ratios)/2]
		if len(ratios)%2 == 0 {
			median = (ratios[len(ratios)/2-1] + ratios[len(ratios)/2]) / 2
		}
		r.line("| C within 10 %% of B in steady state (calls/s, median of the %d cells) | %.0f %% of B (cells %.0f–%.0f %%) | %s |",
			len(ratios), 100*median, 100*ratios[0], 100*ratios[len(ratios)-1], yes(median >= 0.9))
	}
	hp, okH := added("http", 1, "B embedded", 0.5)
	sp, okS := added("stdio", 1, "B embedded", 0.5)
	rhp, okRH := added("http", 1, "B embedded"+raw, 0.5)
	rsp, okRS := added("stdio", 1, "B embedded"+raw, 0.5)
	if okH && okS && okRH && okRS {
		r.line("| stdio: a warm per-tenant process adds no more than HTTP (p50, concurrency 1) | stdio %s ms, HTTP %s ms; raw client stdio %s ms, HTTP %s ms | %s |",
			ms(sp), ms(hp), ms(rsp), ms(rhp), verdict(sp <= hp, rsp <= rhp))
	}
	r.line("")
}

// merge joins the rounds of one cell.
func merge(rs []result) result {
	var out result
	for _, r := range rs {
		out.calls += r.calls
		out.elapsed += r.elapsed
		out.cpu += r.cpu
		out.clientCPU += r.clientCPU
		out.latencies = append(out.latencies, r.latencies...)
	}
	slices.Sort(out.latencies)
	return out
}

// BenchmarkScale starts the gateway over stores of 1,000 to 100,000
// tenants with three credentials each: time to ready, memory, tools/list
// latency for one tenant, first-call latency for a tenant not seen since
// the start. The gateways run side by side, and their tools/list samples
// are taken in interleaved rounds, so that the machine's noise falls on
// every tenant count alike.
func BenchmarkScale(b *testing.B) {
	bin := testenv.Build(b, "./cmd/connectors")
	echoBin := testenv.Build(b, "./testdata/upstream-echo")
	_, echoAddr := start(b, echoBin, os.Environ(), "--http", "127.0.0.1:0")
	echoURL := "http://" + echoAddr + "/mcp"
	var runs []*scaleGateway
	for _, s := range strings.Split(*flagScale, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 2 {
			b.Fatalf("-bench.scale: %q", s)
		}
		runs = append(runs, startScale(b, bin, echoBin, echoURL, n))
	}
	const rounds, perRound = 10, 100
	ctx := context.Background()
	for range rounds {
		for _, s := range runs {
			for range perRound {
				t0 := time.Now()
				res, err := s.client.ListTools(ctx, mcp.ListToolsRequest{})
				d := time.Since(t0)
				if err != nil || len(res.Tools) != 3*2 { // echo and whoami of each integration
					b.Fatalf("tools/list: %v %v", res, err)
				}
				s.list.latencies = append(s.list.latencies, d)
			}
		}
	}
	var r report
	r.line("## Scale\n")
	r.line("tools/list: %d calls per tenant count, in %d rounds interleaved across the gateways.\n", rounds*perRound, rounds)
	r.line("Then %d other tenants each list their tools once, through their own connections (8 at a time; the pool keeps 256 upstream connections): the time that took and the RSS after.\n", scaleListers)
	r.line("| tenants | load time | ready after start | RSS ready MiB | RSS after MiB | tools/list p50 ms | tools/list p99 ms | p50 vs %d tenants | first call, unseen tenant ms | %d tenants listed in | RSS after them MiB |", runs[0].n, scaleListers)
	r.line("|---|---|---|---|---|---|---|---|---|---|---|")
	for _, s := range runs {
		slices.Sort(s.list.latencies)
		first := mustCall(b, dial(b, s.g.url+"/mcp", s.unseen), "echo-http_echo")
		rssAfter, _ := s.g.memory()
		listed := s.listAll(b)
		rssListed, _ := s.g.memory()
		r.line("| %d | %s | %s | %d | %d | %s | %s | %.0f %% | %s | %s | %d |", s.n, s.loaded.Round(time.Millisecond), s.ready.Round(time.Millisecond),
			s.rssReady>>20, rssAfter>>20, ms(s.list.pct(0.5)), ms(s.list.pct(0.99)),
			100*float64(s.list.pct(0.5))/float64(runs[0].list.pct(0.5)), ms(first), listed.Round(time.Millisecond), rssListed>>20)
	}
	r.line("")
	r.flush(b)
}

// scaleGateway is one gateway of the scale runs, ready and warm.
type scaleGateway struct {
	n             int
	g             *gateway
	loaded, ready time.Duration
	rssReady      int64
	client        *client.Client // tenant 0's session
	unseen        string         // the API key of a tenant not seen since the start
	listers       []string       // API keys of tenants that list their catalogues once each
	list          result
}

// scaleListers is how many tenants of a scale run list their catalogues
// once each, through their own connections, after the tools/list samples:
// each tenant's catalogue is its own, and identical ones are shared.
const scaleListers = 500

// listAll has each lister list its tools once (8 at a time) and returns
// how long that took.
func (s *scaleGateway) listAll(b *testing.B) time.Duration {
	start := time.Now()
	keys := make(chan string)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for key := range keys {
				c := dial(b, s.g.url+"/mcp", key).(sdk).Client
				res, err := c.ListTools(context.Background(), mcp.ListToolsRequest{})
				if err != nil || len(res.Tools) != 3*2 {
					b.Errorf("tools/list of a lister: %v %v", res, err)
				}
				_ = c.Close()
			}
		})
	}
	for _, k := range s.listers {
		keys <- k
	}
	close(keys)
	wg.Wait()
	return time.Since(start)
}

func startScale(b *testing.B, bin, echoBin, echoURL string, n int) *scaleGateway {
	dir := b.TempDir()
	dataDir := filepath.Join(dir, "data")
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		b.Fatal(err)
	}
	// Load the store directly (the CLI would take a process per record).
	loadStart := time.Now()
	st, err := embedded.Open(filepath.Join(dataDir, "connectors.db"), &embedded.Options{
		KeyFile: filepath.Join(dataDir, "master.key"), NoSync: true,
	})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	tenant := func(i int) string { return fmt.Sprintf("t%06d", i) }
	for i := range n {
		for _, in := range []string{"echo-http", "echo-stdio", "echo-http2"} {
			if _, err := st.Put(ctx, tenant(i), in, vault.Credential{AccessToken: "tok-" + tenant(i) + "-" + in}, 0); err != nil {
				b.Fatal(err)
			}
		}
	}
	keys := tenants.NewAPIKeys(st)
	seen, _, err := keys.Create(ctx, tenant(0), false)
	if err != nil {
		b.Fatal(err)
	}
	// Keys of the tenants that list their catalogues once each (tenant 0
	// and the unseen one excepted).
	var listers []string
	for i := 1; i <= min(scaleListers, n-2); i++ {
		key, _, err := keys.Create(ctx, tenant(i), false)
		if err != nil {
			b.Fatal(err)
		}
		listers = append(listers, key)
	}
	unseen, _, err := keys.Create(ctx, tenant(n-1), false)
	if err != nil {
		b.Fatal(err)
	}
	if err := st.Close(); err != nil {
		b.Fatal(err)
	}
	s := &scaleGateway{n: n, loaded: time.Since(loadStart), unseen: unseen, listers: listers}

	s.g = newScaleGateway(b, bin, echoBin, echoURL, dir, dataDir)
	begin := time.Now()
	var addr string
	s.g.process, addr = start(b, bin, s.g.env, "serve", "--addr", "127.0.0.1:0")
	s.g.url = "http://" + addr
	waitReady(b, s.g.url)
	s.ready = time.Since(begin)
	s.rssReady, _ = s.g.memory()
	s.client = dial(b, s.g.url+"/mcp", seen).(sdk).Client
	for range 20 { // the first ones discover the catalogues
		if _, err := s.client.ListTools(ctx, mcp.ListToolsRequest{}); err != nil {
			b.Fatalf("tools/list: %v", err)
		}
	}
	return s
}

// newScaleGateway is a gateway over a data dir loaded beforehand, with a
// third integration (echo-http2, the same upstream).
func newScaleGateway(b *testing.B, bin, echoBin, echoURL, dir, dataDir string) *gateway {
	cfg := fmt.Sprintf(`{"integrations": [
		{"name": "echo-http", "category": "bench", "upstream": {"url": %q, "headers": {"Authorization": "Bearer {{access_token}}"}}},
		{"name": "echo-http2", "category": "bench", "upstream": {"url": %q, "headers": {"Authorization": "Bearer {{access_token}}"}}},
		{"name": "echo-stdio", "category": "bench", "upstream": {"command": %q}}]}`, echoURL, echoURL, echoBin)
	cfgPath := filepath.Join(dir, "integrations.json")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		b.Fatal(err)
	}
	return &gateway{bin: bin, env: []string{
		"PATH=" + os.Getenv("PATH"), "HOME=" + dir,
		"CONNECTORS_DATA_DIR=" + dataDir, "CONNECTORS_CONFIG=" + cfgPath, auditSink,
	}}
}

// provider is a token endpoint that takes delay per refresh and counts how
// many run at once.
type provider struct {
	delay           time.Duration
	running, peak   atomic.Int32
	calls           atomic.Int64
	mu              sync.Mutex
	lateRefreshes   int
	expiryByRefresh map[string]time.Time // refresh token → its access token's expiry
	lifetime        time.Duration        // of the tokens Refresh issues
	firstGen        atomic.Int64         // refreshes of the tokens first stored
}

func (p *provider) Refresh(ctx context.Context, refreshToken string) (oauth.Token, error) {
	n := p.running.Add(1)
	defer p.running.Add(-1)
	for {
		peak := p.peak.Load()
		if n <= peak || p.peak.CompareAndSwap(peak, n) {
			break
		}
	}
	p.calls.Add(1)
	p.mu.Lock()
	if exp, ok := p.expiryByRefresh[refreshToken]; ok && time.Now().After(exp) {
		p.lateRefreshes++
	}
	p.mu.Unlock()
	select {
	case <-time.After(p.delay):
	case <-ctx.Done():
		return oauth.Token{}, ctx.Err()
	}
	// The new tokens live p.lifetime and are the same size as the old
	// ones (generation 1 to 9), so that each cycle stores and schedules
	// as much as the first.
	base, g, _ := strings.Cut(refreshToken, ".g")
	gen, _ := strconv.Atoi(g)
	if gen == 0 {
		p.firstGen.Add(1)
	}
	next := fmt.Sprintf("%s.g%d", base, gen+1)
	exp := time.Now().Add(p.lifetime)
	p.mu.Lock()
	delete(p.expiryByRefresh, refreshToken)
	p.expiryByRefresh[next] = exp
	p.mu.Unlock()
	return oauth.Token{AccessToken: "at-" + next, RefreshToken: next, Expiry: exp}, nil
}

// BenchmarkRefreshScheduler: 10,000 tokens all expiring within the same
// minute, against a provider that takes 20 ms per refresh and issues
// tokens for 60 s: all refreshed before expiry, twice, concurrency bounded
// by the workers, memory flat from one cycle to the next.
func BenchmarkRefreshScheduler(b *testing.B) {
	const tokens, workers = 10_000, 8
	st, err := embedded.Open(filepath.Join(b.TempDir(), "s.db"), &embedded.Options{MasterKey: make([]byte, 32), NoSync: true})
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	p := &provider{delay: 20 * time.Millisecond, expiryByRefresh: map[string]time.Time{}, lifetime: time.Minute}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	r := oauth.NewRefresher(oauth.RefresherOptions{
		Store: st, Providers: map[string]oauth.TokenRefresher{"crm": p},
		Margin: 30 * time.Second, Jitter: -1, Workers: workers,
	})
	go func() { _ = r.Run(ctx) }()

	heap := func() float64 {
		var m runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&m)
		return float64(m.HeapAlloc) / (1 << 20)
	}
	before := heap()
	start := time.Now()
	for i := range tokens {
		// Expiries spread over one minute, 35 to 95 s from now.
		exp := start.Add(35*time.Second + time.Duration(i)*time.Minute/tokens)
		cred := vault.Credential{AccessToken: fmt.Sprintf("at-%d", i), RefreshToken: fmt.Sprintf("rt-%d", i), ExpiresAt: exp}
		p.mu.Lock()
		p.expiryByRefresh[cred.RefreshToken] = exp
		p.mu.Unlock()
		tenant := fmt.Sprintf("t%05d", i)
		if _, err := st.Put(ctx, tenant, "crm", cred, 0); err != nil {
			b.Fatal(err)
		}
		r.Schedule(tenant, "crm", cred)
	}
	scheduled := heap()
	// Each token is refreshed 30 s before it expires (5 to 65 s after the
	// start), and again every 30 s after that: by the end, 125 s after the
	// start, each has been refreshed three or four times.
	for deadline := start.Add(100 * time.Second); p.firstGen.Load() < tokens && time.Now().Before(deadline); {
		time.Sleep(50 * time.Millisecond)
	}
	first := time.Since(start)
	afterFirst := heap()
	firstCalls := p.calls.Load()
	time.Sleep(time.Until(start.Add(95 * time.Second)))
	mid := heap()
	time.Sleep(time.Until(start.Add(125 * time.Second)))
	total := p.calls.Load()
	afterAll := heap()
	p.mu.Lock()
	late := p.lateRefreshes
	p.mu.Unlock()

	var rep report
	rep.line("## Refresh scheduler\n")
	rep.line("%d tokens expiring within one minute (35–95 s after start), refresh margin 30 s, %d workers, provider 20 ms per refresh issuing tokens for 60 s (so each is refreshed again every 30 s), 125 s in all:\n", tokens, workers)
	rep.line("| tokens refreshed once | after | refreshes in 125 s | after expiry | peak concurrent refreshes | heap before | heap scheduled | heap when each was refreshed once (%d refreshes) | heap at 95 s | heap at 125 s |", firstCalls)
	rep.line("|---|---|---|---|---|---|---|---|---|---|")
	rep.line("| %d | %s | %d | %d | %d | %.1f MiB | %.1f MiB | %.1f MiB | %.1f MiB | %.1f MiB |\n", p.firstGen.Load(), first.Round(time.Second), total, late, p.peak.Load(),
		before, scheduled, afterFirst, mid, afterAll)
	rep.flush(b)
	if p.firstGen.Load() < tokens || total < 3*tokens || late > 0 || p.peak.Load() > workers {
		b.Errorf("refreshed %d of %d once, %d refreshes in all, %d after expiry, peak concurrency %d (workers %d)",
			p.firstGen.Load(), tokens, total, late, p.peak.Load(), workers)
	}
}
