package main

import (
	"bytes"
	"encoding/json"
	"io"
	"log"
	"net/http"

	"github.com/mark3labs/mcp-go/mcp"
)

// Two things the 2026-07-28 scenarios need cannot be said through mcp-go
// v1.2.1's handlers: a JSON-RPC error carrying data (a handler's error
// becomes -32603, so MissingRequiredClientCapabilityError can carry no
// requiredCapabilities), and methods mcp-go does not know (it answers
// anything outside its own table with -32601, and has no way to register
// more). interceptor sits in front of the streamable HTTP handler and
// answers the few requests that need either; everything else reaches
// mcp-go untouched, and so does every request of the initialize era.

// maxInterceptBody bounds what interceptor reads to look at a request.
const maxInterceptBody = 4 << 20

type rpcError struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
	Data    any    `json:"data,omitempty"`
}

// clientCaps is the part of a request's declared client capabilities the
// intercepted requests depend on.
type clientCaps struct {
	Sampling   json.RawMessage            `json:"sampling"`
	Extensions map[string]json.RawMessage `json:"extensions"`
}

func declaredRaw(raw json.RawMessage) bool {
	return len(raw) > 0 && string(raw) != "null"
}

func (c clientCaps) hasExtension(id string) bool {
	return declaredRaw(c.Extensions[id])
}

// call is one request of the 2026-07-28 era as interceptor sees it.
type call struct {
	ID     json.RawMessage `json:"id"`
	Method string          `json:"method"`
	Params json.RawMessage `json:"params"`

	header http.Header
	// version and caps come from params._meta; caps is nil when the request
	// declared none.
	version string
	caps    *clientCaps
	// tool is params.name of a tools/call.
	tool string
}

func parseCall(body []byte, header http.Header) (*call, bool) {
	c := &call{header: header}
	if json.Unmarshal(body, c) != nil || len(c.ID) == 0 || string(c.ID) == "null" || c.Method == "" {
		return nil, false
	}
	var params struct {
		Name string `json:"name"`
		Meta struct {
			Version string      `json:"io.modelcontextprotocol/protocolVersion"`
			Caps    *clientCaps `json:"io.modelcontextprotocol/clientCapabilities"`
		} `json:"_meta"`
	}
	if len(c.Params) > 0 && json.Unmarshal(c.Params, &params) != nil {
		return nil, false
	}
	c.version, c.caps, c.tool = params.Meta.Version, params.Meta.Caps, params.Name
	return c, true
}

// wellFormed reports whether the request passes the checks mcp-go makes of
// every 2026-07-28 request before it dispatches one. A request that does not
// is left to mcp-go, which rejects it the way it rejects any other.
func (c *call) wellFormed() bool {
	return c.version != "" && c.caps != nil &&
		c.header.Get(mcp.HeaderProtocolVersion) == c.version &&
		mcp.IsValidProtocolVersion(c.version)
}

// route answers the requests claims accepts.
type route struct {
	claims func(*call) bool
	serve  func(*call) (any, *rpcError)
}

type interceptor struct {
	next   http.Handler
	routes []route
}

func (in *interceptor) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost || !mcp.IsModernProtocol(r.Header.Get(mcp.HeaderProtocolVersion)) {
		in.next.ServeHTTP(w, r)
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxInterceptBody))
	if err != nil {
		http.Error(w, "reading request body: "+err.Error(), http.StatusBadRequest)
		return
	}
	r.Body = io.NopCloser(io.MultiReader(bytes.NewReader(body), r.Body))
	c, ok := parseCall(body, r.Header)
	if !ok || !c.wellFormed() {
		in.next.ServeHTTP(w, r)
		return
	}
	for _, rt := range in.routes {
		if rt.claims(c) {
			result, rerr := rt.serve(c)
			writeRPC(w, c.ID, result, rerr)
			return
		}
	}
	in.next.ServeHTTP(w, r)
}

// standardHeaders checks Mcp-Method, and Mcp-Name where mcp-go knows the
// method needs one, as mcp-go would before dispatching.
func (c *call) standardHeaders() *rpcError {
	if err := mcp.ValidateStandardHeaders(c.header.Get, c.version, mcp.MCPMethod(c.Method), c.Params); err != nil {
		return &rpcError{Code: mcp.HEADER_MISMATCH, Message: err.Error()}
	}
	return nil
}

func missingCapability(name string, required map[string]any) *rpcError {
	return &rpcError{
		Code:    mcp.MISSING_REQUIRED_CLIENT_CAPABILITY,
		Message: "missing required client capability: " + name,
		Data:    map[string]any{"requiredCapabilities": required},
	}
}

// httpStatus is the status 2026-07-28 prescribes for a JSON-RPC error code.
func httpStatus(code int) int {
	switch code {
	case mcp.METHOD_NOT_FOUND:
		return http.StatusNotFound
	case mcp.HEADER_MISMATCH, mcp.MISSING_REQUIRED_CLIENT_CAPABILITY, mcp.UNSUPPORTED_PROTOCOL_VERSION,
		mcp.INVALID_REQUEST, mcp.INVALID_PARAMS, mcp.PARSE_ERROR:
		return http.StatusBadRequest
	default:
		return http.StatusOK
	}
}

func writeRPC(w http.ResponseWriter, id json.RawMessage, result any, rerr *rpcError) {
	msg := map[string]any{"jsonrpc": mcp.JSONRPC_VERSION, "id": id}
	status := http.StatusOK
	if rerr != nil {
		msg["error"] = rerr
		status = httpStatus(rerr.Code)
	} else {
		msg["result"] = result
	}
	b, err := json.Marshal(msg)
	if err != nil {
		log.Printf("encoding response to %s: %v", id, err)
		b, _ = json.Marshal(map[string]any{"jsonrpc": mcp.JSONRPC_VERSION, "id": id,
			"error": rpcError{Code: mcp.INTERNAL_ERROR, Message: "encoding the response failed"}})
		status = http.StatusOK
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}
