package hashicorp

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync/atomic"
	"time"
)

// A Vault HA cluster has one active node; its standbys forward every
// request they get to it, so any unsealed node serves the store. The store
// may be given several nodes' addresses (Config.Addr, comma separated):
// vault/api talks to one address (SetAddress changes it for every later
// call, and its retries, MaxRetries and CheckRetry, go back to the same
// one), so the store's HTTP transport picks the node. It sends each
// request to the node that last answered and moves on to the next only
// when the request cannot have been applied where it was sent:
//
//   - the connection was refused, or could not be made at all;
//   - that node's circuit breaker is open (breaker.go), so nothing was sent;
//   - the node answered 503 (sealed; a standby that knows of no active
//     node; Vault's request limiter), or 500 "local node not active but
//     active cluster node not found" (a standby mid-election).
//
// A request that timed out, or whose connection broke once it was sent, is
// never sent again: a write may have landed (KV check-and-set would refuse
// the second one, but a Transit encryption would not). When every node
// refused, as during an election, the store tries them all again every
// failoverPause while the request's Timeout allows, so a call made while
// the cluster elects a new active node waits for it rather than failing.
const failoverPause = 50 * time.Millisecond

// splitAddrs parses Config.Addr: one address, or several separated by
// commas. Each must be an http or https URL with a host and nothing else.
func splitAddrs(list string) ([]*url.URL, error) {
	var out []*url.URL
	for a := range strings.SplitSeq(list, ",") {
		a = strings.TrimSpace(a)
		if a == "" {
			continue
		}
		u, err := url.Parse(a)
		if err != nil {
			return nil, fmt.Errorf("vault: address %d is not a URL: want http(s)://host:port, several separated by commas", len(out)+1)
		}
		if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil ||
			strings.Trim(u.Path, "/") != "" || u.RawQuery != "" || u.Fragment != "" {
			return nil, fmt.Errorf("vault: address %q: want http(s)://host:port, several separated by commas", u.Redacted())
		}
		out = append(out, u)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("vault: address %q: no address", list)
	}
	return out, nil
}

// failoverTransport is the Vault client's HTTP transport: one breaker per
// node, and the choice of node described above. The client's address is
// nodes[0]'s; a request for it goes to the preferred node. A request for
// another listed node (Vault's redirect to its active node) starts at that
// node; one for an address not listed goes out as it is.
type failoverTransport struct {
	nodes     []failoverNode
	direct    http.RoundTripper // for addresses not listed
	timeout   time.Duration
	log       *slog.Logger
	preferred atomic.Int32 // the node to try first
}

type failoverNode struct {
	url *url.URL
	rt  *breakerTransport
}

func newFailoverTransport(next http.RoundTripper, addrs []*url.URL, timeout time.Duration, log *slog.Logger) *failoverTransport {
	t := &failoverTransport{direct: next, timeout: timeout, log: log}
	for _, u := range addrs {
		l := log
		if len(addrs) > 1 {
			l = log.With("vault_node", u.Host)
		}
		t.nodes = append(t.nodes, failoverNode{url: u, rt: newBreakerTransport(next, timeout, l)})
	}
	return t
}

// sameNodes reports whether t is for addrs.
func (t *failoverTransport) sameNodes(addrs []*url.URL) bool {
	return slices.EqualFunc(t.nodes, addrs, func(n failoverNode, u *url.URL) bool { return *n.url == *u })
}

func (t *failoverTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := t.route(req)
	// vault/api follows one redirect and takes a second for an answer
	// without a body: a read would come back as "not found". With several
	// nodes, a redirect left is every node redirecting for as long as the
	// request may take; with one address (a load balancer's), a redirect
	// of the request vault/api sent to the redirect's target is a second
	// one. Either is a Vault with no active node yet.
	first := req.URL.Host == t.nodes[0].url.Host && req.URL.Scheme == t.nodes[0].url.Scheme
	if err == nil && redirect(resp) && (len(t.nodes) > 1 || !first) {
		resp.Body.Close()
		return noActiveNode(req), nil
	}
	return resp, err
}

// route is RoundTrip but for the second redirect.
func (t *failoverTransport) route(req *http.Request) (*http.Response, error) {
	if len(t.nodes) == 1 {
		return t.nodes[0].rt.RoundTrip(req)
	}
	first := -1
	for i, n := range t.nodes {
		if n.url.Host == req.URL.Host && n.url.Scheme == req.URL.Scheme {
			first = i
			break
		}
	}
	switch first {
	case -1:
		return t.direct.RoundTrip(req)
	case 0:
		first = int(t.preferred.Load())
	}
	body, err := readBody(req)
	if err != nil {
		return nil, err
	}
	started := time.Now()
	for {
		resp, err, again := t.pass(req, body, first)
		if !again || !t.pause(req.Context(), started) {
			return resp, err
		}
		if resp != nil {
			resp.Body.Close()
		}
		first = int(t.preferred.Load())
	}
}

// pass sends req to each node once, from first, until one takes it. again
// reports that none did and none can have applied it.
func (t *failoverTransport) pass(req *http.Request, body []byte, first int) (resp *http.Response, err error, again bool) {
	for k := range t.nodes {
		i := (first + k) % len(t.nodes)
		if resp != nil {
			resp.Body.Close()
		}
		resp, err = t.nodes[i].rt.RoundTrip(t.nodes[i].request(req, body))
		if req.Context().Err() != nil {
			return resp, err, false
		}
		if err == nil && !notServed(resp) {
			if int(t.preferred.Swap(int32(i))) != i {
				t.log.Info("vault_node_selected", "vault_node", t.nodes[i].url.Host)
			}
			return resp, nil, false
		}
		if err != nil && !notSent(err) {
			return nil, err, false
		}
	}
	return resp, err, true
}

// pause waits failoverPause before another pass, unless that would take
// the request past its deadline or the store's Timeout.
func (t *failoverTransport) pause(ctx context.Context, started time.Time) bool {
	end := started.Add(t.timeout)
	if d, ok := ctx.Deadline(); ok && d.Before(end) {
		end = d
	}
	if time.Until(end) < 2*failoverPause {
		return false
	}
	select {
	case <-ctx.Done():
		return false
	case <-time.After(failoverPause):
		return true
	}
}

// request is req addressed to n, with a fresh copy of its body.
func (n failoverNode) request(req *http.Request, body []byte) *http.Request {
	r := req.Clone(req.Context())
	r.URL.Scheme, r.URL.Host, r.Host = n.url.Scheme, n.url.Host, n.url.Host
	if body != nil {
		r.Body = io.NopCloser(bytes.NewReader(body))
		r.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
		r.ContentLength = int64(len(body))
	}
	return r
}

// readBody reads and closes req's body (nil: none), so it can be sent to
// more than one node.
func readBody(req *http.Request) ([]byte, error) {
	if req.Body == nil || req.Body == http.NoBody {
		return nil, nil
	}
	defer req.Body.Close()
	return io.ReadAll(req.Body)
}

// notSent reports whether a request failed before anything of it reached
// Vault: the breaker held it back, or no connection could be made.
func notSent(err error) bool {
	if errors.Is(err, ErrUnreachable) {
		return true
	}
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial"
}

// standbyNotFound is a standby's answer when it knows of no active node.
const standbyNotFound = "active cluster node not found"

// notServed reports whether Vault's answer says the node did not serve the
// request and another node may: 503, a standby's redirect to the active
// node (it could not forward the request: the active node is changing), or
// a standby's 500 that knows of no active node. The body of a 500 is read
// to tell, and put back.
func notServed(resp *http.Response) bool {
	switch {
	case resp.StatusCode == http.StatusServiceUnavailable || redirect(resp):
		return true
	case resp.StatusCode == http.StatusInternalServerError:
		b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		resp.Body.Close()
		resp.Body = io.NopCloser(bytes.NewReader(b))
		return err == nil && bytes.Contains(b, []byte(standbyNotFound))
	}
	return false
}

// redirect reports whether resp sends the client elsewhere, as a Vault
// standby does to its active node.
func redirect(resp *http.Response) bool {
	switch resp.StatusCode {
	case http.StatusMovedPermanently, http.StatusFound, http.StatusTemporaryRedirect, http.StatusPermanentRedirect:
		return true
	}
	return false
}

// noActiveNode is the answer to req when no node served it: a 503 with
// Vault's error body, which vault/api reports as an error.
func noActiveNode(req *http.Request) *http.Response {
	body := `{"errors":["no active Vault node: a standby redirected the request to a node that redirected it again"]}`
	return &http.Response{
		Status: "503 Service Unavailable", StatusCode: http.StatusServiceUnavailable,
		Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header:        http.Header{"Content-Type": {"application/json"}},
		Body:          io.NopCloser(strings.NewReader(body)),
		ContentLength: int64(len(body)),
		Request:       req,
	}
}
