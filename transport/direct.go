package transport

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
	"github.com/connectors-gateway/connectors/internal/rawjson"
	"github.com/connectors-gateway/connectors/server"
)

// Director serves tools/call requests on the direct path
// (server.Gateway.CallDirect): ok false means it did not, and nothing was
// sent upstream.
type Director interface {
	CallDirect(ctx context.Context, c server.DirectCall) (result json.RawMessage, ok bool)
}

// direct sends the tools/call requests of protocol 2026-07-28 that match
// the direct path's shape exactly to Direct, and everything else, and
// every request Direct declines, to next (mcp-go). It only recognises:
// it never answers an error of its own, so mcp-go's validation keeps the
// last word on anything unusual.
func (h *HTTP) direct(next http.Handler) http.Handler {
	if h.opts.Direct == nil {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !directShape(r) {
			next.ServeHTTP(w, r)
			return
		}
		body, err := readAll(r.Body)
		if err != nil { // too large, or cut: mcp-go answers it
			r.Body = io.NopCloser(io.MultiReader(bytes.NewReader(body), errReader{err}))
			next.ServeHTTP(w, r)
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		call, id, ok := parseDirect(body, r.Header.Get(mcp.HeaderName))
		if !ok {
			next.ServeHTTP(w, r)
			return
		}
		call.View = r.PathValue("integration")
		ctx := server.WithRequestMemo(r.Context())
		result, ok := h.opts.Direct.CallDirect(audit.WithRequestID(ctx, RequestID(ctx)), call)
		if !ok {
			// With the memo: a call declined after reading the credential
			// reads it once, not twice (nor audits it twice).
			next.ServeHTTP(w, r.WithContext(ctx))
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

// directShape reports whether r's headers are those of a 2026-07-28
// tools/call that accepts a JSON answer.
func directShape(r *http.Request) bool {
	if r.Method != http.MethodPost ||
		r.Header.Get(mcp.HeaderMethod) != string(mcp.MethodToolsCall) ||
		r.Header.Get(mcp.HeaderProtocolVersion) != mcp.ProtocolVersion20260728 ||
		r.Header.Get(mcp.HeaderSessionID) != "" || r.Header.Get(mcp.HeaderLastEventID) != "" {
		return false
	}
	if media, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || media != "application/json" {
		return false
	}
	for _, a := range r.Header.Values("Accept") {
		for part := range strings.SplitSeq(a, ",") {
			if media, _, _ := strings.Cut(part, ";"); strings.TrimSpace(media) == "application/json" {
				return true
			}
		}
	}
	return false
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
func parseDirect(body []byte, headerName string) (call server.DirectCall, id json.RawMessage, ok bool) {
	if !json.Valid(body) {
		return call, nil, false
	}
	var jsonrpc, method, params []byte
	if !rawjson.Members(body, func(k, v []byte) bool {
		switch string(k) {
		case "jsonrpc":
			return once(&jsonrpc, v)
		case "id":
			return once((*[]byte)(&id), v)
		case "method":
			return once(&method, v)
		case "params":
			return once(&params, v)
		}
		return false
	}) || string(jsonrpc) != `"`+mcp.JSONRPC_VERSION+`"` || string(method) != `"`+string(mcp.MethodToolsCall)+`"` ||
		len(id) == 0 || !(id[0] == '"' || id[0] == '-' || id[0] >= '0' && id[0] <= '9') {
		return call, nil, false
	}
	var name, arguments, meta, inputResponses, requestState []byte
	if !rawjson.Members(params, func(k, v []byte) bool {
		switch string(k) {
		case "name":
			return once(&name, v)
		case "arguments":
			return once(&arguments, v)
		case "_meta":
			return once(&meta, v)
		case "inputResponses":
			return once(&inputResponses, v)
		case "requestState":
			return once(&requestState, v)
		}
		return false
	}) || !rawjson.Plain(name) || len(name) == 2 || string(name[1:len(name)-1]) != headerName {
		return call, nil, false
	}
	if t := arguments; len(t) > 0 && string(t) != "null" && t[0] != '{' {
		return call, nil, false
	}
	// The answers to an earlier input_required result, of the types mcp-go
	// would decode them into (or it refuses the request).
	if len(requestState) > 0 && requestState[0] != '"' {
		return call, nil, false
	}
	if len(inputResponses) > 0 {
		var responses mcp.InputResponses
		if inputResponses[0] != '{' || json.Unmarshal(inputResponses, &responses) != nil {
			return call, nil, false
		}
	}
	call.Name, call.Arguments, call.InputResponses, call.RequestState = headerName, arguments, inputResponses, requestState
	var version []byte
	if !rawjson.Members(meta, func(k, v []byte) bool {
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
	}) || string(version) != `"`+mcp.ProtocolVersion20260728+`"` || call.Capabilities == nil {
		return call, nil, false
	}
	return call, id, true
}

// once sets *dst to v, unless it was set: a repeated member.
func once(dst *[]byte, v []byte) bool {
	if *dst != nil {
		return false
	}
	*dst = v
	return true
}
