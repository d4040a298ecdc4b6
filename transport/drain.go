package transport

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/connectors-gateway/connectors/internal/httpwire"
)

// codeShuttingDown is the JSON-RPC error of a request the gateway did not
// finish because it is shutting down, in the range JSON-RPC leaves to
// servers.
const codeShuttingDown = -32000

// Messages of the drain: what was not done, and what to do about it.
const (
	msgRefusedDraining = "Shutting down: the gateway is stopping and takes no new requests; retry on another instance"
	msgCutByDrain      = "Shutting down: the gateway stopped before this call finished (its drain time, CONNECTORS_DRAIN_TIMEOUT, ran out); the upstream may or may not have completed it"
)

// drain is the requests in flight (every exchange), and whether the
// gateway has begun to drain.
type drain struct {
	mu       sync.Mutex
	draining bool
	inflight map[*exchange]struct{}
}

// add registers e, unless the drain has begun.
func (d *drain) add(e *exchange) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.draining {
		return false
	}
	if d.inflight == nil {
		d.inflight = map[*exchange]struct{}{}
	}
	d.inflight[e] = struct{}{}
	return true
}

func (d *drain) remove(e *exchange) {
	d.mu.Lock()
	defer d.mu.Unlock()
	delete(d.inflight, e)
}

// begin starts the drain.
func (d *drain) begin() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.draining = true
}

func (d *drain) started() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.draining
}

// mark records what track learnt of e: its message, and whether it is a
// listening stream.
func (d *drain) mark(e *exchange, body []byte, stream bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	e.body, e.stream = body, stream
}

// pending is an exchange in flight and what track learnt of it.
type pending struct {
	e      *exchange
	body   []byte
	stream bool
}

// snapshot returns the exchanges in flight, and how many are not streams.
func (d *drain) snapshot() (all []pending, calls int) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for e := range d.inflight {
		all = append(all, pending{e, e.body, e.stream})
		if !e.stream {
			calls++
		}
	}
	return all, calls
}

// track tells the drain what an MCP request is: a listening stream (a GET,
// or a 2026-07-28 subscriptions/listen, which mcp-go makes name its method
// in Mcp-Method), which never finishes by itself, or a call, and the
// message, read by limitBody, whose ID the drain answers should the call
// outlast it. It costs one lock and no copy.
func (d *drain) track(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if e := exchangeOf(w); e != nil {
			var body []byte
			if b, ok := httpwire.Bytes(r.Body); ok {
				body = b
			}
			stream := r.Method == http.MethodGet || r.Header.Get("Mcp-Method") == "subscriptions/listen"
			d.mark(e, body, stream)
		}
		next.ServeHTTP(w, r)
	})
}

// refuseDraining answers a request that came once the drain had begun.
func (h *HTTP) refuseDraining(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Connection", "close")
	w.Header().Set("Retry-After", "1")
	if r.URL.Path == "/mcp" || strings.HasPrefix(r.URL.Path, "/mcp/") {
		httpwire.WriteJSONRPCError(w, http.StatusServiceUnavailable, nil, codeShuttingDown, msgRefusedDraining)
		return
	}
	httpwire.WriteError(w, r, http.StatusServiceUnavailable, "ShuttingDown", "the gateway is shutting down; retry on another instance")
}

// Drain stops the gateway taking requests and lets those in flight finish:
// from now on every new request is answered 503 (GET /readyz too, so that
// a load balancer stops sending; GET /healthz still answers). It waits
// until no call is in flight or ctx ends; then it answers each call still
// running with a JSON-RPC error saying the gateway stopped before it
// finished (an event on an event stream, else a 503), ends the requests'
// contexts and every session, and ends the listening streams, whose
// responses then close as usual. It returns how many calls it cut short.
//
// The HTTP server's Shutdown, after Drain, finds every response finishing.
func (h *HTTP) Drain(ctx context.Context) int {
	h.drain.begin()
	h.guards.log.Info("gateway_draining")
	t := time.NewTicker(10 * time.Millisecond)
	defer t.Stop()
	for waiting := true; waiting; {
		if _, calls := h.drain.snapshot(); calls == 0 {
			break
		}
		select {
		case <-ctx.Done():
			waiting = false
		case <-t.C:
		}
	}
	all, _ := h.drain.snapshot()
	cut := 0
	for _, p := range all {
		if !p.stream && p.e.answerDrained(p.body) {
			cut++
		}
	}
	h.guards.opts.MCP.EndSessions()
	for _, p := range all {
		p.e.cancel()
	}
	if cut > 0 {
		h.guards.log.Warn("gateway_drain_cut", "calls", cut)
	}
	return cut
}

// answerDrained answers, or has bounded answer, e's request with the
// drain's error, and reports whether it did. On an event stream it writes
// the error as the stream's last event at once, and drops the handler's
// writes from then on. If nothing is written yet, the handler's goroutine
// answers once the handler returns (see owe): the header map is the
// handler's until then. A JSON answer being written is left to finish.
func (e *exchange) answerDrained(body []byte) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	switch {
	case e.drained || e.owed:
		return false
	case !e.header:
		e.owed = true
		return true
	case !e.sse:
		return false
	}
	e.drained = true
	e.extendLocked()
	_, _ = e.ResponseWriter.Write([]byte("event: message\ndata: "))
	_, _ = e.ResponseWriter.Write(drainError(body))
	_, _ = e.ResponseWriter.Write([]byte("\n\n"))
	if f, ok := e.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
	return true
}

// payDebt answers, once its handler has returned, a request the drain cut
// before anything of its answer was written: a JSON-RPC error for a
// JSON-RPC message (body), else the API's error.
func (e *exchange) payDebt(r *http.Request, body []byte) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if !e.owed || e.header || e.drained {
		return
	}
	e.drained = true
	e.extendLocked()
	e.Header().Set("Connection", "close")
	e.Header().Set("Content-Type", "application/json")
	e.ResponseWriter.WriteHeader(http.StatusServiceUnavailable)
	if body == nil {
		_ = json.NewEncoder(e.ResponseWriter).Encode(httpwire.ErrorBody{
			Error: "ShuttingDown", Message: "the gateway stopped before this request finished; it may or may not have taken effect",
			RequestID: RequestID(r.Context()),
		})
		return
	}
	_, _ = e.ResponseWriter.Write(drainError(body))
}

// drainError is the JSON-RPC error answering the message body (its ID,
// or null) when the drain cut it.
func drainError(body []byte) []byte {
	var m struct {
		ID json.RawMessage `json:"id"`
	}
	_ = json.Unmarshal(body, &m)
	b, _ := json.Marshal(httpwire.JSONRPCError(m.ID, codeShuttingDown, msgCutByDrain))
	return b
}
