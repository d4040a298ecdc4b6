package server

import (
	"crypto/sha256"
	"fmt"
	"testing"

	"github.com/mark3labs/mcp-go/mcp"
)

func listed(content string) *catalogue {
	return &catalogue{
		sum:    sha256.Sum256([]byte(content)),
		tools:  []mcp.Tool{{Name: "x_" + content}},
		byName: map[string]catalogueTool{"x_" + content: {upstream: content}},
	}
}

// TestCataloguesSharedByContent: tenants whose upstreams list the same
// catalogue hold one copy of it; a catalogue no tenant holds any more is
// dropped.
func TestCataloguesSharedByContent(t *testing.T) {
	v := &view{cats: newCatalogues()}
	const tenants = 10_000
	entries := make([]*tenantCatalogue, tenants)
	v.cats.mu.Lock()
	for i := range entries {
		entries[i] = &tenantCatalogue{}
		v.cats.byTenant[catalogueKey{fmt.Sprint("t", i), "notion"}] = entries[i]
		v.keepLocked(entries[i], listed("same"), 1, 0) // a fresh listing each time
	}
	v.cats.mu.Unlock()
	if distinct, n := v.catalogueCounts(); distinct != 1 || n != tenants {
		t.Fatalf("%d tenants listing the same catalogue: %d distinct catalogues held, %d entries; want 1, %d", tenants, distinct, n, tenants)
	}
	for _, e := range entries[1:] {
		if e.cat != entries[0].cat {
			t.Fatal("two tenants with the same catalogue hold two copies")
		}
	}

	// One tenant's account changes: its catalogue is its own.
	v.cats.mu.Lock()
	v.keepLocked(entries[0], listed("other"), 2, 0)
	v.cats.mu.Unlock()
	if distinct, _ := v.catalogueCounts(); distinct != 2 {
		t.Errorf("after one tenant's catalogue changed: %d distinct, want 2", distinct)
	}
	if entries[0].cat == entries[1].cat || entries[0].version != 2 {
		t.Error("the changed tenant still holds the shared catalogue")
	}
	if _, ok := entries[0].cat.byName["x_other"]; !ok {
		t.Error("the changed tenant does not hold its new catalogue")
	}
	// Every other tenant moves to it too: the old one is held by none.
	v.cats.mu.Lock()
	for _, e := range entries[1:] {
		v.keepLocked(e, listed("other"), 2, 0)
	}
	v.cats.mu.Unlock()
	if distinct, _ := v.catalogueCounts(); distinct != 1 {
		t.Errorf("after every tenant moved to the new catalogue: %d distinct, want 1 (the old one dropped)", distinct)
	}
}

// TestForgetMarksListingsInFlight: a change announced while a tenant's
// catalogue is being listed leaves it stale, so the next use lists again.
func TestForgetMarksListingsInFlight(t *testing.T) {
	v := &view{cats: newCatalogues()}
	v.cats.routes["notion"] = "route"
	e := &tenantCatalogue{}
	key := catalogueKey{"t1", "notion"}
	v.cats.byTenant[key] = e
	if v.forget("t1", "") {
		t.Error("forget reports a catalogue listed when none was")
	}
	gen := e.gen
	v.forget("t1", "notion") // announced during the listing
	v.keepLocked(e, listed("a"), 1, gen)
	if v.cached("t1", "notion", 1) == nil {
		t.Error("a catalogue listed just now is not served for the rest of relistAfter")
	}
	e.listed = e.listed.Add(-relistAfter)
	if v.cached("t1", "notion", 1) != nil {
		t.Error("a catalogue listed while a change was announced is served as fresh after relistAfter")
	}
	v.keepLocked(e, listed("a"), 1, e.gen)
	if v.cached("t1", "notion", 1) == nil {
		t.Error("a catalogue listed with no change announced is not served")
	}
	if v.cached("t1", "notion", 2) != nil {
		t.Error("a catalogue listed with credential version 1 is served for version 2")
	}
	e.listed = e.listed.Add(-catalogueTTL)
	if v.cached("t1", "notion", 1) != nil {
		t.Errorf("a catalogue listed %v ago is served as fresh", catalogueTTL)
	}
	e.listed = e.listed.Add(catalogueTTL)
	if !v.forget("t1", "notion") {
		t.Error("forget does not report the catalogue listed")
	}
	if v.forget("t2", "notion") {
		t.Error("forget reports another tenant's catalogue")
	}
}

// TestRoutingServesTheLastListing: a call is routed by the catalogue its
// credential listed, also once a change was announced or its TTL passed
// (the relisting runs beside it), and never by one listed with another
// credential version or for a tenant that must link again.
func TestRoutingServesTheLastListing(t *testing.T) {
	v := &view{cats: newCatalogues()}
	v.cats.routes["notion"] = "route"
	if v.routing(t.Context(), "t1", "notion", accessLinked, 1) != nil {
		t.Error("routing by a catalogue never listed")
	}
	e := &tenantCatalogue{running: make(chan struct{})} // a listing in flight: routing starts none
	v.cats.byTenant[catalogueKey{"t1", "notion"}] = e
	cat := listed("a")
	v.keepLocked(e, cat, 1, e.gen)
	v.forget("t1", "notion")
	e.listed = e.listed.Add(-relistAfter)
	if v.cached("t1", "notion", 1) != nil {
		t.Fatal("the catalogue is fresh after an announced change")
	}
	if got := v.routing(t.Context(), "t1", "notion", accessLinked, 1); got != cat {
		t.Error("a call after an announced change is not routed by the last listing")
	}
	e.listed = e.listed.Add(-catalogueTTL)
	if got := v.routing(t.Context(), "t1", "notion", accessLinked, 1); got != cat {
		t.Errorf("a call on a catalogue older than %v is not routed by it", catalogueTTL)
	}
	if v.routing(t.Context(), "t1", "notion", accessLinked, 2) != nil {
		t.Error("a call on credential version 2 is routed by the listing of version 1")
	}
	if v.routing(t.Context(), "t1", "notion", accessRelink, 1) != nil {
		t.Error("a tenant that must link again is routed without waiting")
	}
	if v.routing(t.Context(), "t2", "notion", accessLinked, 1) != nil {
		t.Error("another tenant is routed by t1's catalogue")
	}
}
