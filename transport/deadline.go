package transport

import (
	"context"
	"errors"
	"io"
	"net/http"
	"sync"
	"time"
)

// Defaults of the per-request bounds (HTTPOptions.ReadTimeout and
// WriteTimeout).
const (
	DefaultReadTimeout  = 15 * time.Second
	DefaultWriteTimeout = 15 * time.Second
)

// writeChunk is the most the gateway hands the connection in one write:
// the write timeout is the longest a client may take to accept this much,
// so a slow but reading client of a large answer is not cut off, and one
// that stopped reading is.
const writeChunk = 64 << 10

// errDrained is what a handler's write gets once the drain has answered
// its request (see HTTP.Drain).
var errDrained = errors.New("the gateway answered this request itself: it is shutting down")

// deadlines is the connection's per-request deadlines, as the server's
// response offers them (http.ResponseController reaches the same methods).
type deadlines interface {
	SetReadDeadline(time.Time) error
	SetWriteDeadline(time.Time) error
}

// exchange is one request in flight and its response writer. It bounds
// every wait on the client, which http.Server's whole-request ReadTimeout
// and WriteTimeout cannot do without cutting MCP streams and long calls:
//
//   - reading the body: ReadTimeout from the first byte of the body to its
//     end, then no read deadline (the server's read in the background, which
//     notices a client that hangs up, must not time out during a long call);
//   - writing: before each write (of at most writeChunk bytes) and flush,
//     the write deadline is set WriteTimeout ahead. A quiet stream or a long
//     call writes nothing and so never times out; a client that stops
//     reading stalls a write, which fails at the deadline, the connection
//     closes and the handler's buffers are freed.
//
// It is also what the drain tracks (see HTTP.Drain): it can answer the
// request itself, after which the handler's writes are dropped.
type exchange struct {
	http.ResponseWriter
	dl    deadlines // nil: the writer has none (a recorder in a test)
	write time.Duration

	// cancel ends the handler's context (a session's requests also end
	// with the session: see resumable).
	cancel context.CancelFunc
	// body is the buffered JSON-RPC message (set by track), for the ID of
	// the error the drain answers with; stream marks a listening stream,
	// which the drain ends rather than waits for. The drain's lock guards
	// both.
	body   []byte
	stream bool
	// reader is the request body, in the same allocation.
	reader deadlineBody

	mu      sync.Mutex
	header  bool // WriteHeader was called
	sse     bool // ... with an event stream
	drained bool // the drain answered: drop the handler's writes
	owed    bool // the drain cut it with nothing written: answer when the handler returns
}

// bounded is the gateway's outermost handler: it bounds reads and writes
// as exchange says, and registers the request with the drain (refusing it
// once the drain has begun).
func (h *HTTP) bounded(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		e := &exchange{ResponseWriter: w, write: h.guards.opts.WriteTimeout}
		e.dl, _ = w.(deadlines)
		if h.drain.add(e) {
			defer h.drain.remove(e)
		} else if p := r.URL.Path; p != "/healthz" && p != "/readyz" {
			h.refuseDraining(w, r)
			return
		}
		ctx, cancel := context.WithCancel(r.Context())
		defer cancel()
		e.cancel = cancel
		r = r.WithContext(ctx)
		if e.dl != nil && r.Body != nil && r.Body != http.NoBody {
			_ = e.dl.SetReadDeadline(time.Now().Add(h.guards.opts.ReadTimeout))
			e.reader = deadlineBody{ReadCloser: r.Body, dl: e.dl}
			r.Body = &e.reader
		}
		next.ServeHTTP(e, r)
		e.payDebt(r, e.body) // body: set by track, on this goroutine
		if e.dl != nil {
			// The server flushes what the handler left buffered: bounded too
			// (it lifts the write deadline after).
			_ = e.dl.SetWriteDeadline(time.Now().Add(e.write))
		}
	})
}

// deadlineBody lifts the read deadline once the body is read: from then on
// the server reads in the background, to notice a client that hangs up,
// and that read must not time out while a long call runs. After a failed
// read the deadline stays, so that the server, discarding the rest of the
// body, gives up too and closes the connection.
type deadlineBody struct {
	io.ReadCloser
	dl   deadlines
	done bool
}

func (b *deadlineBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err == io.EOF && !b.done {
		b.done = true
		_ = b.dl.SetReadDeadline(time.Time{})
	}
	return n, err
}

// exchangeOf finds the exchange under w's wrappers (nil if none).
func exchangeOf(w http.ResponseWriter) *exchange {
	for {
		switch x := w.(type) {
		case *exchange:
			return x
		case interface{ Unwrap() http.ResponseWriter }:
			w = x.Unwrap()
		default:
			return nil
		}
	}
}

func (e *exchange) extendLocked() {
	if e.dl != nil {
		_ = e.dl.SetWriteDeadline(time.Now().Add(e.write))
	}
}

func (e *exchange) WriteHeader(code int) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.drained || e.header {
		return
	}
	e.header = true
	e.sse = e.Header().Get("Content-Type") == "text/event-stream"
	e.ResponseWriter.WriteHeader(code)
}

func (e *exchange) Write(b []byte) (int, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.drained {
		return 0, errDrained
	}
	if !e.header {
		e.header = true
		e.sse = e.Header().Get("Content-Type") == "text/event-stream"
	}
	written := 0
	for len(b) > 0 {
		chunk := b[:min(len(b), writeChunk)]
		e.extendLocked()
		n, err := e.ResponseWriter.Write(chunk)
		written += n
		if err != nil {
			return written, err
		}
		b = b[n:]
	}
	return written, nil
}

// Flush implements http.Flusher, for event streams.
func (e *exchange) Flush() {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.drained {
		return
	}
	if f, ok := e.ResponseWriter.(http.Flusher); ok {
		e.extendLocked()
		f.Flush()
	}
}

// Unwrap lets http.ResponseController reach the server's writer.
func (e *exchange) Unwrap() http.ResponseWriter { return e.ResponseWriter }
