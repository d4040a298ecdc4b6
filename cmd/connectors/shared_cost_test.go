package main

import (
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/connectors-gateway/connectors/metrics"
	"github.com/connectors-gateway/connectors/vault/hashicorp"
)

// TestSharedUsageFlushCost: one flush of 500 tenants' counts by each of
// two replicas at once, on a real Vault with the gateway policy, adds up
// exactly (check-and-set conflicts retried), and reports what a flush
// costs per tenant.
func TestSharedUsageFlushCost(t *testing.T) {
	addr, _, token := gatewayVault(t)
	const tenants = 500
	var replicas [2]*sharedUsage
	for i := range replicas {
		st, err := hashicorp.Open(hashicorp.Config{Addr: addr, Token: token})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = st.Close() })
		u := metrics.NewUsage(0)
		for n := range tenants {
			for range 3 {
				u.Call(fmt.Sprintf("tenant-%03d", n), "notion")
			}
		}
		replicas[i] = &sharedUsage{usage: u, store: st, log: slog.New(slog.DiscardHandler), every: time.Hour}
	}
	start := time.Now()
	var wg sync.WaitGroup
	for _, r := range replicas {
		wg.Go(func() { r.flush(t.Context()) })
	}
	wg.Wait()
	took := time.Since(start)
	t.Logf("two replicas flushed %d tenants each, at once, in %v (%v per tenant per replica)", tenants, took.Round(time.Millisecond), (took / tenants).Round(time.Microsecond))
	for n := range tenants {
		id := fmt.Sprintf("tenant-%03d", n)
		got, ok, err := replicas[0].Tenant(t.Context(), id)
		if err != nil || !ok || got.Calls != 6 {
			t.Fatalf("%s after both flushes: %+v, %v, %v; want 6 calls", id, got, ok, err)
		}
	}
	for _, r := range replicas {
		if left := r.usage.Unflushed(); len(left) != 0 {
			t.Errorf("unflushed after the flush: %d tenants", len(left))
		}
	}
}
