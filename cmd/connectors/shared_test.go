package main

import (
	"encoding/hex"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/vault/api"

	"github.com/connectors-gateway/connectors/internal/fakeoauth"
)

// sharedBound is how long a replica may take to show what another learnt:
// the health writer's settling and one write, or a usage flush (100ms in
// these tests) and its read.
const sharedBound = 5 * time.Second

// healthOf returns g's health of tenant's integration, from its route.
func (g *gateway) healthOf(tenant, integration string) (status string, failures float64, lastErr, raw string) {
	g.t.Helper()
	code, out, raw := g.api(tenant, "GET", "/tenants/"+tenant+"/integrations/"+integration, "")
	if code != http.StatusOK {
		g.t.Fatalf("GET %s/%s: %d %s", tenant, integration, code, raw)
	}
	h, _ := out["health"].(map[string]any)
	status, _ = out["status"].(string)
	failures, _ = h["failures"].(float64)
	lastErr, _ = h["lastError"].(string)
	return status, failures, lastErr, raw
}

// eventually retries check every 50ms until it returns "" or bound
// passes, and then fails t with what it returned last.
func eventually(t *testing.T, bound time.Duration, check func() string) time.Duration {
	t.Helper()
	start := time.Now()
	for {
		msg := check()
		if msg == "" {
			return time.Since(start)
		}
		if time.Since(start) > bound {
			t.Fatalf("after %v: %s", bound, msg)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// records lists the tenant's records in Vault (as an operator would).
func records(t *testing.T, root *api.Client, tenant string) []any {
	t.Helper()
	var out []any
	for _, dir := range []string{"", "health/"} {
		s, err := root.Logical().List("secret/metadata/_records/" + tenant + "/" + dir)
		if err != nil {
			t.Fatal(err)
		}
		if s != nil {
			keys, _ := s.Data["keys"].([]any)
			out = append(out, keys...)
		}
	}
	return out
}

// TestSharedHealth: two replicas on one Vault (gateway policy). A refresh
// failing on a shows refresh_failed, with the same failure count, on b's
// route, and on a after a restart (a new Main, which knows nothing of it
// but the store); after a successful refresh both show active. A health
// record that does not parse is ignored; off-boarding deletes the records.
func TestSharedHealth(t *testing.T) {
	fake := fakeoauth.New(t, fakeoauth.GitHub, "gh-client", "gh-client-s3cret")
	vaultAddr, root, token := gatewayVault(t)
	env := oauthEnv("gh", map[string]string{
		"GH_CLIENT_ID": "gh-client", "GH_CLIENT_SECRET": "gh-client-s3cret",
		"VAULT_ADDR": vaultAddr, "VAULT_TOKEN": token, "CONNECTORS_VAULT_CACHE_TTL": "0s",
		// One failure, then quiet: the count is the test's to read.
		"CONNECTORS_REFRESH_MIN_BACKOFF": "10m", "CONNECTORS_REFRESH_MAX_BACKOFF": "10m",
		"CONNECTORS_REFRESH_MAX_FAILURES": "1000",
	})
	a := newGatewayWithEnv(t, env, oauthIntegration(t, "gh", fake))
	a.withAdmin()
	_, stopA := a.start()
	b := a.twin()
	b.serve()

	// A working credential first (the catalogue is learnt through it).
	access, refresh := fake.IssueToken()
	body := fmt.Sprintf(`{"accessToken": %q, "refreshToken": %q, "expiresIn": 3600}`, access, refresh)
	if status, _, raw := a.api("tenant-a", "POST", "/tenants/tenant-a/integrations/gh/credentials", body); status != http.StatusCreated {
		t.Fatalf("POST credentials: %d %s", status, raw)
	}
	probe(t, a.client("tenant-a"), "gh_env")

	// Through a, a credential that has expired, while the provider is down:
	// a's refresher tries at once, and fails.
	fake.SetMode(fakeoauth.Down)
	access, refresh = fake.IssueToken()
	body = fmt.Sprintf(`{"accessToken": %q, "refreshToken": %q, "expiresIn": 1}`, access, refresh)
	if status, _, raw := a.api("tenant-a", "POST", "/tenants/tenant-a/integrations/gh/credentials", body); status != http.StatusCreated {
		t.Fatalf("POST credentials: %d %s", status, raw)
	}
	var failures float64
	took := eventually(t, sharedBound, func() string {
		sa, fa, ea, rawA := a.healthOf("tenant-a", "gh")
		sb, fb, eb, rawB := b.healthOf("tenant-a", "gh")
		if sa != "refresh_failed" || sb != "refresh_failed" || fa < 1 || fa != fb || ea == "" || eb == "" {
			return fmt.Sprintf("a: %s\nb: %s\nwant both refresh_failed with one failure count and a last error", rawA, rawB)
		}
		failures = fa
		return ""
	})
	t.Logf("b showed a's refresh_failed (%v failures) %v after the failing credential was stored", failures, took.Round(time.Millisecond))
	if _, _, lastErr, _ := b.healthOf("tenant-a", "gh"); strings.Contains(lastErr, refresh) || strings.Contains(lastErr, access) {
		t.Fatal("a token in the shared last error")
	}
	// Another tenant's health is its own.
	if status, _, _, raw := b.healthOf("tenant-b", "notion"); status == "refresh_failed" {
		t.Errorf("tenant-b's notion on b: %s", raw)
	}

	// a restarts: the new process knows only what the store says, and
	// tries once more at start, which counts on from there (alone, it would
	// count 1).
	stopA()
	a2 := a.twin()
	a2.serve()
	eventually(t, sharedBound, func() string {
		s, f, e, raw := a2.healthOf("tenant-a", "gh")
		_, fb, _, _ := b.healthOf("tenant-a", "gh")
		if s != "refresh_failed" || f != failures+1 || fb != f || e == "" {
			return fmt.Sprintf("a after a restart: %s (b counts %v); want refresh_failed with %v failures on both", raw, fb, failures+1)
		}
		return ""
	})

	// Hostile: a health record that does not parse is ignored, and logged.
	if _, err := root.Logical().Write("secret/data/_records/tenant-b/health/notion", map[string]any{"data": map[string]any{"record": "bm90IGpzb24="}}); err != nil {
		t.Fatal(err)
	}
	if status, _, _, raw := b.healthOf("tenant-b", "notion"); status != "active" {
		t.Errorf("tenant-b's notion with a garbage health record: %s, want active", raw)
	}
	if !strings.Contains(b.stderr.String(), `"msg":"shared_record_malformed"`) {
		t.Error("the garbage health record was not logged")
	}

	// The provider is back: a call through a2 with the expired token
	// refreshes it (a probe), and both replicas show active.
	fake.SetMode(fakeoauth.OK)
	c2 := a2.client("tenant-a")
	eventually(t, 20*time.Second, func() string {
		res, err := call(t.Context(), c2, "gh_env", map[string]any{"hex": true})
		if err != nil || res.IsError {
			return fmt.Sprintf("call through a2 once the provider is back: %v %v", res, err)
		}
		if text := toolText(t, res); strings.Contains(text, "PROBE_TOKEN="+hex.EncodeToString([]byte(access))) {
			return "the call through a2 ran with the old token (not expired yet)"
		}
		return ""
	})
	bothActive(t, "after the refresh", a2, b)

	// Deleted through a2: b, which was not told, shows it revoked; linked
	// again through a2, active on both.
	if status, _, raw := a2.api("tenant-a", "DELETE", "/tenants/tenant-a/integrations/gh/credentials", ""); status != http.StatusOK {
		t.Fatalf("DELETE through a2: %d %s", status, raw)
	}
	eventually(t, sharedBound, func() string {
		if s, _, _, raw := b.healthOf("tenant-a", "gh"); s != "revoked" {
			return "b after the delete through a2: " + raw + ", want revoked"
		}
		return ""
	})
	access, refresh = fake.IssueToken()
	body = fmt.Sprintf(`{"accessToken": %q, "refreshToken": %q, "expiresIn": 3600}`, access, refresh)
	if status, _, raw := a2.api("tenant-a", "POST", "/tenants/tenant-a/integrations/gh/credentials", body); status != http.StatusCreated {
		t.Fatalf("POST credentials: %d %s", status, raw)
	}
	bothActive(t, "linked again", a2, b)

	offboardRecords(t, a, root)
}

// bothActive waits until tenant-a's gh is active on a and on b.
func bothActive(t *testing.T, when string, a, b *gateway) {
	t.Helper()
	eventually(t, sharedBound, func() string {
		sa, _, _, rawA := a.healthOf("tenant-a", "gh")
		sb, _, _, rawB := b.healthOf("tenant-a", "gh")
		if sa != "active" || sb != "active" {
			return fmt.Sprintf("%s:\na: %s\nb: %s\nwant both active", when, rawA, rawB)
		}
		return ""
	})
}

// offboardRecords off-boards tenant-a through g's CLI (with root: the
// gateway policy may not delete a key) and checks that none of its records
// is left in Vault, and that tenant-b's are.
func offboardRecords(t *testing.T, g *gateway, root *api.Client) {
	t.Helper()
	if len(records(t, root, "tenant-a")) == 0 {
		t.Fatal("no record of tenant-a in Vault before off-boarding: nothing was shared")
	}
	admin := g.twin()
	admin.env["VAULT_TOKEN"] = root.Token()
	admin.mustRun("", "tenant", "offboard", "--tenant", "tenant-a")
	if left := records(t, root, "tenant-a"); len(left) != 0 {
		t.Errorf("tenant-a's records after off-boarding: %v", left)
	}
	if len(records(t, root, "tenant-b")) == 0 {
		t.Error("off-boarding tenant-a deleted tenant-b's records")
	}
}

// usageOf returns g's usage route of tenant: status, calls, body.
func (g *gateway) usageOf(tenant string) (int, float64, map[string]any, string) {
	g.t.Helper()
	code, out, raw := g.api("admin", "GET", "/admin/tenants/"+tenant+"/usage", "")
	calls, _ := out["apiCalls"].(float64)
	return code, calls, out, raw
}

// echo makes n calls of everything_echo as tenant through g.
func (g *gateway) echo(t *testing.T, tenant string, n int) {
	t.Helper()
	c := g.client(tenant)
	for i := range n {
		mustCall(t, c, "everything_echo", map[string]any{"message": fmt.Sprint("call ", i)})
	}
}

// TestSharedUsage: calls made through two replicas on one Vault (gateway
// policy) sum in the usage route of either within the flush interval;
// calls on a replica that flushes rarely reach the store when it stops;
// the figures survive a restart; another tenant's are its own; a usage
// record that does not parse is ignored, logged and replaced; off-boarding
// deletes the tenant's record.
func TestSharedUsage(t *testing.T) {
	a, b, root, stopA := usageReplicas(t) // usagedaily_test.go

	a.echo(t, "tenant-a", 3)
	b.echo(t, "tenant-a", 2)
	b.echo(t, "tenant-b", 1)
	var since any
	took := eventually(t, sharedBound, func() string {
		codeA, ca, outA, rawA := a.usageOf("tenant-a")
		codeB, cb, outB, rawB := b.usageOf("tenant-a")
		if codeA != http.StatusOK || codeB != http.StatusOK || ca != 5 || cb != 5 || outA["since"] != outB["since"] {
			return fmt.Sprintf("tenant-a's usage\na: %s\nb: %s\nwant 5 calls on both, since the same time", rawA, rawB)
		}
		since = outA["since"]
		if in := fmt.Sprint(outA["activeIntegrations"]); in != "[everything]" {
			return "active integrations: " + in
		}
		return ""
	})
	t.Logf("calls through a and b summed on both %v after the last call (flush interval 100ms)", took.Round(time.Millisecond))
	eventually(t, sharedBound, func() string {
		if code, calls, _, raw := a.usageOf("tenant-b"); code != http.StatusOK || calls != 1 {
			return "tenant-b's usage on a: " + raw + ", want 1 call (b's)"
		}
		return ""
	})

	// A replica that flushes once an hour: its calls reach the store when
	// it stops (after the drain).
	c := a.twin()
	c.env["CONNECTORS_USAGE_FLUSH_INTERVAL"] = "1h"
	_, stopC := c.start()
	c.echo(t, "tenant-a", 4)
	if _, calls, _, raw := b.usageOf("tenant-a"); calls != 5 {
		t.Fatalf("b counts c's unflushed calls: %s", raw)
	}
	stopC()
	if _, calls, _, raw := b.usageOf("tenant-a"); calls != 9 {
		t.Errorf("after c stopped, b's usage of tenant-a: %s; want 9 calls", raw)
	}

	// a restarts: the figures are the store's.
	stopA()
	a2 := a.twin()
	a2.serve()
	if code, calls, out, raw := a2.usageOf("tenant-a"); code != http.StatusOK || calls != 9 || out["since"] != since {
		t.Errorf("tenant-a's usage after a restart: %s; want 9 calls since %v", raw, since)
	}
	if _, calls, _, raw := a2.usageOf("tenant-b"); calls != 1 {
		t.Errorf("tenant-b's usage after a restart: %s; want 1 call", raw)
	}
	// Top-N: the tenants a replica counted for, by their shared figures.
	a2.echo(t, "tenant-b", 1)
	eventually(t, sharedBound, func() string {
		_, out, raw := a2.api("admin", "GET", "/admin/usage?top=5", "")
		list, _ := out["tenants"].([]any)
		if len(list) != 1 || fmt.Sprint(list[0].(map[string]any)["apiCalls"]) != "2" {
			return "top on a2: " + raw + "; want tenant-b alone (the one it counted for) with 2 calls"
		}
		return ""
	})

	// Hostile: a usage record that does not parse is ignored (logged), and
	// the next flush replaces it.
	if _, err := root.Logical().Write("secret/data/_records/tenant-b/usage", map[string]any{"data": map[string]any{"record": "eyJhcGlDYWxscyI6LTF9"}}); err != nil { // {"apiCalls":-1}
		t.Fatal(err)
	}
	if code, _, _, raw := b.usageOf("tenant-b"); code >= 500 {
		t.Errorf("usage with a malformed record: %s", raw)
	}
	if !strings.Contains(b.stderr.String(), `"msg":"shared_record_malformed"`) {
		t.Error("the malformed usage record was not logged")
	}
	b.echo(t, "tenant-b", 1)
	eventually(t, sharedBound, func() string {
		if _, calls, _, raw := a2.usageOf("tenant-b"); calls != 1 {
			return "tenant-b's usage after the malformed record: " + raw + ", want 1 call (counted since)"
		}
		return ""
	})

	offboardRecords(t, a, root)
}
