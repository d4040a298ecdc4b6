package hashicorp

import (
	"context"
	"errors"
	"fmt"
	"syscall"

	"github.com/hashicorp/vault/api"

	"github.com/connectors-gateway/connectors/vault"
)

// ErrWriteOutcomeUnknown is wrapped by the *vault.VaultError of a write whose
// request reached Vault, or may have, without an answer coming back, and
// whose outcome could not be learnt since: it may have landed. Reading the
// record tells.
var ErrWriteOutcomeUnknown = errors.New("the write may have landed: read the record before writing it again")

// casWrite writes data to the KV v2 path with check-and-set on cas and
// returns the version written. The write lands and is reported written,
// or is reported failed and did not land, or (Vault unreachable twice in
// a row) is reported with ErrWriteOutcomeUnknown. A check-and-set refusal
// comes back as Vault's own error, for the caller's isCASMismatch; any
// other error is the store's, ready to return.
//
// A write is never retried blindly: a retry whose first attempt had
// landed would be refused by its own check-and-set and reported a
// conflict. When the answer to a request that left is lost, the same
// request (the same data, the same cas) is sent once more. At most one of
// the two can land, the check-and-set sees to it; if the second is refused
// for the check-and-set, the record at cas+1 says whether the first
// landed: same reports whether its data is ours (a ciphertext, which
// Transit made for this write alone; a nanosecond time stamp).
func (h *Store) casWrite(ctx context.Context, op, path string, cas int64, data map[string]any, same func(got map[string]any) bool) (int64, error) {
	body := map[string]any{"options": map[string]any{"cas": cas}, "data": data}
	s, err := h.client.Logical().WriteWithContext(ctx, path, body)
	if err != nil && mayHaveLanded(err) && ctx.Err() == nil {
		h.log.Warn("vault_write_unanswered", "operation", op, "error", err.Error())
		unknown := &vault.VaultError{Err: fmt.Errorf("%s: %w; %w", op, unanswered(err, h.timeout), ErrWriteOutcomeUnknown)}
		s, err = h.client.Logical().WriteWithContext(ctx, path, body)
		switch {
		case err != nil && isCASMismatch(err) && ctx.Err() == nil:
			got, rerr := h.client.Logical().ReadWithDataWithContext(ctx, path, map[string][]string{"version": {fmt.Sprint(cas + 1)}})
			if rerr != nil {
				return 0, unknown
			}
			if got != nil {
				if d, _ := got.Data["data"].(map[string]any); d != nil && same(d) {
					h.log.Info("vault_write_landed", "operation", op, "version", cas+1)
					return cas + 1, nil
				}
			}
			return 0, err // another writer's: ours can no longer land
		case err != nil:
			// Whatever the second attempt met, the first may have landed.
			if !isResponse(err) && !errors.Is(err, ErrUnreachable) {
				h.logFailure(op, err)
			}
			return 0, unknown
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
		return 0, &vault.VaultError{Err: errors.New(op + ": no version in Vault's answer")}
	}
	return written, nil
}

// writeRecord writes a credential record's data with check-and-set on
// cas (see casWrite).
func (h *Store) writeRecord(ctx context.Context, tenant, integration string, cas int64, data map[string]any) (int64, error) {
	return h.casWrite(ctx, "writing the credential record", h.kv.data(tenant, integration), cas, data, sameFields(data, fieldAccessToken, fieldRefreshToken, fieldUpdatedAt))
}

// mayHaveLanded reports whether a failed request may have reached Vault:
// not when Vault answered, the breaker refused it, or the connection was
// refused.
func mayHaveLanded(err error) bool {
	return !isResponse(err) && !errors.Is(err, ErrUnreachable) && !errors.Is(err, syscall.ECONNREFUSED)
}

func isResponse(err error) bool {
	var re *api.ResponseError
	return errors.As(err, &re)
}

// sameFields returns a casWrite same that compares the given fields of
// the data read back with data's.
func sameFields(data map[string]any, fields ...string) func(map[string]any) bool {
	return func(got map[string]any) bool {
		for _, f := range fields {
			if fmt.Sprint(got[f]) != fmt.Sprint(data[f]) {
				return false
			}
		}
		return true
	}
}
