package server

import (
	"context"
	"errors"

	"github.com/connectors-gateway/connectors/tenants"
	"github.com/connectors-gateway/connectors/tools"
)

// Errors say what failed, not where: an answer names the integration and
// the kind of failure; addresses, URLs and paths go to the log. The
// upstream's failures are classified in tools (tools.UpstreamError), a
// refresh's in oauth (oauth.RefreshError, refreshfailed.go).

// agentText is what the agent is told of err, a failure to call
// integration: the text of an error that says what failed and not where
// (tools.Public, a refresh failure, the gateway's own), else a generic
// one. err, with its details, goes to the log.
func (g *Gateway) agentText(ctx context.Context, integration string, err error) string {
	id, _ := tenants.FromContext(ctx)
	switch rf, ok := errors.AsType[*refreshFailed](err); {
	case ok:
		g.log.WarnContext(ctx, "token_refresh_failed_on_call", "tenantId", id.Tenant, "integration", integration, "reason", rf.Error(), "error", rf.cause)
		return rf.Error()
	case tools.Public(err), errors.Is(err, errNoIdentity), errors.As(err, new(*roundError)), isRefusal(err):
		return err.Error() // the tools package logged the details
	}
	g.log.WarnContext(ctx, "upstream_error_withheld", "tenantId", id.Tenant, "integration", integration, "error", err)
	return "integration " + integration + " failed; the gateway's log has the details"
}
