package tenants

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/time/rate"
)

// Errors of OIDCVerifier.Verify. Each is wrapped with detail that never
// contains the token. All but *InsufficientScopeError mean the token is not
// acceptable at all (HTTP 401, error="invalid_token").
var (
	ErrMalformed        = errors.New("malformed token")
	ErrInvalidSignature = errors.New("token signature not valid")
	ErrWrongIssuer      = errors.New("token from another issuer")
	ErrWrongAudience    = errors.New("token for another audience")
	ErrTokenExpired     = errors.New("token expired")
	ErrTokenNotYetValid = errors.New("token not yet valid")
	ErrMissingTenant    = errors.New("token names no tenant")
)

// InsufficientScopeError is returned for a valid token that lacks a scope
// the gateway requires (HTTP 403, error="insufficient_scope").
type InsufficientScopeError struct {
	Required []string // every scope required, for the challenge's scope=
}

func (e *InsufficientScopeError) Error() string {
	return "token lacks a required scope: need " + strings.Join(e.Required, " ")
}

// OIDCConfig configures an OIDCVerifier. Issuer and Audience are required;
// every other field has a default when zero.
type OIDCConfig struct {
	// Issuer is the OpenID provider's issuer URL. Its discovery document
	// names the JWKS; a token's iss must equal it exactly.
	Issuer string
	// Audience is the gateway's canonical resource URI (RFC 8707, as in
	// the MCP authorization spec); a token's aud must contain it.
	Audience string
	// Algorithms are the signing algorithms accepted; empty means RS256
	// and ES256. Only asymmetric algorithms are allowed: "none" and HS*
	// are refused by NewOIDCVerifier.
	Algorithms []string
	// ClockSkew is the leeway on exp, nbf and iat; zero means 30 seconds,
	// a negative value none.
	ClockSkew time.Duration
	// TenantClaim names the claim holding the tenant ID; empty means
	// "tenant_id". Its value must be a string valid per ValidateID.
	TenantClaim string
	// AdminRole is the role or scope value that makes a caller an admin;
	// empty means no token grants admin.
	AdminRole string
	// AdminClaim names the claim AdminRole is looked for in (a string
	// array, or a space-separated string); empty means "roles", "scope"
	// and "scp".
	AdminClaim string
	// RequiredScopes must all be granted (in "scope" or "scp"); empty
	// means none.
	RequiredScopes []string
	// KeyCacheTTL bounds how long fetched signing keys are trusted before
	// the JWKS is fetched afresh, so that a key the provider retires stops
	// being accepted even if no token with a new key arrives; zero means
	// 10 minutes. Independently, a token whose key is not in the cache
	// makes the verifier fetch the JWKS again (key rotation).
	KeyCacheTTL time.Duration
	// HTTPClient fetches discovery and the JWKS; nil means
	// http.DefaultClient.
	HTTPClient *http.Client
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Defaults of OIDCConfig.
const (
	DefaultClockSkew   = 30 * time.Second
	DefaultTenantClaim = "tenant_id"
	DefaultKeyCacheTTL = 10 * time.Minute
)

// DefaultAlgorithms are the signing algorithms accepted when OIDCConfig
// names none.
var DefaultAlgorithms = []string{oidc.RS256, oidc.ES256}

// asymmetricAlgorithms are the algorithms OIDCConfig.Algorithms may name.
var asymmetricAlgorithms = []string{
	oidc.RS256, oidc.RS384, oidc.RS512,
	oidc.PS256, oidc.PS384, oidc.PS512,
	oidc.ES256, oidc.ES384, oidc.ES512,
	oidc.EdDSA,
}

// OIDCVerifier verifies bearer access tokens (JWTs) from one OpenID
// provider and turns them into identities. It is safe for concurrent use.
type OIDCVerifier struct {
	cfg      OIDCConfig
	verifier *oidc.IDTokenVerifier
}

// NewOIDCVerifier fetches the provider's discovery document and returns a
// verifier for its tokens. The signing keys are fetched when first needed.
// ctx bounds discovery only.
func NewOIDCVerifier(ctx context.Context, cfg OIDCConfig) (*OIDCVerifier, error) {
	if cfg.Issuer == "" {
		return nil, errors.New("OIDC: issuer is required")
	}
	if cfg.Audience == "" {
		return nil, errors.New("OIDC: audience (the gateway's resource URI) is required")
	}
	if len(cfg.Algorithms) == 0 {
		cfg.Algorithms = DefaultAlgorithms
	}
	for _, alg := range cfg.Algorithms {
		if !slices.Contains(asymmetricAlgorithms, alg) {
			return nil, fmt.Errorf("OIDC: signing algorithm %q not allowed: use one of %s", alg, strings.Join(asymmetricAlgorithms, ", "))
		}
	}
	cfg.Algorithms = slices.Clone(cfg.Algorithms)
	cfg.RequiredScopes = slices.Clone(cfg.RequiredScopes)
	if cfg.ClockSkew == 0 {
		cfg.ClockSkew = DefaultClockSkew
	}
	cfg.ClockSkew = max(cfg.ClockSkew, 0)
	if cfg.TenantClaim == "" {
		cfg.TenantClaim = DefaultTenantClaim
	}
	if cfg.KeyCacheTTL <= 0 {
		cfg.KeyCacheTTL = DefaultKeyCacheTTL
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = http.DefaultClient
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}

	ctx = oidc.ClientContext(ctx, cfg.HTTPClient)
	provider, err := oidc.NewProvider(ctx, cfg.Issuer)
	if err != nil {
		return nil, fmt.Errorf("OIDC discovery for %s: %w", cfg.Issuer, err)
	}
	var meta struct {
		JWKSURL string `json:"jwks_uri"`
	}
	if err := provider.Claims(&meta); err != nil || meta.JWKSURL == "" {
		return nil, fmt.Errorf("OIDC discovery for %s: no jwks_uri", cfg.Issuer)
	}
	keys := &keySet{
		// The key set outlives ctx: it fetches keys long after start-up.
		ctx: oidc.ClientContext(context.WithoutCancel(ctx), cfg.HTTPClient),
		url: meta.JWKSURL,
		ttl: cfg.KeyCacheTTL,
		now: cfg.Now,
	}
	v := oidc.NewVerifier(cfg.Issuer, keys, &oidc.Config{
		// Access tokens are not ID tokens: aud is the resource, not a
		// client ID, and is checked in Verify, as are exp, nbf and iat
		// (with a configurable skew go-oidc lacks).
		SkipClientIDCheck:    true,
		SkipExpiryCheck:      true,
		SupportedSigningAlgs: cfg.Algorithms,
	})
	return &OIDCVerifier{cfg: cfg, verifier: v}, nil
}

// Verify checks rawToken and returns the identity it names: its tenant
// (from TenantClaim, valid per ValidateID), the subject "oidc:"+sub, and
// whether it carries AdminRole.
//
// The token is checked in an order that makes the cheap, unauthenticated
// refusals first: its form and algorithm, its issuer (a token of another
// issuer is refused without fetching keys), then its signature, and only
// then, on claims known to be the provider's, audience, validity period,
// tenant and scopes.
func (v *OIDCVerifier) Verify(ctx context.Context, rawToken string) (Identity, error) {
	header, payload, err := splitJWT(rawToken)
	if err != nil {
		return Identity{}, err
	}
	if !slices.Contains(v.cfg.Algorithms, header.Alg) {
		return Identity{}, fmt.Errorf("%w: algorithm %q not allowed", ErrInvalidSignature, header.Alg)
	}
	var unverified struct {
		Issuer string `json:"iss"`
	}
	if err := json.Unmarshal(payload, &unverified); err != nil {
		return Identity{}, fmt.Errorf("%w: claims: %v", ErrMalformed, err)
	}
	if unverified.Issuer != v.cfg.Issuer {
		return Identity{}, ErrWrongIssuer
	}

	tok, err := v.verifier.Verify(ctx, rawToken)
	if err != nil {
		return Identity{}, fmt.Errorf("%w: %v", ErrInvalidSignature, err)
	}
	var claims map[string]any
	if err := tok.Claims(&claims); err != nil {
		return Identity{}, fmt.Errorf("%w: claims: %v", ErrMalformed, err)
	}

	if !slices.Contains(tok.Audience, v.cfg.Audience) {
		return Identity{}, ErrWrongAudience
	}
	if err := v.checkTimes(tok, claims); err != nil {
		return Identity{}, err
	}
	if tok.Subject == "" {
		return Identity{}, fmt.Errorf("%w: no sub", ErrMalformed)
	}

	tenant, err := v.tenant(claims)
	if err != nil {
		return Identity{}, err
	}
	scopes := stringsClaim(claims, "scope")
	scopes = append(scopes, stringsClaim(claims, "scp")...)
	for _, s := range v.cfg.RequiredScopes {
		if !slices.Contains(scopes, s) {
			return Identity{}, &InsufficientScopeError{Required: slices.Clone(v.cfg.RequiredScopes)}
		}
	}
	if scopes == nil {
		scopes = []string{} // granted none, as opposed to an API key's nil
	}
	return Identity{Tenant: tenant, Subject: "oidc:" + tok.Subject, Admin: v.admin(claims), Scopes: scopes}, nil
}

// checkTimes checks exp (required), nbf and iat against the clock, with
// the configured skew.
func (v *OIDCVerifier) checkTimes(tok *oidc.IDToken, claims map[string]any) error {
	if _, ok := claims["exp"]; !ok || tok.Expiry.IsZero() {
		return fmt.Errorf("%w: no exp", ErrMalformed)
	}
	now := v.cfg.Now()
	if !now.Before(tok.Expiry.Add(v.cfg.ClockSkew)) {
		return ErrTokenExpired
	}
	var nbf struct {
		NotBefore *float64 `json:"nbf"`
	}
	if err := tok.Claims(&nbf); err != nil {
		return fmt.Errorf("%w: nbf: %v", ErrMalformed, err)
	}
	late := now.Add(v.cfg.ClockSkew)
	if nbf.NotBefore != nil && late.Before(time.Unix(int64(*nbf.NotBefore), 0)) {
		return fmt.Errorf("%w: nbf in the future", ErrTokenNotYetValid)
	}
	if !tok.IssuedAt.IsZero() && late.Before(tok.IssuedAt) {
		return fmt.Errorf("%w: iat in the future", ErrTokenNotYetValid)
	}
	return nil
}

// tenant returns the tenant the claims name.
func (v *OIDCVerifier) tenant(claims map[string]any) (string, error) {
	raw, ok := claims[v.cfg.TenantClaim]
	if !ok || raw == nil || raw == "" {
		return "", fmt.Errorf("%w: no %s claim", ErrMissingTenant, v.cfg.TenantClaim)
	}
	tenant, ok := raw.(string)
	if !ok {
		return "", fmt.Errorf("%s claim is not a string: %w", v.cfg.TenantClaim, ErrInvalidID)
	}
	if err := ValidateID(tenant); err != nil {
		return "", fmt.Errorf("%s claim: %w", v.cfg.TenantClaim, err)
	}
	return tenant, nil
}

// admin reports whether the claims grant AdminRole.
func (v *OIDCVerifier) admin(claims map[string]any) bool {
	if v.cfg.AdminRole == "" {
		return false
	}
	names := []string{"roles", "scope", "scp"}
	if v.cfg.AdminClaim != "" {
		names = []string{v.cfg.AdminClaim}
	}
	for _, name := range names {
		if slices.Contains(stringsClaim(claims, name), v.cfg.AdminRole) {
			return true
		}
	}
	return false
}

// stringsClaim reads a claim that is a space-separated string ("scope",
// RFC 9068) or an array of strings ("roles", "scp"); other values read as
// nothing.
func stringsClaim(claims map[string]any, name string) []string {
	switch v := claims[name].(type) {
	case string:
		return strings.Fields(v)
	case []any:
		out := make([]string, 0, len(v))
		for _, e := range v {
			if s, ok := e.(string); ok {
				out = append(out, s)
			}
		}
		return out
	}
	return nil
}

// jwtHeader is the part of a JOSE header Verify reads before the signature.
type jwtHeader struct {
	Alg string `json:"alg"`
	Kid string `json:"kid"`
}

// splitJWT decodes the header and payload of a compact JWS, unverified.
func splitJWT(raw string) (jwtHeader, []byte, error) {
	parts := strings.Split(raw, ".")
	if len(parts) != 3 {
		return jwtHeader{}, nil, fmt.Errorf("%w: not a compact JWS", ErrMalformed)
	}
	hb, err := base64.RawURLEncoding.DecodeString(parts[0])
	if err != nil {
		return jwtHeader{}, nil, fmt.Errorf("%w: header: %v", ErrMalformed, err)
	}
	var h jwtHeader
	if err := json.Unmarshal(hb, &h); err != nil {
		return jwtHeader{}, nil, fmt.Errorf("%w: header: %v", ErrMalformed, err)
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return jwtHeader{}, nil, fmt.Errorf("%w: payload: %v", ErrMalformed, err)
	}
	return h, payload, nil
}

// keySet is go-oidc's RemoteKeySet, replaced by a fresh one (with an empty
// cache) once it is ttl old. RemoteKeySet fetches the JWKS again when a
// token's key is not in its cache, which handles rotation in, but keeps a
// key the provider has retired for as long as the process runs.
//
// A token naming a key not seen yet makes RemoteKeySet fetch the JWKS, so
// a flood of tokens with made-up key IDs would become a flood of requests
// to the provider. keySet lets such fetches through at most
// unknownKeyBurst at once and then one per unknownKeyEvery; a token whose
// key is known never waits.
type keySet struct {
	ctx context.Context
	url string
	ttl time.Duration
	now func() time.Time

	mu      sync.Mutex
	set     *oidc.RemoteKeySet // guarded by mu
	created time.Time          // guarded by mu
	known   map[string]bool    // key IDs that verified a token; guarded by mu
	fetches *rate.Limiter      // for tokens naming an unknown key
}

// Limits on JWKS fetches for unknown key IDs.
const (
	unknownKeyEvery = 10 * time.Second
	unknownKeyBurst = 3
)

// ErrUnknownKeyLimited is a token naming a key this gateway has not seen,
// refused without asking the provider because too many such tokens came
// lately.
var ErrUnknownKeyLimited = errors.New("OIDC: token signed by an unknown key (key refresh rate-limited)")

// VerifySignature implements oidc.KeySet.
func (k *keySet) VerifySignature(ctx context.Context, jwt string) ([]byte, error) {
	h, _, err := splitJWT(jwt)
	if err != nil {
		return nil, err
	}
	k.mu.Lock()
	if now := k.now(); k.set == nil || now.Sub(k.created) >= k.ttl || now.Before(k.created) {
		k.set, k.created = oidc.NewRemoteKeySet(k.ctx, k.url), now
		k.known = map[string]bool{}
	}
	if k.fetches == nil {
		k.fetches = rate.NewLimiter(rate.Every(unknownKeyEvery), unknownKeyBurst)
	}
	set, known := k.set, k.known[h.Kid]
	k.mu.Unlock()
	if !known && !k.fetches.AllowN(k.now(), 1) {
		return nil, ErrUnknownKeyLimited
	}
	payload, err := set.VerifySignature(ctx, jwt)
	if err == nil && h.Kid != "" {
		k.mu.Lock()
		if k.set == set {
			k.known[h.Kid] = true
		}
		k.mu.Unlock()
	}
	return payload, err
}
