package tools

import (
	"context"
	"net"
	"net/http"
	"net/url"
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
	c.direct = newDirectTarget(l, p.opts.HTTPClient, p.h1)
	hc := heardClient(p.opts.HTTPClient, &c.heard)
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

// newDirectTarget is where the direct calls of a conn dialled from l go: through
// fast when it takes the URL, else through hc.
func newDirectTarget(l *launch, hc *http.Client, fast *h1) *directTarget {
	t := &directTarget{url: l.in.Upstream.URL, headers: http.Header{}, client: hc}
	if u, err := url.Parse(t.url); err == nil && fast.takes(u) {
		t.h1 = fast
		t.host = h1Host(u)
	}
	for k, v := range l.headers {
		t.headers.Set(k, v)
	}
	return t
}
