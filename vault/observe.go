package vault

import (
	"context"
	"time"
)

// Op names a credential operation an [Observer] is told of. The values are
// the operation names of the audit trail and of the store metrics.
type Op string

// The observed operations.
const (
	OpGet      Op = "get"      // Store.Get
	OpPut      Op = "put"      // Store.Put
	OpDelete   Op = "delete"   // Store.Delete
	OpRotate   Op = "rotate"   // TenantKeys.RotateTenantKey and RetireOldKeyVersions
	OpOffboard Op = "offboard" // TenantKeys.OffboardTenant
)

// Observer is told of every credential operation a backend ends, whatever
// its outcome: the program records them in the audit trail and the
// metrics. Backends call it on the caller's goroutine with the caller's
// context (which carries the caller's identity), once per call of an
// observed method, after it returns; integration is empty for an operation
// on the whole tenant. It must not block.
type Observer interface {
	Observe(ctx context.Context, op Op, tenant, integration string, d time.Duration, err error)
}

// Observe tells o, if not nil, that op ended with *err, having begun at
// start. Backends defer it first thing in each observed method, so that
// every return is seen:
//
//	defer vault.Observe(s.observer, ctx, vault.OpGet, tenant, integration, time.Now(), &err)
func Observe(o Observer, ctx context.Context, op Op, tenant, integration string, start time.Time, err *error) {
	if o != nil {
		o.Observe(ctx, op, tenant, integration, time.Since(start), *err)
	}
}
