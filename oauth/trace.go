package oauth

import (
	"context"

	"go.opentelemetry.io/otel/attribute"

	"github.com/connectors-gateway/connectors/telemetry"
	"github.com/connectors-gateway/connectors/vault"
)

// tracedRefresh is refresh under a span of its own, "oauth refresh", the
// store's reads and writes and the provider's token request its children,
// when tracing is on.
func (r *Refresher) tracedRefresh(ctx, parent context.Context, a attempt) (vault.Credential, error) {
	if !telemetry.On() {
		return r.refresh(ctx, parent, a)
	}
	ctx, span := telemetry.Start(ctx, "oauth refresh",
		attribute.String("connectors.tenant", a.key.tenant), attribute.String("connectors.integration", a.key.integration))
	cred, err := r.refresh(ctx, parent, a)
	telemetry.End(span, err)
	return cred, err
}
