package main

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/connectors-gateway/connectors/internal/fakeoauth"
	"github.com/connectors-gateway/connectors/internal/testidp"
)

// consentGateway runs a gateway whose integration "gh" links at a fake
// GitHub (PKCE verified), on the store named (embedded, or a real Vault),
// at a public URL Chromium can reach. With idp, browser sign-in is
// configured at that OpenID provider.
func consentGateway(t *testing.T, store string, idp *testidp.IDP) (*gateway, *fakeoauth.Server, string) {
	t.Helper()
	fake := fakeoauth.New(t, fakeoauth.GitHub, "gh-client", "gh-s3cret")
	addr := freeAddr(t)
	public := "http://" + addr
	env := oauthEnv("gh", map[string]string{"CONNECTORS_PUBLIC_URL": public})
	if store == "vault" {
		vaddr, _, token := gatewayVault(t)
		env["VAULT_ADDR"], env["VAULT_TOKEN"] = vaddr, token
	}
	if idp != nil {
		idp.AddWebClient(testidp.WebClient{ID: "gateway-web", Secret: "web-s3cret", RedirectURIs: []string{public + "/auth/callback"}})
		env["CONNECTORS_OIDC_ISSUER"] = idp.Issuer
		env["CONNECTORS_RESOURCE"] = resource
		env["CONNECTORS_BROWSER_CLIENT_ID"] = "gateway-web"
		env["CONNECTORS_BROWSER_CLIENT_SECRET"] = "web-s3cret"
	}
	g := newGatewayWithEnv(t, env, oauthIntegration(t, "gh", fake))
	g.bind = addr
	g.serve()
	return g, fake, public
}

// TestBrowserLinkThroughConsent: in a real browser, on both stores, an
// agent's link opens the gateway's consent page, which names integration,
// tenant and who asked; confirming goes through the provider and stores
// the credential for that tenant only. The provider's approval is refused
// in any other browser (another person's, a script without the cookie)
// without spending it, and refused when replayed; refused attempts store
// nothing.
func TestBrowserLinkThroughConsent(t *testing.T) {
	browser := chromium(t)
	for _, store := range []string{"embedded", "vault"} {
		t.Run(store, func(t *testing.T) {
			g, fake, base := consentGateway(t, store, nil)

			// The whole flow.
			alice := newPerson(t, browser)
			loc, text := alice.open(g.agentLink(base, "tenant-a", "gh"))
			if !strings.HasPrefix(loc, base+"/oauth/link/") || !strings.Contains(text, "Link your gh account?") ||
				!strings.Contains(text, "into the tenant tenant-a") || !strings.Contains(text, "on behalf of apikey:") {
				t.Fatalf("the agent's link shows %s:\n%s\nwant the consent page naming gh, tenant-a and the API key", loc, text)
			}
			if g.linked("tenant-a", "gh") || fake.Exchanges() != 0 {
				t.Fatal("opening the consent page linked something")
			}
			alice.confirm()
			if _, text := alice.waitFor("/oauth/callback/gh"); !strings.Contains(text, "gh is connected") {
				t.Fatalf("after confirming: %s", text)
			}
			if !g.linked("tenant-a", "gh") || g.linked("tenant-b", "gh") {
				t.Fatal("the credential is not stored for tenant-a alone")
			}
			if tok := probe(t, g.client("tenant-a"), "gh_env"); !fake.Valid(tok) {
				t.Errorf("tenant-a's upstream got %.8q…, not the token the provider issued", tok)
			}

			// A callback in another browser than the one that confirmed.
			mallory := newPerson(t, browser)
			bob := newPerson(t, browser)
			held := bob.holdCallbacks()
			bob.open(g.agentLink(base, "tenant-b", "gh"))
			bob.confirm()
			var callback string
			select {
			case callback = <-held:
			case <-time.After(30 * time.Second):
				t.Fatal("the provider did not send the browser back to the callback")
			}
			bob.releaseCallbacks()
			if u, _ := url.Parse(callback); u.Query().Get("code") == "" || u.Query().Get("state") == "" {
				t.Fatalf("held callback %s, want the provider's code and state", callback)
			}
			if _, text := mallory.open(callback); !strings.Contains(text, "StateBrowserMismatch") {
				t.Errorf("the approval opened in another browser: %s, want StateBrowserMismatch", text)
			}
			resp, body := g.getAs("", callback)
			if resp.StatusCode != http.StatusForbidden || !strings.Contains(body, "StateBrowserMismatch") {
				t.Errorf("the approval replayed without the cookie: %s %s, want 403 StateBrowserMismatch", resp.Status, body)
			}
			if g.linked("tenant-b", "gh") || fake.Exchanges() != 1 {
				t.Fatalf("a callback in a foreign browser stored a credential (%d exchanges)", fake.Exchanges())
			}
			// The person who confirmed still can; once.
			if _, text := bob.open(callback); !strings.Contains(text, "gh is connected") {
				t.Fatalf("the confirming browser after refused attempts: %s", text)
			}
			if !g.linked("tenant-b", "gh") {
				t.Fatal("not stored for tenant-b")
			}
			if _, text := bob.open(callback); !strings.Contains(text, "StateAlreadyUsed") {
				t.Errorf("the approval replayed in the same browser: %s, want StateAlreadyUsed", text)
			}
			if fake.Exchanges() != 2 {
				t.Errorf("%d code exchanges, want 2", fake.Exchanges())
			}
			g.assertNoSecrets()
		})
	}
}

// TestBrowserLinkSignedIn: with browser sign-in configured, a person who
// opens a link must be signed in as a user of its tenant. Not signed in,
// they are asked to sign in (the provider's login form) and brought back;
// signed in as another tenant, refused with nothing stored, and recorded.
func TestBrowserLinkSignedIn(t *testing.T) {
	browser := chromium(t)
	for _, store := range []string{"embedded", "vault"} {
		t.Run(store, func(t *testing.T) {
			idp := testidp.Start(t)
			g, fake, base := consentGateway(t, store, idp)

			// tenant-b's user opens tenant-a's link.
			idp.SetUserClaims(testidp.UserID, map[string]any{"tenant_id": "tenant-b"})
			mallory := newPerson(t, browser)
			loc, _ := mallory.open(g.agentLink(base, "tenant-a", "gh"))
			if !strings.HasPrefix(loc, idp.Issuer) {
				t.Fatalf("a link opened without signing in lands on %s, want the provider's login form", loc)
			}
			mallory.signIn(idp.TestUsername(), testidp.UserPassword)
			if _, text := mallory.waitFor("/oauth/link/"); !strings.Contains(text, "StateTenantMismatch") || strings.Contains(text, "Link gh into") {
				t.Fatalf("signed in as tenant-b, tenant-a's link shows: %s, want StateTenantMismatch and no button", text)
			}
			if g.linked("tenant-a", "gh") || g.linked("tenant-b", "gh") || fake.Exchanges() != 0 {
				t.Fatal("a refused consent stored a credential")
			}
			var records []string
			for line := range strings.Lines(g.stderr.String()) {
				if strings.Contains(line, `"operation":"access_denied"`) && strings.Contains(line, `"tenantId":"tenant-a"`) {
					records = append(records, line)
				}
			}
			if len(records) != 1 || !strings.Contains(records[0], "tenant-b") || !strings.Contains(records[0], `"subject":"oidc:`) && !strings.Contains(records[0], `"subject":"`+testidp.UserID) {
				t.Errorf("the refused cross-tenant consent left %d audit records, want one naming tenant-a, the tenant-b caller and their subject: %q", len(records), records)
			}

			// tenant-a's user: asked to sign in, then the consent page, then linked.
			idp.SetUserClaims(testidp.UserID, map[string]any{"tenant_id": "tenant-a"})
			alice := newPerson(t, browser)
			if loc, _ := alice.open(g.agentLink(base, "tenant-a", "gh")); !strings.HasPrefix(loc, idp.Issuer) {
				t.Fatalf("not signed in: at %s, want the provider's login form", loc)
			}
			alice.signIn(idp.TestUsername(), testidp.UserPassword)
			if _, text := alice.waitFor("/oauth/link/"); !strings.Contains(text, "into the tenant tenant-a") {
				t.Fatalf("signed in as tenant-a: %s", text)
			}
			alice.confirm()
			if _, text := alice.waitFor("/oauth/callback/gh"); !strings.Contains(text, "gh is connected") {
				t.Fatalf("after confirming: %s", text)
			}
			if !g.linked("tenant-a", "gh") || g.linked("tenant-b", "gh") {
				t.Fatal("the credential is not stored for tenant-a alone")
			}
			g.assertNoSecrets()
		})
	}
}
