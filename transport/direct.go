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
		body, err := io.ReadAll(r.Body)
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
func parseDirect(body []byte, headerName string) (call server.DirectCall, id json.RawMessage, ok bool) {
	// One pass of the decoder over the body; any member it does not know
	// (exactly these, and the _meta object) declines the request.
	var msg struct {
		JSONRPC string          `json:"jsonrpc"`
		ID      json.RawMessage `json:"id"`
		Method  string          `json:"method"`
		Params  struct {
			Name           string          `json:"name"`
			Arguments      json.RawMessage `json:"arguments"`
			Meta           json.RawMessage `json:"_meta"` // the last of repeated members, as mcp-go reads it
			InputResponses json.RawMessage `json:"inputResponses"`
			RequestState   json.RawMessage `json:"requestState"`
		} `json:"params"`
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if dec.Decode(&msg) != nil || dec.More() || msg.JSONRPC != mcp.JSONRPC_VERSION || msg.Method != string(mcp.MethodToolsCall) ||
		len(msg.ID) == 0 || !(msg.ID[0] == '"' || msg.ID[0] == '-' || msg.ID[0] >= '0' && msg.ID[0] <= '9') {
		return call, nil, false
	}
	if _, err := dec.Token(); err != io.EOF { // nothing after the request
		return call, nil, false
	}
	p := &msg.Params
	if t := p.Arguments; len(t) > 0 && !bytes.Equal(t, []byte("null")) && t[0] != '{' {
		return call, nil, false
	}
	// The answers to an earlier input_required result, of the types mcp-go
	// would decode them into (or it refuses the request).
	if len(p.RequestState) > 0 && p.RequestState[0] != '"' {
		return call, nil, false
	}
	if len(p.InputResponses) > 0 {
		var responses mcp.InputResponses
		if p.InputResponses[0] != '{' || json.Unmarshal(p.InputResponses, &responses) != nil {
			return call, nil, false
		}
	}
	call.Name, call.Arguments, call.InputResponses, call.RequestState = p.Name, p.Arguments, p.InputResponses, p.RequestState
	if call.Name == "" || call.Name != headerName {
		return call, nil, false
	}
	var meta map[string]json.RawMessage
	if json.Unmarshal(p.Meta, &meta) != nil {
		return call, nil, false
	}
	var version string
	for k, v := range meta {
		switch {
		case k == mcp.MetaKeyProtocolVersion:
			if json.Unmarshal(v, &version) != nil {
				return call, nil, false
			}
		case k == mcp.MetaKeyClientCapabilities:
			if len(v) == 0 || v[0] != '{' {
				return call, nil, false
			}
			call.Capabilities = v
		case k == mcp.MetaKeyClientInfo:
			// The agent's; the upstream hears the gateway's.
		case strings.HasPrefix(k, "io.modelcontextprotocol/"), k == "progressToken":
			return call, nil, false
		default:
			if call.Meta == nil {
				call.Meta = map[string]json.RawMessage{}
			}
			call.Meta[k] = v
		}
	}
	if version != mcp.ProtocolVersion20260728 || call.Capabilities == nil {
		return call, nil, false
	}
	return call, msg.ID, true
}
