package metrics

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// TestUsageFlushed: what a flush took off stays off, what was counted
// meanwhile stays unflushed, and the figures reported are the stored ones
// plus the unflushed.
func TestUsageFlushed(t *testing.T) {
	u := NewUsage(0)
	u.Call("tenant-a", "notion")
	u.Call("tenant-a", "notion")
	u.Refresh("tenant-a", "notion", false)
	u.CredentialAccess("tenant-b", "slack")
	pending := u.Unflushed()
	if len(pending) != 2 {
		t.Fatalf("Unflushed = %+v, want tenant-a and tenant-b", pending)
	}
	var d TenantUsage
	for _, p := range pending {
		if p.TenantID == "tenant-a" {
			d = p
		}
	}
	if d.Calls != 2 || d.Refreshes != 1 || d.RefreshFailures != 1 {
		t.Fatalf("tenant-a's unflushed = %+v", d)
	}
	stored := TenantUsage{TenantID: "tenant-a", Calls: 10, Refreshes: 4, RefreshFailures: 1,
		ActiveIntegrations: []string{"github"}, Since: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	total := Sum(stored, d)
	u.Call("tenant-a", "slack") // counted during the flush
	u.Flushed(d, total)

	got, _ := u.Tenant("tenant-a")
	want := TenantUsage{TenantID: "tenant-a", Calls: 13, Refreshes: 5, RefreshFailures: 2, RefreshSuccessRate: 0.6,
		ActiveIntegrations: []string{"github", "notion", "slack"}, Since: stored.Since}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Tenant after the flush (-want +got):\n%s", diff)
	}
	left := u.Unflushed()
	if len(left) != 2 || left[0].TenantID != "tenant-a" || left[0].Calls != 1 || left[0].Refreshes != 0 {
		t.Errorf("Unflushed after the flush = %+v, want tenant-a's one call during it first", left)
	}
	// Another replica's flush since: the route adds the unflushed to it.
	fresh := Sum(total, TenantUsage{Calls: 100})
	if got := u.AddUnflushed(fresh); got.Calls != 113 {
		t.Errorf("AddUnflushed(%d stored) = %d calls, want 113", fresh.Calls, got.Calls)
	}
	// Top ranks by the stored figures plus the unflushed.
	for range 5 {
		u.Call("tenant-b", "slack")
	}
	if top := u.Top(1); len(top) != 1 || top[0].TenantID != "tenant-a" {
		t.Errorf("Top(1) = %+v, want tenant-a (13 calls against 5)", top)
	}
}

// TestUsageSumBounds: Sum keeps integrations valid, sorted and capped.
func TestUsageSumBounds(t *testing.T) {
	var many []string
	for i := range 100 {
		many = append(many, "in-"+string(rune('a'+i%26))+string(rune('a'+i/26)))
	}
	s := Sum(TenantUsage{TenantID: "t", ActiveIntegrations: append(many, "../x", "UPPER")}, TenantUsage{})
	if len(s.ActiveIntegrations) != maxTenantIntegrations || s.RefreshSuccessRate != 1 {
		t.Errorf("Sum kept %d integrations (rate %v), want %d (rate 1)", len(s.ActiveIntegrations), s.RefreshSuccessRate, maxTenantIntegrations)
	}
	for _, in := range s.ActiveIntegrations {
		if !validIntegration(in) {
			t.Errorf("Sum kept %q", in)
		}
	}
}
