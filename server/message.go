package server

import (
	"encoding/json"
	"errors"
	"net/http"

	"github.com/mark3labs/mcp-go/mcp"

	"github.com/connectors-gateway/connectors/audit"
	"github.com/connectors-gateway/connectors/internal/httpwire"
)

// message is what checkMessage reads of a JSON-RPC message: as mcp-go
// reads it (encoding/json), so that both see the same ID and method.
type message struct {
	ID     json.RawMessage `json:"id"` // "null" when sent as null
	Method string          `json:"method"`
	Params json.RawMessage `json:"params"`
}

// checkMessage refuses, before mcp-go or any upstream sees it, a message
// the protocol does not allow and mcp-go would serve:
//
//   - an ID that is not a string or a number (an object, an array, a
//     boolean), or a request (it has a method) whose ID is null: -32600,
//     HTTP 400, since it cannot be answered by its ID (mcp-go echoes an
//     object ID and takes a request with a null ID for a notification);
//   - a tools/call or prompts/get whose arguments are neither an object
//     nor null (absent is fine): -32602 (mcp-go passes a list or a string
//     on to the upstream);
//   - an initialize past the bounds on sessions (see sessions.reserve), or
//     a 2026-07-28 subscriptions/listen, whose stream holds a place under
//     the same bounds while it is open: it is the session of that era.
//
// The direct path has taken the calls it can serve before this (its
// reader takes only a string or number ID and object arguments, and hands
// anything else here), so this costs one decoding of the requests mcp-go
// decodes several times anyway, and nothing on the direct path.
func (h *Handler) checkMessage(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.Body == nil || r.Body == http.NoBody {
			next.ServeHTTP(w, r)
			return
		}
		body, err := httpwire.ReadAll(r.Body)
		r.Body = httpwire.NewBody(body)
		var m message
		if err != nil || json.Unmarshal(body, &m) != nil {
			next.ServeHTTP(w, r) // mcp-go answers what it cannot read
			return
		}
		if no := m.refusal(); no != nil {
			httpwire.WriteJSONRPCError(w, no.status, no.id, no.code, no.message)
			return
		}
		switch mcp.MCPMethod(m.Method) {
		case mcp.MethodInitialize:
			// mcp-go makes a new session of every initialize of the
			// initialize era, with a session ID or without.
			if mcp.IsModernProtocol(r.Header.Get(mcp.HeaderProtocolVersion)) {
				break
			}
			res, release, err := h.sessions.reserve(ownerOf(r))
			if err != nil {
				h.sessionCapped(w, r, m.ID, err)
				return
			}
			defer release()
			r = r.WithContext(withReservation(r.Context(), res))
		case mcp.MethodToolsCall:
			if h.refuseParamHeaders(w, r, m) {
				return
			}
		case mcp.MethodSubscriptionsListen:
			_, release, err := h.sessions.reserve(ownerOf(r))
			if err != nil {
				h.sessionCapped(w, r, m.ID, err)
				return
			}
			defer release()
		}
		next.ServeHTTP(w, r)
	})
}

// refusedMessage is a message refused before mcp-go sees it: the HTTP status,
// and the JSON-RPC error to answer with.
type refusedMessage struct {
	status  int
	id      json.RawMessage // empty: null
	code    int
	message string
}

// refusal says why m is refused, or nil (see checkMessage).
func (m message) refusal() *refusedMessage {
	if len(m.ID) > 0 {
		switch c := m.ID[0]; {
		case c == '"' || c == '-' || c >= '0' && c <= '9':
		case c == 'n' && m.Method == "": // a response that could not name its request
		default:
			return &refusedMessage{http.StatusBadRequest, nil, mcp.INVALID_REQUEST, "Invalid Request: a request's id must be a string or a number"}
		}
	}
	switch mcp.MCPMethod(m.Method) {
	case mcp.MethodToolsCall, mcp.MethodPromptsGet:
		var p struct {
			Arguments json.RawMessage `json:"arguments"`
		}
		if json.Unmarshal(m.Params, &p) == nil && !argumentsObject(p.Arguments) {
			return &refusedMessage{http.StatusOK, m.ID, mcp.INVALID_PARAMS, "Invalid params: arguments must be an object"}
		}
	}
	return nil
}

// codeTooManySessions is the JSON-RPC error of a refused initialize, in
// the range JSON-RPC leaves to servers.
const codeTooManySessions = -32000

// sessionCapped answers an initialize refused by a bound on sessions: 429
// for the identity's or the tenant's (they can end one of their own), 503
// for the gateway's.
func (h *Handler) sessionCapped(w http.ResponseWriter, r *http.Request, id json.RawMessage, err error) {
	var capErr errSessionCap
	errors.As(err, &capErr)
	status, msg := http.StatusServiceUnavailable, "Too many sessions: the gateway holds its maximum of MCP sessions (CONNECTORS_MAX_SESSIONS); try again later"
	switch capErr.bound {
	case boundIdentity:
		status, msg = http.StatusTooManyRequests, "Too many sessions: this identity holds its maximum of open MCP sessions (CONNECTORS_MAX_SESSIONS_PER_IDENTITY); end one with DELETE, or wait for idle ones to expire"
	case boundTenant:
		status, msg = http.StatusTooManyRequests, "Too many sessions: this tenant holds its maximum of open MCP sessions (CONNECTORS_MAX_SESSIONS_PER_TENANT); end one with DELETE, or wait for idle ones to expire"
	}
	caller := ownerOf(r)
	h.log.WarnContext(r.Context(), "mcp_session_refused", "tenantId", caller.tenant, "subject", caller.subject,
		"reason", err.Error(), "requestId", audit.RequestID(r.Context()))
	w.Header().Set("Retry-After", "60")
	httpwire.WriteJSONRPCError(w, status, id, codeTooManySessions, msg)
}

// argumentsObject reports whether a tools/call's arguments are an object,
// null or absent.
func argumentsObject(t []byte) bool {
	return len(t) == 0 || string(t) == "null" || t[0] == '{'
}
