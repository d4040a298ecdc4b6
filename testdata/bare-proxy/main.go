// Command bare-proxy is the benchmarks' reference for the least an HTTP
// hop can cost here: net/http/httputil's reverse proxy in front of one
// upstream, with no authentication, no MCP and no credentials. It prints
// {"addr": "127.0.0.1:PORT"} on stdout once listening. It answers GET
// /readyz itself, as the gateway does, for a load balancer's checks.
//
//	bare-proxy http://127.0.0.1:PORT
package main

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: bare-proxy UPSTREAM-URL")
		os.Exit(2)
	}
	upstream, err := url.Parse(os.Args[1])
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	proxy := httputil.NewSingleHostReverseProxy(upstream)
	proxy.Transport = &http.Transport{MaxIdleConnsPerHost: 64}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	_ = json.NewEncoder(os.Stdout).Encode(map[string]string{"addr": ln.Addr().String()})
	mux := http.NewServeMux()
	mux.Handle("/", proxy)
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusOK) })
	if err := http.Serve(ln, mux); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
