package tools

import (
	"context"
	"net"
	"net/http"
	"time"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/client/transport"
	"github.com/mark3labs/mcp-go/mcp"
)

// defaultHTTPClient is shared by every HTTP upstream of a pool: keep-alive
// connections are pooled per host across tenants. It has no overall
// timeout, since a response may be a long SSE stream; calls are bounded by
// their context.
func defaultHTTPClient() *http.Client {
	return &http.Client{
		Transport: &http.Transport{
			Proxy: http.ProxyFromEnvironment,
			DialContext: (&net.Dialer{
				Timeout:   10 * time.Second,
				KeepAlive: 30 * time.Second,
			}).DialContext,
			ForceAttemptHTTP2:     true,
			MaxIdleConns:          512,
			MaxIdleConnsPerHost:   64,
			IdleConnTimeout:       90 * time.Second,
			TLSHandshakeTimeout:   10 * time.Second,
			ExpectContinueTimeout: time.Second,
		},
	}
}

// dialHTTP opens a streamable-HTTP session with l's URL. Every request
// carries l's rendered headers and nothing of the agent's.
func (p *Pool) dialHTTP(ctx context.Context, tenant string, l *launch) (*Conn, error) {
	c := newConn(tenant, l.in, l, &p.opts)
	if p.lane != nil {
		c.direct = p.lane.target(l)
	}
	hc := heardClient(p.opts.HTTPClient, &c.heard, &c.throttled)
	c.dial = func(ctx context.Context) (*client.Client, error) {
		opts := []transport.StreamableHTTPCOption{
			transport.WithHTTPBasicClient(hc),
			transport.WithHTTPHeaders(l.headers),
			transport.WithHTTPLogger(scrubbedLogger(p.opts.Logger, c.scrubber)),
		}
		if l.in.Protocol != "" && !mcp.IsModernProtocol(l.in.Protocol) {
			// Initialize-era servers send requests of their own (sampling,
			// roots) and list_changed on the standalone GET stream.
			opts = append(opts, transport.WithContinuousListening())
		}
		tr, err := transport.NewStreamableHTTP(l.in.Upstream.URL, opts...)
		if err != nil {
			return nil, err
		}
		return c.initialize(ctx, track(c, tr))
	}
	cli, err := c.dial(ctx)
	if err != nil {
		c.cancel(ErrConnClosed)
		return nil, err
	}
	c.client = cli
	return c, nil
}

// directTarget is where an HTTP conn's direct calls go, made by the
// pool's direct lane (directLane).
type directTarget struct {
	url     string
	headers http.Header // the rendered upstream headers
	// send sends one request and returns the response (as http.Client's
	// Do); drop closes the connections kept to the upstream, which hung.
	send func(*http.Request) (*http.Response, error)
	drop func()
}
