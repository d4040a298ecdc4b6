package hashicorp_test

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/hashicorp/vault/api"

	"github.com/connectors-gateway/connectors/vault/hashicorp"
)

// TestHashiCorpSelfCheck: the shipped gateway policy grants every Need;
// a tenant's policy lacks the others' paths and the listing of tenants;
// a KV v1 mount and a missing Transit mount are named.
func TestHashiCorpSelfCheck(t *testing.T) {
	v := startVault(t)
	s := v.open(t, v.token(t, "gateway-service"))
	if lacks, err := s.MissingCapabilities(t.Context()); err != nil || len(lacks) != 0 {
		t.Fatalf("gateway-service policy: MissingCapabilities = %v, %v; want none", lacks, err)
	}
	if err := s.CheckMounts(t.Context()); err != nil {
		t.Fatalf("CheckMounts on secret/ (KV v2) and transit/: %v", err)
	}

	tenant := v.open(t, v.token(t, "tenant-001"))
	if _, err := tenant.MissingCapabilities(t.Context()); err == nil || !strings.Contains(err.Error(), "permission denied") {
		t.Errorf("a token without sys/capabilities-self: err = %v, want permission denied", err)
	}
	both := v.open(t, v.token(t, "tenant-001", "gateway-service"))
	if lacks, err := both.MissingCapabilities(t.Context()); err != nil || len(lacks) != 0 {
		t.Errorf("tenant-001 + gateway-service: %v, %v", lacks, err)
	}

	sys := v.client.Sys()
	if err := sys.Unmount("transit"); err != nil {
		t.Fatal(err)
	}
	if err := sys.Unmount("secret"); err != nil {
		t.Fatal(err)
	}
	if err := sys.Mount("secret", &api.MountInput{Type: "kv", Options: map[string]string{"version": "1"}}); err != nil {
		t.Fatal(err)
	}
	err := s.CheckMounts(t.Context())
	if !errors.Is(err, hashicorp.ErrWrongMount) || !strings.Contains(err.Error(), `mount secret/: wrong mount: it is kv (version "1"), not kv2`) ||
		!strings.Contains(err.Error(), "mount transit/: wrong mount: not found") {
		t.Errorf("CheckMounts with KV v1 and no Transit: %v", err)
	}
	needs := s.Needs()
	if !slices.ContainsFunc(needs, func(n hashicorp.Need) bool { return n.Path == "transit/decrypt/example-tenant" }) {
		t.Errorf("Needs lacks Transit decrypt: %v", needs)
	}
}
