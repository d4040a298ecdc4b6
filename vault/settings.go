package vault

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"

	bolt "go.etcd.io/bbolt"

	"github.com/connectors-gateway/connectors/tenants"
)

// Tenant settings are one opaque record per tenant (which integrations it
// may use, narrowed to which tools): the format belongs to the caller, the
// store keeps it with a version for check-and-set, like a credential. It
// holds no secret.

// ErrSettingsChanged is a lost check-and-set on a tenant's settings.
var ErrSettingsChanged = errors.New("tenant settings changed concurrently: retry")

// settingsDir is the KV v2 folder of tenant settings; its leading '_'
// keeps it out of the tenant-ID grammar.
const settingsDir = "_settings"

// GetTenantSettings returns tenant's settings record and its version; a
// tenant without one gets nil and version 0.
func (e *Embedded) GetTenantSettings(ctx context.Context, tenant string) ([]byte, int64, error) {
	if err := tenants.ValidateID(tenant); err != nil {
		return nil, 0, err
	}
	if err := ctx.Err(); err != nil {
		return nil, 0, err
	}
	var rec []byte
	var version int64
	err := e.view(func(tx *bolt.Tx) error {
		v := tx.Bucket(bucketSettings).Get([]byte(tenant))
		if len(v) >= 8 {
			version = int64(binary.BigEndian.Uint64(v[:8]))
			rec = bytes.Clone(v[8:])
		}
		return nil
	})
	return rec, version, err
}

// PutTenantSettings stores tenant's settings if they are at version (0:
// none yet) and returns the new version, or ErrSettingsChanged.
func (e *Embedded) PutTenantSettings(ctx context.Context, tenant string, rec []byte, version int64) (int64, error) {
	if err := tenants.ValidateID(tenant); err != nil {
		return 0, err
	}
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	var next int64
	err := e.update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketSettings)
		var current int64
		if v := b.Get([]byte(tenant)); len(v) >= 8 {
			current = int64(binary.BigEndian.Uint64(v[:8]))
		}
		if current != version {
			return ErrSettingsChanged
		}
		next = current + 1
		return b.Put([]byte(tenant), append(binary.BigEndian.AppendUint64(nil, uint64(next)), rec...))
	})
	return next, err
}

// GetTenantSettings returns tenant's settings record and its KV version,
// from {kv}/data/_settings/{tenant}; nil and 0 when there is none.
func (h *HashiCorp) GetTenantSettings(ctx context.Context, tenant string) ([]byte, int64, error) {
	if err := tenants.ValidateID(tenant); err != nil {
		return nil, 0, err
	}
	s, err := h.client.Logical().ReadWithContext(ctx, h.kv.data(settingsDir, tenant))
	if err != nil {
		return nil, 0, h.vaultErr(ctx, "reading tenant settings", err)
	}
	if s == nil || s.Data == nil {
		return nil, 0, nil
	}
	data, _ := s.Data["data"].(map[string]any)
	meta, _ := s.Data["metadata"].(map[string]any)
	version, _ := numberInt(meta["version"])
	enc, _ := data["settings"].(string)
	if data == nil { // a deleted version
		return nil, version, nil
	}
	rec, err := base64.StdEncoding.DecodeString(enc)
	if err != nil {
		return nil, 0, fmt.Errorf("vault: tenant settings of %s: malformed record", tenant)
	}
	return rec, version, nil
}

// PutTenantSettings writes tenant's settings with check-and-set on
// version and returns the new version, or ErrSettingsChanged.
func (h *HashiCorp) PutTenantSettings(ctx context.Context, tenant string, rec []byte, version int64) (int64, error) {
	if err := tenants.ValidateID(tenant); err != nil {
		return 0, err
	}
	data := map[string]any{"settings": base64.StdEncoding.EncodeToString(rec)}
	// The same settings found at version+1 after a lost answer are as good
	// as ours: whoever wrote them, the tenant has what was asked for.
	next, err := h.casWrite(ctx, "writing tenant settings", h.kv.data(settingsDir, tenant), version, data, sameFields(data, "settings"))
	if err != nil {
		if isCASMismatch(err) {
			return 0, ErrSettingsChanged
		}
		return 0, err
	}
	return next, nil
}

// Ping checks that the store answers, cheaply, for readiness probes: a
// read of one small record, however many tenants there are (listing them
// would cost a scan at 100,000 tenants).
func (e *Embedded) Ping(ctx context.Context) error {
	_, _, err := e.GetTenantSettings(ctx, "readyz")
	return err
}

// Ping checks that Vault answers and the gateway's token may read the KV
// mount: one read of a small record.
func (h *HashiCorp) Ping(ctx context.Context) error {
	_, _, err := h.GetTenantSettings(ctx, "readyz")
	return err
}
