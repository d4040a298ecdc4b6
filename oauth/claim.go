package oauth

import (
	"context"
	"strconv"
	"time"

	"github.com/connectors-gateway/connectors/vault"
)

// claimKey names the claim on refreshing version ver of k's credential.
func claimKey(k credKey, ver int64) string {
	return "refresh/" + k.tenant + "/" + k.integration + "/" + strconv.FormatInt(ver, 10)
}

// awaitOther waits while another replica holds the claim on version ver of
// k's credential: until the version moves on (the holder stored its
// refresh, or marked the credential needs_reauth), the claim is given up
// (the holder's refresh failed) and we take it over, or LeaseTTL passes.
// Then the caller reads the credential again and, if it is still at ver,
// goes on with the claim taken over (held until the time returned, zero
// for none) or claims the same key again.
//
// The same key, not a new one: a claim holds for LeaseTTL at most, and
// Claim lets exactly one caller take an expired claim over, so of several
// waiters exactly one succeeds the dead holder. A new key per attempt
// ("…/ver/2") would need every waiter to agree on the number; one that
// counted differently would hold a claim of its own and refresh alongside.
func (r *Refresher) awaitOther(ctx context.Context, k credKey, ver int64) (held time.Time, err error) {
	deadline := time.Now().Add(r.leaseTTL)
	wait := pollMin
	for {
		if err := sleep(ctx, wait); err != nil {
			return time.Time{}, err
		}
		_, v, err := r.store.Get(ctx, k.tenant, k.integration)
		if err == nil && v != ver || vault.IsNotFound(err) || !time.Now().Before(deadline) {
			return time.Time{}, nil
		}
		// A holder whose refresh failed releases its claim: the next
		// attempt need not wait out the lease.
		if err == nil {
			until := time.Now().Add(r.leaseTTL)
			if r.store.Claim(ctx, claimKey(k, ver), until) == nil {
				return until, nil
			}
		}
		wait = min(2*wait, pollMax)
	}
}

// claimHeld is a claim on version ver taken over in awaitOther.
type claimHeld struct {
	ver   int64
	until time.Time
}
