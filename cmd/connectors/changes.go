package main

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"sync/atomic"
	"time"

	"github.com/mark3labs/mcp-go/mcp"

	"github.com/connectors-gateway/connectors/audit"
	"github.com/connectors-gateway/connectors/cluster"
	"github.com/connectors-gateway/connectors/limits"
	"github.com/connectors-gateway/connectors/oauth"
	"github.com/connectors-gateway/connectors/server"
	"github.com/connectors-gateway/connectors/tenants"
	"github.com/connectors-gateway/connectors/tools"
	"github.com/connectors-gateway/connectors/transport"
	"github.com/connectors-gateway/connectors/vault"
)

// credentialChanges is what the gateway does when a tenant's credential
// changes, wherever the change comes from: a link through the OAuth flow
// (Linked), the credential routes storing or deleting one (Changed,
// Revoke), the start of serve finding those already stored
// (ScheduleStored). It schedules or forgets the credential's refresh,
// tells the tenant's sessions that their tool list changed, revokes a
// deleted credential at its provider, records links and revocations in
// the audit trail, and tells the other replicas, if any (peers), which do
// the same minus the provider and the audit trail (replicaChanges).
//
// refresher and flow are nil when no OAuth provider is configured: then a
// change only reaches the sessions.
type credentialChanges struct {
	refresher *oauth.Refresher
	flow      *oauth.Flow
	sessions  toolsNotifier
	trail     *audit.Logger
	peers     peers
	health    *sharedHealth // with the refresher: its news, shared (shared.go)
}

// toolsNotifier tells a tenant's MCP sessions that their tool list
// changed; *server.Gateway is one (through sessionRelay).
type toolsNotifier interface {
	NotifyToolsChanged(tenant string)
}

// Linked is the link flow's OnLinked: the tenant linked integration and
// cred is stored.
func (c *credentialChanges) Linked(tenant, integration string, cred vault.Credential) {
	c.trail.Record(context.Background(), audit.Record{TenantID: tenant, Integration: integration, Operation: audit.OpLink, Success: true})
	c.refresher.Schedule(tenant, integration, cred)
	c.health.changed(tenant, integration, &cred)
	c.sessions.NotifyToolsChanged(tenant)
	c.peers.tell(cluster.Change{Kind: cluster.KindCredential, Tenant: tenant, Integration: integration})
}

// Changed is the credential routes' Changed: cred was stored, or (nil)
// the credential was deleted.
func (c *credentialChanges) Changed(tenant, integration string, cred *vault.Credential) {
	if c.refresher != nil {
		if cred != nil {
			c.refresher.Schedule(tenant, integration, *cred)
		} else {
			c.refresher.MarkRevoked(tenant, integration)
		}
		c.health.changed(tenant, integration, cred)
	}
	c.sessions.NotifyToolsChanged(tenant)
	c.peers.tell(cluster.Change{Kind: cluster.KindCredential, Tenant: tenant, Integration: integration})
}

// settingsChanged is the credential routes' SettingsChanged: the gateway
// reads the tenant's settings again and tells its sessions, and so do the
// other replicas.
func (c *credentialChanges) settingsChanged(g *server.Gateway) func(tenant string) {
	return func(tenant string) {
		g.InvalidateSettings(tenant)
		c.peers.tell(cluster.Change{Kind: cluster.KindSettings, Tenant: tenant})
	}
}

// rotateKey is the credential routes' RotateKey: st rotates the tenant's
// key, and the other replicas drop their cached credentials of the tenant
// (told even when the rotation failed part way: some records may have
// been rewrapped, and a needless cache miss costs only a read).
func (c *credentialChanges) rotateKey(st vault.Backend) func(ctx context.Context, tenant string) error {
	return func(ctx context.Context, tenant string) error {
		err := st.RotateTenantKey(ctx, tenant)
		if vault.ValidateTenant(tenant) == nil {
			c.peers.tell(cluster.Change{Kind: cluster.KindKeyRotated, Tenant: tenant})
		}
		return err
	}
}

// Revoke is the credential routes' Revoke: it revokes cred at
// integration's provider, when the provider can, and records the attempt.
// It needs the link flow (c.flow not nil).
func (c *credentialChanges) Revoke(ctx context.Context, tenant, integration string, cred vault.Credential) (bool, error) {
	p, ok := c.flow.Provider(integration)
	if !ok {
		return false, nil
	}
	start := time.Now()
	err := p.Revoke(ctx, cred)
	if errors.Is(err, oauth.ErrRevokeUnsupported) {
		return false, nil
	}
	c.trail.Record(ctx, audit.Record{TenantID: tenant, Integration: integration, Operation: audit.OpRevoke,
		Duration: time.Since(start), Success: err == nil, Err: err})
	return err == nil, err
}

// ScheduleStored schedules the refresh of every stored credential of the
// linkable integrations; serve runs it in the background, so that serving
// does not wait for a scan of the store. It needs the link flow.
func (c *credentialChanges) ScheduleStored(ctx context.Context, st vault.Store, log *slog.Logger) {
	integrations := c.flow.Integrations()
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
			c.refresher.ScheduleFound(tenant, integration, cred) // another replica may have just refreshed it
			n++
		}
	}
	log.Info("refresh_schedule_loaded", "credentials", n, "tenants", len(ids))
}

// linker is the link flow as the gateway offers it, or nil without one.
func (c *credentialChanges) linker() (server.Linker, server.Refresher) {
	if c.flow == nil {
		return nil, nil
	}
	return flowLinker{c.flow}, c.refresher
}

// sessionRelay carries to the gateway's MCP sessions what the parts built
// before it must tell them: an upstream's notifications (the pool's) and a
// tenant's tool list changing (credentialChanges'). The gateway is built
// from those parts, so it cannot be given to them: the relay is built
// first, given to them, and bound to the gateway once, right after
// server.New and before serving starts. Nothing can be relayed before:
// upstream connections and credential changes come from serving.
type sessionRelay struct {
	g atomic.Pointer[server.Gateway]
}

// bind makes g the relay's gateway.
func (r *sessionRelay) bind(g *server.Gateway) { r.g.Store(g) }

// NotifyToolsChanged implements toolsNotifier.
func (r *sessionRelay) NotifyToolsChanged(tenant string) {
	if g := r.g.Load(); g != nil {
		g.NotifyToolsChanged(tenant)
	}
}

// InvalidateSettings makes the gateway read tenant's settings again and
// tells its sessions (another replica changed them).
func (r *sessionRelay) InvalidateSettings(tenant string) {
	if g := r.g.Load(); g != nil {
		g.InvalidateSettings(tenant)
	}
}

// UpstreamNotification is the pool's OnNotification.
func (r *sessionRelay) UpstreamNotification(tenant, integration string, n mcp.JSONRPCNotification) {
	if g := r.g.Load(); g != nil {
		g.UpstreamNotification(tenant, integration, n)
	}
}

// credentialChanges builds the OAuth parts for the registry's integrations
// whose client is configured (providers, the refresher, the link flow)
// and the credentialChanges they report to; without any, it returns the
// credentialChanges that only notify sessions.
func (m *Main) credentialChanges(cfg Config, base string, reg *tools.Registry, st vault.Backend, sessions toolsNotifier, log *slog.Logger) (*credentialChanges, error) {
	c := &credentialChanges{sessions: sessions, trail: m.audit}
	c.peers.log = log
	providers, callbacks, err := m.providers(reg, base, log)
	if err != nil || len(providers) == 0 {
		return c, err
	}
	refreshers := map[string]oauth.TokenRefresher{}
	for name, p := range providers {
		refreshers[name] = p
	}
	c.health = newSharedHealth(st, log)
	c.refresher = oauth.NewRefresher(oauth.RefresherOptions{
		Store: st, Providers: refreshers, Logger: log,
		Margin: cfg.Refresh.Margin, Jitter: cfg.Refresh.Jitter,
		MinBackoff: cfg.Refresh.MinBackoff, MaxBackoff: cfg.Refresh.MaxBackoff,
		Workers: cfg.Refresh.Workers, MaxFailures: cfg.Refresh.MaxFailures,
		RefreshTimeout: cfg.Refresh.Timeout,
		OnRefreshed:    func(tenant, integration string, cred vault.Credential) { c.health.changed(tenant, integration, &cred) },
		OnAttempt: func(tenant, integration string, d time.Duration, err error) {
			m.refreshed(tenant, integration, d, err)
			c.health.attempted(tenant, integration, err)
			if err == nil {
				c.peers.tell(cluster.Change{Kind: cluster.KindRefreshed, Tenant: tenant, Integration: integration})
			}
		},
	})
	c.health.refresher = c.refresher
	if c.flow, err = m.linkFlow(cfg, base, st, providers, callbacks, c.Linked, log); err != nil {
		return nil, err
	}
	return c, nil
}

// refreshed records one refresh attempt in the audit trail, the metrics
// and the tenant's usage: the refresher's OnAttempt.
func (m *Main) refreshed(tenant, integration string, d time.Duration, err error) {
	m.audit.Record(context.Background(), audit.Record{
		TenantID: tenant, Integration: integration, Operation: audit.OpRefresh,
		Duration: d, Success: err == nil, Err: err,
	})
	m.metrics.Refresh(integration, err)
	m.usage.Refresh(tenant, integration, err == nil)
}

// credentialRoutes wires the credential routes to the store, the
// gateway's settings cache, the credential changes (refresh schedule
// and health, sessions, revocation at the provider), for off-boarding
// the API keys this replica verifies, and the limiter of the tenants'
// limits.
func credentialRoutes(st vault.Backend, reg *tools.Registry, g *server.Gateway, changes *credentialChanges, keys *tenants.APIKeys, lim *limits.Limiter) *transport.Credentials {
	c := &transport.Credentials{
		Limits:          lim,
		Store:           st,
		Registry:        routeRegistry{reg},
		Settings:        st,
		SettingsChanged: changes.settingsChanged(g),
		RotateKey:       changes.rotateKey(st),
		Offboard:        changes.offboard(st, keys, g),
		Changed:         changes.Changed,
	}
	if changes.health != nil {
		c.Health = changes.health.Health
	}
	if changes.flow != nil {
		c.Revoke = changes.Revoke
	}
	return c
}
