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

// BenchmarkReplicas: a deployment's shape. R: three gateway replicas on
// one Vault, sharing the session key and gossiping, behind a real HAProxy
// (round robin, no affinity: an initialize-era session's requests land on
// every replica, each taking it up once); L: three bare reverse proxies
// behind the same kind of HAProxy, the least a load-balanced tier of HTTP
// hops costs on this machine, which R is measured against. The CPU column
// is the tier's, its three processes summed (HAProxy's own in neither).
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
	lbProxies := "http://" + testenv.HAProxy(b, proxyAddrs) + "/mcp"
	lbGateways := "http://" + testenv.HAProxy(b, gatewayAddrs) + "/mcp"

	clients := func(dial func(testing.TB, string, string) caller, url, key string) func(int) []caller {
		return func(n int) []caller {
			cs := make([]caller, n)
			for i := range cs {
				cs[i] = dial(b, url, key)
			}
			return cs
		}
	}
	targets := []tierTarget{
		{"L bare proxies", "echo", "", clients(dial, lbProxies, ""), proxies},
		{"R gateways", "echo-http_echo", "L bare proxies", clients(dial, lbGateways, first.key), gateways},
		{"L bare proxies" + session, "echo", "", clients(dialSession, lbProxies, ""), proxies},
		{"R gateways" + session, "echo-http_echo", "L bare proxies" + session, clients(dialSession, lbGateways, first.key), gateways},
	}

	var r report
	r.line("## %d replicas behind HAProxy (%s measured per cell after %s warm-up, %d round(s))\n", replicaCount, *flagDuration, *flagWarmup, *flagRounds)
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
