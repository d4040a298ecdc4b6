package hashicorp_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/vault/api"

	"github.com/connectors-gateway/connectors/internal/testenv"
	"github.com/connectors-gateway/connectors/vault"
	"github.com/connectors-gateway/connectors/vault/hashicorp"
)

// outageBound is the store's Timeout in these tests.
const outageBound = 500 * time.Millisecond

// openBehind opens a store on v through a fault proxy, with the API
// configuration cmd uses (api.DefaultConfig: 60s, two retries) so that
// the store's own bound is what is tested.
func openBehind(t *testing.T, v *devVault, token string, cacheTTL time.Duration) (*hashicorp.Store, *testenv.FaultProxy) {
	t.Helper()
	proxy := testenv.NewFaultProxy(t, strings.TrimPrefix(v.addr, "http://"))
	s := v.open(t, token, func(c *hashicorp.Config) {
		c.Addr = proxy.URL()
		c.API = api.DefaultConfig()
		c.Timeout = outageBound
		c.CacheTTL = cacheTTL
	})
	return s, proxy
}

// TestVaultUnreachableFailsFast: when Vault refuses connections, or accepts
// them and never answers, every read, write and readiness check fails with
// a VaultError within 1.5 times the store's bound (and, once the breaker
// has seen it, at once); a credential cached within its TTL is still
// served; a write reported failed did not land; and within 2s of Vault's
// return the store serves again with nothing lost.
func TestVaultUnreachableFailsFast(t *testing.T) {
	v := startVault(t)
	token := v.token(t, "gateway-service")
	for _, fault := range []struct {
		name string
		f    testenv.Fault
	}{{"refused", testenv.Refuse}, {"blackholed", testenv.Blackhole}} {
		t.Run(fault.name, func(t *testing.T) {
			ctx := t.Context()
			s, proxy := openBehind(t, v, token, -1)
			cached, _ := openBehind(t, v, token, time.Minute)
			tenant := "tenant-" + fault.name
			want := vault.Credential{AccessToken: "ntn_unreachable_1", TokenType: "bearer"}
			version, err := s.Put(ctx, tenant, "notion", want, 0)
			if err != nil {
				t.Fatal(err)
			}
			if _, _, err := cached.Get(ctx, tenant, "notion"); err != nil {
				t.Fatal(err)
			}

			proxy.Set(fault.f)
			// Reads for 2s, one after another: each fails within the bound.
			var calls int
			var slowest time.Duration
			start := time.Now()
			for time.Since(start) < 2*time.Second {
				t0 := time.Now()
				_, _, err := s.Get(ctx, tenant, "notion")
				d := time.Since(t0)
				slowest = max(slowest, d)
				calls++
				assertUnreachable(t, "Get", err)
				if d > outageBound*3/2 {
					t.Errorf("Get %d took %v with Vault %s, want at most %v", calls, d, fault.name, outageBound*3/2)
				}
			}
			rate := float64(calls) / time.Since(start).Seconds()
			t.Logf("Vault %s: %d reads in 2s (%.0f/s), slowest %v", fault.name, calls, rate, slowest)
			if rate < 100 {
				t.Errorf("Vault %s: %.0f failed reads/s, want the store to fail fast (>= 100/s)", fault.name, rate)
			}
			t0 := time.Now()
			err = s.Ping(ctx)
			assertUnreachable(t, "Ping", err)
			if d := time.Since(t0); d > outageBound*3/2 {
				t.Errorf("Ping took %v, want at most %v", d, outageBound*3/2)
			}
			changed := want
			changed.AccessToken = "ntn_unreachable_2"
			t0 = time.Now()
			_, err = s.Put(ctx, tenant, "notion", changed, version)
			assertUnreachable(t, "Put", err)
			if errors.Is(err, hashicorp.ErrWriteOutcomeUnknown) {
				t.Errorf("Put that never reached Vault: %v, want it reported failed, not unknown", err)
			}
			if d := time.Since(t0); d > outageBound*3/2 {
				t.Errorf("Put took %v, want at most %v", d, outageBound*3/2)
			}
			if got, _, err := cached.Get(ctx, tenant, "notion"); err != nil || got.AccessToken != want.AccessToken {
				t.Errorf("cached Get with Vault %s = %q, %v; want the cached credential", fault.name, got.AccessToken, err)
			}

			proxy.Set(testenv.Forward)
			back := time.Now()
			for {
				got, gotVersion, err := s.Get(ctx, tenant, "notion")
				if err == nil {
					t.Logf("served again %v after Vault returned", time.Since(back))
					// The failed write did not land.
					if got.AccessToken != want.AccessToken || gotVersion != version {
						t.Errorf("after the outage: %q at version %d, want %q at %d", got.AccessToken, gotVersion, want.AccessToken, version)
					}
					break
				}
				if time.Since(back) > 2*time.Second {
					t.Fatalf("2s after Vault returned, Get still fails: %v", err)
				}
				time.Sleep(20 * time.Millisecond)
			}
			if err := s.Ping(ctx); err != nil {
				t.Errorf("Ping after Vault returned: %v", err)
			}
			if _, err := s.Put(ctx, tenant, "notion", changed, version); err != nil {
				t.Errorf("Put after Vault returned: %v", err)
			}
		})
	}
}

// TestVaultWriteAnswerLost: a write that reaches Vault but whose answer is
// lost is never reported both failed and landed. If Vault answers again
// while the store resolves it, it is reported written, at the version it
// landed at; if not, it is reported with ErrWriteOutcomeUnknown, and a
// read after Vault returns finds it.
func TestVaultWriteAnswerLost(t *testing.T) {
	v := startVault(t)
	token := v.token(t, "gateway-service")
	ctx := t.Context()
	second := vault.Credential{AccessToken: "ntn_lost_2", CreatedAt: time.Now()}

	t.Run("answer back during the write", func(t *testing.T) {
		s, proxy := openBehind(t, v, token, -1)
		version, err := s.Put(ctx, "tenant-lost-1", "notion", vault.Credential{AccessToken: "ntn_lost_1"}, 0)
		if err != nil {
			t.Fatal(err)
		}
		proxy.SwallowFrom("PUT /v1/secret/data/tenant-lost-1/notion")
		go func() { time.Sleep(outageBound / 2); proxy.Set(testenv.Forward) }()
		wctx, cancel := context.WithTimeout(ctx, 10*outageBound)
		defer cancel()
		got, err := s.Put(wctx, "tenant-lost-1", "notion", second, version)
		if err != nil || got != version+1 {
			t.Errorf("Put whose first answer was lost = version %d, %v; want version %d written", got, err, version+1)
		}
		assertStored(t, s, "tenant-lost-1", "ntn_lost_2", version+1)
	})

	t.Run("answers lost until the end", func(t *testing.T) {
		s, proxy := openBehind(t, v, token, -1)
		version, err := s.Put(ctx, "tenant-lost-2", "notion", vault.Credential{AccessToken: "ntn_lost_1"}, 0)
		if err != nil {
			t.Fatal(err)
		}
		proxy.SwallowFrom("PUT /v1/secret/data/tenant-lost-2/notion")
		t0 := time.Now()
		wctx, cancel := context.WithTimeout(ctx, 10*outageBound)
		defer cancel()
		_, err = s.Put(wctx, "tenant-lost-2", "notion", second, version)
		if !errors.Is(err, hashicorp.ErrWriteOutcomeUnknown) {
			t.Errorf("Put whose answers are all lost: %v, want a VaultError wrapping ErrWriteOutcomeUnknown", err)
		}
		if d := time.Since(t0); d > 3*outageBound {
			t.Errorf("Put took %v, want at most %v (two attempts)", d, 3*outageBound)
		}
		proxy.Set(testenv.Forward)
		time.Sleep(2 * outageBound) // the breaker lets a request through again
		assertStored(t, s, "tenant-lost-2", "ntn_lost_2", version+1)
	})
}

func assertUnreachable(t *testing.T, op string, err error) {
	t.Helper()
	var ve *vault.VaultError
	if !errors.As(err, &ve) || !errors.Is(err, hashicorp.ErrUnreachable) {
		t.Fatalf("%s with Vault down: error = %v, want a VaultError wrapping ErrVaultUnreachable", op, err)
	}
	// The fail-closed paths take a context error for the caller giving up.
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		t.Errorf("%s: %v wraps a context error", op, err)
	}
	if strings.Contains(err.Error(), "127.0.0.1") || strings.Contains(err.Error(), "/v1/") {
		t.Errorf("%s: %v names Vault's address or a path", op, err)
	}
}

func assertStored(t *testing.T, s *hashicorp.Store, tenant, access string, version int64) {
	t.Helper()
	got, gotVersion, err := s.Get(t.Context(), tenant, "notion")
	if err != nil || got.AccessToken != access || gotVersion != version {
		t.Errorf("stored: %q at version %d, %v; want %q at %d", got.AccessToken, gotVersion, err, access, version)
	}
}

// TestVaultCallerDeadlineDoesNotTrip: calls whose own deadline is shorter
// than the bound end at their deadline, and say nothing about Vault: the
// store does not start failing everyone else's calls fast.
func TestVaultCallerDeadlineDoesNotTrip(t *testing.T) {
	v := startVault(t)
	token := v.token(t, "gateway-service")
	s, proxy := openBehind(t, v, token, -1)
	if _, err := s.Put(t.Context(), "tenant-short", "notion", vault.Credential{AccessToken: "ntn_short_1"}, 0); err != nil {
		t.Fatal(err)
	}
	proxy.Set(testenv.Blackhole)
	for range 5 {
		ctx, cancel := context.WithTimeout(t.Context(), outageBound/10)
		_, _, err := s.Get(ctx, "tenant-short", "notion")
		cancel()
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Get past its own deadline: %v, want the context's error", err)
		}
	}
	proxy.Set(testenv.Forward)
	if _, _, err := s.Get(t.Context(), "tenant-short", "notion"); err != nil {
		t.Errorf("Get once Vault answers, after callers gave up early: %v, want it served", err)
	}
}

// TestVaultWritesThroughFaults: writers keep writing their own records
// while Vault is blackholed, answers are swallowed and connections are
// refused, in turn. No write reported failed is ever found in Vault; every
// write reported written is; a write found in Vault past the last one
// reported written is one reported with ErrWriteOutcomeUnknown.
func TestVaultWritesThroughFaults(t *testing.T) {
	v := startVault(t)
	token := v.token(t, "gateway-service")
	s, proxy := openBehind(t, v, token, -1)
	ctx := t.Context()
	created := time.Now()
	stop := make(chan struct{})
	type tally struct{ written, failed, unknown int }
	results := make(chan tally)
	const writers = 4
	for w := range writers {
		go func() {
			var n tally
			defer func() { results <- n }()
			tenant := fmt.Sprintf("tenant-w%d", w)
			failed := map[string]bool{}
			unknown := map[string]bool{}
			cur, err := s.Put(ctx, tenant, "notion", vault.Credential{AccessToken: "ntn_w_start", CreatedAt: created}, 0)
			if err != nil {
				t.Error(err)
				return
			}
			// resync reads the record once Vault answers and checks it.
			resync := func() bool {
				for {
					c, ver, err := s.Get(ctx, tenant, "notion")
					if err == nil {
						if failed[c.AccessToken] {
							t.Errorf("%s: a write reported failed is in Vault: %s at %d", tenant, c.AccessToken, ver)
						}
						if ver != cur && !unknown[c.AccessToken] {
							t.Errorf("%s: at version %d Vault has %s, neither the last written (%d) nor one of unknown outcome", tenant, ver, c.AccessToken, cur)
						}
						cur = ver
						return true
					}
					select {
					case <-stop:
						return false
					case <-time.After(10 * time.Millisecond):
					}
				}
			}
			for i := 0; ; i++ {
				select {
				case <-stop:
					resync()
					return
				default:
				}
				access := fmt.Sprintf("ntn_w%d_%d", w, i)
				// The store bounds a write at two attempts; this bound is
				// for a store that does not.
				wctx, cancel := context.WithTimeout(ctx, 4*outageBound)
				ver, err := s.Put(wctx, tenant, "notion", vault.Credential{AccessToken: access, CreatedAt: created}, cur)
				cancel()
				var conflict *vault.ConflictError
				switch {
				case err == nil:
					n.written++
					cur = ver
				case errors.Is(err, hashicorp.ErrWriteOutcomeUnknown):
					n.unknown++
					unknown[access] = true
					if !resync() {
						return
					}
				case errors.As(err, &conflict):
					t.Errorf("%s: %v, but nobody else writes this record", tenant, err)
					return
				default:
					n.failed++
					failed[access] = true
					time.Sleep(5 * time.Millisecond)
				}
			}
		}()
	}
	for _, f := range []testenv.Fault{testenv.Blackhole, testenv.Swallow, testenv.Refuse, testenv.Swallow} {
		time.Sleep(300 * time.Millisecond)
		proxy.Set(f)
		time.Sleep(2 * outageBound)
		proxy.Set(testenv.Forward)
	}
	time.Sleep(2 * outageBound) // the breaker closes; writers write again
	close(stop)
	var total tally
	for range writers {
		n := <-results
		total.written += n.written
		total.failed += n.failed
		total.unknown += n.unknown
	}
	t.Logf("writes: %d written, %d failed, %d of unknown outcome", total.written, total.failed, total.unknown)
	if total.written == 0 || total.failed == 0 {
		t.Errorf("the faults did not bite: %+v", total)
	}
}

// TestVaultAppRoleAfterOutage: the AppRole token expires while Vault is
// unreachable and every login attempt fails; within 2s of Vault's return
// the store has logged in again and serves (the failed attempts did not
// push the next one back by a growing backoff).
func TestVaultAppRoleAfterOutage(t *testing.T) {
	v := startVault(t)
	if _, err := v.client.Logical().Write("auth/approle/role/outage", map[string]any{
		"token_policies": "gateway-service", "token_ttl": "2s", "token_max_ttl": "2s",
	}); err != nil {
		t.Fatal(err)
	}
	rid, err := v.client.Logical().Read("auth/approle/role/outage/role-id")
	if err != nil {
		t.Fatal(err)
	}
	sid, err := v.client.Logical().Write("auth/approle/role/outage/secret-id", nil)
	if err != nil {
		t.Fatal(err)
	}
	proxy := testenv.NewFaultProxy(t, strings.TrimPrefix(v.addr, "http://"))
	s := v.open(t, "", func(c *hashicorp.Config) {
		c.Addr = proxy.URL()
		c.API = api.DefaultConfig()
		c.Timeout = outageBound
		c.CacheTTL = -1
		c.AppRole = &hashicorp.AppRole{RoleID: rid.Data["role_id"].(string), SecretID: sid.Data["secret_id"].(string)}
	})
	ctx := t.Context()
	if _, err := s.Put(ctx, "tenant-approle", "notion", vault.Credential{AccessToken: "ntn_approle"}, 0); err != nil {
		t.Fatal(err)
	}
	proxy.Set(testenv.Refuse)
	time.Sleep(5 * time.Second) // the token expired at 2s; logins have failed since
	proxy.Set(testenv.Forward)
	back := time.Now()
	for {
		_, _, err := s.Get(ctx, "tenant-approle", "notion")
		if err == nil {
			t.Logf("served again %v after Vault returned", time.Since(back))
			return
		}
		if time.Since(back) > 2*time.Second {
			t.Fatalf("2s after Vault returned: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestVaultOtherWritesAnswerLost: the store's other check-and-set writes
// (tenant settings, API keys, claims) whose first answer is lost are
// reported as what happened: written, not failed (nor, for a claim, held
// by someone else, when it is ours).
func TestVaultOtherWritesAnswerLost(t *testing.T) {
	v := startVault(t)
	token := v.token(t, "gateway-service")
	ctx := t.Context()
	for _, w := range []struct {
		name, marker string
		write        func(s *hashicorp.Store) error
		check        func(s *hashicorp.Store) error
	}{
		{"settings", "PUT /v1/secret/data/_settings/tenant-set",
			func(s *hashicorp.Store) error {
				_, err := s.PutTenantSettings(ctx, "tenant-set", []byte(`{"disabled":["slack"]}`), 0)
				return err
			},
			func(s *hashicorp.Store) error {
				rec, version, err := s.GetTenantSettings(ctx, "tenant-set")
				if err == nil && (string(rec) != `{"disabled":["slack"]}` || version != 1) {
					err = fmt.Errorf("settings %s at version %d", rec, version)
				}
				return err
			}},
		{"API key", "PUT /v1/secret/data/_apikeys/key-lost",
			func(s *hashicorp.Store) error { return s.PutAPIKey(ctx, "key-lost", []byte(`{"hash":"h1"}`)) },
			func(s *hashicorp.Store) error {
				rec, err := s.GetAPIKey(ctx, "key-lost")
				if err == nil && string(rec) != `{"hash":"h1"}` {
					err = fmt.Errorf("API key record %s", rec)
				}
				return err
			}},
		{"claim", "PUT /v1/secret/data/_claims/",
			func(s *hashicorp.Store) error {
				return s.Claim(ctx, "refresh/tenant-c/notion", time.Now().Add(time.Minute))
			},
			func(s *hashicorp.Store) error {
				if err := s.Claim(ctx, "refresh/tenant-c/notion", time.Now().Add(time.Minute)); !errors.Is(err, vault.ErrClaimed) {
					return fmt.Errorf("claiming again: %v, want ErrClaimed", err)
				}
				return nil
			}},
	} {
		t.Run(w.name, func(t *testing.T) {
			s, proxy := openBehind(t, v, token, -1)
			proxy.SwallowFrom(w.marker)
			go func() { time.Sleep(outageBound / 2); proxy.Set(testenv.Forward) }()
			if err := w.write(s); err != nil {
				t.Errorf("write whose first answer was lost: %v, want it written", err)
			}
			if err := w.check(s); err != nil {
				t.Error(err)
			}
		})
	}
}
