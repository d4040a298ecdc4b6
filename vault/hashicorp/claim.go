package hashicorp

import (
	"context"
	"fmt"
	"time"

	"github.com/connectors-gateway/connectors/vault"
)

// claimsDir is the KV v2 folder of claims; like _apikeys, its leading '_'
// keeps it out of the tenant-ID grammar.
const claimsDir = "_claims"

// Claim takes key until the given time, or returns vault.ErrClaimed if another
// claim of key has not expired. The claim is a KV v2 record at
// {kv}/data/_claims/{sha256(key)} written with check-and-set, so of
// replicas racing for one key exactly one wins. Expired claims are taken
// over (check-and-set on their version) and removed by SweepClaims.
func (h *Store) Claim(ctx context.Context, key string, until time.Time) error {
	path := h.kv.data(claimsDir, vault.ClaimID(key))
	write := func(cas int64) error {
		// A claim whose answer was lost is ours if its expiry (to the
		// nanosecond) is: else it would be refused as another's.
		data := map[string]any{"until": formatTime(until)}
		_, err := h.casWrite(ctx, "writing a claim", path, cas, data, sameFields(data, "until"))
		if err != nil && isCASMismatch(err) {
			return vault.ErrClaimed
		}
		return err
	}
	err := write(0)
	if err != vault.ErrClaimed {
		return err
	}
	// Taken: by a live claim, or an expired one we may replace.
	held, version, err := h.readClaim(ctx, path)
	if err != nil {
		return err
	}
	if h.now().Before(held) {
		return vault.ErrClaimed
	}
	return write(version)
}

// readClaim returns a claim's expiry and KV version.
func (h *Store) readClaim(ctx context.Context, path string) (time.Time, int64, error) {
	s, err := h.client.Logical().ReadWithContext(ctx, path)
	if err != nil {
		return time.Time{}, 0, h.vaultErr(ctx, "reading a claim", err)
	}
	if s == nil || s.Data == nil {
		// Deleted (swept) between our write and this read: claimable again,
		// but at the version metadata left, if any; let the caller retry.
		return time.Time{}, 0, vault.ErrClaimed
	}
	data, _ := s.Data["data"].(map[string]any)
	meta, _ := s.Data["metadata"].(map[string]any)
	until, _ := data["until"].(string)
	t, err := time.Parse(time.RFC3339Nano, until)
	if err != nil {
		return time.Time{}, 0, fmt.Errorf("vault: malformed claim record")
	}
	v, ok := numberInt(meta["version"])
	if !ok {
		return time.Time{}, 0, fmt.Errorf("vault: malformed claim record: no version")
	}
	return t, v, nil
}

// SweepClaims deletes the expired claims; the gateway calls it now and
// then. It returns how many it removed.
func (h *Store) SweepClaims(ctx context.Context) (int, error) {
	ids, err := h.list(ctx, h.kv.tenantDir(claimsDir))
	if err != nil {
		return 0, err
	}
	n := 0
	for _, id := range ids {
		path := h.kv.data(claimsDir, id)
		until, _, err := h.readClaim(ctx, path)
		if err != nil || h.now().Before(until) {
			continue
		}
		if _, err := h.client.Logical().DeleteWithContext(ctx, h.kv.metadata(claimsDir, id)); err != nil {
			return n, h.vaultErr(ctx, "deleting a claim", err)
		}
		n++
	}
	return n, nil
}

// ReleaseClaim gives key up before its expiry (see [vault.Claims]): it
// deletes the claim record.
func (h *Store) ReleaseClaim(ctx context.Context, key string) error {
	if _, err := h.client.Logical().DeleteWithContext(ctx, h.kv.metadata(claimsDir, vault.ClaimID(key))); err != nil {
		return h.vaultErr(ctx, "releasing a claim", err)
	}
	return nil
}
