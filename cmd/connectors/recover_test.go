package main

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/client"

	"github.com/connectors-gateway/connectors/internal/fakeoauth"
	"github.com/connectors-gateway/connectors/internal/testenv"
)

// recoveryGateway serves integration gh, linked through fake, on the
// named store, with a backoff after a failed refresh (1m to 30m) far
// longer than any test here waits.
func recoveryGateway(t *testing.T, store string, fake *fakeoauth.Server, extra map[string]string) *gateway {
	env := oauthEnv("gh", map[string]string{
		"GH_CLIENT_ID": "gh-client", "GH_CLIENT_SECRET": "gh-client-s3cret",
		"CONNECTORS_REFRESH_MIN_BACKOFF": "1m", "CONNECTORS_REFRESH_MAX_BACKOFF": "30m",
	})
	if store == "vault" {
		addr, root := testenv.Vault(t)
		env["VAULT_ADDR"], env["VAULT_TOKEN"] = addr, root
	}
	for k, v := range extra {
		env[k] = v
	}
	g := newGatewayWithEnv(t, env, oauthIntegration(t, "gh", fake))
	g.withAdmin()
	g.serve()
	return g
}

// postCredential stores a token pair fake issued for tenant, expiring in
// expiresIn seconds, through the credential API.
func (g *gateway) postCredential(tenant string, fake *fakeoauth.Server, expiresIn int) string {
	g.t.Helper()
	access, refresh := fake.IssueToken()
	body := fmt.Sprintf(`{"accessToken": %q, "refreshToken": %q, "expiresIn": %d}`, access, refresh, expiresIn)
	if status, _, raw := g.api(tenant, "POST", "/tenants/"+tenant+"/integrations/gh/credentials", body); status != http.StatusCreated {
		g.t.Fatalf("POST credentials: %d %s", status, raw)
	}
	return access
}

// timedCall calls gh_env and returns the tool's text (or the error) and
// how long it took.
func timedCall(t *testing.T, c *client.Client, limit time.Duration) (text string, ok bool, took time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), limit)
	defer cancel()
	start := time.Now()
	res, err := call(ctx, c, "gh_env", map[string]any{"hex": true})
	took = time.Since(start)
	switch {
	case err != nil:
		return err.Error(), false, took
	case res.IsError:
		return toolText(t, res), false, took
	}
	return toolText(t, res), true, took
}

// assertNoAddress fails if an answer to the agent names where something
// is: the provider's address, a URL, a dial error.
func assertNoAddress(t *testing.T, text string, fake *fakeoauth.Server) {
	t.Helper()
	for _, s := range []string{fake.URL(), strings.TrimPrefix(fake.URL(), "http://"), "127.0.0.1", "http://", "dial tcp", "access_token"} {
		if strings.Contains(text, s) {
			t.Errorf("the agent's answer %q names %q", text, s)
		}
	}
}

// TestRefreshRecoversOnNextCall: the provider fails a tenant's refresh and
// the backoff (1m) starts; a storm of 50 concurrent callers with the
// expired token makes at most one probe a second; once the provider is
// back, the next call (within the probe interval) refreshes and works,
// rather than failing until the backoff's timer. On both stores.
func TestRefreshRecoversOnNextCall(t *testing.T) {
	for _, store := range []string{"embedded", "vault"} {
		t.Run(store, func(t *testing.T) {
			fake := fakeoauth.New(t, fakeoauth.GitHub, "gh-client", "gh-client-s3cret")
			g := recoveryGateway(t, store, fake, nil)
			g.postCredential("tenant-a", fake, 3600)
			c := g.client("tenant-a")
			probe(t, c, "gh_env") // the catalogue, learnt with a working token

			fake.SetMode(fakeoauth.Down)
			old := g.postCredential("tenant-a", fake, 1) // expired at once: its scheduled refresh fails
			waitFor(t, 10*time.Second, func() bool { return fake.RefreshAttempts() >= 1 })
			time.Sleep(time.Second) // past its expiry: a token close to it is still used
			text, ok, _ := timedCall(t, c, 10*time.Second)
			if ok || !strings.Contains(text, "the gh token could not be refreshed: the provider answered with an error (HTTP 503)") {
				t.Fatalf("call while the provider is down: %q, want that the gh token could not be refreshed, and why", text)
			}
			assertNoAddress(t, text, fake)

			// The storm: 50 callers, each calling again as soon as it is answered.
			before := fake.RefreshAttempts()
			stormStart := time.Now()
			var wg sync.WaitGroup
			var mu sync.Mutex
			answers := 0
			for range 50 {
				wg.Go(func() {
					for time.Since(stormStart) < 3*time.Second {
						if _, ok, _ := timedCall(t, c, 10*time.Second); ok {
							t.Error("a call succeeded while the provider was down")
						}
						mu.Lock()
						answers++
						mu.Unlock()
					}
				})
			}
			wg.Wait()
			storm := time.Since(stormStart)
			probes := fake.RefreshAttempts() - before
			t.Logf("storm: %d calls in %v made %d refresh requests", answers, storm.Round(time.Millisecond), probes)
			if limit := int(storm/time.Second) + 1; probes > limit {
				t.Errorf("%d refresh requests in %v of storm, want at most one a second (%d)", probes, storm, limit)
			}

			fake.SetMode(fakeoauth.OK)
			back := time.Now()
			for {
				text, ok, _ := timedCall(t, c, 10*time.Second)
				if ok {
					break
				}
				if time.Since(back) > 10*time.Second {
					t.Fatalf("no recovery within 10s of the provider's return (backoff 1m): %q", text)
				}
				time.Sleep(50 * time.Millisecond)
			}
			recovered := time.Since(back)
			t.Logf("recovered %v after the provider came back", recovered.Round(time.Millisecond))
			if recovered > 2*time.Second {
				t.Errorf("recovered %v after the provider came back, want within the probe interval (1s)", recovered)
			}
			if tok := probe(t, c, "gh_env"); tok == old || !fake.Valid(tok) {
				t.Error("after recovery the call runs with a token the provider refuses")
			}
			if _, out, raw := g.api("tenant-a", "GET", "/tenants/tenant-a/integrations/gh", ""); out["status"] != "active" {
				t.Errorf("health after recovery: %s, want active", raw)
			}
			if n := fake.Refreshes(); n != 1 {
				t.Errorf("%d refreshes after recovery, want 1", n)
			}
			g.assertNoSecretsIn(old)
		})
	}
}

// TestRefreshHangingProvider: the provider accepts refreshes and never
// answers. A tenant whose token is still valid (its refresh is due, and
// hangs) calls as fast as ever; a tenant whose token has expired is told,
// within CONNECTORS_REFRESH_TIMEOUT, that the token could not be refreshed
// because the provider did not answer in time, with no address; once the
// provider answers, its next call works at once.
func TestRefreshHangingProvider(t *testing.T) {
	fake := fakeoauth.New(t, fakeoauth.GitHub, "gh-client", "gh-client-s3cret")
	g := recoveryGateway(t, "embedded", fake, map[string]string{"CONNECTORS_REFRESH_TIMEOUT": "1s"})
	g.postCredential("tenant-a", fake, 3600)
	g.postCredential("tenant-b", fake, 3600)
	ca, cb := g.client("tenant-a"), g.client("tenant-b")
	probe(t, ca, "gh_env")
	probe(t, cb, "gh_env")
	var normal []time.Duration
	for range 20 {
		if text, ok, took := timedCall(t, ca, 10*time.Second); !ok {
			t.Fatalf("call: %q", text)
		} else {
			normal = append(normal, took)
		}
	}

	fake.SetMode(fakeoauth.Hang)
	// tenant-a: valid two more minutes, so within the refresh margin (5m):
	// its refresh is due now, and hangs.
	valid := g.postCredential("tenant-a", fake, 120)
	waitFor(t, 10*time.Second, func() bool { return fake.RefreshAttempts() >= 1 })
	var hung []time.Duration
	for range 20 {
		text, ok, took := timedCall(t, ca, 10*time.Second)
		if !ok {
			t.Fatalf("call with a valid token while its refresh hangs: %q", text)
		}
		hung = append(hung, took)
	}
	slices.Sort(normal)
	slices.Sort(hung)
	t.Logf("tenant-a latency, median/max: %v/%v normally, %v/%v while its refresh hangs",
		normal[10], normal[19], hung[10], hung[19])
	if hung[19] > normal[19]+500*time.Millisecond {
		t.Errorf("a call with a valid token took %v while a refresh hung (normally %v at most)", hung[19], normal[19])
	}
	if tok := probe(t, ca, "gh_env"); tok != valid {
		t.Error("tenant-a's call did not run with its still-valid token")
	}

	// tenant-b: expired; its callers need the new token.
	// Its scheduled refresh hangs and fails after the timeout (1s); a
	// probe interval (1s) later, its callers probe, and wait for that.
	g.postCredential("tenant-b", fake, 1)
	time.Sleep(2100 * time.Millisecond)
	var wg sync.WaitGroup
	for range 5 {
		wg.Go(func() {
			text, ok, took := timedCall(t, cb, 10*time.Second)
			t.Logf("tenant-b, expired token, provider hung: answered in %v", took.Round(time.Millisecond))
			if ok || !strings.Contains(text, "the gh token could not be refreshed: the provider did not answer in time") {
				t.Errorf("call with an expired token, provider hung: %q after %v, want that the provider did not answer in time", text, took)
			}
			if took > 2500*time.Millisecond {
				t.Errorf("call with an expired token, provider hung, answered after %v, want within the refresh timeout (1s, twice for the wait)", took)
			}
			assertNoAddress(t, text, fake)
		})
	}
	wg.Wait()

	fake.SetMode(fakeoauth.OK)
	time.Sleep(1100 * time.Millisecond) // the probe interval
	text, ok, took := timedCall(t, cb, 10*time.Second)
	t.Logf("tenant-b, provider answering again: recovered in %v", took.Round(time.Millisecond))
	if !ok || took > time.Second {
		t.Fatalf("the first call once the provider answers: %q after %v, want success at once", text, took)
	}
	g.assertNoSecretsIn(valid)
}

// waitFor polls cond until it holds, failing the test after limit.
func waitFor(t *testing.T, limit time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met in time")
		}
		time.Sleep(10 * time.Millisecond)
	}
}
