package server

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	mcptransport "github.com/mark3labs/mcp-go/client/transport"
	"github.com/mark3labs/mcp-go/mcp"

	"github.com/connectors-gateway/connectors/metrics"
	"github.com/connectors-gateway/connectors/oauth"
	"github.com/connectors-gateway/connectors/tenants"
	"github.com/connectors-gateway/connectors/tools"
	"github.com/connectors-gateway/connectors/vault"
)

// The plan of a call. Every lane that calls an upstream tool for a tenant
// follows one plan: mcp-go's tool handlers (the usual path, gateway.go),
// REST invoke (invoke.go) and the direct lane (direct.go). The lane first
// finds the tool in the tenant's own catalogue and applies the access
// decision of tools/list (access, and the settings' AllowsTool); then the
// plan says
//
//  1. which integration: the tenant of ctx, a registered integration
//     ([Gateway.newPlan]);
//  2. which credential: the tenant's, refreshed first when it has expired
//     ([credentials.Credential]);
//  3. which connection: the tenant's own, made with that credential
//     ([plan.connect]);
//  4. the call, and once, when the upstream refused the token, a renewed
//     credential, a new connection and the call again ([run]).
//
// The lanes differ only in what they send and get back (a decoded
// mcp.CallToolResult, or bytes) and in how they answer a failure.

// plan is one call of one integration's tool for one tenant.
type plan struct {
	g      *Gateway
	tenant string
	in     tools.Integration
	creds  credentials
	cred   vault.Credential // the credential of the connection; set by connect
}

// newPlan starts the plan of a call of integration for the tenant of ctx.
func (g *Gateway) newPlan(ctx context.Context, integration string) (*plan, error) {
	id, ok := tenants.FromContext(ctx)
	if !ok {
		return nil, errNoIdentity
	}
	in, ok := g.reg.Get(integration)
	if !ok {
		return nil, fmt.Errorf("unknown integration %q", integration)
	}
	return &plan{g: g, tenant: id.Tenant, in: in, creds: credentials{g: g, tenant: id.Tenant, integration: integration}}, nil
}

// connect returns the tenant's connection, started with its credential
// (refreshed first when it has expired). A credential that needs a new
// link is errNeedsLink; a refresh that failed is a *refreshFailed.
func (p *plan) connect(ctx context.Context) (*tools.Conn, error) {
	cred, err := p.creds.Credential(ctx)
	if err != nil {
		return nil, err
	}
	return p.connectWith(ctx, cred)
}

// connectWith returns the tenant's connection started with cred, which
// becomes the credential the plan's call is made with.
func (p *plan) connectWith(ctx context.Context, cred vault.Credential) (*tools.Conn, error) {
	p.cred = cred
	conn, err := p.g.upstreams.Conn(p.g.withStdioLimit(ctx, p.tenant, p.in), p.tenant, p.in, templateVars(cred))
	return conn, stdioRefusal(err) // limits.go
}

// run makes the plan's call on conn with do. When refused says the
// upstream refused the token, and the credential can be renewed, it is
// renewed and do runs once more, on a connection started with the fresh
// credential; a credential that only a new link can renew is
// errNeedsLink. A renewal that fails otherwise leaves the refusal as the
// answer. The upstream's time of the first attempt is measured.
func run[R any](ctx context.Context, p *plan, conn *tools.Conn, do func(context.Context, *tools.Conn) (R, error), refused func(R, error) bool) (R, error) {
	start := time.Now()
	res, err := do(ctx, conn)
	p.g.metrics.Upstream(p.in.Name, transportOf(conn), time.Since(start))
	p.g.backoff(p.tenant, p.in.Name, conn) // limits.go
	if ctx.Err() != nil || !p.creds.renewable(p.cred) || !refused(res, err) {
		return res, upstreamRefusal(p.in.Name, conn, err)
	}
	fresh, rerr := p.creds.Renew(ctx, p.cred)
	switch {
	case errors.Is(rerr, errNeedsLink):
		var none R
		return none, rerr
	case rerr != nil:
		return res, err
	}
	if conn, err = p.connectWith(ctx, fresh); err != nil {
		return res, err
	}
	return do(ctx, conn)
}

// expirySkew is how long before its stated expiry a token counts as
// expired: a call must not start with a token that dies on the way.
const expirySkew = 30 * time.Second

// expiring reports whether c's token has expired or is about to.
func expiring(c vault.Credential) bool {
	return !c.ExpiresAt.IsZero() && time.Now().After(c.ExpiresAt.Add(-expirySkew))
}

// credentials is the source of one tenant's credential for one
// integration, in the spirit of oauth2.TokenSource: Credential hands out
// the credential to call with, refreshed first when it has expired, and
// Renew one in place of a token the upstream refused.
type credentials struct {
	g                   *Gateway
	tenant, integration string
}

// stored returns the credential as the store holds it (through the
// request's memo) and its version, refreshed or not.
func (s credentials) stored(ctx context.Context) (vault.Credential, int64, error) {
	return s.g.storeGet(ctx, s.tenant, s.integration)
}

// Credential returns the credential to call with, refreshed first when it
// has expired. A credential that needs a new link is errNeedsLink; a
// refresh that failed is a *refreshFailed.
//
// Only a call whose token has expired (or is about to) waits for a
// refresh, and the refresher bounds that wait; a token that is still
// valid is used while a refresh of it is under way or failing.
func (s credentials) Credential(ctx context.Context) (vault.Credential, error) {
	cred, _, err := s.stored(ctx)
	if err != nil {
		return cred, err
	}
	if cred.Status == vault.StatusNeedsReauth {
		return cred, errNeedsLink
	}
	if s.g.refresher == nil || !expiring(cred) {
		return cred, nil
	}
	forget(ctx, s.tenant, s.integration)
	fresh, err := s.g.refresher.Refresh(ctx, s.tenant, s.integration, cred.AccessToken)
	switch {
	case errors.Is(err, oauth.ErrNeedsReauth):
		return cred, errNeedsLink
	case err != nil && ctx.Err() != nil:
		return cred, err
	case err != nil:
		// The details (the provider's address, its answer) are for
		// operators; the tenant is told what failed.
		s.g.log.WarnContext(ctx, "refresh_before_call_failed", "tenantId", s.tenant, "integration", s.integration, "error", err)
		if time.Now().Before(cred.ExpiresAt) {
			// Close to expiry, not past it: better the token we have
			// than none.
			return cred, nil
		}
		return cred, newRefreshFailed(s.integration, err)
	}
	return fresh, nil
}

// renewable reports whether c can be renewed after the upstream refused
// it: there is a refresher, and c has a refresh token.
func (s credentials) renewable(c vault.Credential) bool {
	return s.g.refresher != nil && c.RefreshToken != ""
}

// errNotRenewable is Renew's answer for a credential that is not renewable.
var errNotRenewable = errors.New("the credential cannot be renewed")

// Renew returns a fresh credential in place of stale, whose token the
// upstream refused. It is errNeedsLink when only a new link can help, and
// the refresher's error when the refresh failed otherwise.
func (s credentials) Renew(ctx context.Context, stale vault.Credential) (vault.Credential, error) {
	if !s.renewable(stale) {
		return stale, errNotRenewable
	}
	s.g.log.InfoContext(ctx, "upstream_refused_token", "tenantId", s.tenant, "integration", s.integration)
	forget(ctx, s.tenant, s.integration)
	fresh, err := s.g.refresher.Refresh(ctx, s.tenant, s.integration, stale.AccessToken)
	switch {
	case errors.Is(err, oauth.ErrNeedsReauth):
		return stale, errNeedsLink
	case err != nil:
		s.g.log.WarnContext(ctx, "refresh_after_401_failed", "tenantId", s.tenant, "integration", s.integration, "error", err)
		return stale, err
	}
	return fresh, nil
}

// templateVars are the values an integration's env and header templates
// may name.
func templateVars(c vault.Credential) map[string]string {
	vars := map[string]string{
		tools.VarAccessToken:  c.AccessToken,
		tools.VarRefreshToken: c.RefreshToken,
		tools.VarTokenType:    c.TokenType,
	}
	for k, v := range c.Extra {
		vars["extra."+k] = v
	}
	return vars
}

// refused reports whether an upstream call failed because the upstream
// refused the tenant's token: HTTP 401 from a streamable-HTTP upstream, or
// a stdio upstream's tool error reporting its API's 401 (the Notion MCP
// server answers {"status":401,"code":"unauthorized",...}).
func refused(res *mcp.CallToolResult, err error) bool {
	if err != nil {
		return errors.Is(err, mcptransport.ErrAuthorizationRequired)
	}
	if res == nil {
		return false
	}
	for _, c := range res.Content {
		text, ok := c.(mcp.TextContent)
		if !ok {
			continue
		}
		compact := strings.Join(strings.Fields(text.Text), "")
		// The Notion MCP server hands Notion's error object back as an
		// ordinary result: {"object":"error","status":401,...}.
		if strings.Contains(compact, `"status":401`) && strings.Contains(compact, `"object":"error"`) {
			return true
		}
		if res.IsError && (strings.Contains(compact, `"status":401`) || strings.Contains(text.Text, "401 Unauthorized") ||
			strings.Contains(compact, `"code":"unauthorized"`)) {
			return true
		}
	}
	return false
}

// transportOf is the metrics label of a connection's transport.
func transportOf(conn *tools.Conn) string {
	if conn.Stdio() {
		return metrics.TransportStdio
	}
	return metrics.TransportHTTP
}
