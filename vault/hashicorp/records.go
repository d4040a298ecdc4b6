package hashicorp

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"

	"github.com/connectors-gateway/connectors/vault"
)

// recordsDir is the KV v2 folder of tenant records, one folder per tenant
// under it: {kv}/data/_records/{tenant}/{name}. Its leading '_' keeps it
// out of the tenant-ID grammar, so Tenants never lists it; the
// gateway-service policy's secret/data/* and secret/metadata/* cover it.
const recordsDir = "_records"

// GetTenantRecord returns tenant's record name and its KV version, from
// {kv}/data/_records/{tenant}/{name}; nil and 0 when there is none.
func (h *Store) GetTenantRecord(ctx context.Context, tenant, name string) ([]byte, int64, error) {
	if err := vault.ValidateTenantRecord(tenant, name, nil); err != nil {
		return nil, 0, err
	}
	rec, version, err := h.readBlob(ctx, "reading a tenant record", h.kv.data(recordsDir, tenant+"/"+name), "record")
	if errors.Is(err, errMalformedBlob) {
		return nil, 0, fmt.Errorf("vault: tenant record %s/%s: malformed record", tenant, name)
	}
	return rec, version, err
}

// errMalformedBlob is readBlob's field that is not base64.
var errMalformedBlob = errors.New("malformed record")

// readBlob reads the base64 field of the KV v2 record at path (a data
// path) and the record's version: nil and 0 when there is none, nil and
// its version when that version is deleted.
func (h *Store) readBlob(ctx context.Context, op, path, field string) ([]byte, int64, error) {
	s, err := h.client.Logical().ReadWithContext(ctx, path)
	if err != nil {
		return nil, 0, h.vaultErr(ctx, op, err)
	}
	if s == nil || s.Data == nil {
		return nil, 0, nil
	}
	data, _ := s.Data["data"].(map[string]any)
	meta, _ := s.Data["metadata"].(map[string]any)
	version, _ := numberInt(meta["version"])
	if data == nil { // a deleted version
		return nil, version, nil
	}
	enc, _ := data[field].(string)
	blob, err := base64.StdEncoding.DecodeString(enc)
	if err != nil {
		return nil, 0, errMalformedBlob
	}
	return blob, version, nil
}

// PutTenantRecord writes tenant's record name with check-and-set on
// version and returns the new version, or vault.ErrRecordChanged.
func (h *Store) PutTenantRecord(ctx context.Context, tenant, name string, rec []byte, version int64) (int64, error) {
	if err := vault.ValidateTenantRecord(tenant, name, rec); err != nil {
		return 0, err
	}
	data := map[string]any{"record": base64.StdEncoding.EncodeToString(rec)}
	// The same record found at version+1 after a lost answer is as good as
	// ours: whoever wrote it, the record says what we meant it to.
	next, err := h.casWrite(ctx, "writing a tenant record", h.kv.data(recordsDir, tenant+"/"+name), version, data, sameFields(data, "record"))
	if err != nil {
		if isCASMismatch(err) {
			return 0, vault.ErrRecordChanged
		}
		return 0, err
	}
	return next, nil
}

// deleteRecords deletes every version of every record of the tenant
// (those written by hand under its folder too), and reports what is left.
func (h *Store) deleteRecords(ctx context.Context, tenant string) (left []string, err error) {
	dir := h.kv.tenantDir(recordsDir) + tenant + "/"
	names, err := h.listTree(ctx, dir)
	if err != nil {
		return nil, err
	}
	for _, n := range names {
		if _, err := h.client.Logical().DeleteWithContext(ctx, dir+n); err != nil {
			return nil, h.vaultErr(ctx, "deleting the tenant record "+tenant+"/"+n, err)
		}
	}
	left, err = h.listTree(ctx, dir)
	if err != nil {
		return nil, err
	}
	for i := range left {
		left[i] = recordsDir + "/" + left[i]
	}
	return left, nil
}
