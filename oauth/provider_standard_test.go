package oauth_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/oauth2"

	"github.com/connectors-gateway/connectors/internal/testidp"
	"github.com/connectors-gateway/connectors/oauth"
	"github.com/connectors-gateway/connectors/vault"
)

// provStandardIdP starts the real OpenID provider with a web client and
// returns a standard Provider for it.
func provStandardIdP(t *testing.T) (*testidp.IDP, *oauth.Provider) {
	t.Helper()
	idp := testidp.Start(t)
	idp.AddWebClient(testidp.WebClient{ID: "gateway", Secret: "web-client-secret-77", RedirectURIs: []string{provRedirect}})
	resp, err := http.Get(idp.Issuer + "/.well-known/openid-configuration")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var disc struct {
		Authorize  string `json:"authorization_endpoint"`
		Token      string `json:"token_endpoint"`
		Revocation string `json:"revocation_endpoint"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&disc); err != nil {
		t.Fatal(err)
	}
	return idp, &oauth.Provider{
		Integration:  "idp",
		ClientID:     "gateway",
		ClientSecret: "web-client-secret-77",
		AuthorizeURL: disc.Authorize,
		TokenURL:     disc.Token,
		RevokeURL:    disc.Revocation,
		Scopes:       []string{"openid", "offline_access"},
		PKCE:         true,
	}
}

// provSignIn consents at the IdP as its test user and returns the code.
func provSignIn(t *testing.T, idp *testidp.IDP, p *oauth.Provider, challenge string) string {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	target, err := idp.SignIn(t.Context(), &http.Client{Jar: jar}, p.AuthCodeURL("st4te", provRedirect, challenge), idp.TestUsername(), testidp.UserPassword)
	if err != nil {
		t.Fatalf("sign-in: %v", err)
	}
	if target.Query().Get("state") != "st4te" || target.Query().Get("code") == "" {
		t.Fatalf("sign-in redirected to %s", target)
	}
	return target.Query().Get("code")
}

// TestStandardProvider runs the standard kind against a real OpenID
// provider: code with PKCE, refresh with rotation, RFC 7009 revocation.
func TestStandardProvider(t *testing.T) {
	idp, p := provStandardIdP(t)
	verifier := oauth2.GenerateVerifier()
	code := provSignIn(t, idp, p, oauth2.S256ChallengeFromVerifier(verifier))
	tok, err := p.Exchange(t.Context(), code, provRedirect, verifier)
	if err != nil {
		t.Fatalf("Exchange: %v", err)
	}
	if tok.AccessToken == "" || tok.RefreshToken == "" || !strings.EqualFold(tok.TokenType, "bearer") || tok.Expiry.IsZero() {
		t.Errorf("exchange: %+v, want access and refresh tokens, bearer, an expiry", tok)
	}
	for k := range tok.Extra {
		if strings.Contains(k, "token") {
			t.Errorf("Extra keeps %q", k)
		}
	}
	if _, err := p.Exchange(t.Context(), code, provRedirect, verifier); !oauth.IsPermanent(err) {
		t.Errorf("code reused: %v, want a permanent error", err)
	}

	refreshed, err := p.Refresh(t.Context(), tok.RefreshToken)
	if err != nil {
		t.Fatalf("Refresh: %v", err)
	}
	if refreshed.AccessToken == tok.AccessToken || refreshed.RefreshToken == "" || refreshed.RefreshToken == tok.RefreshToken {
		t.Errorf("refresh did not rotate: %+v", refreshed)
	}
	_, err = p.Refresh(t.Context(), tok.RefreshToken)
	if te := provTokenError(t, err); te.Status != http.StatusBadRequest || te.Code != "invalid_grant" || !oauth.IsPermanent(err) {
		t.Errorf("replayed refresh: %v, want permanent HTTP 400 invalid_grant", err)
	}

	if err := p.Revoke(t.Context(), refreshed.Credential(vault.Credential{}, time.Now())); err != nil {
		t.Fatalf("Revoke: %v", err)
	}
	if _, err := p.Refresh(t.Context(), refreshed.RefreshToken); !oauth.IsPermanent(err) {
		t.Errorf("Refresh after Revoke: %v, want a permanent error", err)
	}
}

func TestStandardProviderRefusals(t *testing.T) {
	idp, p := provStandardIdP(t)
	verifier := oauth2.GenerateVerifier()
	code := provSignIn(t, idp, p, oauth2.S256ChallengeFromVerifier(verifier))
	_, err := p.Exchange(t.Context(), code, provRedirect, oauth2.GenerateVerifier())
	if te := provTokenError(t, err); te.Status != http.StatusBadRequest || te.Code != "invalid_grant" {
		t.Errorf("PKCE mismatch: %v, want HTTP 400 invalid_grant", err)
	}

	// Client credentials go where AuthStyle says, once: a refusal is not
	// retried with the secret elsewhere (x/oauth2's auto-detection).
	for _, style := range []string{"basic", "body"} {
		t.Run(style, func(t *testing.T) {
			var requests []*http.Request
			var mu sync.Mutex
			q := *p
			q.AuthStyle = style
			q.HTTPClient = &http.Client{Transport: provRoundTrip(func(r *http.Request) (*http.Response, error) {
				mu.Lock()
				requests = append(requests, r)
				mu.Unlock()
				return http.DefaultTransport.RoundTrip(r)
			})}
			code := provSignIn(t, idp, p, oauth2.S256ChallengeFromVerifier(verifier))
			tok, err := q.Exchange(t.Context(), code, provRedirect, verifier)
			if err != nil {
				t.Fatalf("Exchange: %v", err)
			}
			_, _, basic := requests[0].BasicAuth()
			if basic != (style == "basic") {
				t.Errorf("HTTP Basic used: %v, want %v", basic, style == "basic")
			}

			q.ClientSecret = "wrong-secret"
			requests = nil
			_, err = q.Refresh(t.Context(), tok.RefreshToken)
			if te := provTokenError(t, err); te.Code != "invalid_client" || !oauth.IsPermanent(err) {
				t.Errorf("wrong client secret: %v, want permanent invalid_client", err)
			}
			if len(requests) != 1 {
				t.Errorf("%d requests for a refused refresh, want 1", len(requests))
			}
		})
	}
}

// TestStandardProviderAnswers covers token endpoint answers a real
// provider won't give: they are TokenErrors worth retrying.
func TestStandardProviderAnswers(t *testing.T) {
	tests := []struct {
		name, contentType, body string
		status                  int
		want                    oauth.TokenError
	}{
		{"html", "text/html", "<html>maintenance</html>", 200,
			oauth.TokenError{Integration: "std", Status: 200, Description: "unreadable response (24 bytes, content type text/html)"}},
		{"json without a token", "application/json", `{"token_type":"Bearer"}`, 200,
			oauth.TokenError{Integration: "std", Status: 200, Description: "response has no access_token"}},
		{"broken json", "application/json", `{"access_token":`, 200,
			oauth.TokenError{Integration: "std", Status: 200, Description: "unreadable response (16 bytes, content type application/json)"}},
		{"502", "text/html", "<html>bad gateway</html>", 502,
			oauth.TokenError{Integration: "std", Status: 502, Description: "unreadable response (24 bytes, content type text/html)"}},
		{"error with 200", "application/json", `{"error":"invalid_grant","error_description":"gone"}`, 200,
			oauth.TokenError{Integration: "std", Status: 200, Code: "invalid_grant", Description: "gone"}},
		{"form error", "application/x-www-form-urlencoded", `error=invalid_grant&error_description=expired`, 400,
			oauth.TokenError{Integration: "std", Status: 400, Code: "invalid_grant", Description: "expired"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", tt.contentType)
				w.WriteHeader(tt.status)
				_, _ = io.WriteString(w, tt.body)
			}))
			t.Cleanup(ts.Close)
			p := &oauth.Provider{Integration: "std", ClientID: "c", ClientSecret: "s", TokenURL: ts.URL}
			_, err := p.Refresh(t.Context(), "rt")
			te := provTokenError(t, err)
			if diff := cmp.Diff(tt.want, *te); diff != "" {
				t.Errorf("TokenError (-want +got):\n%s", diff)
			}
			if got, want := oauth.IsPermanent(err), tt.want.Code == "invalid_grant"; got != want {
				t.Errorf("IsPermanent = %v, want %v", got, want)
			}
		})
	}
}

// TestStandardProviderToken checks what the standard kind keeps of an
// answer: a refresh token only when sent, the scopes asked for when none
// are reported, and extras that are not secrets.
func TestStandardProviderToken(t *testing.T) {
	var answer provShared[map[string]any]
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(answer.Load())
	}))
	t.Cleanup(ts.Close)
	p := &oauth.Provider{Integration: "std", ClientID: "c", ClientSecret: "s", TokenURL: ts.URL, Scopes: []string{"read", "write"}}

	answer.Store(map[string]any{
		"access_token": "at-1", "token_type": "Bearer", "expires_in": 3600, "refresh_token": "rt-1",
		"id_token": "eyJ.secret.jwt", "instance_url": "https://acme.example", "user_id": "u-42",
		"client_secret": "leak", "api_key": "leak", "refresh_token_expires_in": 86400, "nested": map[string]any{"a": 1},
	})
	tok, err := p.Exchange(t.Context(), "code", provRedirect, "")
	if err != nil {
		t.Fatal(err)
	}
	provNear(t, "Expiry", tok.Expiry, time.Hour)
	at, _ := time.Parse(time.RFC3339, tok.Extra["refresh_token_expires_at"])
	provNear(t, "refresh_token_expires_at", at, 24*time.Hour)
	delete(tok.Extra, "refresh_token_expires_at")
	want := oauth.Token{AccessToken: "at-1", RefreshToken: "rt-1", TokenType: "Bearer", Scopes: []string{"read", "write"},
		Extra: map[string]string{"instance_url": "https://acme.example", "user_id": "u-42"}}
	tok.Expiry = time.Time{}
	if diff := cmp.Diff(want, tok); diff != "" {
		t.Errorf("Exchange (-want +got):\n%s", diff)
	}

	answer.Store(map[string]any{"access_token": "at-2", "token_type": "Bearer", "scope": "read"})
	tok, err = p.Refresh(t.Context(), "rt-1")
	if err != nil {
		t.Fatal(err)
	}
	want = oauth.Token{AccessToken: "at-2", TokenType: "Bearer", Scopes: []string{"read"}}
	if diff := cmp.Diff(want, tok); diff != "" {
		t.Errorf("Refresh without a new refresh token (-want +got):\n%s", diff)
	}
}

// provShared is a value shared with a test server's handler.
type provShared[T any] struct {
	mu sync.Mutex
	v  T
}

func (a *provShared[T]) Load() T   { a.mu.Lock(); defer a.mu.Unlock(); return a.v }
func (a *provShared[T]) Store(v T) { a.mu.Lock(); defer a.mu.Unlock(); a.v = v }
