package tools

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/client/transport"
	"github.com/mark3labs/mcp-go/mcp"
	"go.opentelemetry.io/otel/trace"

	"github.com/connectors-gateway/connectors/telemetry"
)

var (
	// ErrConnClosed is returned by a Conn that was closed: by Close, by the
	// pool (eviction, idle reaping, a changed credential, Drop) or because
	// the pool closed.
	ErrConnClosed = errors.New("upstream connection closed")

	// ErrUpstreamExited is wrapped when a stdio upstream's process ends on
	// its own, for example because it crashed.
	ErrUpstreamExited = errors.New("upstream process exited")

	// ErrUpstreamStuck ends a stdio upstream that did not read its input
	// for the integration's timeout.
	ErrUpstreamStuck = errors.New("upstream process does not read its input")

	// ErrUpstreamHung ends a connection whose upstream answered nothing
	// after a call sent to it timed out, not even a ping: its process is
	// ended (or its HTTP session dropped) and the next call starts again.
	ErrUpstreamHung = errors.New("upstream stopped answering")

	// ErrNoDirect is returned by CallDirect when c cannot take direct
	// calls; nothing was sent.
	ErrNoDirect = errors.New("the upstream does not take direct calls")
)

// ownSeq numbers the requests the gateway sends upstream of its own
// (direct calls, liveness probes): their IDs are strings, never one of
// the mcp-go client's (numbers) nor an agent's.
var ownSeq atomic.Uint64

// TimeoutError is returned by CallTool and Tools when the upstream did not
// answer within the integration's timeout.
type TimeoutError struct {
	Integration string
	After       time.Duration
}

func (e *TimeoutError) Error() string {
	return fmt.Sprintf("upstream %s timed out: it did not answer within %s", e.Integration, e.After)
}

// Unwrap lets errors.Is(err, context.DeadlineExceeded) hold.
func (e *TimeoutError) Unwrap() error { return context.DeadlineExceeded }

// Relay receives what an upstream sends about a tools/call while it runs,
// for the caller to forward to the agent's session. Its methods are called
// from the connection's reading goroutine: they must not block (forward
// asynchronously, or drop).
type Relay interface {
	// Progress is a notifications/progress for the call. ProgressToken is
	// the caller's own token, as given in the request's _meta.
	Progress(p mcp.ProgressNotificationParams)

	// Log is a notifications/message the upstream sent while the call was
	// in flight. When a connection has several calls in flight, every one
	// of them receives it: the protocol doesn't say which call it is about.
	Log(level mcp.LoggingLevel, logger string, data any)
}

// RelayFuncs is a Relay made of functions; a nil function drops.
type RelayFuncs struct {
	OnProgress func(p mcp.ProgressNotificationParams)
	OnLog      func(level mcp.LoggingLevel, logger string, data any)
}

// Progress calls f.OnProgress.
func (f RelayFuncs) Progress(p mcp.ProgressNotificationParams) {
	if f.OnProgress != nil {
		f.OnProgress(p)
	}
}

// Log calls f.OnLog.
func (f RelayFuncs) Log(level mcp.LoggingLevel, logger string, data any) {
	if f.OnLog != nil {
		f.OnLog(level, logger, data)
	}
}

// Conn is one live MCP client session with an upstream, for one tenant and
// integration. It is safe for concurrent use: calls run concurrently over
// the one session. Get one from [Pool.Conn].
type Conn struct {
	integration string
	tenant      string
	timeout     time.Duration
	protocol    string // pinned protocol version; empty: negotiate
	logger      *slog.Logger
	clientInfo  mcp.Implementation
	scrubber    *Scrubber // the credential's values, cut out of all the upstream sends
	onNote      func(tenant, integration string, n mcp.JSONRPCNotification)
	tokenPrefix string // of the progress tokens this conn sends upstream
	pid         int    // of a stdio upstream's process; 0 for HTTP

	// ctx ends when the upstream is gone; context.Cause says why
	// (ErrConnClosed, an *exitError, ...).
	ctx    context.Context
	cancel context.CancelCauseFunc

	// dial makes a new client session; set for HTTP, where a session the
	// upstream forgot (404) is re-initialized. Nil for stdio.
	dial func(ctx context.Context) (*client.Client, error)
	// direct, set for HTTP, is where direct calls go; pipe, set for
	// stdio, is the process's pipes with the direct calls' lane.
	// negotiated holds the session's protocol version (a string).
	direct     *directTarget
	pipe       *pipe
	negotiated atomic.Value
	// clientInfoJSON serves direct calls: the gateway's client info.
	clientInfoJSON json.RawMessage
	redialMu       sync.Mutex // one re-initialization at a time

	// teardown ends what the transport doesn't (the process group); run by
	// Close after the client closed. kill, set for stdio, ends the process
	// group at once: a hung process would not heed stdin's end or SIGTERM.
	teardown func()
	kill     func()

	// heard counts what arrived from the upstream: lines over stdio,
	// responses and events over HTTP. A call that timed out while it
	// stayed the same is the sign of a hung upstream (hung.go).
	heard   atomic.Uint64
	probeMu sync.Mutex // one liveness probe at a time
	// throttled is the end (UnixNano) of the wait the upstream asked
	// for with a 429 and Retry-After (throttle.go).
	throttled atomic.Int64

	mu       sync.Mutex
	client   *client.Client     // guarded by mu
	calls    map[*call]struct{} // guarded by mu; tools/call in flight
	byToken  map[string]*call   // guarded by mu; by upstream progress token
	active   int                // guarded by mu; requests in flight
	lastUsed time.Time          // guarded by mu
	seq      atomic.Uint64      // numbers this conn's progress tokens
	closing  sync.Once
	closed   chan struct{} // closed when Close is done
}

type call struct {
	seq     uint64 // order of arrival on the conn
	relay   Relay
	token   mcp.ProgressToken // the caller's, nil when it asked for no progress
	upToken string            // the one sent upstream in its place
}

var connSeq atomic.Uint64

func newConn(tenant string, in Integration, l *launch, opts *PoolOptions) *Conn {
	ctx, cancel := context.WithCancelCause(context.Background())
	return &Conn{
		integration: in.Name,
		tenant:      tenant,
		timeout:     in.timeout(),
		protocol:    in.Protocol,
		logger:      opts.Logger.With("tenantId", tenant, "integration", in.Name),
		clientInfo:  opts.ClientInfo,
		scrubber:    l.scrubber,
		onNote:      opts.OnNotification,
		tokenPrefix: "gw-" + strconv.FormatUint(connSeq.Add(1), 36) + "-",

		clientInfoJSON: mustJSON(opts.ClientInfo),
		ctx:            ctx,
		cancel:         cancel,
		calls:          make(map[*call]struct{}),
		byToken:        make(map[string]*call),
		lastUsed:       time.Now(),
		closed:         make(chan struct{}),
	}
}

// Integration returns the name of the integration c talks to.
func (c *Conn) Integration() string { return c.integration }

// Err returns nil while c is usable, and afterwards why it is not
// (ErrConnClosed, or an error wrapping ErrUpstreamExited).
func (c *Conn) Err() error {
	if c.ctx.Err() == nil {
		return nil
	}
	return context.Cause(c.ctx)
}

// Close ends the session and, for stdio, the upstream's process group. It
// waits for the process to exit.
func (c *Conn) Close() {
	c.closing.Do(func() {
		c.cancel(ErrConnClosed)
		c.mu.Lock()
		cli := c.client
		c.mu.Unlock()
		if cli != nil {
			_ = cli.Close()
		}
		if c.teardown != nil {
			c.teardown()
		}
		close(c.closed)
	})
	<-c.closed
}

// initialize starts a client over tr and runs the MCP handshake.
func (c *Conn) initialize(ctx context.Context, tr transport.Interface) (*client.Client, error) {
	opts := []client.ClientOption{client.WithSamplingHandler(asker{c}), client.WithElicitationHandler(asker{c}), client.WithRootsHandler(asker{c})}
	if c.protocol != "" {
		opts = append(opts, client.WithProtocolVersion(c.protocol))
		if !mcp.IsModernProtocol(c.protocol) {
			opts = append(opts, client.WithLegacyProtocolOnly())
		}
	}
	cli := client.NewClient(tr, opts...)
	cli.OnNotification(c.handleNotification)
	// The transport keeps Start's context for the session's lifetime.
	if err := cli.Start(c.ctx); err != nil {
		return nil, err
	}
	res, err := cli.Initialize(ctx, mcp.InitializeRequest{Params: mcp.InitializeParams{ClientInfo: c.clientInfo}})
	if err != nil {
		_ = cli.Close()
		return nil, err
	}
	c.negotiated.Store(res.ProtocolVersion)
	if mcp.IsModernProtocol(res.ProtocolVersion) && c.pid == 0 {
		c.listen(cli, res.Capabilities) // listen.go; HTTP upstreams
	}
	if res.Capabilities.Logging != nil {
		// Ask for every log message: each agent's own level is applied as
		// the gateway relays them, so the upstream must not filter first.
		// (2026-07-28 carries the level on every request instead.)
		if err := cli.SetLevel(ctx, mcp.SetLevelRequest{Params: mcp.SetLevelParams{Level: mcp.LoggingLevelDebug}}); err != nil {
			c.logger.Debug("upstream_set_level_failed", "error", c.scrubber.String(err.Error()))
		}
	}
	return cli, nil
}

// Tools lists all the upstream's tools, following every page, each with
// its input and output schema as the upstream wrote them.
func (c *Conn) Tools(ctx context.Context) ([]mcp.Tool, error) {
	var tools []mcp.Tool
	ctx, pages := withListPages(ctx)
	err := c.do(ctx, nil, func(ctx context.Context, cli *client.Client) error {
		pages.reset() // a retry on a new session lists again
		var err error
		if tools, err = listAll(ctx, cli, pages); err != nil {
			return err
		}
		pages.restore(tools)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return tools, nil
}

// Stdio reports whether the upstream is a process over stdio (else
// streamable HTTP).
func (c *Conn) Stdio() bool { return c.pid != 0 }

// CallTool calls an upstream tool and returns its result unchanged (content,
// structuredContent, isError, _meta). req.Params.Name is the upstream's own
// tool name. The request's HTTP header (the agent's) is never forwarded.
//
// If req asks for progress (a progressToken in _meta), the upstream gets a
// token of this connection's own and relay gets each notification back with
// the caller's token. relay may be nil.
//
// When ctx ends, the upstream is sent notifications/cancelled for the request
// and CallTool returns ctx.Err(). The call is bounded by the integration's
// Timeout ([DefaultTimeout] when zero); past it, CallTool returns a
// *TimeoutError.
func (c *Conn) CallTool(ctx context.Context, req mcp.CallToolRequest, relay Relay) (*mcp.CallToolResult, error) {
	if relay == nil {
		relay = RelayFuncs{}
	}
	cl := &call{relay: relay, seq: c.seq.Add(1)}
	req.Header = nil
	req.Request = mcp.Request{}
	if bytes.Equal(bytes.TrimSpace(req.Params.RawArguments), []byte("null")) {
		// "arguments": null is "no arguments"; some servers choke on null.
		req.Params.RawArguments, req.Params.Arguments = nil, nil
	}
	rt := roundTrip{params: req.Params.MultiRoundTripParams}
	if m := req.Params.Meta; m != nil {
		meta := hopMeta(m)
		if m.ProgressToken != nil {
			cl.token = m.ProgressToken
			cl.upToken = c.tokenPrefix + strconv.FormatUint(c.seq.Add(1), 10)
			meta.ProgressToken = cl.upToken
		}
		req.Params.Meta = meta
	}
	var span trace.Span
	if telemetry.On() {
		ctx, span = c.traceCall(ctx, &req)
	}
	var res *mcp.CallToolResult
	err := c.do(withRoundTrip(ctx, rt), cl, func(ctx context.Context, cli *client.Client) error {
		var err error
		res, err = cli.CallTool(ctx, req)
		if raw, ok := inputRequiredResult(err); ok {
			res, err = mcp.ParseCallToolResult(raw)
		}
		return err
	})
	telemetry.End(span, err)
	if err != nil {
		return nil, err
	}
	// The result was scrubbed as it arrived (tracked.SendRequest).
	return res, nil
}

// traceCall starts req's upstream span (telemetry.StartUpstream), the
// agent's traceparent in its _meta the parent when the context has none,
// and puts the span's own traceparent in its place.
func (c *Conn) traceCall(ctx context.Context, req *mcp.CallToolRequest) (context.Context, trace.Span) {
	meta := req.Params.Meta
	if meta == nil {
		meta = &mcp.Meta{}
	}
	agent, _ := meta.AdditionalFields["traceparent"].(string)
	ctx, span := telemetry.StartUpstream(ctx, agent, c.tenant, c.integration, string(mcp.MethodToolsCall), req.Params.Name)
	if meta.AdditionalFields == nil {
		meta.AdditionalFields = map[string]any{}
	}
	meta.AdditionalFields["traceparent"] = telemetry.Traceparent(ctx)
	req.Params.Meta = meta
	return ctx, span
}

var errTimedOut = errors.New("upstream timeout")

// do runs fn with the session's client under the call's bounds: ctx, the
// timeout and the connection's lifetime. cl, if not nil, is registered for
// notifications while fn runs. A session the upstream forgot is
// re-initialized once and fn retried.
func (c *Conn) do(ctx context.Context, cl *call, fn func(context.Context, *client.Client) error) error {
	if err := c.Err(); err != nil {
		return c.scrub(failure(c.integration, err))
	}
	c.begin(cl)
	defer c.end(cl)
	heardAt := c.heard.Load()

	// A call ends at the first of: ctx, the timeout, the upstream going away.
	// (One context for the three: the connection's end cancels it
	// without a cause, and the switch below names it.)
	runCtx, cancel := context.WithTimeoutCause(ctx, c.timeout, errTimedOut)
	defer cancel()
	if cl != nil {
		// A request the upstream makes as part of this call (on the
		// call's own response stream, or in an input_required answer)
		// reaches asker with this context: it goes to this call's agent.
		runCtx = context.WithValue(runCtx, callKey{}, cl)
	}
	stop := context.AfterFunc(c.ctx, cancel)
	defer stop()

	c.mu.Lock()
	cli := c.client
	c.mu.Unlock()
	err := fn(runCtx, cli)
	if err != nil && c.dial != nil && runCtx.Err() == nil && errors.Is(err, transport.ErrSessionTerminated) {
		c.logger.Info("upstream_session_expired")
		if cli, err = c.redial(runCtx, cli); err == nil {
			err = fn(runCtx, cli)
		}
	}
	if err == nil {
		return nil
	}
	if c.pid != 0 && errors.Is(err, transport.ErrTransportClosed) && c.ctx.Err() == nil {
		// The child closed stdout: it is exiting. Wait for the exit
		// status, so that the error says why and Err reports it.
		select {
		case <-c.ctx.Done():
		case <-time.After(time.Second):
			c.cancel(&exitError{integration: c.integration, err: errors.New("closed its stdout")})
		}
	}
	switch cause := context.Cause(runCtx); {
	case ctx.Err() != nil:
		return ctx.Err()
	case errors.Is(cause, errTimedOut):
		c.checkHung(heardAt)
		te := &TimeoutError{Integration: c.integration, After: c.timeout}
		c.logger.Warn("upstream_call_failed", "tenantId", c.tenant, "kind", KindTimedOut, "reason", te.Error())
		return te
	case runCtx.Err() != nil:
		if errors.Is(cause, context.Canceled) { // by the connection's end
			cause = context.Cause(c.ctx)
		}
		return c.fail(failure(c.integration, cause), cause)
	case c.Err() != nil:
		// The transport noticed first that the process is gone.
		return c.fail(failure(c.integration, c.Err()), c.Err())
	}
	return c.fail(answered(c.integration, err), err)
}

// fail logs a call's failure with its details (the internal error, scrubbed)
// and returns pub, what the agent may be told.
func (c *Conn) fail(pub, internal error) error {
	kind := ""
	if ue, ok := pub.(*UpstreamError); ok {
		kind = ue.Kind
	}
	c.logger.Warn("upstream_call_failed", "tenantId", c.tenant, "kind", kind,
		"reason", c.scrubber.String(pub.Error()), "error", c.scrubber.String(internal.Error()))
	return c.scrub(pub)
}

// redial replaces old with a new session unless another call did already.
func (c *Conn) redial(ctx context.Context, old *client.Client) (*client.Client, error) {
	c.redialMu.Lock()
	defer c.redialMu.Unlock()
	c.mu.Lock()
	cur := c.client
	c.mu.Unlock()
	if cur != old {
		return cur, nil
	}
	cli, err := c.dial(ctx)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	if c.ctx.Err() != nil {
		c.mu.Unlock()
		_ = cli.Close()
		return nil, ErrConnClosed
	}
	c.client = cli
	c.mu.Unlock()
	go old.Close()
	return cli, nil
}

func (c *Conn) begin(cl *call) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.active++
	if cl != nil {
		c.calls[cl] = struct{}{}
		if cl.upToken != "" {
			c.byToken[cl.upToken] = cl
		}
	}
}

func (c *Conn) end(cl *call) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.active--
	c.lastUsed = time.Now()
	if cl != nil {
		delete(c.calls, cl)
		delete(c.byToken, cl.upToken)
	}
}

// busy reports whether requests are in flight, and since when c is idle.
func (c *Conn) idle() (busy bool, since time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.active > 0, c.lastUsed
}

func (c *Conn) touch() {
	c.mu.Lock()
	c.lastUsed = time.Now()
	c.mu.Unlock()
}

// handleNotification routes the upstream's notifications to the relays of
// the calls in flight.
func (c *Conn) handleNotification(n mcp.JSONRPCNotification) {
	if n.Method == listenAcknowledged {
		return // the listen stream's answer (listen.go), not a sign of life of calls
	}
	c.heard.Add(1)
	n = c.scrubNotification(n)
	switch n.Method {
	case string(mcp.MethodNotificationProgress):
		var p mcp.ProgressNotificationParams
		if !decodeParams(n.Params, &p) {
			return
		}
		tok, ok := p.ProgressToken.(string)
		if !ok {
			return
		}
		c.mu.Lock()
		cl := c.byToken[tok]
		c.mu.Unlock()
		if cl == nil {
			return // a call that ended, or a token that isn't ours
		}
		p.ProgressToken = cl.token
		cl.relay.Progress(p)
	case string(mcp.MethodNotificationMessage):
		var p mcp.LoggingMessageNotificationParams
		if !decodeParams(n.Params, &p) {
			return
		}
		c.mu.Lock()
		relays := make([]Relay, 0, len(c.calls))
		for cl := range c.calls {
			relays = append(relays, cl.relay)
		}
		c.mu.Unlock()
		for _, r := range relays {
			r.Log(p.Level, p.Logger, p.Data)
		}
	case string(mcp.MethodNotificationToolsListChanged),
		string(mcp.MethodNotificationPromptsListChanged),
		string(mcp.MethodNotificationResourcesListChanged),
		string(mcp.MethodNotificationResourceUpdated):
		if c.onNote != nil {
			c.onNote(c.tenant, c.integration, n)
		}
	}
}

func decodeParams(params mcp.NotificationParams, v any) bool {
	b, err := json.Marshal(params)
	if err != nil {
		return false
	}
	return json.Unmarshal(b, v) == nil
}

// scrub returns err with every credential value replaced, so that an error
// that echoes a header or an environment can't leak a token.
func (c *Conn) scrub(err error) error { return scrub(err, c.scrubber) }

func scrub(err error, s *Scrubber) error {
	if err == nil {
		return nil
	}
	msg := err.Error()
	clean := s.String(msg)
	if clean == msg {
		return err
	}
	return &redactedError{msg: clean, err: err}
}

// redactedError keeps the chain (errors.Is) of an error whose message had a
// secret in it.
type redactedError struct {
	msg string
	err error
}

func (e *redactedError) Error() string { return e.msg }
func (e *redactedError) Unwrap() error { return e.err }

// tracked wraps a client transport to see the requests go out: over legacy
// HTTP it sends the notifications/cancelled that mcp-go's client only sends
// over stdio.
type tracked struct {
	transport.Interface
	conn    *Conn
	http    transport.HTTPConnection // nil for stdio
	version atomic.Value             // string: the negotiated protocol version
}

func (t *tracked) SendRequest(ctx context.Context, req transport.JSONRPCRequest) (*transport.JSONRPCResponse, error) {
	rounds := roundTripMethods[req.Method] && mcp.IsModernProtocol(t.conn.version())
	if rounds {
		req.Params = withAgentRound(ctx, req.Params)
	}
	resp, err := t.Interface.SendRequest(ctx, req)
	if resp != nil {
		t.conn.heard.Add(1)
	}
	// Every answer of the upstream, whatever the method, is scrubbed here
	// before mcp-go's client decodes it: results, errors, catalogues. A
	// listing's raw result is kept (scrubbed) for its schemas (mcpgo.go).
	t.conn.scrubResponse(resp)
	if err == nil && resp != nil {
		collect(ctx, req.Method, resp.Result)
		if rounds && resp.Error == nil && asksInput(resp.Result) {
			return nil, &errInputRequired{result: resp.Result} // rounds.go
		}
	}
	if err != nil && ctx.Err() != nil && t.http != nil && req.Method == string(mcp.MethodToolsCall) {
		// mcp-go's client sends notifications/cancelled over stdio only.
		// Over 2026-07-28 HTTP ending the request's stream is the
		// cancellation; before it, the notification is what the spec asks.
		if v, _ := t.version.Load().(string); !mcp.IsModernProtocol(v) {
			t.sendCancelled(ctx, req.ID)
		}
	}
	return resp, err
}

// SetRequestHandler forwards server-to-client requests (ping, ...).
func (t *tracked) SetRequestHandler(h transport.RequestHandler) {
	if b, ok := t.Interface.(transport.BidirectionalInterface); ok {
		b.SetRequestHandler(func(ctx context.Context, req transport.JSONRPCRequest) (*transport.JSONRPCResponse, error) {
			// What the upstream asks may be put to the agent (sampling,
			// elicitation): scrubbed first.
			t.conn.heard.Add(1)
			req.Params = t.conn.scrubParams(req.Params)
			return h(ctx, req)
		})
	}
}

// trackedHTTP is tracked over an HTTP transport: the client sees it as one.
type trackedHTTP struct{ *tracked }

func (t trackedHTTP) SetProtocolVersion(v string) {
	t.version.Store(v)
	t.conn.negotiated.Store(v)
	t.http.SetProtocolVersion(v)
}

func track(c *Conn, tr transport.Interface) transport.Interface {
	t := &tracked{Interface: tr, conn: c}
	if h, ok := tr.(transport.HTTPConnection); ok {
		t.http = h
		return trackedHTTP{t}
	}
	return t
}

func mustJSON(v any) json.RawMessage {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}
