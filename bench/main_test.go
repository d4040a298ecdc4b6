// Package bench measures what the gateway costs: `make bench` runs its
// benchmarks (never `make test`), which start real processes on loopback
// (an echo upstream, gateways on the embedded store and on a real Vault),
// drive them with a load generator at fixed concurrency, and print the
// figures as Markdown (and into BENCHMARKS.md with -bench.out).
package bench

import (
	_ "embed"
	"flag"
	"fmt"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/connectors-gateway/connectors/internal/testenv"
)

var (
	flagDuration = flag.Duration("bench.duration", 5e9, "measured time per cell")
	flagWarmup   = flag.Duration("bench.warmup", 1e9, "unmeasured warm-up per cell")
	flagConc     = flag.String("bench.conc", "1,16,64", "concurrencies")
	flagRounds   = flag.Int("bench.rounds", 2, "rounds of the interleaved A/B/C matrix")
	flagScale    = flag.String("bench.scale", "1000,10000,100000", "tenant counts of the scale runs")
	flagOut      = flag.String("bench.out", "", "append the report to this Markdown file")
	flagEnv      = flag.String("bench.env", "", "more environment for the gateways, comma-separated K=V (e.g. GOGC=200)")
	flagCommand  = flag.String("bench.command", "", "the command to name in the report's header")
	flagPprof    = flag.String("bench.pprof", "", "serve the embedded-store gateway's profiler on this address (CONNECTORS_PPROF_ADDR)")
)

func TestMain(m *testing.M) {
	flag.Parse()
	if *flagOut != "" && flag.Lookup("test.bench").Value.String() != "" {
		if err := writeHeader(*flagOut); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
	}
	code := testenv.RunMain(m)
	if code == 0 && *flagOut != "" && flag.Lookup("test.bench").Value.String() != "" {
		if err := appendAnalysis(*flagOut); err != nil {
			fmt.Fprintln(os.Stderr, err)
			code = 1
		}
	}
	os.Exit(code)
}

// analysis is the hand-written reading of the profile, kept with the
// harness so that every report carries it.
//
//go:embed analysis.md
var analysis string

func appendAnalysis(path string) error {
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = f.WriteString(analysis)
	return err
}

// writeHeader starts the report file: what ran, where, when.
func writeHeader(path string) error {
	cpu := "unknown CPU"
	if raw, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for line := range strings.Lines(string(raw)) {
			if name, ok := strings.CutPrefix(line, "model name"); ok {
				cpu = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(name), ":"))
				break
			}
		}
	}
	kernel, _ := os.ReadFile("/proc/sys/kernel/osrelease")
	command := *flagCommand
	if command == "" {
		command = strings.Join(os.Args, " ")
	}
	header := fmt.Sprintf(`# Benchmarks

Produced by `+"`%s`"+` on %s.

Machine: %s, %d cores (the load generator, the upstream, Vault and the
gateway share them), Linux %s, %s.

All on loopback. A: the load generator calls the echo upstream directly.
P (HTTP upstream only): through a bare reverse proxy (net/http/httputil,
testdata/bare-proxy), the least any HTTP hop costs on this machine.
B: through the gateway, embedded store. C: through the gateway, HashiCorp
Vault (the development server of testdata/vaultdev). Every client is an
mcp-go streamable-HTTP client speaking 2026-07-28 (stdio for A with a
stdio upstream), but for the rows "2025-11-25 session" (an initialize-era
session, as most agents open today) and "raw client" (the same
2026-07-28 tools/call, bytes written as mcp-go writes them, with no SDK:
the least a load generator can spend per call, on the cores the hops
share). Each row is against the direct row of its kind of client. Each
call is one tools/call of echo, which the gateway serves on its direct
path (B' is the same gateway with the direct path off; "B embedded, no
h1" is B built with -tags noh1, its direct calls to the HTTP upstream sent
by net/http instead of tools' HTTP/1.1 client). The CPU column is
the gateway's, or the bare proxy's for P. The gateways write their audit
trail (a record per call) to /dev/null: encoded and written, not read by
the load generator. Percentiles are over every call of the measured
window.

`, command, time.Now().UTC().Format("2006-01-02 15:04 MST"), cpu, runtime.NumCPU(), strings.TrimSpace(string(kernel)), runtime.Version())
	return os.WriteFile(path, []byte(header), 0o644)
}
