package transport

import (
	"encoding/json"
	"net/http"
	"strings"

	"github.com/mark3labs/mcp-go/mcp"
)

// storeRefusals answers HTTP 503 to a 2026-07-28 request that the gateway
// refused because the credential store could not answer (the server's
// preflight: a JSON-RPC error whose message starts with VaultError or
// VaultEncryptionError), as the REST routes do, with Retry-After when
// waiting may help. mcp-go sends such a refusal with code -32600, which
// 2026-07-28 maps to HTTP 400: the client's fault, which it is not.
//
// Only the answers mcp-go starts with a 400 are held back and read; the
// others, streams included, pass as they are written. Initialize-era
// answers are always HTTP 200 and pass untouched.
func (h *HTTP) storeRefusals(next http.Handler) http.Handler {
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
