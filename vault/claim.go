package vault

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Claims are single-use markers shared by every gateway replica on one
// store: a used OAuth state, or the one replica refreshing a token. A
// claim holds until its expiry; after that the key may be claimed again
// (its holder is gone, or what it protected has expired anyway).
//
// Keys are hashed before they are stored, so a key may hold anything (an
// OAuth state is never written down in clear).

// claimsDir is the KV v2 folder of claims; like _apikeys, its leading '_'
// keeps it out of the tenant-ID grammar.
const claimsDir = "_claims"

// claimSweepEvery bounds how often the embedded store purges expired claims.
const claimSweepEvery = time.Minute

func claimID(key string) string {
	sum := sha256.Sum256([]byte(key))
	return hex.EncodeToString(sum[:])
}

// Claim takes key until the given time, or returns ErrClaimed if another
// claim of key has not expired.
func (e *Embedded) Claim(ctx context.Context, key string, until time.Time) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	id := []byte(claimID(key))
	now := e.now()
	return e.update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketClaims)
		if v := b.Get(id); len(v) == 8 && now.UnixNano() < int64(binary.BigEndian.Uint64(v)) {
			return ErrClaimed
		}
		if err := e.sweepClaimsLocked(b, now); err != nil {
			return err
		}
		return b.Put(id, binary.BigEndian.AppendUint64(nil, uint64(until.UnixNano())))
	})
}

// sweepClaimsLocked deletes expired claims, at most once a minute; the
// caller holds a write transaction.
func (e *Embedded) sweepClaimsLocked(b *bolt.Bucket, now time.Time) error {
	e.mu.Lock()
	due := now.Sub(e.claimsSwept) >= claimSweepEvery
	if due {
		e.claimsSwept = now
	}
	e.mu.Unlock()
	if !due {
		return nil
	}
	var expired [][]byte
	err := b.ForEach(func(k, v []byte) error {
		if len(v) != 8 || now.UnixNano() >= int64(binary.BigEndian.Uint64(v)) {
			expired = append(expired, append([]byte(nil), k...))
		}
		return nil
	})
	if err != nil {
		return err
	}
	for _, k := range expired {
		if err := b.Delete(k); err != nil {
			return err
		}
	}
	return nil
}

// Claim takes key until the given time, or returns ErrClaimed if another
// claim of key has not expired. The claim is a KV v2 record at
// {kv}/data/_claims/{sha256(key)} written with check-and-set, so of
// replicas racing for one key exactly one wins. Expired claims are taken
// over (check-and-set on their version) and removed by SweepClaims.
func (h *HashiCorp) Claim(ctx context.Context, key string, until time.Time) error {
	path := h.kv.data(claimsDir, claimID(key))
	write := func(cas int64) error {
		// A claim whose answer was lost is ours if its expiry (to the
		// nanosecond) is: else it would be refused as another's.
		data := map[string]any{"until": formatTime(until)}
		_, err := h.casWrite(ctx, "writing a claim", path, cas, data, sameFields(data, "until"))
		if err != nil && isCASMismatch(err) {
			return ErrClaimed
		}
		return err
	}
	err := write(0)
	if err != ErrClaimed {
		return err
	}
	// Taken: by a live claim, or an expired one we may replace.
	held, version, err := h.readClaim(ctx, path)
	if err != nil {
		return err
	}
	if h.now().Before(held) {
		return ErrClaimed
	}
	return write(version)
}

// readClaim returns a claim's expiry and KV version.
func (h *HashiCorp) readClaim(ctx context.Context, path string) (time.Time, int64, error) {
	s, err := h.client.Logical().ReadWithContext(ctx, path)
	if err != nil {
		return time.Time{}, 0, h.vaultErr(ctx, "reading a claim", err)
	}
	if s == nil || s.Data == nil {
		// Deleted (swept) between our write and this read: claimable again,
		// but at the version metadata left, if any; let the caller retry.
		return time.Time{}, 0, ErrClaimed
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
func (h *HashiCorp) SweepClaims(ctx context.Context) (int, error) {
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

// ReleaseClaim gives key up before its expiry, for a holder whose work
// turned out not to need it (a refresh the provider refused without
// spending the token). Releasing a key nobody holds is not an error.
func (e *Embedded) ReleaseClaim(ctx context.Context, key string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	id := []byte(claimID(key))
	return e.update(func(tx *bolt.Tx) error { return tx.Bucket(bucketClaims).Delete(id) })
}

// ReleaseClaim gives key up before its expiry (see Embedded.ReleaseClaim).
func (h *HashiCorp) ReleaseClaim(ctx context.Context, key string) error {
	if _, err := h.client.Logical().DeleteWithContext(ctx, h.kv.metadata(claimsDir, claimID(key))); err != nil {
		return h.vaultErr(ctx, "releasing a claim", err)
	}
	return nil
}
