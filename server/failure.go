package server

import (
	"context"
	"errors"
	"net"
	"regexp"
	"strconv"

	"github.com/connectors-gateway/connectors/oauth"
	"github.com/connectors-gateway/connectors/tenants"
	"github.com/connectors-gateway/connectors/tools"
)

// Errors say what failed, not where: an answer names the integration and
// the kind of failure; addresses, URLs and paths go to the log. The
// upstream's failures are classified in tools (tools.UpstreamError);
// refresh failures here, since their errors come from the provider's HTTP
// client through oauth.

// refreshFailure is a token that expired and could not be refreshed, as
// the agent is told it; err (logged) has the token endpoint's details.
type refreshFailure struct {
	integration string
	err         error
}

var codeRE = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,64}$`)

func (e *refreshFailure) Error() string {
	msg := "the " + e.integration + " token expired and could not be refreshed: "
	var tokErr *oauth.TokenError
	var dns *net.DNSError
	var opErr *net.OpError
	var netErr net.Error
	switch {
	case errors.As(e.err, &tokErr):
		verb := "the provider refused the refresh"
		if tokErr.Status >= 500 || tokErr.Code == "" {
			verb = "the provider's token endpoint failed"
		}
		msg += verb + " (HTTP " + strconv.Itoa(tokErr.Status)
		if codeRE.MatchString(tokErr.Code) {
			msg += " " + tokErr.Code
		}
		msg += ")"
	case storeFailure(e.err):
		msg += "the credential store failed (VaultError)"
	case errors.As(e.err, &dns), errors.As(e.err, &opErr) && opErr.Op == "dial":
		msg += "the provider's token endpoint is unreachable"
	case errors.Is(e.err, context.DeadlineExceeded), errors.As(e.err, &netErr) && netErr.Timeout():
		msg += "the provider's token endpoint timed out"
	default:
		msg += "the provider's token endpoint failed"
	}
	return msg + "; retry later"
}

func (e *refreshFailure) Unwrap() error { return e.err }

// agentText is what the agent is told of err, a failure to call
// integration: the text of an error that says what failed and not where
// (tools.Public, a refresh failure, the gateway's own), else a generic
// one. err, with its details, goes to the log.
func (g *Gateway) agentText(ctx context.Context, integration string, err error) string {
	id, _ := tenants.FromContext(ctx)
	var rf *refreshFailure
	switch {
	case errors.As(err, &rf):
		g.log.WarnContext(ctx, "token_refresh_failed_on_call", "tenantId", id.Tenant, "integration", integration, "reason", rf.Error(), "error", rf.err)
		return rf.Error()
	case tools.Public(err), errors.Is(err, errNoIdentity):
		return err.Error() // the tools package logged the details
	}
	g.log.WarnContext(ctx, "upstream_error_withheld", "tenantId", id.Tenant, "integration", integration, "error", err)
	return "integration " + integration + " failed; the gateway's log has the details"
}
