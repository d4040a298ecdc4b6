package server

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/connectors-gateway/connectors/limits"
	"github.com/connectors-gateway/connectors/tenants"
	"github.com/connectors-gateway/connectors/vault"
)

// SettingsStore keeps each tenant's settings record (tenants.Settings).
type SettingsStore interface {
	GetTenantSettings(ctx context.Context, tenant string) ([]byte, int64, error)
}

// settingsTTL bounds how long a tenant's settings are served from memory:
// how long another replica's change can go unseen here. A change made
// through this gateway is seen at once (InvalidateSettings).
const settingsTTL = 5 * time.Second

// settingsCache holds tenants' settings for settingsTTL.
type settingsCache struct {
	mu      sync.Mutex
	entries map[string]settingsEntry // guarded by mu
}

type settingsEntry struct {
	s       tenants.Settings
	limits  *limits.Override // s.Limits, read once
	fetched time.Time
}

// settings returns tenant's settings. A store that cannot be read serves
// the last settings it answered, however old (an outage must not turn an
// integration back on); with none in memory it is an error, never the
// zero Settings, which would allow everything: the caller fails closed.
func (g *Gateway) settings(ctx context.Context, tenant string) (tenants.Settings, error) {
	e, err := g.settingsEntry(ctx, tenant)
	return e.s, err
}

// settingsEntry is settings with the tenant's limits.
func (g *Gateway) settingsEntry(ctx context.Context, tenant string) (settingsEntry, error) {
	if g.settingsStore == nil {
		return settingsEntry{}, nil
	}
	c := &g.settingsCache
	c.mu.Lock()
	e, ok := c.entries[tenant]
	c.mu.Unlock()
	if ok && time.Since(e.fetched) < settingsTTL {
		return e, nil
	}
	rec, _, err := g.settingsStore.GetTenantSettings(ctx, tenant)
	var s tenants.Settings
	var lim *limits.Override
	if err == nil {
		s, err = tenants.ParseSettings(rec)
	}
	if err == nil {
		lim, err = limits.ParseOverride(s.Limits)
	}
	if err != nil {
		if ok {
			g.log.WarnContext(ctx, "tenant_settings_unreadable", "tenantId", tenant, "stale", true, "error", err)
			return e, nil
		}
		g.log.ErrorContext(ctx, "tenant_settings_unreadable", "tenantId", tenant, "stale", false, "error", err)
		if !storeFailure(err) && ctx.Err() == nil { // a record that does not parse, say
			err = &vault.VaultError{Err: fmt.Errorf("tenant settings: %w", err)}
		}
		return settingsEntry{}, &unavailableError{what: whatSettings, err: err}
	}
	c.mu.Lock()
	if c.entries == nil {
		c.entries = map[string]settingsEntry{}
	}
	if len(c.entries) > 100_000 {
		clear(c.entries) // bounded: a cold read per tenant after
	}
	e = settingsEntry{s: s, limits: lim, fetched: time.Now()}
	c.entries[tenant] = e
	c.mu.Unlock()
	return e, nil
}

// InvalidateSettings drops tenant's cached settings (after this gateway
// changed them) and tells its sessions that their tools changed.
func (g *Gateway) InvalidateSettings(tenant string) {
	g.settingsCache.mu.Lock()
	delete(g.settingsCache.entries, tenant)
	g.settingsCache.mu.Unlock()
	g.NotifyToolsChanged(tenant)
}
