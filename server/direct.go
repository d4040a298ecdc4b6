package server

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"time"

	mcptransport "github.com/mark3labs/mcp-go/client/transport"
	"github.com/mark3labs/mcp-go/mcp"
	mcpserver "github.com/mark3labs/mcp-go/server"

	"github.com/connectors-gateway/connectors/limits"
	"github.com/connectors-gateway/connectors/metrics"
	"github.com/connectors-gateway/connectors/tenants"
	"github.com/connectors-gateway/connectors/tools"
)

// The direct path: a tools/call to a tool of an upstream whose session
// speaks 2026-07-28 (streamable HTTP or stdio) is forwarded as bytes,
// without mcp-go's encoding on either leg (over stdio mcp-go's transport
// still carries the bytes), when the agent's request is a 2026-07-28 one
// or one on a 2025-11-25 session. Each such upstream request stands alone
// (no session, no server-to-client requests, input requests carried in
// the result), so forwarding it is a matter of authorizing it and passing
// its arguments and result through; the profile put mcp-go's decoding and
// encoding of both legs at most of the gateway's cost per call. It
// follows the plan of every call (plan.go), and nothing outside this file
// depends on it but the transport that offers it requests.
//
// The direct path decides before anything is sent upstream, and only
// ever says yes: any request it is not sure of (a progress token, a log
// level, a tool not yet discovered, a credential that must be refreshed
// or linked first, an upstream on an older protocol, ...) is served by
// mcp-go as before, which also makes every error answer the same. Once
// the upstream is asked, the answer is the one the usual path would give:
// the same error texts, resultType and serverInfo added where mcp-go adds
// them. One exception: an upstream that answers a 2025-11-25 session's
// call by asking for input (input_required) is asked again the usual way,
// which puts the question to the agent as a request on the call's stream.

// DirectCall is a tools/call the transport parsed for the direct path.
type DirectCall struct {
	// View is the integration of a /mcp/{integration} endpoint, or empty
	// for the aggregate.
	View      string
	Name      string          // the tool's name in that view
	Arguments json.RawMessage // an object, or empty
	// Capabilities are the agent's declared client capabilities.
	Capabilities json.RawMessage
	// Meta holds the agent's other _meta entries (no protocol keys).
	Meta           map[string]json.RawMessage
	InputResponses json.RawMessage
	RequestState   json.RawMessage
	// Session, if set, is the 2025-11-25 session the call was made on
	// (already checked to be the caller's): its capabilities stand for
	// Capabilities.
	Session string
}

// CallDirect serves c on the direct path and returns its result, or the
// upstream's refusal of it (tools.Refused: what the agent did not declare,
// for a 2026-07-28 request); ok is false when it does not: serve it the
// usual way (nothing was sent, or, on a session, the upstream asked for
// input). The result may be nil with ok true when ctx ended.
func (g *Gateway) CallDirect(ctx context.Context, c DirectCall) (result json.RawMessage, refusal *tools.RPCError, ok bool) {
	begin := time.Now()
	// The tenant's limits first (limits.go), before its settings and
	// credential are read: a call refused costs no more than its parse,
	// so a tenant far past its limit does not slow the others.
	ticket, limited, early := g.admitDirect(ctx, c)
	if limited != nil {
		g.count(ctx, early.integration, metrics.OutcomeDenied, begin)
		return directPlan{v: early.v}.answer(encodeResult(limitResult(limited)), c.Session), nil, true
	}
	d, ok := g.planDirect(ctx, c)
	if d.refused != nil {
		ticket.Release()
		g.noteStdioRefusal(ctx, d.p.in.Name, d.refused)
		g.count(ctx, d.p.in.Name, metrics.OutcomeDenied, begin)
		return d.answer(encodeResult(limitResult(d.refused)), c.Session), nil, true
	}
	if !ok {
		// The usual path serves it, with this admission.
		if early.v == nil || !handOver(ctx, early.tenant, early.integration, ticket) {
			ticket.Release()
		}
		return nil, nil, false
	}
	integration := d.p.in.Name
	handedOver := false
	defer func() {
		if !handedOver {
			ticket.Release()
		}
	}()
	res, err := run(ctx, d.p, d.conn, func(ctx context.Context, conn *tools.Conn) (json.RawMessage, error) {
		return callConn(ctx, conn, d.call)
	}, refusedDirect)
	if errors.Is(err, errNeedsLink) {
		linked, lerr := g.linkResult(withDirectCapabilities(ctx, c), integration)
		res, err = encodeResult(linked), lerr
	}
	if c.Session != "" && err == nil && inputRequired(res) {
		// The upstream asks the agent something (sampling, elicitation),
		// which a 2025-11-25 agent is asked in requests of its own on the
		// call's stream: the usual path's, which asks the upstream again,
		// with this call's admission.
		handedOver = handOver(ctx, d.p.tenant, integration, ticket)
		return nil, nil, false
	}
	if r, ok := tools.Refused(err); ok && c.Session == "" {
		// The upstream refused the request for what the agent did not
		// declare: the agent is told as a 2026-07-28 server tells it.
		g.count(ctx, integration, metrics.OutcomeError, begin)
		return nil, r, true
	}
	outcome := metrics.OutcomeOK
	if r, ok := errors.AsType[*limits.Refusal](err); ok { // the upstream's own limit
		res, err, outcome = encodeResult(limitResult(r)), nil, metrics.OutcomeDenied
	}
	if err != nil {
		if ctx.Err() != nil {
			g.count(ctx, integration, metrics.OutcomeError, begin)
			return nil, nil, true
		}
		// As on the usual path: an upstream failure is a tool execution
		// error, which the model sees.
		res = encodeResult(mcp.NewToolResultError(g.agentText(ctx, integration, err)))
	}
	if outcome == metrics.OutcomeOK && isError(res) {
		outcome = metrics.OutcomeToolError
	}
	g.count(ctx, integration, outcome, begin)
	return d.answer(res, c.Session), nil, true
}

// directAdmission is what admitDirect admitted for: the view and the
// integration the call's name names, for the tenant (v nil: nothing).
type directAdmission struct {
	v                   *view
	tenant, integration string
}

// admitDirect admits c within its tenant's limits before the direct path
// plans it: by the integration its name names in its view. A call whose
// name names none is admitted later, or refused, by the usual path.
func (g *Gateway) admitDirect(ctx context.Context, c DirectCall) (limits.Ticket, *limits.Refusal, directAdmission) {
	id, ok := tenants.FromContext(ctx)
	v := g.aggregate
	if c.View != "" {
		v = g.single[c.View]
	}
	if !ok || v == nil || len(c.RequestState) > 0 || len(c.InputResponses) > 0 {
		return limits.Ticket{}, nil, directAdmission{}
	}
	integration, found := v.integrationOf(c.Name)
	if !found {
		return limits.Ticket{}, nil, directAdmission{}
	}
	t, r := g.admit(ctx, integration)
	return t, r, directAdmission{v: v, tenant: id.Tenant, integration: integration}
}

// answer completes a direct result as the usual path would answer it: for
// a 2025-11-25 session (session set), or a 2026-07-28 request.
func (d directPlan) answer(res json.RawMessage, session string) json.RawMessage {
	if session != "" {
		return initializeEraDirect(res)
	}
	return d.v.complete(res)
}

// directPlan is a call the direct path takes: the plan of the call, the
// connection it goes out on, what is sent, and the view that answers.
type directPlan struct {
	p    *plan
	conn *tools.Conn
	call tools.DirectCall
	v    *view
	// refused is why the connection was not made, when it is a limit of
	// the tenant's (its stdio processes all busy): answered here, not
	// waited for once more on the usual path.
	refused *limits.Refusal
}

// planDirect decides whether the direct path takes c, before anything is
// sent: ok is false for any call it is not sure of. It applies the usual
// path's rules: a tool of the tenant's own catalogue, listed with the
// credential at hand, that the tenant may call (filterTools, the
// settings' AllowsTool), and a credential to call with rather than a link
// to offer or a token to refresh first. A retry with answers to an
// input_required is declined too: the usual path takes the gateway's own
// link offer state out (takeLinkRetry) and answers a retry the upstream
// refused with a JSON-RPC error.
func (g *Gateway) planDirect(ctx context.Context, c DirectCall) (d directPlan, ok bool) {
	id, found := tenants.FromContext(ctx)
	if !found || len(c.RequestState) > 0 || len(c.InputResponses) > 0 {
		// A retry with answers (the gateway's link offer's, or the
		// upstream's): the usual path, which takes the gateway's own
		// state out and answers a refused one as a JSON-RPC error.
		return d, false
	}
	d.v = g.aggregate
	if c.View != "" {
		if d.v, found = g.single[c.View]; !found {
			return d, false
		}
	}
	integration, found := d.v.integrationOf(c.Name)
	if !found {
		return d, false
	}
	if c.Session != "" {
		if c.Capabilities, found = d.v.sessionCapabilities(c.Session, id.Tenant); !found {
			return d, false
		}
	}
	// Unreadable settings or credential: declined, and the usual path
	// refuses the call (see preflight).
	acc, err := g.access(ctx)
	if err != nil {
		return d, false
	}
	settings, err := g.settings(ctx, id.Tenant)
	if err != nil || acc(integration) != accessLinked {
		return d, false
	}
	if d.p, err = g.newPlan(ctx, integration); err != nil {
		return d, false
	}
	// The credential (read once per request: the memo), which must not
	// need a refresh first.
	cred, version, err := d.p.creds.stored(ctx)
	if err != nil || expiring(cred) {
		return d, false
	}
	tool, found := d.v.directTool(id.Tenant, integration, c.Name, version)
	if !found || !settings.AllowsTool(integration, tool.upstream) {
		return d, false
	}
	if d.conn, err = d.p.connectWith(ctx, cred); err != nil || !d.conn.Direct() {
		d.refused, _ = errors.AsType[*limits.Refusal](err)
		return d, false
	}
	d.call = tools.DirectCall{
		Name: tool.upstream, Arguments: c.Arguments, Capabilities: c.Capabilities, Meta: c.Meta,
	}
	return d, true
}

// sessionCapabilities returns the client capabilities to tell the upstream
// for a call on a 2025-11-25 session of tenant: what the agent declared of
// what the gateway relays (sampling, elicitation). ok is false when the
// direct path cannot serve the session: unknown here or another tenant's,
// not initialized, another protocol version, or it asked for log messages
// (which the usual path relays on the call's stream).
func (v *view) sessionCapabilities(session, tenant string) (caps json.RawMessage, ok bool) {
	v.mu.Lock()
	defer v.mu.Unlock()
	vs := v.sessions[session]
	if vs == nil || vs.tenant != tenant || !vs.session.Initialized() || vs.logging {
		return nil, false
	}
	if s, ok := vs.session.(mcpserver.SessionWithProtocolVersion); !ok || s.ProtocolVersion() != mcp.ProtocolVersion20251125 {
		return nil, false
	}
	if vs.capabilities == nil {
		var declared mcp.ClientCapabilities
		if s, ok := vs.session.(mcpserver.SessionWithClientInfo); ok {
			declared = s.GetClientCapabilities()
		}
		b, err := json.Marshal(mcp.ClientCapabilities{Sampling: declared.Sampling, Elicitation: declared.Elicitation})
		if err != nil {
			return nil, false
		}
		vs.capabilities = b
	}
	return vs.capabilities, true
}

// inputRequired reports whether a direct result asks for input first.
func inputRequired(res json.RawMessage) bool {
	if !bytes.Contains(res, []byte(string(mcp.ResultTypeInputRequired))) {
		return false
	}
	var r struct {
		ResultType mcp.ResultType `json:"resultType"`
	}
	return json.Unmarshal(res, &r) == nil && r.ResultType == mcp.ResultTypeInputRequired
}

// callConn is CallDirect, or CallTool when conn does not take direct
// calls (a connection replaced after a refresh may not).
func callConn(ctx context.Context, conn *tools.Conn, call tools.DirectCall) (json.RawMessage, error) {
	if conn.Direct() {
		return conn.CallDirect(ctx, call)
	}
	var req mcp.CallToolRequest
	req.Params.Name = call.Name
	if len(call.Arguments) > 0 {
		req.Params.Arguments = call.Arguments
	}
	res, err := conn.CallTool(ctx, req, nil)
	return encodeResult(res), err
}

// complete gives a 2026-07-28 result what mcp-go's server would add to it
// on the usual path when the upstream left it out: resultType, and the
// serving view's serverInfo in _meta.
func (v *view) complete(res json.RawMessage) json.RawMessage {
	const infoKey = `"` + mcp.MetaKeyServerInfo + `"`
	if bytes.Contains(res, []byte(`"resultType"`)) && bytes.Contains(res, []byte(infoKey)) {
		return res
	}
	var fields map[string]json.RawMessage
	if json.Unmarshal(res, &fields) != nil {
		return res
	}
	if _, ok := fields["resultType"]; !ok {
		fields["resultType"] = json.RawMessage(`"` + mcp.ResultTypeComplete + `"`)
	}
	var meta map[string]json.RawMessage
	if raw, ok := fields["_meta"]; ok && json.Unmarshal(raw, &meta) != nil {
		return res
	}
	if _, ok := meta[mcp.MetaKeyServerInfo]; !ok {
		if meta == nil {
			meta = map[string]json.RawMessage{}
		}
		meta[mcp.MetaKeyServerInfo], _ = json.Marshal(mcp.Implementation{Name: v.serverName(), Version: v.g.version})
		fields["_meta"], _ = json.Marshal(meta)
	}
	out, err := json.Marshal(fields)
	if err != nil {
		return res
	}
	return out
}

// refusedDirect is refused for a direct result: the status code, or an API's
// 401 reported in the result (which is decoded only when it may hold one).
func refusedDirect(res json.RawMessage, err error) bool {
	if err != nil {
		return errors.Is(err, mcptransport.ErrAuthorizationRequired)
	}
	if !bytes.Contains(res, []byte("401")) && !bytes.Contains(res, []byte("nauthorized")) {
		return false
	}
	var r mcp.CallToolResult
	if json.Unmarshal(res, &r) != nil {
		return false
	}
	return refused(&r, nil)
}

// isError reports whether a direct result is a tool error.
func isError(res json.RawMessage) bool {
	if !bytes.Contains(res, []byte(`"isError"`)) {
		return false
	}
	var r struct {
		IsError bool `json:"isError"`
	}
	return json.Unmarshal(res, &r) == nil && r.IsError
}

// encodeResult encodes a result, as mcp-go's server would for a
// 2025-11-25 session (view.complete adds what 2026-07-28 wants).
func encodeResult(r *mcp.CallToolResult) json.RawMessage {
	if r == nil {
		return nil
	}
	b, err := json.Marshal(r)
	if err != nil {
		return json.RawMessage(`{"content":[{"type":"text","text":"internal error"}],"isError":true}`)
	}
	return b
}
