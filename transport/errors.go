package transport

import (
	"encoding/json"
	"net/http"
)

// errorBody is the one JSON shape of every HTTP error the gateway answers
// (MCP-level errors are JSON-RPC errors instead).
type errorBody struct {
	Error     string `json:"error"`   // a stable name: Unauthorized, PayloadTooLarge, ...
	Message   string `json:"message"` // for people; never a secret
	RequestID string `json:"requestId,omitempty"`
}

func writeError(w http.ResponseWriter, r *http.Request, status int, name, message string) {
	writeJSON(w, status, errorBody{Error: name, Message: message, RequestID: RequestID(r.Context())})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// writeJSONRPCError answers with a JSON-RPC error that has no request ID,
// for messages refused before they could be parsed.
func writeJSONRPCError(w http.ResponseWriter, status, code int, message string) {
	writeJSON(w, status, map[string]any{
		"jsonrpc": "2.0",
		"id":      nil,
		"error":   map[string]any{"code": code, "message": message},
	})
}

// writeJSONRPCErrorFor answers with a JSON-RPC error for the request of id
// (as sent; null when empty).
func writeJSONRPCErrorFor(w http.ResponseWriter, status int, id json.RawMessage, code int, message string) {
	if len(id) == 0 {
		id = json.RawMessage("null")
	}
	writeJSON(w, status, map[string]any{
		"jsonrpc": "2.0",
		"id":      id,
		"error":   map[string]any{"code": code, "message": message},
	})
}
