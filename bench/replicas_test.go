package bench

import (
	"encoding/base64"
	"fmt"
	"net"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/connectors-gateway/connectors/internal/testenv"
)

// replicaCount is the size of the load-balanced tiers of BenchmarkReplicas.
const replicaCount = 3

// BenchmarkReplicas: a deployment's shape. R: 1, 2 and 3 gateway replicas
// on one Vault, sharing the session key and gossiping, behind a real
// HAProxy (round robin, no affinity: an initialize-era session's requests
// land on every replica, each taking it up once); L: as many bare reverse
// proxies behind the same kind of HAProxy, the least a load-balanced tier
// of HTTP hops costs on this machine, which R is measured against. The CPU
// column is the tier's, its processes summed (HAProxy's own in neither):
// on 2 cores more replicas cannot add calls per second, and the figure
// that matters is that the CPU per call does not grow with them.
func BenchmarkReplicas(b *testing.B) {
	bin := testenv.Build(b, "./cmd/connectors")
	echoBin := testenv.Build(b, "./testdata/upstream-echo")
	_, echoAddr := start(b, echoBin, os.Environ(), "--http", "127.0.0.1:0")
	echoURL := "http://" + echoAddr + "/mcp"

	var proxies, gateways []*process
	var proxyAddrs, gatewayAddrs []string
	for range replicaCount {
		p, addr := start(b, testenv.Build(b, "./testdata/bare-proxy"), os.Environ(), "http://"+echoAddr)
		proxies, proxyAddrs = append(proxies, p), append(proxyAddrs, addr)
	}
	vaultAddr, vaultToken := testenv.Vault(b)
	key := base64.StdEncoding.EncodeToString([]byte("bench-replicas-key-of-32-bytes!!"))
	gossip := make([]string, replicaCount)
	for i := range gossip {
		gossip[i] = freeAddr(b)
	}
	first := newGateway(b, bin, echoBin, echoURL, "VAULT_ADDR="+vaultAddr, "VAULT_TOKEN="+vaultToken,
		"CONNECTORS_BROWSER_SESSION_KEY="+key, "CONNECTORS_CLUSTER_KEY="+key,
		"CONNECTORS_CLUSTER_BIND="+gossip[0], "CONNECTORS_CLUSTER_PEERS="+strings.Join(gossip[1:], ","))
	gateways, gatewayAddrs = append(gateways, first.process), append(gatewayAddrs, strings.TrimPrefix(first.url, "http://"))
	for i := 1; i < replicaCount; i++ {
		env := append(slices.Clone(first.env), "CONNECTORS_CLUSTER_BIND="+gossip[i],
			"CONNECTORS_CLUSTER_PEERS="+strings.Join(slices.Delete(slices.Clone(gossip), i, i+1), ","))
		p, addr := start(b, bin, env, "serve", "--addr", "127.0.0.1:0")
		waitReady(b, "http://"+addr)
		gateways, gatewayAddrs = append(gateways, p), append(gatewayAddrs, addr)
	}
	clients := func(dial func(testing.TB, string, string) caller, url, key string) func(int) []caller {
		return func(n int) []caller {
			cs := make([]caller, n)
			for i := range cs {
				cs[i] = dial(b, url, key)
			}
			return cs
		}
	}
	// A tier of k of each behind a HAProxy of its own, k = 1..replicaCount;
	// the initialize era at the full tier only.
	var targets []tierTarget
	for k := 1; k <= replicaCount; k++ {
		lbP := "http://" + testenv.HAProxy(b, proxyAddrs[:k]) + "/mcp"
		lbG := "http://" + testenv.HAProxy(b, gatewayAddrs[:k]) + "/mcp"
		l, g := fmt.Sprintf("L %d bare prox%s", k, plural(k, "y", "ies")), fmt.Sprintf("R %d gateway%s", k, plural(k, "", "s"))
		targets = append(targets,
			tierTarget{l, "echo", "", clients(dial, lbP, ""), proxies[:k]},
			tierTarget{g, "echo-http_echo", l, clients(dial, lbG, first.key), gateways[:k]})
		if k == replicaCount {
			targets = append(targets,
				tierTarget{l + session, "echo", "", clients(dialSession, lbP, ""), proxies[:k]},
				tierTarget{g + session, "echo-http_echo", l + session, clients(dialSession, lbG, first.key), gateways[:k]})
		}
	}

	var r report
	r.line("## 1 to %d replicas behind HAProxy (%s measured per cell after %s warm-up, %d round(s))\n", replicaCount, *flagDuration, *flagWarmup, *flagRounds)
	r.line("| concurrency | tier | calls/s | p50 ms | p99 ms | tier CPU µs/call | calls/s vs L | added p50 ms | added p99 ms |")
	r.line("|---|---|---|---|---|---|---|---|---|")
	for _, conc := range concurrencies(b) {
		results := make([][]result, len(targets))
		for range *flagRounds {
			for i, t := range targets {
				cs := t.clients(conc)
				tier := t.tier
				results[i] = append(results[i], run(b, cs, t.tool, *flagWarmup, *flagDuration, func() time.Duration {
					var sum time.Duration
					for _, p := range tier {
						sum += p.cpu()
					}
					return sum
				}))
				for _, c := range cs {
					_ = c.Close()
				}
			}
		}
		for i, t := range targets {
			res, base := merge(results[i]), merge(results[i])
			if t.base != "" {
				base = merge(results[slices.IndexFunc(targets, func(u tierTarget) bool { return u.name == t.base })])
			}
			cpu := "—"
			if res.calls > 0 {
				cpu = fmt.Sprintf("%.0f", float64(res.cpu.Microseconds())/float64(res.calls))
			}
			r.line("| %d | %s | %.0f | %s | %s | %s | %.0f %% | %s | %s |", conc, t.name, res.rate(),
				ms(res.pct(0.50)), ms(res.pct(0.99)), cpu,
				100*res.rate()/base.rate(), ms(res.pct(0.50)-base.pct(0.50)), ms(res.pct(0.99)-base.pct(0.99)))
		}
	}
	r.line("")
	r.flush(b)
}

// tierTarget is one row of BenchmarkReplicas: a tier behind a load
// balancer, measured against the row named base ("": itself).
type tierTarget struct {
	name, tool, base string
	clients          func(int) []caller
	tier             []*process
}

// freeAddr returns a loopback address whose port was free a moment ago
// (for a listener that must be named before it starts, as gossip peers
// are).
func freeAddr(b testing.TB) string {
	b.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// plural is one or many by n.
func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}
