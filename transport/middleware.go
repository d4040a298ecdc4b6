package transport

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/connectors-gateway/connectors/audit"
	"github.com/connectors-gateway/connectors/internal/httpwire"
	"github.com/connectors-gateway/connectors/telemetry"
	"github.com/connectors-gateway/connectors/tenants"
	"github.com/connectors-gateway/connectors/vault"
)

// RequestID returns the ID transport gave the request in ctx, if any. It
// travels as the audit trail's request ID, so deep callers' audit records
// carry it.
func RequestID(ctx context.Context) string { return audit.RequestID(ctx) }

// guards is the middleware the route groups share: the Host and Origin
// checks, the body limit, authentication and its challenges, and the
// decision which tenant a request may act on (tenant.go).
type guards struct {
	opts    *HTTPOptions
	log     *slog.Logger
	apiAuth Authenticator // the MCP endpoint's, and signed-in browsers
}

// api guards a REST route: callers authenticate as on the MCP endpoint, or
// as a signed-in browser (CSRF-checked).
func (h *guards) api(next http.HandlerFunc) http.Handler {
	return h.checkHost(h.checkOrigin(h.limitAPIBody(h.authenticateWith(h.apiAuth, next))))
}

// checkOrigin refuses browser requests from origins that are not allowed,
// as the MCP transport specification requires against DNS rebinding.
func (h *guards) checkOrigin(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if origin := r.Header.Get("Origin"); origin != "" && !h.originAllowed(origin) {
			h.log.WarnContext(r.Context(), "origin_rejected", "origin", origin, "request_id", RequestID(r.Context()))
			httpwire.WriteError(w, r, http.StatusForbidden, "ForbiddenOrigin", "origin not allowed")
			return
		}
		next.ServeHTTP(w, r)
	})
}

func (h *guards) originAllowed(origin string) bool {
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
func (h *guards) checkHost(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		local, _ := r.Context().Value(http.LocalAddrContextKey).(net.Addr)
		if local != nil && isLoopback(local.String()) && !isLoopback(r.Host) &&
			!slices.Contains(h.opts.AllowedHosts, r.Host) && !slices.Contains(h.opts.AllowedHosts, hostOnly(r.Host)) {
			h.log.WarnContext(r.Context(), "host_rejected", "host", r.Host, "request_id", RequestID(r.Context()))
			httpwire.WriteError(w, r, http.StatusForbidden, "ForbiddenHost", "host not allowed")
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
func (h *guards) limitBody(next http.Handler) http.Handler {
	return h.limitBodyFor(true, next)
}

// limitAPIBody is limitBody for the REST routes: bodies of any method are
// bounded, and a JSON array is left for the route to refuse.
func (h *guards) limitAPIBody(next http.Handler) http.Handler {
	return h.limitBodyFor(false, next)
}

func (h *guards) limitBodyFor(jsonRPC bool, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if jsonRPC && r.Method != http.MethodPost || r.Body == nil || r.Body == http.NoBody {
			next.ServeHTTP(w, r)
			return
		}
		if r.ContentLength > h.opts.MaxBodyBytes {
			httpwire.WriteError(w, r, http.StatusRequestEntityTooLarge, "PayloadTooLarge", "request body too large")
			return
		}
		body, err := readBody(http.MaxBytesReader(w, r.Body, h.opts.MaxBodyBytes), r.ContentLength)
		if err != nil {
			if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
				httpwire.WriteError(w, r, http.StatusRequestEntityTooLarge, "PayloadTooLarge", "request body too large")
				return
			}
			httpwire.WriteError(w, r, http.StatusBadRequest, "BadRequest", "could not read request body")
			return
		}
		if trimmed := bytes.TrimLeft(body, " \t\r\n"); jsonRPC && len(trimmed) > 0 && trimmed[0] == '[' {
			httpwire.WriteJSONRPCError(w, http.StatusBadRequest, nil, -32600, "JSON-RPC batch requests are not supported: send one message per request")
			return
		}
		r.Body = httpwire.NewBody(body)
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

// authenticate puts the caller's verified identity on the request context
// or answers 401. The credential the agent presented goes no further: the
// Authorization header is removed before the MCP server sees the request.
func (h *guards) authenticate(next http.Handler) http.Handler {
	return h.authenticateWith(h.opts.Auth, next)
}

// authenticateWith is authenticate with auth as the judge.
func (h *guards) authenticateWith(auth Authenticator, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		id, err := auth.Authenticate(r)
		telemetry.Record(r.Context(), "auth", start, err) // no attributes: who is the store's to say
		if err != nil {
			f := authFailureFor(err, h.opts.Resource, h.opts.Scopes)
			level := slog.LevelInfo
			if f.warn {
				level = slog.LevelWarn
			}
			h.log.Log(r.Context(), level, f.event, "error", err, "request_id", RequestID(r.Context()))
			if f.challenge != "" {
				w.Header().Set("WWW-Authenticate", f.challenge)
			}
			if f.retryAfter != "" {
				w.Header().Set("Retry-After", f.retryAfter)
			}
			httpwire.WriteError(w, r, f.status, f.name, f.message)
			return
		}
		r.Header.Del("Authorization")
		r.Header.Del("X-Api-Key")
		next.ServeHTTP(w, r.WithContext(tenants.NewContext(r.Context(), id)))
	})
}

// authFailure is how a failed authentication is answered, and logged.
type authFailure struct {
	status        int
	name, message string
	challenge     string // the WWW-Authenticate header; empty: none
	retryAfter    string // the Retry-After header; empty: none
	event         string // the log event
	warn          bool   // logged as a warning (else as information)
}

// authFailureFor maps an authentication error to its answer: 403 for a
// browser's failed CSRF check and for a token that lacks a scope
// (challenged with insufficient_scope), 503 when the key could not be
// checked (the store is down: a 401 would tell the client to throw a
// good key away), and else 401, challenged with invalid_token unless no
// credential was presented at all. resource and scopes go into the
// challenges (see challenge).
func authFailureFor(err error, resource string, scopes []string) authFailure {
	if errors.Is(err, ErrCSRF) {
		return authFailure{status: http.StatusForbidden, name: "CSRFCheckFailed",
			message: "a state-changing browser request needs the session's CSRF token and a same-origin Origin",
			event:   "csrf_rejected", warn: true}
	}
	if scopeErr, ok := errors.AsType[*tenants.InsufficientScopeError](err); ok {
		return authFailure{status: http.StatusForbidden, name: "InsufficientScope", message: "the token lacks a required scope",
			challenge: challenge(resource, `error="insufficient_scope"`, scopeErr.Required), event: "authorization_failed"}
	}
	if _, down := errors.AsType[*vault.VaultError](err); down {
		return authFailure{status: http.StatusServiceUnavailable, name: "VaultError",
			message: "Failed to connect to Vault: the credential could not be checked", retryAfter: "5",
			event: "authentication_unavailable", warn: true}
	}
	param := ""
	if !errors.Is(err, ErrNoCredentials) {
		param = `error="invalid_token"`
	}
	return authFailure{status: http.StatusUnauthorized, name: "Unauthorized", message: "missing or invalid credentials",
		challenge: challenge(resource, param, scopes), event: "authentication_failed"}
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
// and the protected-resource metadata of resource (RFC 9728 section 5.1;
// none when resource is empty), from which an MCP client learns where to
// sign in.
func challenge(resource, errParam string, scopes []string) string {
	params := []string{`realm="connectors"`}
	if errParam != "" {
		params = append(params, errParam)
	}
	if len(scopes) > 0 {
		params = append(params, `scope="`+strings.Join(scopes, " ")+`"`)
	}
	if resource != "" {
		if u := resourceMetadataURL(resource); u != "" {
			params = append(params, `resource_metadata="`+u+`"`)
		}
	}
	return "Bearer " + strings.Join(params, ", ")
}
