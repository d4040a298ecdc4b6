package server

import (
	"context"
	"sync"
	"time"

	"github.com/connectors-gateway/connectors/tenants"
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
	fetched time.Time
}

// settings returns tenant's settings. A store that cannot be read denies
// nothing it did not deny before: the last known settings, else none.
func (g *Gateway) settings(ctx context.Context, tenant string) tenants.Settings {
	if g.settingsStore == nil {
		return tenants.Settings{}
	}
	c := &g.settingsCache
	c.mu.Lock()
	e, ok := c.entries[tenant]
	c.mu.Unlock()
	if ok && time.Since(e.fetched) < settingsTTL {
		return e.s
	}
	rec, _, err := g.settingsStore.GetTenantSettings(ctx, tenant)
	var s tenants.Settings
	if err == nil {
		s, err = tenants.ParseSettings(rec)
	}
	if err != nil {
		g.log.WarnContext(ctx, "tenant_settings_unreadable", "tenant_id", tenant, "error", err)
		return e.s
	}
	c.mu.Lock()
	if c.entries == nil {
		c.entries = map[string]settingsEntry{}
	}
	if len(c.entries) > 100_000 {
		clear(c.entries) // bounded: a cold read per tenant after
	}
	c.entries[tenant] = settingsEntry{s: s, fetched: time.Now()}
	c.mu.Unlock()
	return s
}

// InvalidateSettings drops tenant's cached settings (after this gateway
// changed them) and tells its sessions that their tools changed.
func (g *Gateway) InvalidateSettings(tenant string) {
	g.settingsCache.mu.Lock()
	delete(g.settingsCache.entries, tenant)
	g.settingsCache.mu.Unlock()
	g.NotifyToolsChanged(tenant)
}
