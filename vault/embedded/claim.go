package embedded

import (
	"context"
	"encoding/binary"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/connectors-gateway/connectors/vault"
)

// claimSweepEvery bounds how often the embedded store purges expired claims.
const claimSweepEvery = time.Minute

// Claim takes key until the given time, or returns vault.ErrClaimed if another
// claim of key has not expired.
func (e *Store) Claim(ctx context.Context, key string, until time.Time) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	id := []byte(vault.ClaimID(key))
	now := e.now()
	return e.update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketClaims)
		if v := b.Get(id); len(v) == 8 && now.UnixNano() < int64(binary.BigEndian.Uint64(v)) {
			return vault.ErrClaimed
		}
		if err := e.sweepClaimsLocked(b, now); err != nil {
			return err
		}
		return b.Put(id, binary.BigEndian.AppendUint64(nil, uint64(until.UnixNano())))
	})
}

// sweepClaimsLocked deletes expired claims, at most once a minute; the
// caller holds a write transaction.
func (e *Store) sweepClaimsLocked(b *bolt.Bucket, now time.Time) error {
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

// ReleaseClaim gives key up before its expiry, for a holder whose work
// turned out not to need it (a refresh the provider refused without
// spending the token). Releasing a key nobody holds is not an error.
func (e *Store) ReleaseClaim(ctx context.Context, key string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	id := []byte(vault.ClaimID(key))
	return e.update(func(tx *bolt.Tx) error { return tx.Bucket(bucketClaims).Delete(id) })
}
