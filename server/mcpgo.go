package server

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/mark3labs/mcp-go/mcp"
	mcpserver "github.com/mark3labs/mcp-go/server"

	"github.com/connectors-gateway/connectors/internal/httpwire"
)

// This file holds every workaround of a defect of mcp-go v1.2.1 on the
// server side, each named with the defect, and each held by a test that
// fails without it:
//
//   - mcp-go's own idle sweeper ends sessions in use (streamableOptions):
//     TestIdleSweep, TestDirectSessionStaysAlive;
//   - notifications a tool handler sends while its response stream is set
//     up are dropped without an event store (streamableOptions):
//     TestNotificationsDuringStreamSetup;
//   - a session is forgotten only through a DELETE (forgetSession):
//     TestIdleSweep, TestSweptSessionsFreed;
//   - a session is held as initialized, with the client's capabilities,
//     info and protocol version, only through an initialize (adoptInMCP):
//     TestSealedSessionAdopted;
//   - a GET without a session makes a session nobody initializes
//     (refuseSessionless): TestGetWithoutSession;
//   - an initialize-era sampling request sent before the GET stream is
//     attached is lost (sampleOnAttachedStream, withListening and
//     awaitListening, which the relay's CreateMessage waits on): TestListening;
//   - a 2026-07-28 request the store could not serve is answered HTTP 400
//     (storeRefusals): TestStoreRefusals;
//   - its stdio session sends a 2026-07-28 agent every broadcast
//     (stdioStreams): TestStdioStreams, TestStdioBroadcastsWithheld;
//   - a 2026-07-28 request's last notification is dropped as its response
//     is written: relay.flush, held by
//     cmd/connectors' TestProgressRelay.
//   - a 2026-07-28 subscriptions/listen stream is reached only by a
//     broadcast to every session, of every tenant: its session has no ID
//     to address it by, and no session hook announces it, so the views
//     keep the streams and their tenants themselves (trackListens,
//     notifyListens in listen.go): TestListenListChanged;
//
// Two more are choices, not code: the views pass neither WithElicitation
// nor EnableSampling (they only advertise the client's capabilities as the
// server's), and mcp-go's DNS-rebinding check is off for transport's own,
// which knows the allowed hosts (streamableOptions).

// streamableOptions are the options of every streamable-HTTP server of
// the gateway that work around mcp-go, or hand its work to the gateway:
//
//   - the gateway's session manager (sessions.go), and so no idle sweeper
//     of mcp-go's: in v1.2.1 it counts only the starts of the requests
//     mcp-go serves (not the direct lane's), and ends a session, and the
//     answer of its call, when one call runs longer than the TTL; the
//     gateway sweeps itself (Handler.sweep);
//   - an event store: without one, mcp-go v1.2.1 can drop the
//     notifications a tool handler sends while its response stream is
//     being set up;
//   - no localhost protection: transport checks Host itself, with the
//     allowed hosts mcp-go does not know.
func streamableOptions(s *sessions) []mcpserver.StreamableHTTPOption {
	return []mcpserver.StreamableHTTPOption{
		mcpserver.WithSessionIdManagerResolver(s),
		mcpserver.WithEventStore(mcpserver.NewInMemoryEventStore()),
		mcpserver.WithDisableLocalhostProtection(true),
	}
}

// forgetSession has srv drop every trace of a session (its streams,
// recorded events, tools, log level, and its registration with the MCP
// server, whose hooks drop the gateway's): a DELETE of it, which is
// mcp-go v1.2.1's one public way to do so. The session is already gone from the registry, so the
// DELETE ends nothing else.
func forgetSession(srv *mcpserver.StreamableHTTPServer, session string) {
	if srv == nil {
		return
	}
	r, err := http.NewRequestWithContext(context.Background(), http.MethodDelete, "/mcp", nil)
	if err != nil {
		return
	}
	r.Header.Set(mcpserver.HeaderKeySessionID, session)
	r.Header.Set(mcp.HeaderProtocolVersion, mcp.ProtocolVersion20251125)
	srv.ServeHTTP(discardWriter{header: http.Header{}}, r)
}

// adoptInMCP has the streamable-HTTP server of endpoint hold session,
// adopted from another replica (sealedsessions.go), as the initialize of c
// left it there: registered with the MCP server (whose hooks register it
// with the gateway's views) and with the transport (for its GET stream and
// the answers to its requests), with the client's info, capabilities and
// negotiated protocol version. mcp-go v1.2.1 offers no other way to make
// such a session: its type is unexported and only an initialize sets
// them. So it is sent the client's initialize again, on ctx (the
// caller's identity) with the session manager told to name session
// (adoptionKey); its answer is discarded. Without it, mcp-go serves the
// requests of a session it does not know with a session of the request
// alone, which knows nothing of the client: no sampling, elicitation or
// roots would reach it, and no notification.
func (h *Handler) adoptInMCP(ctx context.Context, session string, c *sealedClaims) {
	srv := h.server(c.Endpoint)
	if srv == nil {
		return
	}
	type params struct {
		ProtocolVersion string          `json:"protocolVersion"`
		Capabilities    json.RawMessage `json:"capabilities,omitempty"`
		ClientInfo      json.RawMessage `json:"clientInfo,omitempty"`
	}
	body, err := json.Marshal(struct {
		JSONRPC string `json:"jsonrpc"`
		ID      int    `json:"id"`
		Method  string `json:"method"`
		Params  params `json:"params"`
	}{"2.0", 0, string(mcp.MethodInitialize), params{c.Protocol, c.Capabilities, c.ClientInfo}})
	if err != nil {
		return
	}
	ctx = context.WithValue(context.WithoutCancel(ctx), adoptionKey{}, session)
	r, err := http.NewRequestWithContext(ctx, http.MethodPost, "/mcp", bytes.NewReader(body))
	if err != nil {
		return
	}
	r.Header.Set("Content-Type", "application/json")
	r.Header.Set("Accept", "application/json, text/event-stream")
	srv.ServeHTTP(discardWriter{header: http.Header{}}, r)
}

// discardWriter is a response nobody reads.
type discardWriter struct{ header http.Header }

func (d discardWriter) Header() http.Header       { return d.header }
func (discardWriter) Write(b []byte) (int, error) { return len(b), nil }
func (discardWriter) WriteHeader(int)             {}

// refuseSessionless answers a GET or DELETE of the initialize era that
// names no session: 400, as the 2025-11-25 transport says of a server that
// requires sessions. mcp-go v1.2.1 would make, for every such GET, a
// session that nobody initializes. (A 2026-07-28 GET or DELETE mcp-go
// refuses itself, 405.) It reports whether it answered.
func refuseSessionless(w http.ResponseWriter, r *http.Request) bool {
	if r.Method == http.MethodPost || mcp.IsModernProtocol(r.Header.Get(mcp.HeaderProtocolVersion)) {
		return false
	}
	httpwire.WriteJSONRPCError(w, http.StatusBadRequest, nil, mcp.INVALID_REQUEST,
		"Bad Request: Mcp-Session-Id header is required (POST initialize to begin a session)")
	return true
}

// sampleOnAttachedStream calls attached once a session's first GET stream
// (r, answered on w) is attached. mcp-go v1.2.1 sends a sampling request
// of the initialize era on that stream, through a pump it starts on the
// first GET before it attaches that GET's connection. A request queued
// before then can be taken by the pump while no connection is attached:
// it is recorded for a Last-Event-ID replay, which a first GET does not
// ask for, so the agent never sees it and the call hangs until the
// upstream gives up (the conformance suite's tools-call-sampling, now and
// then under load). The relay holds a sampling request until the stream
// is attached (withListening, given the session's listening channel by
// resumable). mcp-go has attached the stream's connection when it writes
// the 200.
func sampleOnAttachedStream(w http.ResponseWriter, r *http.Request, attached func()) http.ResponseWriter {
	if r.Method != http.MethodGet || r.Header.Get("Last-Event-ID") != "" {
		return w
	}
	return &httpwire.StatusWriter{ResponseWriter: w, OnHeader: func(status int) {
		if status == http.StatusOK {
			attached()
		}
	}}
}

// storeRefusals answers HTTP 503 to a 2026-07-28 request that the gateway
// refused because the credential store could not answer (the server's
// preflight: a JSON-RPC error whose message starts with VaultError or
// VaultEncryptionError), as the REST routes do, with Retry-After when
// waiting may help. mcp-go v1.2.1 sends such a refusal with code -32600, which
// 2026-07-28 maps to HTTP 400: the client's fault, which it is not.
//
// Only the answers mcp-go starts with a 400 are held back and read; the
// others, streams included, pass as they are written. Initialize-era
// answers are always HTTP 200 and pass untouched.
func storeRefusals(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.Header.Get(mcp.HeaderProtocolVersion) != mcp.ProtocolVersion20260728 {
			next.ServeHTTP(w, r)
			return
		}
		rw := &refusalWriter{ResponseWriter: w}
		next.ServeHTTP(rw, r)
		rw.finish()
	})
}

// refusalWriter holds back an answer that starts with HTTP 400.
type refusalWriter struct {
	http.ResponseWriter
	held bool
	body []byte
}

func (w *refusalWriter) WriteHeader(code int) {
	if code == http.StatusBadRequest && !w.held {
		w.held = true
		return
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *refusalWriter) Write(b []byte) (int, error) {
	if w.held {
		if len(w.body)+len(b) > 1<<20 { // not a refusal of ours: let it go
			w.release(http.StatusBadRequest)
			return w.ResponseWriter.Write(b)
		}
		w.body = append(w.body, b...)
		return len(b), nil
	}
	return w.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the writer.
func (w *refusalWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// Flush implements http.Flusher, for event streams (never held).
func (w *refusalWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok && !w.held {
		f.Flush()
	}
}

// release writes the held answer with status.
func (w *refusalWriter) release(status int) {
	w.held = false
	w.ResponseWriter.WriteHeader(status)
	_, _ = w.ResponseWriter.Write(w.body)
	w.body = nil
}

// finish writes a held answer: 503 if it is a store refusal, else the 400.
func (w *refusalWriter) finish() {
	if !w.held {
		return
	}
	var msg struct {
		Error struct {
			Message string `json:"message"`
		} `json:"error"`
	}
	status := http.StatusBadRequest
	if json.Unmarshal(w.body, &msg) == nil {
		switch m := msg.Error.Message; {
		case strings.HasPrefix(m, "VaultEncryptionError:"):
			status = http.StatusServiceUnavailable
		case strings.HasPrefix(m, "VaultError:"):
			status = http.StatusServiceUnavailable
			w.Header().Set("Retry-After", "5")
		}
	}
	w.release(status)
}

// stdioStreams wraps the agent's side of an MCP stdio connection, for an
// mcp-go v1.2.1 defect: its stdio session takes no notice of 2026-07-28's
// opt-in, so every broadcast (list_changed of tools, prompts, resources;
// resources/updated) reaches a client that never asked for it, when the
// protocol allows a server only the notifications of the client's own
// requests and those of a subscriptions/listen stream. Once the agent
// speaks 2026-07-28 (a request carrying the version in _meta, and no
// initialize), such a notification is written only while a
// subscriptions/listen request of the agent asks for it.
//
// Both sides are read without decoding but for the few lines that may
// matter (a byte search picks them): the agent's initialize,
// 2026-07-28 and subscriptions/listen requests, and the notifications in
// question. mcp-go writes each message in one Write, which is what the
// writer filters.
func stdioStreams(in io.Reader, out io.Writer) (io.Reader, io.Writer) {
	e := &stdioEra{listens: map[string]mcp.SubscriptionFilter{}}
	return &eraReader{r: in, era: e}, &eraWriter{w: out, era: e}
}

// stdioEra is what the agent's requests said of its era and its open
// subscriptions/listen requests.
type stdioEra struct {
	mu      sync.Mutex
	legacy  bool                              // it sent initialize
	modern  bool                              // it sent a 2026-07-28 request
	listens map[string]mcp.SubscriptionFilter // request ID (as JSON) → what it asked for
}

// maxInspected bounds the part of one input line kept for inspection:
// the members that matter come first in what clients write, and a
// longer line is passed on unread.
const maxInspected = 64 << 10

type eraReader struct {
	r       io.Reader
	era     *stdioEra
	line    []byte
	skipped bool // the current line outgrew maxInspected
}

func (r *eraReader) Read(p []byte) (int, error) {
	n, err := r.r.Read(p)
	for rest := p[:n]; len(rest) > 0; {
		i := bytes.IndexByte(rest, '\n')
		chunk := rest
		if i >= 0 {
			chunk = rest[:i]
		}
		if !r.skipped && len(r.line)+len(chunk) <= maxInspected {
			r.line = append(r.line, chunk...)
		} else {
			r.skipped, r.line = true, r.line[:0]
		}
		if i < 0 {
			break
		}
		if !r.skipped {
			r.era.request(r.line)
		}
		r.line, r.skipped, rest = r.line[:0], false, rest[i+1:]
	}
	return n, err
}

// request notes what one line of the agent says of its era and listens.
func (e *stdioEra) request(line []byte) {
	initialize := bytes.Contains(line, []byte(`"initialize"`))
	modern := bytes.Contains(line, []byte(`"`+mcp.MetaKeyProtocolVersion+`"`))
	listen := bytes.Contains(line, []byte(`"`+mcp.MethodSubscriptionsListen+`"`))
	if !initialize && !listen {
		e.mu.Lock()
		known := e.modern
		e.mu.Unlock()
		if !modern || known {
			return // nothing new: most lines, decoded by mcp-go alone
		}
	}
	var msg struct {
		ID     json.RawMessage `json:"id"`
		Method mcp.MCPMethod   `json:"method"`
		Params struct {
			Meta          map[string]json.RawMessage `json:"_meta"`
			Notifications mcp.SubscriptionFilter     `json:"notifications"`
		} `json:"params"`
	}
	if json.Unmarshal(line, &msg) != nil || msg.ID == nil {
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	switch {
	case msg.Method == mcp.MethodInitialize:
		e.legacy = true
	case string(msg.Params.Meta[mcp.MetaKeyProtocolVersion]) != "":
		var v string
		if json.Unmarshal(msg.Params.Meta[mcp.MetaKeyProtocolVersion], &v) == nil && mcp.IsModernProtocol(v) {
			e.modern = true
		}
	}
	if msg.Method == mcp.MethodSubscriptionsListen {
		e.listens[string(msg.ID)] = msg.Params.Notifications
	}
}

type eraWriter struct {
	w   io.Writer
	era *stdioEra
}

// broadcasts are the notifications that belong to no request.
var broadcasts = [][]byte{
	[]byte(`"` + mcp.MethodNotificationToolsListChanged + `"`),
	[]byte(`"` + mcp.MethodNotificationPromptsListChanged + `"`),
	[]byte(`"` + mcp.MethodNotificationResourcesListChanged + `"`),
	[]byte(`"` + mcp.MethodNotificationResourceUpdated + `"`),
}

func (w *eraWriter) Write(p []byte) (int, error) {
	if w.era.withheld(p) {
		return len(p), nil
	}
	return w.w.Write(p)
}

// withheld reports whether the message p must not reach a 2026-07-28
// agent, and forgets the listen request p answers.
func (e *stdioEra) withheld(p []byte) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	if !e.modern || e.legacy {
		return false
	}
	if len(e.listens) > 0 && (bytes.Contains(p, []byte(`"result"`)) || bytes.Contains(p, []byte(`"error"`))) {
		var r struct {
			ID json.RawMessage `json:"id"`
		}
		if json.Unmarshal(p, &r) == nil && r.ID != nil {
			delete(e.listens, string(r.ID))
		}
	}
	broadcast := false
	for _, b := range broadcasts {
		if bytes.Contains(p, b) {
			broadcast = true
			break
		}
	}
	if !broadcast {
		return false
	}
	var n struct {
		ID     json.RawMessage `json:"id"`
		Method string          `json:"method"`
		Params struct {
			URI string `json:"uri"`
		} `json:"params"`
	}
	if json.Unmarshal(p, &n) != nil || n.ID != nil {
		return false // a response that mentions one: not a broadcast
	}
	for _, f := range e.listens {
		switch n.Method {
		case mcp.MethodNotificationToolsListChanged:
			if f.ToolsListChanged {
				return false
			}
		case mcp.MethodNotificationPromptsListChanged:
			if f.PromptsListChanged {
				return false
			}
		case mcp.MethodNotificationResourcesListChanged:
			if f.ResourcesListChanged {
				return false
			}
		case mcp.MethodNotificationResourceUpdated:
			if slices.Contains(f.ResourceSubscriptions, n.Params.URI) {
				return false
			}
		default:
			return false // a method that only looks like one
		}
	}
	switch n.Method {
	case mcp.MethodNotificationToolsListChanged, mcp.MethodNotificationPromptsListChanged,
		mcp.MethodNotificationResourcesListChanged, mcp.MethodNotificationResourceUpdated:
		return true
	}
	return false
}

type listeningKey struct{}

// withListening returns ctx saying that a sampling request to the agent of
// ctx's call can be sent only once listening is closed. mcp-go v1.2.1 sends
// one (initialize era, over HTTP) on the session's GET stream, and loses
// one sent before the agent's first GET is attached (see the transport's
// sessions); the request waits for it, as long as the upstream does.
// (Elicitation goes on the call's own stream.)
func withListening(ctx context.Context, listening <-chan struct{}) context.Context {
	return context.WithValue(ctx, listeningKey{}, listening)
}

// awaitListening waits until the session of call (a call's context) can
// take a sampling request (see withListening), or ctx ends.
func awaitListening(ctx, call context.Context) error {
	stream, _ := call.Value(listeningKey{}).(<-chan struct{})
	if stream == nil {
		return nil
	}
	select {
	case <-stream:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// flush waits, before a tool result is returned, until the notifications
// relayed for the call have left the session's queue, and then a moment
// more. mcp-go v1.2.1's streamable-HTTP server drops a 2026-07-28 request's
// last notification when its forwarding goroutine has taken it off the
// queue but not yet written it as the response is written (handlePost: the
// forwarder finds the request done and discards it; initialize-era
// requests are covered by the event store instead). Only calls that relayed
// something over HTTP in the 2026-07-28 era wait, and never long.
func (r relay) flush() {
	if !r.sent.Load() || !mcpserver.IsModernRequest(r.ctx) {
		return
	}
	session := mcpserver.ClientSessionFromContext(r.ctx)
	if session == nil {
		return
	}
	queue := session.NotificationChannel()
	for deadline := time.Now().Add(50 * time.Millisecond); len(queue) > 0 && time.Now().Before(deadline); {
		time.Sleep(100 * time.Microsecond)
	}
	// Taken off the queue is not yet written: let the forwarder finish.
	time.Sleep(time.Millisecond)
}
