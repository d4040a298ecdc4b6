package storetest

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/connectors-gateway/connectors/vault"
)

// observed is one report to an Observer.
type observed struct {
	Op                  vault.Op
	Tenant, Integration string
	Err                 error
}

// recorder is an Observer that keeps what it is told.
type recorder struct {
	mu  sync.Mutex
	got []observed
}

// Observe implements vault.Observer.
func (r *recorder) Observe(_ context.Context, op vault.Op, tenant, integration string, d time.Duration, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.got = append(r.got, observed{op, tenant, integration, err})
}

// RunObserver checks that a backend tells its [vault.Observer] of each
// credential operation once, with the error the caller got, and of nothing
// else (listings, claims, settings, API keys). newStore returns a new,
// empty backend that reports to obs.
func RunObserver(t *testing.T, newStore func(t *testing.T, obs vault.Observer) vault.Backend) {
	rec := &recorder{}
	s := newStore(t, rec)
	ctx := context.Background()
	var want []observed
	expect := func(op vault.Op, tenant, integration string, err error) {
		want = append(want, observed{op, tenant, integration, err})
	}

	_, err := s.Put(ctx, "tenant-a", "notion", tokenCred("a"), 0)
	expect(vault.OpPut, "tenant-a", "notion", err)
	_, _, err = s.Get(ctx, "tenant-a", "notion")
	expect(vault.OpGet, "tenant-a", "notion", err)
	_, _, err = s.Get(ctx, "tenant-a", "github")
	expect(vault.OpGet, "tenant-a", "github", err)
	_, err = s.Put(ctx, "tenant-a", "notion", tokenCred("b"), 7)
	expect(vault.OpPut, "tenant-a", "notion", err)
	_, _, err = s.Get(ctx, "../x", "notion")
	expect(vault.OpGet, "../x", "notion", err)

	// Not credential operations: not reported.
	_, _ = s.Integrations(ctx, "tenant-a")
	_, _ = s.Tenants(ctx)
	_ = s.Claim(ctx, "state/1", time.Now().Add(time.Minute))
	_ = s.ReleaseClaim(ctx, "state/1")
	_, _, _ = s.GetTenantSettings(ctx, "tenant-a")
	_ = s.Ping(ctx)

	err = s.RotateTenantKey(ctx, "tenant-a")
	expect(vault.OpRotate, "tenant-a", "", err)
	err = s.RetireOldKeyVersions(ctx, "tenant-a")
	expect(vault.OpRotate, "tenant-a", "", err)
	err = s.Delete(ctx, "tenant-a", "notion")
	expect(vault.OpDelete, "tenant-a", "notion", err)
	err = s.OffboardTenant(ctx, "tenant-a")
	expect(vault.OpOffboard, "tenant-a", "", err)

	rec.mu.Lock()
	defer rec.mu.Unlock()
	if diff := cmp.Diff(want, rec.got, cmp.Comparer(func(a, b error) bool { return a == b })); diff != "" {
		t.Errorf("observed operations mismatch (-want +got):\n%s", diff)
	}
}
