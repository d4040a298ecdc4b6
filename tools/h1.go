package tools

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"
)

// h1 sends the direct calls to plain-http upstreams over HTTP/1.1 from the
// calling goroutine: it writes the request and reads the answer itself, on
// a kept-alive connection it holds for the call. net/http's Transport hands
// every request to a writer goroutine and every response back from a reader
// goroutine; on loopback those two wake-ups per call are a good part of
// what a hop costs (see BENCHMARKS.md). Anything h1 does not do (TLS,
// proxies, HTTP/2, redirects, bodies over h1MaxBody) stays with the
// http.Client.
type h1 struct {
	dial        func(ctx context.Context, network, addr string) (net.Conn, error)
	maxIdle     int           // kept-alive connections per host
	idleTimeout time.Duration // a connection idle longer is closed, not reused

	mu     sync.Mutex
	idle   map[string][]*h1Conn // by host:port, the most recently used last; guarded by mu
	closed bool                 // by closeIdle: connections given back are closed; guarded by mu
}

// h1Conn is one connection; one call at a time holds it.
type h1Conn struct {
	nc   net.Conn
	r    *h1Reader
	br   *bufio.Reader
	bw   *bufio.Writer
	used time.Time // when it went idle
}

// h1Reader bounds what a response's header may take, as the Transport's
// MaxResponseHeaderBytes does: an upstream sending endless header lines
// gets an error, not the gateway's memory.
type h1Reader struct {
	nc   net.Conn
	left int64 // bytes the header may still take; < 0 while reading a body
}

const h1MaxHeader = 1 << 20

var errH1HeaderTooLarge = errors.New("response header too large")

func (r *h1Reader) Read(p []byte) (int, error) {
	if r.left < 0 {
		return r.nc.Read(p)
	}
	if r.left == 0 {
		return 0, errH1HeaderTooLarge
	}
	if int64(len(p)) > r.left {
		p = p[:r.left]
	}
	n, err := r.nc.Read(p)
	r.left -= int64(n)
	return n, err
}

func newH1() *h1 {
	return &h1{
		dial:        (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		maxIdle:     64,
		idleTimeout: 90 * time.Second,
		idle:        map[string][]*h1Conn{},
	}
}

// takes reports whether h1 sends req's calls: plain http, no proxy.
func (h *h1) takes(u *url.URL) bool {
	if h == nil || u.Scheme != "http" || u.User != nil || !h1Probes {
		return false
	}
	proxy, err := http.ProxyFromEnvironment(&http.Request{URL: u})
	return err == nil && proxy == nil
}

// aLongTimeAgo is a deadline that has passed: set on a connection, it ends
// the I/O blocked on it.
var aLongTimeAgo = time.Unix(1, 0)

// Do sends req and returns the response, whose body the caller reads and
// closes. The connection goes back to the idle set when the body has been
// read to its end, and is closed otherwise. Errors are those of
// http.Client.Do: a *url.Error, holding ctx.Err() when the call was
// cancelled.
func (h *h1) Do(req *http.Request) (*http.Response, error) {
	resp, err := h.do(req)
	if err != nil {
		if ctxErr := req.Context().Err(); ctxErr != nil {
			err = ctxErr
		}
		return nil, &url.Error{Op: urlOp(req.Method), URL: req.URL.String(), Err: err}
	}
	return resp, nil
}

// urlOp is how http.Client names a method in its errors.
func urlOp(method string) string {
	if method == "" {
		return "Get"
	}
	return method[:1] + strings.ToLower(method[1:])
}

func (h *h1) do(req *http.Request) (*http.Response, error) {
	ctx := req.Context()
	host := h1Host(req.URL)
	for attempt := 0; ; attempt++ {
		c, reused, err := h.get(ctx, host)
		if err != nil {
			return nil, err
		}
		stop := context.AfterFunc(ctx, func() { _ = c.nc.SetDeadline(aLongTimeAgo) })
		c.r.left = -1
		err = req.Write(c.bw)
		if err == nil {
			err = c.bw.Flush()
		}
		if err != nil {
			stop()
			c.nc.Close()
			// A request that failed on its way out on a reused connection
			// (the upstream had just closed it) never reached a handler:
			// one more try on a new connection, as net/http does.
			if reused && attempt == 0 && req.GetBody != nil && ctx.Err() == nil {
				body, gerr := req.GetBody()
				if gerr != nil {
					return nil, err
				}
				req.Body = body
				continue
			}
			return nil, err
		}
		c.r.left = h1MaxHeader
		resp, err := http.ReadResponse(c.br, req)
		// Informational answers (103 Early Hints) precede the real one.
		for err == nil && resp.StatusCode >= 100 && resp.StatusCode < 200 && resp.StatusCode != http.StatusSwitchingProtocols {
			resp, err = http.ReadResponse(c.br, req)
		}
		if err == nil && resp.StatusCode == http.StatusSwitchingProtocols {
			err = fmt.Errorf("unexpected %s", resp.Status)
		}
		c.r.left = -1
		if err != nil {
			stop()
			c.nc.Close()
			return nil, err
		}
		resp.Body = &h1Body{ReadCloser: resp.Body, h: h, host: host, c: c, stop: stop, keep: !resp.Close}
		return resp, nil
	}
}

// get returns an idle connection to host that is still open, or a new one.
func (h *h1) get(ctx context.Context, host string) (c *h1Conn, reused bool, err error) {
	now := time.Now()
	for {
		h.mu.Lock()
		l := h.idle[host]
		if len(l) == 0 {
			h.mu.Unlock()
			break
		}
		c = l[len(l)-1]
		l[len(l)-1] = nil
		h.idle[host] = l[:len(l)-1]
		h.mu.Unlock()
		if now.Sub(c.used) < h.idleTimeout && c.br.Buffered() == 0 && open(c.nc) {
			return c, true, nil
		}
		c.nc.Close()
	}
	nc, err := h.dial(ctx, "tcp", host)
	if err != nil {
		return nil, false, err
	}
	r := &h1Reader{nc: nc, left: -1}
	return &h1Conn{nc: nc, r: r, br: bufio.NewReaderSize(r, 16<<10), bw: bufio.NewWriterSize(nc, 8<<10)}, false, nil
}

// put makes c idle again, closing the oldest beyond maxIdle (those idle
// too long are closeStale's, and get skips them).
func (h *h1) put(host string, c *h1Conn) {
	c.used = time.Now()
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		c.nc.Close()
		return
	}
	l := h.idle[host]
	var stale []*h1Conn
	for len(l) > 0 && len(l) >= h.maxIdle {
		stale = append(stale, l[0])
		l = l[1:]
	}
	h.idle[host] = append(l, c)
	h.mu.Unlock()
	for _, s := range stale {
		s.nc.Close()
	}
}

// h1MaxBody is the largest request body h1 sends: well inside the kernel's
// smallest default send buffer (16 KiB), so the request is written whole
// even when the upstream answers before reading it.
const h1MaxBody = 8 << 10

// closeStale closes the idle connections unused for the idle timeout (the
// pool's reaper calls it, so that a burst's connections do not stay open
// until the host is used again).
func (h *h1) closeStale(now time.Time) {
	if h == nil {
		return
	}
	var stale []*h1Conn
	h.mu.Lock()
	for host, l := range h.idle {
		i := 0
		for i < len(l) && now.Sub(l[i].used) >= h.idleTimeout {
			i++
		}
		stale = append(stale, l[:i]...)
		if i == len(l) {
			delete(h.idle, host)
		} else if i > 0 {
			h.idle[host] = slices.Clone(l[i:])
		}
	}
	h.mu.Unlock()
	for _, c := range stale {
		c.nc.Close()
	}
}

// h1Host is the key of u's connections: host:port.
func h1Host(u *url.URL) string {
	if u.Port() == "" {
		return net.JoinHostPort(u.Hostname(), "80")
	}
	return u.Host
}

// closeHost closes the idle connections to host (its server was found
// hung: they would carry the next calls into the same silence).
func (h *h1) closeHost(host string) {
	h.mu.Lock()
	idle := h.idle[host]
	delete(h.idle, host)
	h.mu.Unlock()
	for _, c := range idle {
		c.nc.Close()
	}
}

// closeIdle closes every idle connection, and every connection given back
// from now on (the pool is closing).
func (h *h1) closeIdle() {
	if h == nil {
		return
	}
	h.mu.Lock()
	h.closed = true
	idle := h.idle
	h.idle = map[string][]*h1Conn{}
	h.mu.Unlock()
	for _, l := range idle {
		for _, c := range l {
			c.nc.Close()
		}
	}
}

// h1Body is a response body; its connection is reused once the body has
// been read to its end, and closed if the body is closed before that.
type h1Body struct {
	io.ReadCloser
	h    *h1
	host string
	c    *h1Conn // nil once given back or closed
	stop func() bool
	keep bool // the upstream keeps the connection open
	eof  bool
}

func (b *h1Body) Read(p []byte) (int, error) {
	if b.eof {
		return 0, io.EOF
	}
	if b.c == nil {
		return 0, http.ErrBodyReadAfterClose
	}
	n, err := b.ReadCloser.Read(p)
	if err == io.EOF {
		b.eof = true
		b.release(true)
	} else if err != nil {
		b.release(false)
	}
	return n, err
}

func (b *h1Body) Close() error {
	b.release(false)
	return nil
}

// release gives the connection back, or closes it: after an error, an
// unread rest, or a cancellation that may have set its deadline.
func (b *h1Body) release(done bool) {
	c := b.c
	if c == nil {
		return
	}
	b.c = nil
	if b.stop() && done && b.keep {
		b.h.put(b.host, c)
		return
	}
	c.nc.Close()
}
