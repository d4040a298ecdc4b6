package vault

import (
	"context"
	"errors"
	"fmt"
	"syscall"

	"github.com/hashicorp/vault/api"
)

// ErrWriteOutcomeUnknown is wrapped by the *VaultError of a write whose
// request reached Vault, or may have, without an answer coming back, and
// whose outcome could not be learnt since: it may have landed. Reading the
// record tells.
var ErrWriteOutcomeUnknown = errors.New("the write may have landed: read the record before writing it again")

// writeRecord writes a credential record's data with check-and-set on cas
// and returns the version written: it lands and is reported written, or is
// reported failed and did not land, or (Vault unreachable twice in a row)
// is reported with ErrWriteOutcomeUnknown. A write is never retried
// blindly: a retry whose first attempt had landed would be refused by its
// own check-and-set and reported a conflict.
//
// When the answer to a request that left is lost, the same request (the
// same ciphertext, the same cas) is sent once more. At most one of the two
// can land, the check-and-set sees to it; if the second is refused for the
// check-and-set, the record at cas+1 says whether the first landed: its
// ciphertext, which Transit made for this write alone, is ours or not.
func (h *HashiCorp) writeRecord(ctx context.Context, tenant, integration string, cas int64, data map[string]any) (int64, error) {
	const op = "writing the credential record"
	path := h.kv.data(tenant, integration)
	body := map[string]any{"options": map[string]any{"cas": cas}, "data": data}
	s, err := h.client.Logical().WriteWithContext(ctx, path, body)
	if err != nil && mayHaveLanded(err) && ctx.Err() == nil {
		h.log.Warn("vault_write_unanswered", "tenant_id", tenant, "integration", integration, "error", err.Error())
		first := err
		s, err = h.client.Logical().WriteWithContext(ctx, path, body)
		switch {
		case err != nil && isCASMismatch(err) && ctx.Err() == nil:
			rec, rerr := h.read(ctx, tenant, integration, cas+1)
			if rerr != nil {
				return 0, &VaultError{Err: fmt.Errorf("%s: %w; %w", op, unanswered(first, h.timeout), ErrWriteOutcomeUnknown)}
			}
			if rec.exists() && sameWrite(rec.data, data) {
				h.log.Info("vault_write_landed", "tenant_id", tenant, "integration", integration, "version", cas+1)
				return cas + 1, nil
			}
			return 0, err // another writer's: ours can no longer land
		case err != nil:
			// Whatever the second attempt met, the first may have landed.
			if !isResponse(err) && !errors.Is(err, ErrVaultUnreachable) {
				h.logFailure(op, err)
			}
			return 0, &VaultError{Err: fmt.Errorf("%s: %w; %w", op, unanswered(first, h.timeout), ErrWriteOutcomeUnknown)}
		}
	}
	if err != nil {
		if isCASMismatch(err) {
			return 0, err
		}
		return 0, h.vaultErr(ctx, op, err)
	}
	written, ok := jsonInt(s, "version")
	if !ok {
		return 0, &VaultError{Err: errors.New(op + ": no version in Vault's answer")}
	}
	return written, nil
}

// mayHaveLanded reports whether a failed request may have reached Vault:
// not when Vault answered, the breaker refused it, or the connection was
// refused.
func mayHaveLanded(err error) bool {
	return !isResponse(err) && !errors.Is(err, ErrVaultUnreachable) && !errors.Is(err, syscall.ECONNREFUSED)
}

func isResponse(err error) bool {
	var re *api.ResponseError
	return errors.As(err, &re)
}

// sameWrite reports whether a record's data read from Vault is the one
// written as data: the same ciphertext of each secret (and the same update
// time, for a record without secrets).
func sameWrite(got, data map[string]any) bool {
	for _, f := range []string{fieldAccessToken, fieldRefreshToken, fieldUpdatedAt} {
		if fmt.Sprint(got[f]) != fmt.Sprint(data[f]) {
			return false
		}
	}
	return true
}
