package metrics

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestUsageFigures(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		start := time.Now().UTC()
		u := NewUsage(10)
		u.Call("tenant-1", "notion")
		time.Sleep(time.Minute)
		u.Call("tenant-1", "github")
		u.Call("tenant-1", "notion")
		u.Call("tenant-1", "Not A Name") // counted, not listed
		u.CredentialAccess("tenant-1", "notion")
		u.CredentialAccess("tenant-1", "github")
		u.Refresh("tenant-1", "notion", true)
		u.Refresh("tenant-1", "notion", true)
		u.Refresh("tenant-1", "notion", true)
		u.Refresh("tenant-1", "github", false)
		u.Refresh("tenant-2", "slack", true) // the refresher also sees tenants that never call

		got, ok := u.Tenant("tenant-1")
		if !ok {
			t.Fatal("tenant-1 unknown")
		}
		want := TenantUsage{
			TenantID: "tenant-1", Calls: 4, CredentialAccesses: 2,
			Refreshes: 4, RefreshFailures: 1, RefreshSuccessRate: 0.75,
			ActiveIntegrations: []string{"github", "notion"},
			Since:              start,
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("tenant-1 (-want +got):\n%s", diff)
		}

		got, _ = u.Tenant("tenant-2")
		want = TenantUsage{
			TenantID: "tenant-2", Refreshes: 1, RefreshSuccessRate: 1,
			ActiveIntegrations: []string{}, Since: start.Add(time.Minute),
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("tenant-2 (-want +got):\n%s", diff)
		}

		if _, ok := u.Tenant("tenant-3"); ok {
			t.Error("tenant-3 known without being seen")
		}
		u.Call("", "notion") // no tenant: ignored
		if _, ok := u.Tenant(""); ok {
			t.Error("empty tenant recorded")
		}
	})
}

func TestUsageNoRefreshes(t *testing.T) {
	u := NewUsage(1)
	u.Call("t", "notion")
	got, _ := u.Tenant("t")
	if got.RefreshSuccessRate != 1 {
		t.Errorf("success rate with no refreshes = %v, want 1", got.RefreshSuccessRate)
	}
}

func TestUsageJSON(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		u := NewUsage(1)
		u.CredentialAccess("tenant-1", "notion")
		got, _ := u.Tenant("tenant-1")
		b, err := json.Marshal(got)
		if err != nil {
			t.Fatal(err)
		}
		want := `{"tenantId":"tenant-1","apiCalls":0,"credentialAccesses":1,"refreshes":0,"refreshFailures":0,` +
			`"refreshSuccessRate":1,"activeIntegrations":[],"since":"2000-01-01T00:00:00Z"}`
		if string(b) != want {
			t.Errorf("JSON:\n got %s\nwant %s", b, want)
		}
	})
}

func TestUsageEviction(t *testing.T) {
	u := NewUsage(3)
	u.Call("a", "notion")
	u.Call("b", "notion")
	u.Call("c", "notion")
	u.Refresh("a", "notion", true) // a is now the most recently seen; b the least
	u.Tenant("b")                  // reading is not seeing
	u.Call("d", "notion")          // evicts b
	u.CredentialAccess("e", "x")   // evicts c

	for tenant, want := range map[string]bool{"a": true, "b": false, "c": false, "d": true, "e": true} {
		if _, ok := u.Tenant(tenant); ok != want {
			t.Errorf("Tenant(%s) known = %v, want %v", tenant, ok, want)
		}
	}
	// A returning tenant starts afresh.
	u.Call("b", "github")
	got, _ := u.Tenant("b")
	if got.Calls != 1 || !slices.Equal(got.ActiveIntegrations, []string{"github"}) {
		t.Errorf("readmitted b = %+v, want 1 call to github", got)
	}
	if n := len(u.Top(100)); n != 3 {
		t.Errorf("%d tenants kept, want 3", n)
	}
}

func TestUsageDefaultSize(t *testing.T) {
	u := NewUsage(0)
	for i := range DefaultMaxTenants + 10 {
		u.Call(fmt.Sprintf("tenant-%d", i), "notion")
	}
	if n := len(u.Top(DefaultMaxTenants * 2)); n != DefaultMaxTenants {
		t.Errorf("%d tenants kept, want %d", n, DefaultMaxTenants)
	}
	if _, ok := u.Tenant("tenant-0"); ok {
		t.Error("the first tenant survived")
	}
}

func TestUsageIntegrationsCapped(t *testing.T) {
	u := NewUsage(1)
	for i := range 1000 {
		u.Call("t", fmt.Sprintf("in-%d", i))
	}
	got, _ := u.Tenant("t")
	if len(got.ActiveIntegrations) != maxTenantIntegrations || got.Calls != 1000 {
		t.Errorf("%d active integrations and %d calls, want %d and 1000", len(got.ActiveIntegrations), got.Calls, maxTenantIntegrations)
	}
}

func TestUsageTop(t *testing.T) {
	u := NewUsage(100)
	for tenant, calls := range map[string]int{"a": 5, "b": 9, "c": 5, "d": 1, "e": 7} {
		for range calls {
			u.Call(tenant, "notion")
		}
	}
	ids := func(us []TenantUsage) []string {
		var out []string
		for _, x := range us {
			out = append(out, x.TenantID)
		}
		return out
	}
	for _, tt := range []struct {
		n    int
		want []string
	}{
		{3, []string{"b", "e", "a"}}, // a before c: ties by ID
		{4, []string{"b", "e", "a", "c"}},
		{10, []string{"b", "e", "a", "c", "d"}},
		{1, []string{"b"}},
		{0, nil},
		{-1, nil},
	} {
		if diff := cmp.Diff(tt.want, ids(u.Top(tt.n))); diff != "" {
			t.Errorf("Top(%d) (-want +got):\n%s", tt.n, diff)
		}
	}
}

// TestUsageTopMatchesSort checks the heap selection against sorting.
func TestUsageTopMatchesSort(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	u := NewUsage(500)
	calls := map[string]int64{}
	for range 20_000 {
		tenant := fmt.Sprintf("t%03d", r.IntN(400))
		u.Call(tenant, "notion")
		calls[tenant]++
	}
	var all []TenantUsage
	for tenant := range calls {
		x, _ := u.Tenant(tenant)
		all = append(all, x)
	}
	slices.SortFunc(all, func(a, b TenantUsage) int {
		if a.Calls != b.Calls {
			return int(b.Calls - a.Calls)
		}
		if a.TenantID < b.TenantID {
			return -1
		}
		return 1
	})
	for _, n := range []int{1, 7, 50, 399, 400, 1000} {
		want := all[:min(n, len(all))]
		if diff := cmp.Diff(want, u.Top(n)); diff != "" {
			t.Errorf("Top(%d) (-want +got):\n%s", n, diff)
		}
	}
}

func TestNilUsage(t *testing.T) {
	var u *Usage
	u.Call("t", "notion")
	u.Refresh("t", "notion", false)
	u.CredentialAccess("t", "notion")
	if _, ok := u.Tenant("t"); ok {
		t.Error("nil Usage knows a tenant")
	}
	if got := u.Top(10); got != nil {
		t.Errorf("nil Usage Top = %v", got)
	}
}

func TestUsageConcurrent(t *testing.T) {
	u := NewUsage(50)
	const goroutines, each = 16, 1000
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Go(func() {
			for i := range each {
				tenant := fmt.Sprintf("tenant-%d", (g+i)%80) // more tenants than kept: evicts under contention
				u.Call(tenant, "notion")
				u.CredentialAccess(tenant, "notion")
				u.Refresh(tenant, "notion", i%3 != 0)
				if i%50 == 0 {
					u.Top(10)
					u.Tenant(tenant)
				}
			}
		})
	}
	wg.Wait()
	top := u.Top(1000)
	if len(top) != 50 {
		t.Errorf("%d tenants kept, want 50", len(top))
	}
	for _, x := range top {
		// Eviction can fall between one goroutine's calls, so the figures
		// of one tenant need not match each other; they must stay sane.
		if x.RefreshFailures > x.Refreshes || x.RefreshSuccessRate < 0 || x.RefreshSuccessRate > 1 {
			t.Errorf("%s: %+v", x.TenantID, x)
		}
	}
}
