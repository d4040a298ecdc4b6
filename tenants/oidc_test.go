package tenants_test

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/connectors-gateway/connectors/internal/testidp"
	"github.com/connectors-gateway/connectors/tenants"
)

const resource = "https://gateway.test/mcp"

// clients are the provider's service clients the tests take tokens from.
var clients = []testidp.Client{
	{ID: "acme-svc", Claims: map[string]any{"tenant_id": "acme"}, Scopes: []string{"mcp"}},
	{ID: "acme-admin", Claims: map[string]any{"tenant_id": "acme", "roles": []string{"connectors-admin"}}, Scopes: []string{"mcp"}},
	{ID: "acme-admin-scope", Claims: map[string]any{"tenant_id": "acme"}, Scopes: []string{"mcp", "connectors-admin"}},
	{ID: "acme-long", Claims: map[string]any{"tenant_id": "acme"}, Scopes: []string{"mcp"}, Lifetime: time.Hour},
	{ID: "acme-noscope", Claims: map[string]any{"tenant_id": "acme"}},
	{ID: "other-aud", Audience: []string{"https://other.test/mcp"}, Claims: map[string]any{"tenant_id": "acme"}, Scopes: []string{"mcp"}},
	{ID: "org-claim", Claims: map[string]any{"org": "globex", "tenant_id": "acme"}},
	{ID: "no-tenant", Scopes: []string{"mcp"}},
	{ID: "bad-tenant", Claims: map[string]any{"tenant_id": "../x"}, Scopes: []string{"mcp"}},
	{ID: "number-tenant", Claims: map[string]any{"tenant_id": 42}, Scopes: []string{"mcp"}},
	{ID: "expired", Claims: map[string]any{"tenant_id": "acme"}, Scopes: []string{"mcp"}, Lifetime: -time.Minute},
	{ID: "future", Claims: map[string]any{"tenant_id": "acme"}, Scopes: []string{"mcp"}, ClockSkew: -10 * time.Minute},
}

// startIDP runs a provider with the test clients, each with the audience
// resource unless it says otherwise.
func startIDP(t *testing.T) *testidp.IDP {
	t.Helper()
	idp := testidp.Start(t)
	for _, c := range clients {
		c.Secret = "secret-" + c.ID
		if c.Audience == nil {
			c.Audience = []string{resource}
		}
		idp.AddClient(c)
	}
	return idp
}

// clock is a settable clock for OIDCConfig.Now; zero offset is real time.
type clock struct{ offset atomic.Int64 }

func (c *clock) Now() time.Time          { return time.Now().Add(time.Duration(c.offset.Load())) }
func (c *clock) Set(at time.Time)        { c.offset.Store(int64(time.Until(at))) }
func (c *clock) Advance(d time.Duration) { c.offset.Add(int64(d)) }

func newVerifier(t *testing.T, idp *testidp.IDP, cfg tenants.OIDCConfig) *tenants.OIDCVerifier {
	t.Helper()
	cfg.Issuer, cfg.Audience = idp.Issuer, resource
	v, err := tenants.NewOIDCVerifier(t.Context(), cfg)
	if err != nil {
		t.Fatalf("NewOIDCVerifier: %v", err)
	}
	return v
}

// claims returns a token's claims, unverified.
func claims(t *testing.T, token string) map[string]any {
	t.Helper()
	raw, err := base64.RawURLEncoding.DecodeString(strings.Split(token, ".")[1])
	if err != nil {
		t.Fatal(err)
	}
	var c map[string]any
	if err := json.Unmarshal(raw, &c); err != nil {
		t.Fatal(err)
	}
	return c
}

func unix(c map[string]any, name string) time.Time {
	return time.Unix(int64(c[name].(float64)), 0)
}

func b64(v any) string {
	raw, _ := json.Marshal(v)
	return base64.RawURLEncoding.EncodeToString(raw)
}

func TestOIDCVerifyAccepts(t *testing.T) {
	idp := startIDP(t)
	tests := []struct {
		name   string
		client string
		scopes []string
		cfg    tenants.OIDCConfig
		want   tenants.Identity
	}{
		{"tenant", "acme-svc", []string{"mcp"}, tenants.OIDCConfig{RequiredScopes: []string{"mcp"}},
			tenants.Identity{Tenant: "acme", Subject: "oidc:acme-svc"}},
		{"admin by role", "acme-admin", nil, tenants.OIDCConfig{AdminRole: "connectors-admin"},
			tenants.Identity{Tenant: "acme", Subject: "oidc:acme-admin", Admin: true}},
		{"admin by scope", "acme-admin-scope", []string{"mcp", "connectors-admin"}, tenants.OIDCConfig{AdminRole: "connectors-admin"},
			tenants.Identity{Tenant: "acme", Subject: "oidc:acme-admin-scope", Admin: true}},
		{"admin scope not read when AdminClaim is roles", "acme-admin-scope", []string{"connectors-admin"},
			tenants.OIDCConfig{AdminRole: "connectors-admin", AdminClaim: "roles"},
			tenants.Identity{Tenant: "acme", Subject: "oidc:acme-admin-scope"}},
		{"role without AdminRole configured", "acme-admin", nil, tenants.OIDCConfig{},
			tenants.Identity{Tenant: "acme", Subject: "oidc:acme-admin"}},
		{"other tenant claim name", "org-claim", nil, tenants.OIDCConfig{TenantClaim: "org"},
			tenants.Identity{Tenant: "globex", Subject: "oidc:org-claim"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := newVerifier(t, idp, tt.cfg)
			got, err := v.Verify(t.Context(), idp.Token(t, tt.client, tt.scopes...))
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if diff := cmp.Diff(tt.want, got, cmpopts.IgnoreFields(tenants.Identity{}, "Scopes")); diff != "" {
				t.Errorf("identity (-want +got):\n%s", diff)
			}
			if got.Scopes == nil {
				t.Error("an OIDC identity without Scopes: it would pass for an API key")
			}
			for _, s := range tt.scopes {
				if !slices.Contains(got.Scopes, s) {
					t.Errorf("identity scopes %v lack the granted %q", got.Scopes, s)
				}
			}
		})
	}
}

func TestOIDCVerifyRejects(t *testing.T) {
	idp := startIDP(t)
	other := startIDP(t) // a second provider, same clients and audience
	good := idp.Token(t, "acme-svc", "mcp")
	parts := strings.Split(good, ".")
	header := map[string]any{}
	if raw, err := base64.RawURLEncoding.DecodeString(parts[0]); err != nil || json.Unmarshal(raw, &header) != nil {
		t.Fatalf("decoding header of %q", parts[0])
	}

	// A signature with one byte flipped.
	sig, _ := base64.RawURLEncoding.DecodeString(parts[2])
	sig[len(sig)/2] ^= 0x01
	flipped := parts[0] + "." + parts[1] + "." + base64.RawURLEncoding.EncodeToString(sig)

	// The payload rewritten to name another tenant, the signature kept.
	c := claims(t, good)
	c["tenant_id"] = "victim"
	retenanted := parts[0] + "." + b64(c) + "." + parts[2]

	// An unsigned token: {"alg":"none"}, the real payload, no signature.
	none := b64(map[string]any{"alg": "none", "typ": "JWT"}) + "." + parts[1] + "."

	// An HS256 forgery: symmetric algorithms are never accepted, whatever
	// the secret (the classic attack uses the provider's public key).
	hsHeader := b64(map[string]any{"alg": "HS256", "typ": "JWT", "kid": header["kid"]})
	mac := hmac.New(sha256.New, []byte(idp.Issuer))
	mac.Write([]byte(hsHeader + "." + parts[1]))
	hs256 := hsHeader + "." + parts[1] + "." + base64.RawURLEncoding.EncodeToString(mac.Sum(nil))

	// A token of the other provider claiming this one as issuer.
	foreign := strings.Split(other.Token(t, "acme-svc", "mcp"), ".")
	fc := claims(t, strings.Join(foreign, "."))
	fc["iss"] = idp.Issuer
	reissued := foreign[0] + "." + b64(fc) + "." + foreign[2]

	tests := []struct {
		name  string
		token string
		cfg   tenants.OIDCConfig
		want  error
	}{
		{"expired", idp.Token(t, "expired", "mcp"), tenants.OIDCConfig{}, tenants.ErrTokenExpired},
		{"not yet valid", idp.Token(t, "future", "mcp"), tenants.OIDCConfig{}, tenants.ErrTokenNotYetValid},
		{"wrong issuer", other.Token(t, "acme-svc", "mcp"), tenants.OIDCConfig{}, tenants.ErrWrongIssuer},
		{"other issuer's token claiming this issuer", reissued, tenants.OIDCConfig{}, tenants.ErrInvalidSignature},
		{"wrong audience", idp.Token(t, "other-aud", "mcp"), tenants.OIDCConfig{}, tenants.ErrWrongAudience},
		{"missing tenant", idp.Token(t, "no-tenant", "mcp"), tenants.OIDCConfig{}, tenants.ErrMissingTenant},
		{"tenant claim renamed", good, tenants.OIDCConfig{TenantClaim: "org"}, tenants.ErrMissingTenant},
		{"bad tenant ../x", idp.Token(t, "bad-tenant", "mcp"), tenants.OIDCConfig{}, tenants.ErrInvalidID},
		{"tenant not a string", idp.Token(t, "number-tenant", "mcp"), tenants.OIDCConfig{}, tenants.ErrInvalidID},
		{"alg none", none, tenants.OIDCConfig{}, tenants.ErrInvalidSignature},
		{"alg HS256", hs256, tenants.OIDCConfig{}, tenants.ErrInvalidSignature},
		{"alg RS256 not allowed", good, tenants.OIDCConfig{Algorithms: []string{"ES256"}}, tenants.ErrInvalidSignature},
		{"tampered signature", flipped, tenants.OIDCConfig{}, tenants.ErrInvalidSignature},
		{"tampered payload", retenanted, tenants.OIDCConfig{}, tenants.ErrInvalidSignature},
		{"empty", "", tenants.OIDCConfig{}, tenants.ErrMalformed},
		{"not a JWT", "opaque-token", tenants.OIDCConfig{}, tenants.ErrMalformed},
		{"two parts", parts[0] + "." + parts[1], tenants.OIDCConfig{}, tenants.ErrMalformed},
		{"JWE-shaped", "a.b.c.d.e", tenants.OIDCConfig{}, tenants.ErrMalformed},
		{"header not base64", "!!." + parts[1] + "." + parts[2], tenants.OIDCConfig{}, tenants.ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := newVerifier(t, idp, tt.cfg)
			id, err := v.Verify(t.Context(), tt.token)
			if !errors.Is(err, tt.want) {
				t.Fatalf("Verify = %+v, %v; want error %v", id, err, tt.want)
			}
			t.Logf("Verify: %v", err)
			if !cmp.Equal(id, tenants.Identity{}) {
				t.Errorf("Verify returned identity %+v with its error", id)
			}
			if strings.Contains(err.Error(), tt.token) && tt.token != "" {
				t.Errorf("error %q contains the token", err)
			}
			if _, ok := errors.AsType[*tenants.InsufficientScopeError](err); ok {
				t.Errorf("error %v is an InsufficientScopeError (403) for an invalid token", err)
			}
		})
	}
}

func TestOIDCVerifyInsufficientScope(t *testing.T) {
	idp := startIDP(t)
	v := newVerifier(t, idp, tenants.OIDCConfig{RequiredScopes: []string{"mcp"}})
	for _, client := range []string{"acme-noscope", "acme-svc"} { // acme-svc asks for no scope
		_, err := v.Verify(t.Context(), idp.Token(t, client))
		scopeErr, ok := errors.AsType[*tenants.InsufficientScopeError](err)
		if !ok {
			t.Fatalf("%s: Verify error = %v, want *InsufficientScopeError", client, err)
		}
		if diff := cmp.Diff([]string{"mcp"}, scopeErr.Required); diff != "" {
			t.Errorf("%s: Required (-want +got):\n%s", client, diff)
		}
	}
	// A token that is invalid and lacks the scope is invalid first (401).
	_, err := v.Verify(t.Context(), idp.Token(t, "other-aud"))
	if !errors.Is(err, tenants.ErrWrongAudience) {
		t.Errorf("wrong-audience token without scope: error = %v, want ErrWrongAudience", err)
	}
}

func TestOIDCVerifyClockSkew(t *testing.T) {
	idp := startIDP(t)
	token := idp.Token(t, "acme-svc")
	c := claims(t, token)
	exp, iat := unix(c, "exp"), unix(c, "iat")
	tests := []struct {
		name string
		skew time.Duration
		at   time.Time
		want error
	}{
		{"just after exp, within default skew", 0, exp.Add(20 * time.Second), nil},
		{"after exp beyond default skew", 0, exp.Add(40 * time.Second), tenants.ErrTokenExpired},
		{"just before iat/nbf, within default skew", 0, iat.Add(-20 * time.Second), nil},
		{"before iat/nbf beyond default skew", 0, iat.Add(-40 * time.Second), tenants.ErrTokenNotYetValid},
		{"after exp within a 2 minute skew", 2 * time.Minute, exp.Add(100 * time.Second), nil},
		{"at exp with no skew", -1, exp, tenants.ErrTokenExpired},
		{"a day later", 0, exp.Add(24 * time.Hour), tenants.ErrTokenExpired},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var clk clock
			clk.Set(tt.at)
			v := newVerifier(t, idp, tenants.OIDCConfig{ClockSkew: tt.skew, Now: clk.Now})
			_, err := v.Verify(t.Context(), token)
			if !errors.Is(err, tt.want) || (tt.want == nil) != (err == nil) {
				t.Errorf("Verify at %v = %v, want %v", tt.at, err, tt.want)
			}
		})
	}
}

func TestOIDCKeyRotation(t *testing.T) {
	idp := startIDP(t)
	var clk clock
	v := newVerifier(t, idp, tenants.OIDCConfig{Now: clk.Now})
	verify := func(token string) error { _, err := v.Verify(t.Context(), token); return err }

	oldKey := idp.KeyID()
	oldToken := idp.Token(t, "acme-long")
	if err := verify(oldToken); err != nil {
		t.Fatalf("token of the first key: %v", err)
	}

	// Rotate in a new key (of another algorithm); the old one stays
	// published for a while, as providers do.
	newKey := idp.RotateKey(t, jose.ES256)
	if diff := cmp.Diff([]string{oldKey, newKey}, idp.PublishedKeyIDs(t)); diff != "" {
		t.Fatalf("JWKS after rotation (-want +got):\n%s", diff)
	}
	newToken := tokenSignedBy(t, idp, "acme-long", newKey)
	if err := verify(newToken); err != nil {
		t.Fatalf("token of the rotated-in key: %v", err)
	}
	if err := verify(oldToken); err != nil {
		t.Errorf("token of the old key while still published: %v", err)
	}

	// Retire the old key. The cached JWKS still has it until the cache
	// expires; then a token signed with it is refused.
	idp.RetireKey(oldKey)
	if diff := cmp.Diff([]string{newKey}, idp.PublishedKeyIDs(t)); diff != "" {
		t.Fatalf("JWKS after retiring (-want +got):\n%s", diff)
	}
	// go-oidc's cache alone would keep the retired key: it refetches only
	// for a key it does not have.
	if err := verify(oldToken); err != nil {
		t.Errorf("token of the retired key within the key cache TTL: %v", err)
	}
	clk.Advance(tenants.DefaultKeyCacheTTL + time.Second)
	if err := verify(oldToken); !errors.Is(err, tenants.ErrInvalidSignature) {
		t.Errorf("token of the retired key after the key cache TTL: error = %v, want ErrInvalidSignature", err)
	}
	if err := verify(newToken); err != nil {
		t.Errorf("token of the current key after the key cache TTL: %v", err)
	}
}

func TestOIDCKeyRotationRetiresAtOnce(t *testing.T) {
	// A provider that replaces its key outright (compromise): the first
	// token of the new key makes the verifier fetch the JWKS, after which
	// the old key is gone, with no wait for the cache TTL.
	idp := startIDP(t)
	v := newVerifier(t, idp, tenants.OIDCConfig{})
	oldKey := idp.KeyID()
	oldToken := idp.Token(t, "acme-svc")
	if _, err := v.Verify(t.Context(), oldToken); err != nil {
		t.Fatalf("token of the first key: %v", err)
	}
	newKey := idp.RotateKey(t, jose.RS256)
	idp.RetireKey(oldKey)
	if _, err := v.Verify(t.Context(), tokenSignedBy(t, idp, "acme-svc", newKey)); err != nil {
		t.Fatalf("token of the new key: %v", err)
	}
	if _, err := v.Verify(t.Context(), oldToken); !errors.Is(err, tenants.ErrInvalidSignature) {
		t.Errorf("token of the rotated-out key: error = %v, want ErrInvalidSignature", err)
	}
}

func TestNewOIDCVerifierConfig(t *testing.T) {
	idp := startIDP(t)
	tests := []struct {
		name string
		cfg  tenants.OIDCConfig
	}{
		{"no issuer", tenants.OIDCConfig{Audience: resource}},
		{"no audience", tenants.OIDCConfig{Issuer: idp.Issuer}},
		{"alg none", tenants.OIDCConfig{Issuer: idp.Issuer, Audience: resource, Algorithms: []string{"none"}}},
		{"alg HS256", tenants.OIDCConfig{Issuer: idp.Issuer, Audience: resource, Algorithms: []string{"RS256", "HS256"}}},
		{"issuer not matching discovery", tenants.OIDCConfig{Issuer: idp.Issuer + "/", Audience: resource}},
		{"no provider", tenants.OIDCConfig{Issuer: "http://127.0.0.1:1", Audience: resource}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := tenants.NewOIDCVerifier(t.Context(), tt.cfg); err == nil {
				t.Error("NewOIDCVerifier succeeded")
			}
		})
	}
}

// tokenSignedBy gets a token for client signed with the key kid. The
// provider picks up a rotated signing key on its own schedule, so the
// first tokens after a rotation may still carry the previous key.
func tokenSignedBy(t *testing.T, idp *testidp.IDP, client, kid string) string {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		tok := idp.Token(t, client)
		header, _, _ := strings.Cut(tok, ".")
		raw, err := base64.RawURLEncoding.DecodeString(header)
		if err != nil {
			t.Fatalf("token header: %v", err)
		}
		var h struct {
			Kid string `json:"kid"`
		}
		if json.Unmarshal(raw, &h) == nil && h.Kid == kid {
			return tok
		}
		if time.Now().After(deadline) {
			t.Fatalf("the provider still signs with %s, not %s", h.Kid, kid)
		}
	}
}

// countingTransport counts requests per path.
type countingTransport struct {
	mu    sync.Mutex
	paths map[string]int
}

func (c *countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	c.mu.Lock()
	if c.paths == nil {
		c.paths = map[string]int{}
	}
	c.paths[r.URL.Path]++
	c.mu.Unlock()
	return http.DefaultTransport.RoundTrip(r)
}

func (c *countingTransport) count(path string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.paths[path]
}

// TestOIDCUnknownKeyFlood: tokens naming made-up key IDs (each would send
// go-oidc to the provider for its JWKS) reach the provider a few times at
// most; tokens of the real key keep working throughout.
func TestOIDCUnknownKeyFlood(t *testing.T) {
	idp := startIDP(t)
	counter := &countingTransport{}
	var clk clock
	v := newVerifier(t, idp, tenants.OIDCConfig{HTTPClient: &http.Client{Transport: counter}, Now: clk.Now})
	good := idp.Token(t, "acme-long")
	if _, err := v.Verify(t.Context(), good); err != nil {
		t.Fatal(err)
	}
	jwks := ""
	for p, n := range counter.paths {
		if n > 0 && strings.Contains(p, "key") {
			jwks = p
		}
	}
	if jwks == "" {
		t.Fatalf("no JWKS fetch seen: %v", counter.paths)
	}
	before := counter.count(jwks)
	header, rest, _ := strings.Cut(good, ".")
	raw, _ := base64.RawURLEncoding.DecodeString(header)
	var h map[string]any
	_ = json.Unmarshal(raw, &h)
	for i := range 200 {
		h["kid"] = fmt.Sprintf("made-up-%d", i)
		b, _ := json.Marshal(h)
		forged := base64.RawURLEncoding.EncodeToString(b) + "." + rest
		if _, err := v.Verify(t.Context(), forged); err == nil {
			t.Fatal("a token with a made-up key ID verified")
		}
		if _, err := v.Verify(t.Context(), good); err != nil {
			t.Fatalf("the real key's token during the flood: %v", err)
		}
	}
	if fetched := counter.count(jwks) - before; fetched > 3 {
		t.Errorf("200 tokens with made-up key IDs caused %d JWKS fetches, want at most 3", fetched)
	}
	// Later, a genuinely new key is still picked up.
	clk.Advance(time.Minute)
	newKey := idp.RotateKey(t, jose.ES256)
	if _, err := v.Verify(t.Context(), tokenSignedBy(t, idp, "acme-long", newKey)); err != nil {
		t.Errorf("a rotated-in key after the flood: %v", err)
	}
}
