package oauth_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/oauth2"

	"github.com/connectors-gateway/connectors/internal/fakeoauth"
	"github.com/connectors-gateway/connectors/oauth"
	"github.com/connectors-gateway/connectors/vault"
)

const provRedirect = "https://gateway.example/oauth/callback"

// provSecret is the client secret of kind's fake: no error may contain it.
func provSecret(kind string) string { return "cs-" + kind + "-do-not-leak-4f2a9c" }

// provAtFake starts a fake provider of kind and returns it with a
// Provider configured like the preset, pointing at it.
func provAtFake(t *testing.T, kind string) (*fakeoauth.Server, *oauth.Provider) {
	t.Helper()
	fake := fakeoauth.New(t, kind, "client-"+kind, provSecret(kind))
	o := fake.OAuth()
	return fake, &oauth.Provider{
		Integration:  kind,
		Kind:         o.Kind,
		ClientID:     "client-" + kind,
		ClientSecret: provSecret(kind),
		AuthorizeURL: o.AuthorizeURL,
		TokenURL:     o.TokenURL,
		RevokeURL:    o.RevokeURL,
		Scopes:       o.Scopes,
		AuthStyle:    o.AuthStyle,
		PKCE:         o.UsesPKCE(),
	}
}

// provCode plays the browser at the fake: it follows authURL and returns
// the code it redirects back with.
func provCode(t *testing.T, fake *fakeoauth.Server, authURL string) string {
	t.Helper()
	target, err := fake.Authorize(t.Context(), authURL)
	if err != nil {
		t.Fatalf("authorize: %v", err)
	}
	q := target.Query()
	if q.Get("state") != "st4te" || q.Get("code") == "" {
		t.Fatalf("authorize redirected to %s, want code and state=st4te", target)
	}
	if got := target.Scheme + "://" + target.Host + target.Path; got != provRedirect {
		t.Fatalf("authorize redirected to %s, want %s", got, provRedirect)
	}
	return q.Get("code")
}

// provLink runs the link flow at the fake: consent, then Exchange.
func provLink(t *testing.T, fake *fakeoauth.Server, p *oauth.Provider) (oauth.Token, error) {
	t.Helper()
	verifier, challenge := "", ""
	if p.PKCE {
		verifier = oauth2.GenerateVerifier()
		challenge = oauth2.S256ChallengeFromVerifier(verifier)
	}
	code := provCode(t, fake, p.AuthCodeURL("st4te", provRedirect, challenge))
	return p.Exchange(t.Context(), code, provRedirect, verifier)
}

func provTokenError(t *testing.T, err error) *oauth.TokenError {
	t.Helper()
	var te *oauth.TokenError
	if !errors.As(err, &te) {
		t.Fatalf("error %v (%T), want a *TokenError", err, err)
	}
	return te
}

func provNear(t *testing.T, what string, got time.Time, d time.Duration) {
	t.Helper()
	want := time.Now().Add(d)
	if got.Before(want.Add(-time.Minute)) || got.After(want.Add(time.Minute)) {
		t.Errorf("%s = %v, want about %v", what, got, want)
	}
}

func TestAuthCodeURL(t *testing.T) {
	tests := []struct {
		name string
		p    oauth.Provider
		want url.Values
	}{
		{"standard with PKCE", oauth.Provider{AuthorizeURL: "https://idp.example/authorize", ClientID: "c1", Scopes: []string{"openid", "offline_access"}, PKCE: true},
			url.Values{"response_type": {"code"}, "client_id": {"c1"}, "redirect_uri": {provRedirect}, "scope": {"openid offline_access"}, "state": {"st"}, "code_challenge": {"ch"}, "code_challenge_method": {"S256"}}},
		{"standard without PKCE ignores the challenge", oauth.Provider{Kind: oauth.KindStandard, AuthorizeURL: "https://idp.example/authorize", ClientID: "c1"},
			url.Values{"response_type": {"code"}, "client_id": {"c1"}, "redirect_uri": {provRedirect}, "state": {"st"}}},
		{"notion", oauth.Provider{Kind: oauth.KindNotion, AuthorizeURL: "https://api.notion.com/v1/oauth/authorize", ClientID: "c2"},
			url.Values{"response_type": {"code"}, "client_id": {"c2"}, "redirect_uri": {provRedirect}, "owner": {"user"}, "state": {"st"}}},
		{"github", oauth.Provider{Kind: oauth.KindGitHub, AuthorizeURL: "https://github.com/login/oauth/authorize", ClientID: "c3", Scopes: []string{"repo", "read:user"}, PKCE: true},
			url.Values{"response_type": {"code"}, "client_id": {"c3"}, "redirect_uri": {provRedirect}, "scope": {"repo read:user"}, "state": {"st"}, "code_challenge": {"ch"}, "code_challenge_method": {"S256"}}},
		{"slack scopes are comma-separated", oauth.Provider{Kind: oauth.KindSlack, AuthorizeURL: "https://slack.com/oauth/v2/authorize", ClientID: "c4", Scopes: []string{"chat:write", "users:read"}},
			url.Values{"response_type": {"code"}, "client_id": {"c4"}, "redirect_uri": {provRedirect}, "scope": {"chat:write,users:read"}, "state": {"st"}}},
		{"existing query kept", oauth.Provider{AuthorizeURL: "https://idp.example/authorize?tenant=t1", ClientID: "c5"},
			url.Values{"tenant": {"t1"}, "response_type": {"code"}, "client_id": {"c5"}, "redirect_uri": {provRedirect}, "state": {"st"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			raw := tt.p.AuthCodeURL("st", provRedirect, "ch")
			u, err := url.Parse(raw)
			if err != nil {
				t.Fatal(err)
			}
			base, _, _ := strings.Cut(tt.p.AuthorizeURL, "?")
			if got := u.Scheme + "://" + u.Host + u.Path; got != base {
				t.Errorf("endpoint %s, want %s", got, base)
			}
			if diff := cmp.Diff(tt.want, u.Query()); diff != "" {
				t.Errorf("AuthCodeURL query (-want +got):\n%s", diff)
			}
		})
	}
}

// TestProviderLinkAndRefresh links an account at each fake, refreshes, and
// replays the spent refresh token.
func TestProviderLinkAndRefresh(t *testing.T) {
	tests := []struct {
		kind                 string
		access, refresh      string // token prefixes
		tokenType            string
		expiresIn            time.Duration // 0: no expiry
		scopes               []string
		extra                map[string]string
		replayStatus         int
		replayCode           string
		refreshKeepsExtraKey string
	}{
		{
			kind: "notion", access: "ntn_", refresh: "nrt_", tokenType: "bearer",
			extra:        map[string]string{"bot_id": fakeoauth.NotionBotID, "workspace_id": fakeoauth.NotionWorkspaceID, "workspace_name": fakeoauth.NotionWorkspaceName},
			replayStatus: http.StatusBadRequest, replayCode: "invalid_grant",
		},
		{
			kind: "github", access: "ghu_", refresh: "ghr_", tokenType: "bearer", expiresIn: 8 * time.Hour,
			scopes:       []string{"repo", "read:user"},
			replayStatus: http.StatusOK, replayCode: "bad_refresh_token",
		},
		{
			kind: "slack", access: "xoxe.xoxb-1-", refresh: "xoxe-1-", tokenType: "bot", expiresIn: 12 * time.Hour,
			scopes: []string{"channels:history", "channels:read", "chat:write", "reactions:write", "users:read"},
			extra: map[string]string{"team_id": fakeoauth.SlackTeamID, "team_name": fakeoauth.SlackTeamName, "bot_user_id": fakeoauth.SlackBotUserID,
				"app_id": fakeoauth.SlackAppID, "authed_user_id": fakeoauth.SlackUserID},
			replayStatus: http.StatusOK, replayCode: "invalid_refresh_token",
		},
	}
	for _, tt := range tests {
		t.Run(tt.kind, func(t *testing.T) {
			fake, p := provAtFake(t, tt.kind)
			check := func(what string, tok oauth.Token) {
				t.Helper()
				if !strings.HasPrefix(tok.AccessToken, tt.access) || !strings.HasPrefix(tok.RefreshToken, tt.refresh) {
					t.Errorf("%s: tokens %.16s…, %.16s…; want prefixes %s, %s", what, tok.AccessToken, tok.RefreshToken, tt.access, tt.refresh)
				}
				if tok.TokenType != tt.tokenType {
					t.Errorf("%s: TokenType %q, want %q", what, tok.TokenType, tt.tokenType)
				}
				if tt.expiresIn == 0 {
					if !tok.Expiry.IsZero() {
						t.Errorf("%s: Expiry %v, want zero (no expires_in)", what, tok.Expiry)
					}
				} else {
					provNear(t, what+": Expiry", tok.Expiry, tt.expiresIn)
				}
				if diff := cmp.Diff(tt.scopes, tok.Scopes); diff != "" {
					t.Errorf("%s: Scopes (-want +got):\n%s", what, diff)
				}
				extra := tok.Extra
				if tt.kind == "github" {
					at, err := time.Parse(time.RFC3339, extra["refresh_token_expires_at"])
					if err != nil {
						t.Errorf("%s: refresh_token_expires_at %q: %v", what, extra["refresh_token_expires_at"], err)
					}
					provNear(t, what+": refresh_token_expires_at", at, 184*24*time.Hour)
					extra = nil
				}
				if tt.kind == "slack" && what == "refresh" {
					// A bot token's refresh doesn't name the installing
					// user; Credential keeps the linked one.
					extra = maps.Clone(extra)
					extra["authed_user_id"] = fakeoauth.SlackUserID
				}
				if diff := cmp.Diff(tt.extra, extra); diff != "" {
					t.Errorf("%s: Extra (-want +got):\n%s", what, diff)
				}
				if !fake.Valid(tok.AccessToken) {
					t.Errorf("%s: the provider does not accept the access token", what)
				}
			}

			linked, err := provLink(t, fake, p)
			if err != nil {
				t.Fatalf("Exchange: %v", err)
			}
			check("exchange", linked)

			refreshed, err := p.Refresh(t.Context(), linked.RefreshToken)
			if err != nil {
				t.Fatalf("Refresh: %v", err)
			}
			check("refresh", refreshed)
			if refreshed.AccessToken == linked.AccessToken || refreshed.RefreshToken == linked.RefreshToken {
				t.Error("refresh did not rotate the tokens")
			}
			if fake.Valid(linked.AccessToken) {
				t.Error("the superseded access token is still valid")
			}

			_, err = p.Refresh(t.Context(), linked.RefreshToken)
			te := provTokenError(t, err)
			if te.Status != tt.replayStatus || te.Code != tt.replayCode || te.Integration != tt.kind {
				t.Errorf("replayed refresh: %+v, want HTTP %d %s", te, tt.replayStatus, tt.replayCode)
			}
			if !oauth.IsPermanent(err) {
				t.Errorf("replayed refresh error %v is not permanent", err)
			}
			if !fake.Valid(refreshed.AccessToken) {
				t.Error("a refused replay invalidated the current token")
			}
			if got := [3]int{fake.Exchanges(), fake.Refreshes(), fake.RefreshAttempts()}; got != [3]int{1, 1, 2} {
				t.Errorf("exchanges, refreshes, refresh attempts = %v, want [1 1 2]", got)
			}
		})
	}
}

func TestProviderCodeRefusals(t *testing.T) {
	tests := []struct {
		kind   string
		status int
		code   string // for a code used twice
	}{
		{"notion", http.StatusBadRequest, "invalid_grant"},
		{"github", http.StatusOK, "bad_verification_code"},
		{"slack", http.StatusOK, "code_already_used"},
	}
	for _, tt := range tests {
		t.Run(tt.kind, func(t *testing.T) {
			fake, p := provAtFake(t, tt.kind)
			p.PKCE = false
			code := provCode(t, fake, p.AuthCodeURL("st4te", provRedirect, ""))
			if _, err := p.Exchange(t.Context(), code, provRedirect, ""); err != nil {
				t.Fatalf("Exchange: %v", err)
			}
			_, err := p.Exchange(t.Context(), code, provRedirect, "")
			if te := provTokenError(t, err); te.Status != tt.status || te.Code != tt.code || !oauth.IsPermanent(err) {
				t.Errorf("code reused: %v, want permanent HTTP %d %s", err, tt.status, tt.code)
			}

			// The redirect URI must be the authorization request's.
			code = provCode(t, fake, p.AuthCodeURL("st4te", provRedirect, ""))
			_, err = p.Exchange(t.Context(), code, provRedirect+"/other", "")
			if te := provTokenError(t, err); te.Code == "" {
				t.Errorf("redirect URI mismatch: %v, want a provider error code", err)
			}
			if fake.Exchanges() != 1 {
				t.Errorf("Exchanges() = %d, want 1", fake.Exchanges())
			}
		})
	}
}

func TestGitHubPKCE(t *testing.T) {
	fake, p := provAtFake(t, "github")
	if !p.PKCE {
		t.Fatal("the github preset does not use PKCE")
	}
	if _, err := provLink(t, fake, p); err != nil {
		t.Fatalf("Exchange with PKCE: %v", err)
	}

	noPKCE := *p
	noPKCE.PKCE = false
	if _, err := provLink(t, fake, &noPKCE); err != nil {
		t.Fatalf("Exchange without PKCE: %v", err)
	}

	for name, verifier := range map[string]string{"wrong verifier": oauth2.GenerateVerifier(), "no verifier": ""} {
		t.Run(name, func(t *testing.T) {
			challenge := oauth2.S256ChallengeFromVerifier(oauth2.GenerateVerifier())
			code := provCode(t, fake, p.AuthCodeURL("st4te", provRedirect, challenge))
			_, err := p.Exchange(t.Context(), code, provRedirect, verifier)
			if te := provTokenError(t, err); te.Status != http.StatusOK || te.Code != "bad_verification_code" || !oauth.IsPermanent(err) {
				t.Errorf("PKCE mismatch: %v, want permanent HTTP 200 bad_verification_code", err)
			}
		})
	}
	if fake.Exchanges() != 2 {
		t.Errorf("Exchanges() = %d, want 2", fake.Exchanges())
	}
}

func TestGitHubClassicToken(t *testing.T) {
	fake, p := provAtFake(t, "github")
	fake.SetClassic(true)
	tok, err := provLink(t, fake, p)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(tok.AccessToken, "gho_") || tok.RefreshToken != "" || !tok.Expiry.IsZero() || tok.Extra != nil {
		t.Errorf("classic token: %.8s…, refresh %q, expiry %v, extra %v; want gho_, none, zero, none", tok.AccessToken, tok.RefreshToken, tok.Expiry, tok.Extra)
	}
	if _, err := p.Refresh(t.Context(), tok.RefreshToken); err == nil {
		t.Error("Refresh without a refresh token succeeded")
	}
}

// TestGitHubFormAnswer reads GitHub's form-encoded answer, given when the
// Accept header doesn't ask for JSON (here a proxy drops it).
func TestGitHubFormAnswer(t *testing.T) {
	fake, p := provAtFake(t, "github")
	p.HTTPClient = &http.Client{Transport: provRoundTrip(func(r *http.Request) (*http.Response, error) {
		r = r.Clone(r.Context())
		r.Header.Del("Accept")
		return http.DefaultTransport.RoundTrip(r)
	})}
	tok, err := provLink(t, fake, p)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(tok.AccessToken, "ghu_") || !strings.HasPrefix(tok.RefreshToken, "ghr_") || tok.TokenType != "bearer" {
		t.Errorf("token from a form answer: %+v", tok)
	}
	provNear(t, "Expiry", tok.Expiry, 8*time.Hour)
	_, err = p.Refresh(t.Context(), "ghr_not-issued")
	if te := provTokenError(t, err); te.Code != "bad_refresh_token" {
		t.Errorf("form-encoded error: %v, want bad_refresh_token", err)
	}
}

type provRoundTrip func(*http.Request) (*http.Response, error)

func (f provRoundTrip) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func TestGitHubClientAuthBasic(t *testing.T) {
	fake, p := provAtFake(t, "github")
	p.AuthStyle = "basic"
	if _, err := provLink(t, fake, p); err != nil {
		t.Fatalf("Exchange with HTTP Basic: %v", err)
	}
	p.ClientSecret = "wrong-secret"
	_, err := provLink(t, fake, p)
	if te := provTokenError(t, err); te.Status != http.StatusOK || te.Code != "incorrect_client_credentials" {
		t.Errorf("wrong secret: %v, want HTTP 200 incorrect_client_credentials", err)
	}
}

func TestSlackRefusals(t *testing.T) {
	fake, p := provAtFake(t, "slack")
	code := provCode(t, fake, p.AuthCodeURL("st4te", provRedirect, ""))

	wrong := *p
	wrong.ClientSecret = "not-the-secret"
	_, err := wrong.Exchange(t.Context(), code, provRedirect, "")
	if te := provTokenError(t, err); te.Status != http.StatusOK || te.Code != "bad_client_secret" {
		t.Errorf("wrong client secret: %v, want HTTP 200 bad_client_secret", err)
	}
	_, err = p.Exchange(t.Context(), "not-a-code", provRedirect, "")
	if te := provTokenError(t, err); te.Status != http.StatusOK || te.Code != "invalid_code" || !oauth.IsPermanent(err) {
		t.Errorf("unknown code: %v, want permanent HTTP 200 invalid_code", err)
	}
	_, err = p.Refresh(t.Context(), "xoxe-1-not-issued")
	if te := provTokenError(t, err); te.Status != http.StatusOK || te.Code != "invalid_refresh_token" || !oauth.IsPermanent(err) {
		t.Errorf("unknown refresh token: %v, want permanent HTTP 200 invalid_refresh_token", err)
	}

	// Slack accepts client credentials in HTTP Basic too.
	p.AuthStyle = "basic"
	if _, err := p.Exchange(t.Context(), code, provRedirect, ""); err != nil {
		t.Errorf("Exchange with HTTP Basic: %v", err)
	}
}

// TestSlackUserTokenInstall links an app that asked only for user scopes:
// the answer has no bot token, the user token is under authed_user.
func TestSlackUserTokenInstall(t *testing.T) {
	fake, p := provAtFake(t, "slack")
	u, err := url.Parse(p.AuthCodeURL("st4te", provRedirect, ""))
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Del("scope")
	q.Set("user_scope", "search:read,users:read")
	u.RawQuery = q.Encode()
	code := provCode(t, fake, u.String())

	tok, err := p.Exchange(t.Context(), code, provRedirect, "")
	if err != nil {
		t.Fatal(err)
	}
	wantExtra := map[string]string{"team_id": fakeoauth.SlackTeamID, "team_name": fakeoauth.SlackTeamName, "app_id": fakeoauth.SlackAppID, "authed_user_id": fakeoauth.SlackUserID}
	check := func(what string, tok oauth.Token) {
		t.Helper()
		if !strings.HasPrefix(tok.AccessToken, "xoxe.xoxp-1-") || !strings.HasPrefix(tok.RefreshToken, "xoxe-1-") || tok.TokenType != "user" {
			t.Errorf("%s: %.16s…, %.10s…, %q; want a rotating user token", what, tok.AccessToken, tok.RefreshToken, tok.TokenType)
		}
		provNear(t, what+": Expiry", tok.Expiry, 12*time.Hour)
		if diff := cmp.Diff([]string{"search:read", "users:read"}, tok.Scopes); diff != "" {
			t.Errorf("%s: Scopes (-want +got):\n%s", what, diff)
		}
		if diff := cmp.Diff(wantExtra, tok.Extra); diff != "" {
			t.Errorf("%s: Extra (-want +got):\n%s", what, diff)
		}
		if !fake.Valid(tok.AccessToken) {
			t.Errorf("%s: the provider does not accept the token", what)
		}
	}
	check("exchange", tok)
	refreshed, err := p.Refresh(t.Context(), tok.RefreshToken)
	if err != nil {
		t.Fatal(err)
	}
	check("refresh", refreshed)
}

// TestProviderFaults checks that a provider down, slow or answering
// garbage is a failure worth retrying, never a dead grant.
func TestProviderFaults(t *testing.T) {
	for _, kind := range []string{"notion", "github", "slack"} {
		t.Run(kind, func(t *testing.T) {
			fake, p := provAtFake(t, kind)
			_, refresh := fake.IssueToken()

			fake.SetMode(fakeoauth.Garbage)
			_, err := p.Refresh(t.Context(), refresh)
			te := provTokenError(t, err)
			if te.Status != http.StatusOK || te.Code != "" || oauth.IsPermanent(err) ||
				!strings.HasPrefix(te.Description, "unreadable response (") || !strings.Contains(te.Description, "content type text/html") {
				t.Errorf("garbage: %+v, want a non-permanent unreadable response", te)
			}

			fake.SetMode(fakeoauth.Down)
			_, err = p.Refresh(t.Context(), refresh)
			if te := provTokenError(t, err); te.Status != http.StatusServiceUnavailable || te.Code != "" || oauth.IsPermanent(err) {
				t.Errorf("down: %+v, want a non-permanent HTTP 503", te)
			}

			fake.SetMode(fakeoauth.Slow(5 * time.Second))
			ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
			defer cancel()
			start := time.Now()
			_, err = p.Refresh(ctx, refresh)
			if !errors.Is(err, context.DeadlineExceeded) || oauth.IsPermanent(err) {
				t.Errorf("slow with a deadline: %v, want context.DeadlineExceeded", err)
			}
			var te2 *oauth.TokenError
			if errors.As(err, &te2) {
				t.Errorf("slow: a *TokenError %v, want the context's error", err)
			}
			if time.Since(start) > 2*time.Second {
				t.Errorf("Refresh took %v, the context deadline was not honoured", time.Since(start))
			}

			// The grant survived all that.
			fake.SetMode(fakeoauth.OK)
			if _, err := p.Refresh(t.Context(), refresh); err != nil {
				t.Errorf("Refresh after the faults: %v", err)
			}
			if fake.RefreshAttempts() != 4 || fake.Refreshes() != 1 {
				t.Errorf("refresh attempts %d, refreshes %d; want 4, 1", fake.RefreshAttempts(), fake.Refreshes())
			}
		})
	}
}

func TestProviderUnreachable(t *testing.T) {
	_, p := provAtFake(t, "notion")
	ts := httptest.NewServer(http.NotFoundHandler())
	p.TokenURL = ts.URL + "/v1/oauth/token"
	ts.Close()
	_, err := p.Refresh(t.Context(), "nrt_whatever")
	var te *oauth.TokenError
	if err == nil || errors.As(err, &te) || oauth.IsPermanent(err) {
		t.Errorf("unreachable provider: %v, want a wrapped network error", err)
	}
	var ue *url.Error
	if !errors.As(err, &ue) {
		t.Errorf("unreachable provider: %v does not wrap the *url.Error", err)
	}
}

func TestProviderRevoke(t *testing.T) {
	t.Run("github", func(t *testing.T) {
		fake, p := provAtFake(t, "github")
		if !strings.Contains(p.RevokeURL, "{client_id}") {
			t.Fatalf("RevokeURL %s has no {client_id}", p.RevokeURL)
		}
		tok, err := provLink(t, fake, p)
		if err != nil {
			t.Fatal(err)
		}
		refreshed, err := p.Refresh(t.Context(), tok.RefreshToken)
		if err != nil {
			t.Fatal(err)
		}
		cred := refreshed.Credential(vault.Credential{}, time.Now())
		if err := p.Revoke(t.Context(), cred); err != nil {
			t.Fatalf("Revoke: %v", err)
		}
		if fake.Valid(refreshed.AccessToken) || fake.Revocations() != 1 {
			t.Errorf("after Revoke: valid %v, revocations %d; want false, 1", fake.Valid(refreshed.AccessToken), fake.Revocations())
		}
		// The grant is gone: its refresh token too.
		if _, err := p.Refresh(t.Context(), refreshed.RefreshToken); !oauth.IsPermanent(err) {
			t.Errorf("Refresh after Revoke: %v, want a permanent error", err)
		}
		if err := p.Revoke(t.Context(), cred); err == nil || !strings.Contains(err.Error(), "HTTP 404") {
			t.Errorf("second Revoke: %v, want HTTP 404", err)
		}
	})
	t.Run("slack", func(t *testing.T) {
		fake, p := provAtFake(t, "slack")
		tok, err := provLink(t, fake, p)
		if err != nil {
			t.Fatal(err)
		}
		cred := tok.Credential(vault.Credential{}, time.Now())
		if err := p.Revoke(t.Context(), cred); err != nil {
			t.Fatalf("Revoke: %v", err)
		}
		if fake.Valid(tok.AccessToken) || fake.Revocations() != 1 {
			t.Errorf("after Revoke: valid %v, revocations %d; want false, 1", fake.Valid(tok.AccessToken), fake.Revocations())
		}
		if _, err := p.Refresh(t.Context(), tok.RefreshToken); !oauth.IsPermanent(err) {
			t.Errorf("Refresh after Revoke: %v, want a permanent error", err)
		}
		err = p.Revoke(t.Context(), cred)
		if err == nil || !strings.Contains(err.Error(), "token_revoked") {
			t.Errorf("second Revoke: %v, want ok:false token_revoked", err)
		}
	})
	t.Run("notion", func(t *testing.T) {
		fake, p := provAtFake(t, "notion")
		access, refresh := fake.IssueToken()
		if err := p.Revoke(t.Context(), vault.Credential{AccessToken: access, RefreshToken: refresh}); !errors.Is(err, oauth.ErrRevokeUnsupported) {
			t.Errorf("Revoke: %v, want ErrRevokeUnsupported", err)
		}
	})
}

// TestProviderConcurrentRefresh spends one refresh token 50 times at once:
// exactly one wins, the others learn the grant is spent.
func TestProviderConcurrentRefresh(t *testing.T) {
	for _, kind := range []string{"notion", "github", "slack"} {
		t.Run(kind, func(t *testing.T) {
			fake, p := provAtFake(t, kind)
			_, refresh := fake.IssueToken()
			var wg sync.WaitGroup
			errs := make([]error, 50)
			for i := range errs {
				wg.Go(func() { _, errs[i] = p.Refresh(t.Context(), refresh) })
			}
			wg.Wait()
			ok, permanent := 0, 0
			for _, err := range errs {
				switch {
				case err == nil:
					ok++
				case oauth.IsPermanent(err):
					permanent++
				default:
					t.Errorf("unexpected error: %v", err)
				}
			}
			if ok != 1 || permanent != 49 || fake.Refreshes() != 1 || fake.RefreshAttempts() != 50 {
				t.Errorf("ok %d, permanent %d, fake refreshes %d, attempts %d; want 1, 49, 1, 50", ok, permanent, fake.Refreshes(), fake.RefreshAttempts())
			}
		})
	}
}

// TestProviderErrorsKeepSecrets collects every error the providers return
// in failure paths and checks none holds the client secret or a token.
func TestProviderErrorsKeepSecrets(t *testing.T) {
	var secrets []string
	var errs []error
	note := func(err error) {
		if err != nil {
			errs = append(errs, err)
		}
	}
	for _, kind := range []string{"notion", "github", "slack"} {
		fake, p := provAtFake(t, kind)
		secrets = append(secrets, p.ClientSecret)
		tok, err := provLink(t, fake, p)
		if err != nil {
			t.Fatal(err)
		}
		access, refresh := fake.IssueToken()
		secrets = append(secrets, tok.AccessToken, tok.RefreshToken, access, refresh)

		refreshed, err := p.Refresh(t.Context(), tok.RefreshToken)
		if err != nil {
			t.Fatal(err)
		}
		secrets = append(secrets, refreshed.AccessToken, refreshed.RefreshToken)
		_, err = p.Refresh(t.Context(), tok.RefreshToken)
		note(err)
		code := provCode(t, fake, p.AuthCodeURL("st4te", provRedirect, oauth2.S256ChallengeFromVerifier("v")))
		secrets = append(secrets, code)
		_, err = p.Exchange(t.Context(), code, "https://elsewhere.example/cb", "verifier-that-is-secret-too")
		note(err)
		secrets = append(secrets, "verifier-that-is-secret-too")
		wrong := *p
		wrong.ClientSecret = "wrong-" + p.ClientSecret
		_, err = wrong.Refresh(t.Context(), refresh)
		note(err)
		for _, m := range []fakeoauth.Mode{fakeoauth.Garbage, fakeoauth.Down} {
			fake.SetMode(m)
			_, err = p.Refresh(t.Context(), refresh)
			note(err)
			note(p.Revoke(t.Context(), vault.Credential{AccessToken: access, RefreshToken: refresh}))
		}
		fake.SetMode(fakeoauth.OK)
		note(p.Revoke(t.Context(), vault.Credential{AccessToken: tok.AccessToken, RefreshToken: tok.RefreshToken}))
	}

	// A provider that echoes what it was sent, in its error and in a
	// body that is not a token answer.
	echo := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = r.ParseForm()
		_, secret, _ := r.BasicAuth()
		if r.URL.Path == "/garbage" {
			w.Header().Set("Content-Type", "text/html")
			fmt.Fprintf(w, "<html>%s %s</html>", r.PostForm.Get("refresh_token"), secret)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusBadRequest)
		_ = json.NewEncoder(w).Encode(map[string]string{
			"error":             "invalid_grant",
			"error_description": "refresh token " + r.PostForm.Get("refresh_token") + " unknown for secret " + secret + r.PostForm.Get("token"),
		})
	}))
	t.Cleanup(echo.Close)
	for _, path := range []string{"/token", "/garbage"} {
		p := &oauth.Provider{Integration: "echo", ClientID: "c", ClientSecret: "echo-client-secret", TokenURL: echo.URL + path, RevokeURL: echo.URL + path}
		_, err := p.Refresh(t.Context(), "echo-refresh-token")
		note(err)
		note(p.Revoke(t.Context(), vault.Credential{AccessToken: "echo-access-token"}))
	}
	secrets = append(secrets, "echo-client-secret", "echo-refresh-token", "echo-access-token")

	if len(errs) < 20 {
		t.Fatalf("only %d errors collected", len(errs))
	}
	for _, err := range errs {
		for _, s := range secrets {
			if s != "" && strings.Contains(err.Error(), s) {
				t.Errorf("error %q contains the secret %.12s…", err, s)
			}
		}
	}
}

// TestPresetPKCE: PKCE is on wherever a provider takes it for a
// confidential web app. GitHub verifies it (TestGitHubPKCE). Notion
// documents no PKCE: its preset sends none. Slack takes it only from an
// app with PKCE turned on, which Slack documents as making the app a
// public client for good (and its refresh tokens expire in 30 days): its
// preset leaves it off, and "pkce": true in the integrations file turns it
// on, verified by the fake like a PKCE-enabled app.
func TestPresetPKCE(t *testing.T) {
	_, notion := provAtFake(t, "notion")
	if notion.PKCE {
		t.Error("the notion preset sends PKCE, which Notion does not document")
	}
	if q := mustQuery(t, notion.AuthCodeURL("st", provRedirect, "ch")); q.Has("code_challenge") || q.Has("code_challenge_method") {
		t.Errorf("notion's consent URL carries PKCE: %v", q)
	}
	fake, slack := provAtFake(t, "slack")
	if slack.PKCE {
		t.Error("the slack preset turns PKCE on, which would need the app made a public client")
	}
	fake.SetPKCE(true)
	slack.PKCE = true
	if _, err := provLink(t, fake, slack); err != nil {
		t.Fatalf("slack with PKCE: %v", err)
	}
	for name, verifier := range map[string]string{"wrong verifier": oauth2.GenerateVerifier(), "no verifier": "", "too short": "abc"} {
		t.Run(name, func(t *testing.T) {
			challenge := oauth2.S256ChallengeFromVerifier(oauth2.GenerateVerifier())
			code := provCode(t, fake, slack.AuthCodeURL("st4te", provRedirect, challenge))
			if _, err := slack.Exchange(t.Context(), code, provRedirect, verifier); err == nil {
				t.Error("slack exchanged a code without its PKCE verifier")
			}
		})
	}
}

func mustQuery(t *testing.T, raw string) url.Values {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	return u.Query()
}
