package transport

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/connectors-gateway/connectors/audit"
	"github.com/connectors-gateway/connectors/tenants"
	"github.com/connectors-gateway/connectors/vault"
)

// RequestID returns the ID transport gave the request in ctx, if any. It
// travels as the audit trail's request ID, so deep callers' audit records
// carry it.
func RequestID(ctx context.Context) string { return audit.RequestID(ctx) }

// withRequestID gives every request an ID, echoed in X-Request-Id, and
// counts it in the metrics by route pattern and status.
func (h *HTTP) withRequestID(next *http.ServeMux) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var b [8]byte
		_, _ = rand.Read(b[:])
		id := hex.EncodeToString(b[:])
		w.Header().Set("X-Request-Id", id)
		r = r.WithContext(audit.WithRequestID(r.Context(), id))
		if h.opts.Metrics == nil {
			next.ServeHTTP(w, r)
			return
		}
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w}
		next.ServeHTTP(sw, r) // the mux sets r.Pattern
		h.opts.Metrics.HTTP(r.Pattern, sw.status, time.Since(start))
	})
}

// statusWriter remembers the status a handler answered with, and tells
// onHeader, if set, once the header is written.
type statusWriter struct {
	http.ResponseWriter
	status   int
	onHeader func(status int)
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
	if w.onHeader != nil {
		w.onHeader(code)
	}
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the writer (flushing event
// streams).
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// Flush implements http.Flusher, for event streams.
func (w *statusWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// checkOrigin refuses browser requests from origins that are not allowed,
// as the MCP transport specification requires against DNS rebinding.
func (h *HTTP) checkOrigin(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if origin := r.Header.Get("Origin"); origin != "" && !h.originAllowed(origin) {
			h.log.WarnContext(r.Context(), "origin_rejected", "origin", origin, "request_id", RequestID(r.Context()))
			writeError(w, r, http.StatusForbidden, "ForbiddenOrigin", "origin not allowed")
			return
		}
		next.ServeHTTP(w, r)
	})
}

func (h *HTTP) originAllowed(origin string) bool {
	if slices.Contains(h.opts.AllowedOrigins, origin) {
		return true
	}
	if h.opts.StrictOrigins {
		return false
	}
	u, err := url.Parse(origin)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.User != nil || u.Path != "" {
		return false
	}
	return isLoopback(u.Hostname())
}

// checkHost refuses a request that arrived on a loopback connection with a
// Host that is not a loopback name or an allowed host: a browser page whose
// DNS name was rebound to 127.0.0.1 must not reach the gateway.
func (h *HTTP) checkHost(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		local, _ := r.Context().Value(http.LocalAddrContextKey).(net.Addr)
		if local != nil && isLoopback(local.String()) && !isLoopback(r.Host) &&
			!slices.Contains(h.opts.AllowedHosts, r.Host) && !slices.Contains(h.opts.AllowedHosts, hostOnly(r.Host)) {
			h.log.WarnContext(r.Context(), "host_rejected", "host", r.Host, "request_id", RequestID(r.Context()))
			writeError(w, r, http.StatusForbidden, "ForbiddenHost", "host not allowed")
			return
		}
		next.ServeHTTP(w, r)
	})
}

// isLoopback reports whether a host or host:port names a loopback address.
func isLoopback(hostport string) bool {
	host := hostOnly(hostport)
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func hostOnly(hostport string) string {
	if host, _, err := net.SplitHostPort(hostport); err == nil {
		return host
	}
	return strings.Trim(hostport, "[]")
}

// limitBody reads a POST body up to the limit (413 beyond it) and refuses
// JSON-RPC batches, which MCP no longer allows, with a clear error.
func (h *HTTP) limitBody(next http.Handler) http.Handler {
	return h.limitBodyFor(true, next)
}

// limitAPIBody is limitBody for the REST routes: bodies of any method are
// bounded, and a JSON array is left for the route to refuse.
func (h *HTTP) limitAPIBody(next http.Handler) http.Handler {
	return h.limitBodyFor(false, next)
}

func (h *HTTP) limitBodyFor(jsonRPC bool, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if jsonRPC && r.Method != http.MethodPost || r.Body == nil || r.Body == http.NoBody {
			next.ServeHTTP(w, r)
			return
		}
		if r.ContentLength > h.opts.MaxBodyBytes {
			writeError(w, r, http.StatusRequestEntityTooLarge, "PayloadTooLarge", "request body too large")
			return
		}
		body, err := readBody(http.MaxBytesReader(w, r.Body, h.opts.MaxBodyBytes), r.ContentLength)
		if err != nil {
			if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
				writeError(w, r, http.StatusRequestEntityTooLarge, "PayloadTooLarge", "request body too large")
				return
			}
			writeError(w, r, http.StatusBadRequest, "BadRequest", "could not read request body")
			return
		}
		if trimmed := bytes.TrimLeft(body, " \t\r\n"); jsonRPC && len(trimmed) > 0 && trimmed[0] == '[' {
			writeJSONRPCError(w, http.StatusBadRequest, -32600, "JSON-RPC batch requests are not supported: send one message per request")
			return
		}
		r.Body = &bufferedBody{Reader: bytes.NewReader(body), all: body}
		r.ContentLength = int64(len(body))
		next.ServeHTTP(w, r)
	})
}

// readBody reads r to its end, in one buffer of the announced size when
// there is one (io.ReadAll would grow it from 512 bytes).
func readBody(r io.Reader, announced int64) ([]byte, error) {
	if announced <= 0 {
		return io.ReadAll(r)
	}
	// One byte more than announced, so that a body longer than announced
	// (which net/http does not let through) would still read to its end.
	buf := make([]byte, 0, announced+1)
	for {
		n, err := r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err == io.EOF {
			return buf, nil
		}
		if err != nil {
			return buf, err
		}
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)] // grow
		}
	}
}

// bufferedBody is a request body limitBody has read: the handlers after it
// read it again, or take it whole with [readAll].
type bufferedBody struct {
	*bytes.Reader
	all []byte
}

func (*bufferedBody) Close() error { return nil }

// readAll is io.ReadAll(body) without a copy when limitBody has read it
// and nobody has read from it since.
func readAll(body io.Reader) ([]byte, error) {
	if b, ok := body.(*bufferedBody); ok && b.Len() == len(b.all) {
		_, _ = b.Seek(0, io.SeekEnd) // read, as io.ReadAll would leave it
		return b.all, nil
	}
	return io.ReadAll(body)
}

// authenticate puts the caller's verified identity on the request context
// or answers 401. The credential the agent presented goes no further: the
// Authorization header is removed before the MCP server sees the request.
func (h *HTTP) authenticate(next http.Handler) http.Handler {
	return h.authenticateWith(h.opts.Auth, next)
}

// authenticateWith is authenticate with auth as the judge.
func (h *HTTP) authenticateWith(auth Authenticator, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, err := auth.Authenticate(r)
		if errors.Is(err, ErrCSRF) {
			h.log.WarnContext(r.Context(), "csrf_rejected", "error", err, "request_id", RequestID(r.Context()))
			writeError(w, r, http.StatusForbidden, "CSRFCheckFailed", "a state-changing browser request needs the session's CSRF token and a same-origin Origin")
			return
		}
		if scopeErr, ok := errors.AsType[*tenants.InsufficientScopeError](err); ok {
			h.log.InfoContext(r.Context(), "authorization_failed", "error", err, "request_id", RequestID(r.Context()))
			w.Header().Set("WWW-Authenticate", h.challenge(`error="insufficient_scope"`, scopeErr.Required))
			writeError(w, r, http.StatusForbidden, "InsufficientScope", "the token lacks a required scope")
			return
		}
		if _, down := errors.AsType[*vault.VaultError](err); down {
			// The key could not be checked, not found wanting: a 401 would
			// tell the client to throw a good key away.
			h.log.WarnContext(r.Context(), "authentication_unavailable", "error", err, "request_id", RequestID(r.Context()))
			w.Header().Set("Retry-After", "5")
			writeError(w, r, http.StatusServiceUnavailable, "VaultError", "Failed to connect to Vault: the credential could not be checked")
			return
		}
		if err != nil {
			h.log.InfoContext(r.Context(), "authentication_failed", "error", err, "request_id", RequestID(r.Context()))
			param := ""
			if !errors.Is(err, ErrNoCredentials) {
				param = `error="invalid_token"`
			}
			w.Header().Set("WWW-Authenticate", h.challenge(param, h.opts.Scopes))
			writeError(w, r, http.StatusUnauthorized, "Unauthorized", "missing or invalid credentials")
			return
		}
		r.Header.Del("Authorization")
		r.Header.Del("X-Api-Key")
		next.ServeHTTP(w, r.WithContext(tenants.NewContext(r.Context(), id)))
	})
}

// bearer returns the token of an "Authorization: Bearer" header.
func bearer(r *http.Request) string {
	scheme, token, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return ""
	}
	return strings.TrimSpace(token)
}

// challenge is a Bearer challenge (RFC 6750 section 3) naming the scopes
// and the protected-resource metadata (RFC 9728 section 5.1), from which
// an MCP client learns where to sign in.
func (h *HTTP) challenge(errParam string, scopes []string) string {
	params := []string{`realm="connectors"`}
	if errParam != "" {
		params = append(params, errParam)
	}
	if len(scopes) > 0 {
		params = append(params, `scope="`+strings.Join(scopes, " ")+`"`)
	}
	if h.opts.Resource != "" {
		if u := resourceMetadataURL(h.opts.Resource); u != "" {
			params = append(params, `resource_metadata="`+u+`"`)
		}
	}
	return "Bearer " + strings.Join(params, ", ")
}
