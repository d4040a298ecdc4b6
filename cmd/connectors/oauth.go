package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/connectors-gateway/connectors/audit"
	"github.com/connectors-gateway/connectors/oauth"
	"github.com/connectors-gateway/connectors/server"
	"github.com/connectors-gateway/connectors/tenants"
	"github.com/connectors-gateway/connectors/tools"
	"github.com/connectors-gateway/connectors/transport"
	"github.com/connectors-gateway/connectors/vault"
)

// envPrefix is an integration's prefix for its OAuth client variables:
// notion → NOTION, my-crm → MY_CRM (NOTION_CLIENT_ID, MY_CRM_CLIENT_SECRET).
func envPrefix(integration string) string {
	return strings.ToUpper(strings.ReplaceAll(integration, "-", "_"))
}

// providers builds the OAuth clients of the integrations that have an OAuth
// provider and whose {PREFIX}_CLIENT_ID is set, and the gateway callback
// URL each uses: {PREFIX}_REDIRECT_URI, else {base}/oauth/callback/{name}.
func (m *Main) providers(reg *tools.Registry, base string, log *slog.Logger) (map[string]*oauth.Provider, map[string]string, error) {
	providers := map[string]*oauth.Provider{}
	callbacks := map[string]string{}
	for _, in := range reg.All() {
		if in.OAuth == nil {
			continue
		}
		prefix := envPrefix(in.Name)
		id := m.Getenv(prefix + "_CLIENT_ID")
		if id == "" {
			continue
		}
		secret := m.Getenv(prefix + "_CLIENT_SECRET")
		if secret == "" {
			return nil, nil, fmt.Errorf("%s_CLIENT_ID is set: %s_CLIENT_SECRET is needed too", prefix, prefix)
		}
		callback := m.Getenv(prefix + "_REDIRECT_URI")
		if callback == "" {
			callback = base + "/oauth/callback/" + in.Name
		}
		if u, err := url.Parse(callback); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			return nil, nil, fmt.Errorf("%s_REDIRECT_URI: %q is not an absolute http(s) URL", prefix, callback)
		}
		o := in.OAuth
		providers[in.Name] = &oauth.Provider{
			Integration:  in.Name,
			Kind:         o.Kind,
			ClientID:     id,
			ClientSecret: secret,
			AuthorizeURL: o.AuthorizeURL,
			TokenURL:     o.TokenURL,
			RevokeURL:    o.RevokeURL,
			Scopes:       o.Scopes,
			AuthStyle:    o.AuthStyle,
			PKCE:         o.UsesPKCE(),
		}
		callbacks[in.Name] = callback
		log.Info("oauth_provider", "integration", in.Name, "callback", callback)
	}
	return providers, callbacks, nil
}

// redirectURIs checks the allowlist of places tenants may be sent back to
// after linking (CONNECTORS_OAUTH_REDIRECT_URIS): absolute http(s) URLs
// without userinfo or fragment, compared exactly.
func redirectURIs(list []string) error {
	for _, v := range list {
		u, err := url.Parse(v)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.User != nil || u.Fragment != "" {
			return fmt.Errorf("CONNECTORS_OAUTH_REDIRECT_URIS: %q is not an absolute http(s) URL without userinfo or fragment", v)
		}
	}
	return nil
}

// flowLinker offers the link flow to the MCP gateway: the gateway's
// consent page for the calling tenant (never the provider's URL, whose
// approval anyone could otherwise bring back into this tenant).
type flowLinker struct{ flow *oauth.Flow }

func (l flowLinker) CanLink(integration string) bool {
	_, ok := l.flow.Provider(integration)
	return ok
}

func (l flowLinker) LinkURL(ctx context.Context, integration string) (string, bool, error) {
	id, ok := tenants.FromContext(ctx)
	if !ok || !l.CanLink(integration) {
		return "", false, nil
	}
	link, err := l.flow.Begin(ctx, id, id.Tenant, integration, "")
	return link.URL, err == nil, err
}

// scheduleStored schedules the refresh of every stored credential of the
// linkable integrations, in the background: serving does not wait for a
// scan of the store.
func scheduleStored(ctx context.Context, st store, r *oauth.Refresher, integrations []string, log *slog.Logger) {
	ids, err := st.Tenants(ctx)
	if err != nil {
		log.Warn("refresh_schedule_scan_failed", "error", err)
		return
	}
	n := 0
	for _, tenant := range ids {
		held, err := st.Integrations(ctx, tenant)
		if err != nil {
			continue
		}
		for _, integration := range held {
			if ctx.Err() != nil {
				return
			}
			if !slices.Contains(integrations, integration) {
				continue
			}
			cred, _, err := st.Get(ctx, tenant, integration)
			if err != nil {
				continue
			}
			r.Schedule(tenant, integration, cred)
			n++
		}
	}
	log.Info("refresh_schedule_loaded", "credentials", n, "tenants", len(ids))
}

// credentialRoutes wires the credential routes to the store, the
// refresher (schedule, forget, health) and the providers (revocation).
// flow and refresher are nil when no OAuth provider is configured.
func credentialRoutes(st store, reg *tools.Registry, flow *oauth.Flow, refresher *oauth.Refresher, g *server.Gateway, trail *audit.Logger) *transport.Credentials {
	c := &transport.Credentials{
		Store:           st,
		Registry:        routeRegistry{reg},
		Settings:        st,
		SettingsChanged: g.InvalidateSettings,
		RotateKey:       st.RotateTenantKey,
		Changed: func(tenant, integration string, cred *vault.Credential) {
			if refresher != nil {
				if cred != nil {
					refresher.Schedule(tenant, integration, *cred)
				} else {
					refresher.MarkRevoked(tenant, integration)
				}
			}
			g.NotifyToolsChanged(tenant)
		},
	}
	if refresher != nil {
		c.Health = refresher.Health
	}
	if flow != nil {
		c.Revoke = func(ctx context.Context, tenant, integration string, cred vault.Credential) (bool, error) {
			p, ok := flow.Provider(integration)
			if !ok {
				return false, nil
			}
			start := time.Now()
			err := p.Revoke(ctx, cred)
			if errors.Is(err, oauth.ErrRevokeUnsupported) {
				return false, nil
			}
			trail.Record(ctx, audit.Record{TenantID: tenant, Integration: integration, Operation: audit.OpRevoke,
				Duration: time.Since(start), Success: err == nil, Err: err})
			return err == nil, err
		}
	}
	return c
}
