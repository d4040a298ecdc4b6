package server

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"mime"
	"net/http"
	"strings"

	"github.com/mark3labs/mcp-go/mcp"

	"github.com/connectors-gateway/connectors/audit"
	"github.com/connectors-gateway/connectors/internal/httpwire"
	"github.com/connectors-gateway/connectors/internal/rawjson"
	"github.com/connectors-gateway/connectors/tools"
)

// Director serves tools/call requests on the direct path
// (Gateway.CallDirect): ok false means it did not, and the request
// is to be served the usual way. (Nothing was sent upstream, but for a
// session's call the upstream answered by asking the agent for input,
// which the usual way asks it again.) A refusal, when set, is the answer
// instead of a result: a JSON-RPC error (HTTP 400).
type Director interface {
	CallDirect(ctx context.Context, c DirectCall) (result json.RawMessage, refusal *tools.RPCError, ok bool)
}

// direct sends the tools/call requests that match the direct path's shape
// exactly to Direct, and everything else, and every request Direct
// declines, to next (mcp-go). Two shapes: a 2026-07-28 request, which
// stands alone, and a request on an initialize-era session (2025-11-25),
// whose capabilities the session holds. It only recognises: it never
// answers an error of its own, so mcp-go's validation keeps the last word
// on anything unusual.
func (h *Handler) direct(next http.Handler) http.Handler {
	if h.opts.Direct == nil {
		return next
	}
	// mcp-go ends a session its idle sweeper has not seen in use for the
	// TTL, and it does not see the direct path's calls: a session's call
	// goes through mcp-go at least every quarter of it.
	due := h.opts.SessionIdleTTL / 4
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		session := r.Header.Get(mcp.HeaderSessionID)
		usual := func(r *http.Request) {
			if session != "" {
				h.sessions.servedByMCP(session)
			}
			next.ServeHTTP(w, r)
		}
		shape := directShape(r)
		if shape == notDirect || shape == sessionCall && h.sessions.mcpDue(session, due) {
			usual(r)
			return
		}
		body, err := httpwire.ReadAll(r.Body)
		if err != nil { // too large, or cut: mcp-go answers it
			r.Body = io.NopCloser(io.MultiReader(bytes.NewReader(body), errReader{err}))
			usual(r)
			return
		}
		r.Body = httpwire.NewBody(body) // read again, if declined, without a copy
		var (
			call DirectCall
			id   json.RawMessage
			ok   bool
		)
		if shape == sessionCall {
			call, id, ok = parseSessionCall(body)
			call.Session = session
		} else {
			call, id, ok = parseDirect(body, r.Header.Get(mcp.HeaderName))
		}
		if !ok {
			usual(r)
			return
		}
		call.View = r.PathValue("integration")
		ctx := withRequestMemo(r.Context())
		result, refusal, ok := h.opts.Direct.CallDirect(audit.WithRequestID(ctx, audit.RequestID(ctx)), call)
		if !ok {
			// With the memo: a call declined after reading the credential
			// reads it once, not twice (nor audits it twice), and one
			// declined after its admission is not admitted again.
			usual(r.WithContext(ctx))
			releaseHandedOver(ctx)
			return
		}
		if refusal != nil {
			writeAnswer(w, id, TaskAnswer{Error: refusal.Object, Code: refusal.Code})
			return
		}
		if result == nil { // the agent went away
			return
		}
		out := make([]byte, 0, len(result)+len(id)+40)
		out = append(out, `{"jsonrpc":"2.0","id":`...)
		out = append(out, id...)
		out = append(out, `,"result":`...)
		out = append(out, result...)
		out = append(out, '}')
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write(out)
	})
}

type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) { return 0, e.err }

// The shapes of request the direct path takes.
const (
	notDirect   = iota
	modernCall  // a 2026-07-28 tools/call
	sessionCall // a tools/call on a 2025-11-25 session
)

// directShape tells from r's headers whether it may be a tools/call the
// direct path takes, and of which shape: a POST of JSON that accepts a
// JSON answer, and either a 2026-07-28 tools/call (no session) or a
// request of a 2025-11-25 session.
func directShape(r *http.Request) int {
	if r.Method != http.MethodPost || r.Header.Get(mcp.HeaderLastEventID) != "" {
		return notDirect
	}
	shape := notDirect
	switch version, session := r.Header.Get(mcp.HeaderProtocolVersion), r.Header.Get(mcp.HeaderSessionID); {
	case version == mcp.ProtocolVersion20260728 && session == "" &&
		r.Header.Get(mcp.HeaderMethod) == string(mcp.MethodToolsCall):
		shape = modernCall
	case version == mcp.ProtocolVersion20251125 && session != "" && r.Header.Get(mcp.HeaderMethod) == "":
		shape = sessionCall
	default:
		return notDirect
	}
	if media, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || media != "application/json" {
		return notDirect
	}
	for _, a := range r.Header.Values("Accept") {
		for part := range strings.SplitSeq(a, ",") {
			if media, _, _ := strings.Cut(part, ";"); strings.TrimSpace(media) == "application/json" {
				return shape
			}
		}
	}
	return notDirect
}

// parseDirect reads a tools/call request of the direct path's shape: its
// arguments, the agent's capabilities and other _meta entries, and its ID
// (a JSON number or string, as sent). ok is false for anything else: a
// progress token or a log level (the answer would be a stream), other
// protocol metadata, other parameters, a name unlike the Mcp-Name header.
//
// It reads the request as agents write it: every member named exactly,
// once, without escapes. Anything else (which encoding/json might read
// differently: keys matched without regard to case, the last of repeated
// members) is declined, and mcp-go reads it. A test holds every request it
// accepts to what encoding/json reads.
func parseDirect(body []byte, headerName string) (call DirectCall, id json.RawMessage, ok bool) {
	id, params, ok := parseEnvelope(body)
	if !ok {
		return call, nil, false
	}
	p, ok := readParams(params, true)
	if !ok || p.name != headerName {
		return call, nil, false
	}
	// The answers to an earlier input_required result, of the types mcp-go
	// would decode them into (or it refuses the request).
	if len(p.requestState) > 0 && p.requestState[0] != '"' {
		return call, nil, false
	}
	if len(p.inputResponses) > 0 {
		var responses mcp.InputResponses
		if p.inputResponses[0] != '{' || json.Unmarshal(p.inputResponses, &responses) != nil {
			return call, nil, false
		}
	}
	call.Name, call.Arguments, call.InputResponses, call.RequestState = p.name, p.arguments, p.inputResponses, p.requestState
	var version []byte
	if !rawjson.Members(p.meta, func(k, v []byte) bool {
		switch string(k) {
		case mcp.MetaKeyProtocolVersion:
			return once(&version, v)
		case mcp.MetaKeyClientCapabilities:
			if call.Capabilities != nil || v[0] != '{' {
				return false
			}
			call.Capabilities = v
			return true
		case mcp.MetaKeyClientInfo:
			return true // the agent's; the upstream hears the gateway's
		}
		return otherMeta(&call, k, v)
	}) || string(version) != `"`+mcp.ProtocolVersion20260728+`"` || call.Capabilities == nil {
		return call, nil, false
	}
	return call, id, true
}

// parseEnvelope reads the JSON-RPC envelope of a tools/call request: its
// ID (a number or a string, as sent) and its params.
func parseEnvelope(body []byte) (id, params json.RawMessage, ok bool) {
	if !json.Valid(body) {
		return nil, nil, false
	}
	var jsonrpc, method []byte
	if !rawjson.Members(body, func(k, v []byte) bool {
		switch string(k) {
		case "jsonrpc":
			return once(&jsonrpc, v)
		case "id":
			return once((*[]byte)(&id), v)
		case "method":
			return once(&method, v)
		case "params":
			return once((*[]byte)(&params), v)
		}
		return false
	}) || string(jsonrpc) != `"`+mcp.JSONRPC_VERSION+`"` || string(method) != `"`+string(mcp.MethodToolsCall)+`"` ||
		len(id) == 0 || !(id[0] == '"' || id[0] == '-' || id[0] >= '0' && id[0] <= '9') {
		return nil, nil, false
	}
	return id, params, true
}

// parseSessionCall reads a tools/call request of a 2025-11-25 session, as
// parseDirect does one of 2026-07-28: its name, arguments and the agent's
// _meta entries. The session holds the rest (capabilities, log level).
// A progress token, protocol metadata (which 2025-11-25 does not have) or
// any other parameter is declined.
func parseSessionCall(body []byte) (call DirectCall, id json.RawMessage, ok bool) {
	id, params, ok := parseEnvelope(body)
	if !ok {
		return call, nil, false
	}
	p, ok := readParams(params, false)
	if !ok {
		return call, nil, false
	}
	call.Name, call.Arguments = p.name, p.arguments
	if p.meta != nil && (p.meta[0] != '{' || !rawjson.Members(p.meta, func(k, v []byte) bool { return otherMeta(&call, k, v) })) {
		return call, nil, false
	}
	return call, id, true
}

// callParams are the members of a tools/call's params the direct path
// reads, as written.
type callParams struct {
	name                                          string // unquoted
	arguments, meta, inputResponses, requestState []byte
}

// readParams reads a tools/call's params: name (a plain, non-empty
// string), arguments (an object, null or absent) and _meta, and with mrtr
// the 2026-07-28 members inputResponses and requestState. ok is false for
// any other member, a repeated one, or a name or arguments otherwise.
func readParams(params []byte, mrtr bool) (p callParams, ok bool) {
	var name []byte
	if !rawjson.Members(params, func(k, v []byte) bool {
		switch string(k) {
		case "name":
			return once(&name, v)
		case "arguments":
			return once(&p.arguments, v)
		case "_meta":
			return once(&p.meta, v)
		case "inputResponses":
			return mrtr && once(&p.inputResponses, v)
		case "requestState":
			return mrtr && once(&p.requestState, v)
		}
		return false
	}) || !rawjson.Plain(name) || len(name) == 2 || !argumentsObject(p.arguments) {
		return p, false
	}
	p.name = string(name[1 : len(name)-1])
	return p, true
}

// otherMeta adds a _meta entry that is not the protocol's to call.Meta;
// false for one the direct path does not take: a protocol key, a progress
// token (the answer would be a stream), a key not written plainly, a
// repeated key.
func otherMeta(call *DirectCall, k, v []byte) bool {
	if !rawjson.PlainKey(k) || strings.HasPrefix(string(k), "io.modelcontextprotocol/") || string(k) == "progressToken" {
		return false
	}
	if call.Meta == nil {
		call.Meta = map[string]json.RawMessage{}
	}
	if _, dup := call.Meta[string(k)]; dup {
		return false
	}
	call.Meta[string(k)] = v
	return true
}

// once sets *dst to v, unless it was set: a repeated member.
func once(dst *[]byte, v []byte) bool {
	if *dst != nil {
		return false
	}
	*dst = v
	return true
}
