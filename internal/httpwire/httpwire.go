// Package httpwire is what the gateway's two HTTP layers, transport (the
// routes around MCP) and server (the MCP endpoint), both read and write:
// a request body read once and handed on without a copy, the one shape of
// the API's errors and of JSON-RPC errors, a writer that remembers the
// status answered, and the record of a refused attempt.
package httpwire

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"

	"github.com/connectors-gateway/connectors/audit"
	"github.com/connectors-gateway/connectors/tenants"
)

// Body is a request body read whole (by transport's body limit): the
// handlers after it read it again, or take it whole with [ReadAll].
type Body struct {
	*bytes.Reader
	all []byte
}

// NewBody returns b as a request body.
func NewBody(b []byte) *Body { return &Body{Reader: bytes.NewReader(b), all: b} }

// Close implements io.Closer.
func (*Body) Close() error { return nil }

// Bytes returns the whole of body when it is a [Body], read or not.
func Bytes(body io.Reader) ([]byte, bool) {
	b, ok := body.(*Body)
	if !ok {
		return nil, false
	}
	return b.all, true
}

// ReadAll is io.ReadAll(body) without a copy when body is a [Body] nobody
// has read from yet.
func ReadAll(body io.Reader) ([]byte, error) {
	if b, ok := body.(*Body); ok && b.Len() == len(b.all) {
		_, _ = b.Seek(0, io.SeekEnd) // read, as io.ReadAll would leave it
		return b.all, nil
	}
	return io.ReadAll(body)
}

// ErrorBody is the one JSON shape of every HTTP error the gateway answers
// (MCP-level errors are JSON-RPC errors instead).
type ErrorBody struct {
	Error     string `json:"error"`   // a stable name: Unauthorized, PayloadTooLarge, ...
	Message   string `json:"message"` // for people; never a secret
	RequestID string `json:"requestId,omitempty"`
}

// WriteError answers r with status and an [ErrorBody] of name and message.
func WriteError(w http.ResponseWriter, r *http.Request, status int, name, message string) {
	WriteJSON(w, status, ErrorBody{Error: name, Message: message, RequestID: audit.RequestID(r.Context())})
}

// WriteJSON answers with status and v as JSON.
func WriteJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// WriteJSONRPCError answers with status and a JSON-RPC error for the
// request of id (as sent; null when empty, for a message refused before
// its ID could be read).
func WriteJSONRPCError(w http.ResponseWriter, status int, id json.RawMessage, code int, message string) {
	WriteJSON(w, status, JSONRPCError(id, code, message))
}

// JSONRPCError is the JSON-RPC error message answering the request of id
// (null when empty).
func JSONRPCError(id json.RawMessage, code int, message string) map[string]any {
	if len(id) == 0 {
		id = json.RawMessage("null")
	}
	return map[string]any{
		"jsonrpc": "2.0",
		"id":      id,
		"error":   map[string]any{"code": code, "message": message},
	}
}

// StatusWriter remembers the status a handler answered with, and tells
// OnHeader, if set, once the header is written.
type StatusWriter struct {
	http.ResponseWriter
	Status   int
	OnHeader func(status int)
}

// WriteHeader implements http.ResponseWriter.
func (w *StatusWriter) WriteHeader(code int) {
	if w.Status == 0 {
		w.Status = code
	}
	w.ResponseWriter.WriteHeader(code)
	if w.OnHeader != nil {
		w.OnHeader(code)
	}
}

// Write implements http.ResponseWriter.
func (w *StatusWriter) Write(b []byte) (int, error) {
	if w.Status == 0 {
		w.Status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the writer (flushing event
// streams).
func (w *StatusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// Flush implements http.Flusher, for event streams.
func (w *StatusWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// Denied records a refused attempt of caller on target (a tenant), once in
// trail (nil: not recorded) and once in log: who, on which tenant, why
// (reason, such as "cross_tenant"), by which route.
func Denied(r *http.Request, trail *audit.Logger, log *slog.Logger, caller tenants.Identity, target, reason string) {
	route := r.Pattern // "PUT /tenants/{tenantId}/...": the method is in it
	if route == "" {
		route = r.Method + " " + r.URL.Path
	}
	trail.Record(r.Context(), audit.Record{
		TenantID:     target,
		Integration:  r.PathValue("integration"),
		Operation:    audit.OpAccessDenied,
		CallerTenant: caller.Tenant,
		Reason:       reason,
		Err:          fmt.Errorf("%s refused: %s", route, strings.ReplaceAll(reason, "_", " ")),
	})
	log.WarnContext(r.Context(), "tenant_access_denied",
		"tenantId", target,
		"callerTenantId", caller.Tenant,
		"subject", caller.Subject,
		"reason", reason,
		"route", route,
		"requestId", audit.RequestID(r.Context()),
	)
}
