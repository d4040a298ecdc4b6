package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/connectors-gateway/connectors/tenants"
	"github.com/connectors-gateway/connectors/tools"
	"github.com/connectors-gateway/connectors/vault"
)

// syncTenantConfig loads the tenant config file (the seed's "Option B") and
// syncs it into the store; any mistake in it stops the start.
func syncTenantConfig(ctx context.Context, cfg Config, st tenantConfigStore, reg *tools.Registry, log *slog.Logger) error {
	tc, err := loadTenantConfig(cfg, reg)
	if err != nil {
		return err
	}
	written, err := tc.Sync(ctx, storeSink{st})
	if err != nil {
		return err
	}
	started, err := startTenantSettings(ctx, st, tc, reg)
	if err != nil {
		return err
	}
	log.Info("tenant_config_synced", "path", cfg.TenantConfigPath, "tenants", len(tc.Tenants), "credentials_written", written, "settings_created", started)
	return nil
}

// tenantConfigStore is what the tenant config file's sync needs of the
// store: its credentials read and written, its tenants' settings started.
type tenantConfigStore interface {
	Get(ctx context.Context, tenant, integration string) (vault.Credential, int64, error)
	Put(ctx context.Context, tenant, integration string, cred vault.Credential, version int64) (int64, error)
	vault.Settings
}

// loadTenantConfig loads the tenant config file, checking its
// integrations against reg.
func loadTenantConfig(cfg Config, reg *tools.Registry) (*tenants.Config, error) {
	return tenants.LoadConfig(cfg.TenantConfigPath, &tenants.ConfigOptions{
		KVMount: cfg.kvMount(), // doctorstore.go
		CheckIntegration: func(name string) error {
			if err := vault.ValidateIntegration(name); err != nil {
				return err
			}
			if _, ok := reg.Get(name); !ok {
				return fmt.Errorf("unknown integration %q (not in the registry)", name)
			}
			return nil
		},
	})
}

// startTenantSettings gives each tenant of the file that has no settings
// yet the integrations the file lists, and no other: the file is where
// such a tenant starts, an admin's later changes (PUT and DELETE
// /tenants/{tenantId}/integrations/{integration}) are kept over restarts.
func startTenantSettings(ctx context.Context, st vault.Settings, tc *tenants.Config, reg *tools.Registry) (int, error) {
	n := 0
	for _, t := range tc.Tenants {
		_, version, err := st.GetTenantSettings(ctx, t.ID)
		if err != nil {
			return n, err
		}
		if version != 0 {
			continue
		}
		listed := map[string]bool{}
		for _, in := range t.Integrations {
			listed[in.Name] = true
		}
		var s tenants.Settings
		for _, in := range reg.All() {
			if !listed[in.Name] {
				s.Set(in.Name, false, nil)
			}
		}
		if _, err := st.PutTenantSettings(ctx, t.ID, s.Marshal(), 0); err != nil && !errors.Is(err, vault.ErrSettingsChanged) {
			return n, err
		}
		n++
	}
	return n, nil
}

// storeSink is the store as the tenant config file's sync needs it.
type storeSink struct{ st tenantConfigStore }

func (s storeSink) Resolve(ctx context.Context, tenant, integration, field string) (string, error) {
	c, _, err := s.st.Get(ctx, tenant, integration)
	if err != nil {
		return "", err
	}
	v := map[string]string{"access_token": c.AccessToken, "refresh_token": c.RefreshToken, "token_type": c.TokenType}[field]
	if field == "expires_at" && !c.ExpiresAt.IsZero() {
		v = c.ExpiresAt.UTC().Format(time.RFC3339)
	}
	if v == "" {
		return "", fmt.Errorf("the record %s/%s has no %s", tenant, integration, field)
	}
	return v, nil
}

// Store keeps the record's scopes, extras and created_at.
func (s storeSink) Store(ctx context.Context, tenant, integration string, lit tenants.LiteralCredential) (bool, error) {
	c, _, err := s.st.Get(ctx, tenant, integration)
	if err != nil && !vault.IsNotFound(err) {
		return false, err
	}
	if err == nil && c.AccessToken == lit.AccessToken && c.RefreshToken == lit.RefreshToken &&
		c.TokenType == lit.TokenType && c.ExpiresAt.Equal(lit.ExpiresAt) {
		return false, nil
	}
	c.AccessToken, c.RefreshToken, c.TokenType, c.ExpiresAt = lit.AccessToken, lit.RefreshToken, lit.TokenType, lit.ExpiresAt
	c.UpdatedAt = time.Time{}
	_, err = s.st.Put(ctx, tenant, integration, c, vault.AnyVersion)
	return err == nil, err
}
