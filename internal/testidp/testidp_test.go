package testidp

import (
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/google/go-cmp/cmp"
	"golang.org/x/oauth2/clientcredentials"
)

// decode returns a JWT's header and claims, unverified.
func decode(t *testing.T, token string) (header, claims map[string]any) {
	t.Helper()
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		t.Fatalf("token has %d parts, want 3 (a JWT)", len(parts))
	}
	for i, v := range []*map[string]any{&header, &claims} {
		raw, err := base64.RawURLEncoding.DecodeString(parts[i])
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(raw, v); err != nil {
			t.Fatal(err)
		}
	}
	return header, claims
}

func TestClientCredentialsToken(t *testing.T) {
	idp := Start(t)
	idp.AddClient(Client{
		ID: "svc", Secret: "s3cret",
		Audience: []string{"https://gateway.test/mcp"},
		Claims:   map[string]any{"tenant_id": "acme", "roles": []string{"admin"}},
		Scopes:   []string{"mcp", "admin"},
	})
	before := time.Now().Add(-time.Second)
	header, claims := decode(t, idp.Token(t, "svc", "mcp", "not-granted"))

	if header["kid"] != idp.KeyID() || header["alg"] != "RS256" {
		t.Errorf("header = %v, want kid %s and alg RS256", header, idp.KeyID())
	}
	want := map[string]any{
		"iss":       idp.Issuer,
		"sub":       "svc",
		"aud":       []any{"https://gateway.test/mcp"},
		"client_id": "svc",
		"tenant_id": "acme",
		"roles":     []any{"admin"},
		"scope":     "mcp",
	}
	for k, v := range want {
		if diff := cmp.Diff(v, claims[k]); diff != "" {
			t.Errorf("claim %s (-want +got):\n%s", k, diff)
		}
	}
	exp := time.Unix(int64(claims["exp"].(float64)), 0)
	if exp.Before(before.Add(4*time.Minute)) || exp.After(time.Now().Add(6*time.Minute)) {
		t.Errorf("exp = %v, want about 5 minutes from now", exp)
	}
}

func TestClientCredentialsWrongSecret(t *testing.T) {
	idp := Start(t)
	idp.AddClient(Client{ID: "svc", Secret: "right"})
	cc := clientcredentials.Config{ClientID: "svc", ClientSecret: "wrong", TokenURL: idp.tokenURL}
	if _, err := cc.Token(t.Context()); err == nil {
		t.Error("token endpoint issued a token for a wrong secret")
	}
}

func TestLifetimeAndSkew(t *testing.T) {
	idp := Start(t)
	idp.AddClient(Client{ID: "expired", Secret: "s", Lifetime: -time.Minute})
	idp.AddClient(Client{ID: "future", Secret: "s", ClockSkew: -10 * time.Minute})
	now := float64(time.Now().Unix())

	_, claims := decode(t, idp.Token(t, "expired"))
	if exp := claims["exp"].(float64); exp > now-30 {
		t.Errorf("exp = %v, want a minute before now (%v)", exp, now)
	}
	_, claims = decode(t, idp.Token(t, "future"))
	for _, c := range []string{"iat", "nbf"} {
		if v := claims[c].(float64); v < now+9*60 {
			t.Errorf("%s = %v, want ten minutes after now (%v)", c, v, now)
		}
	}
}

func TestRotateKey(t *testing.T) {
	idp := Start(t)
	idp.AddClient(Client{ID: "svc", Secret: "s"})
	first := idp.KeyID()
	if diff := cmp.Diff([]string{first}, idp.PublishedKeyIDs(t)); diff != "" {
		t.Fatalf("JWKS before rotation (-want +got):\n%s", diff)
	}

	second := idp.RotateKey(t, jose.ES256)
	if diff := cmp.Diff([]string{first, second}, idp.PublishedKeyIDs(t)); diff != "" {
		t.Errorf("JWKS after rotation (-want +got):\n%s", diff)
	}
	header, _ := decode(t, idp.Token(t, "svc"))
	if header["kid"] != second || header["alg"] != "ES256" {
		t.Errorf("header after rotation = %v, want kid %s and alg ES256", header, second)
	}

	idp.RetireKey(first)
	if diff := cmp.Diff([]string{second}, idp.PublishedKeyIDs(t)); diff != "" {
		t.Errorf("JWKS after retiring the first key (-want +got):\n%s", diff)
	}
}
