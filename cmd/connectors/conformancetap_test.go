package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"strings"
	"sync"
	"time"
)

// proxyTap records what went wrong between the conformance suite's test
// proxy and the gateway: an exchange that failed or whose answer ended
// before its end (a cut body), and the proxy's own error log. A suite run
// that fails reports it, so that a cut answer says which side cut it.
type proxyTap struct {
	next http.RoundTripper

	mu    sync.Mutex
	lines []string
}

func (p *proxyTap) note(format string, args ...any) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.lines) < 200 {
		p.lines = append(p.lines, time.Now().UTC().Format("15:04:05.000000 ")+fmt.Sprintf(format, args...))
	}
}

// String is what the tap recorded, one line each.
func (p *proxyTap) String() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.lines) == 0 {
		return "(the proxy saw no failed or cut exchange)"
	}
	return strings.Join(p.lines, "\n")
}

// Write takes the proxy's error log (httputil.ReverseProxy.ErrorLog).
func (p *proxyTap) Write(b []byte) (int, error) {
	p.note("proxy: %s", bytes.TrimSpace(b))
	return len(b), nil
}

func (p *proxyTap) logger() *log.Logger { return log.New(p, "", 0) }

func (p *proxyTap) RoundTrip(r *http.Request) (*http.Response, error) {
	var sent []byte
	if r.Body != nil {
		sent, _ = io.ReadAll(r.Body)
		r.Body.Close()
		r.Body = io.NopCloser(bytes.NewReader(sent))
	}
	what := fmt.Sprintf("%s %s %.160s", r.Method, r.URL.Path, sent)
	start := time.Now()
	res, err := p.next.RoundTrip(r)
	if err != nil {
		p.note("%s: no answer after %v: %v", what, time.Since(start), err)
		return nil, err
	}
	res.Body = &tappedBody{ReadCloser: res.Body, tap: p, start: start,
		what: fmt.Sprintf("%s → %d %s (length %d)", what, res.StatusCode, res.Header.Get("Content-Type"), res.ContentLength)}
	return res, nil
}

// tappedBody notes a read error other than the end of the body.
type tappedBody struct {
	io.ReadCloser
	tap   *proxyTap
	start time.Time
	what  string
	n     int
	tail  []byte
}

func (b *tappedBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	b.n += n
	if n > 0 {
		b.tail = append(b.tail, p[:n]...)
		if len(b.tail) > 240 {
			b.tail = b.tail[len(b.tail)-240:]
		}
	}
	if err != nil && !errors.Is(err, io.EOF) {
		b.tap.note("%s: body cut after %d bytes and %v: %v; last bytes %q", b.what, b.n, time.Since(b.start), err, b.tail)
	}
	return n, err
}
