// Package testidp runs a real OpenID provider on loopback for tests: the
// example provider of github.com/zitadel/oidc/v3 (exampleop with its
// in-memory storage), served by httptest on 127.0.0.1.
//
// # Overview
//
// Tokens come from the provider's real endpoints (discovery, the token
// endpoint, the JWKS), never minted by hand. The example storage is used as
// it is, with a thin layer over it (opStorage) that adds what the gateway's
// tests need and the example lacks:
//
//   - service clients for the client credentials grant whose access tokens
//     are JWTs with a chosen audience (RFC 8707 resource) and private claims
//     (tenant_id, roles), a "scope" claim, and optionally a lifetime or clock
//     skew that makes them expired or not yet valid when issued;
//   - signing keys that can be rotated (RS256 or ES256) and retired from the
//     JWKS.
//
// # Usage
//
//	idp := testidp.Start(t)
//	idp.AddClient(testidp.Client{ID: "svc", Secret: "s", Audience: []string{resource},
//		Claims: map[string]any{"tenant_id": "acme"}, Scopes: []string{"mcp"}})
//	token := idp.Token(t, "svc", "mcp")
package testidp

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/google/uuid"
	"github.com/zitadel/oidc/v3/example/server/exampleop"
	"github.com/zitadel/oidc/v3/example/server/storage"
	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"
)

// Client is a service client of the client credentials grant.
type Client struct {
	ID, Secret string
	// Audience is the aud of its access tokens; empty means its ID.
	Audience []string
	// Claims are added to its access tokens (tenant_id, roles, ...).
	Claims map[string]any
	// Scopes are the scopes it may be granted; others it asks for are
	// dropped. Granted scopes go in the token's "scope" claim.
	Scopes []string
	// Lifetime is how long its tokens live, from iat to exp; zero means 5
	// minutes. A negative value issues tokens that expired -Lifetime ago
	// (and were issued 5 minutes before that; ClockSkew is then ignored).
	Lifetime time.Duration
	// ClockSkew is the provider's per-client skew: iat and nbf are set to
	// now - ClockSkew, so a negative value issues tokens that are not yet
	// valid.
	ClockSkew time.Duration
}

const defaultLifetime = 5 * time.Minute

// skew is the clock skew the provider applies to c's tokens. The provider
// answers expires_in = exp + skew - now, which must not be negative, so an
// expired token is made with a skew that puts iat before its exp.
func (c Client) skew() time.Duration {
	if c.Lifetime < 0 {
		return -c.Lifetime + defaultLifetime
	}
	return c.ClockSkew
}

// expiry is the exp of a token of c issued at now.
func (c Client) expiry(now time.Time) time.Time {
	switch {
	case c.Lifetime < 0:
		return now.Add(c.Lifetime)
	case c.Lifetime == 0:
		return now.Add(-c.skew()).Add(defaultLifetime)
	default:
		return now.Add(-c.skew()).Add(c.Lifetime)
	}
}

// IDP is a running provider.
type IDP struct {
	// Issuer is the provider's issuer URL, http://127.0.0.1:<port>.
	Issuer string

	tokenURL, jwksURL string

	mu        sync.Mutex
	clients   map[string]Client // guarded by mu
	signing   *signingKey       // guarded by mu
	published []*signingKey     // guarded by mu; in the JWKS
}

// Start runs a provider until the end of the test. Its first signing key is
// RS256.
func Start(t testing.TB) *IDP {
	t.Helper()
	srv := httptest.NewUnstartedServer(nil) // listens on 127.0.0.1:0
	p := &IDP{Issuer: "http://" + srv.Listener.Addr().String(), clients: map[string]Client{}}
	p.RotateKey(t, jose.RS256)

	st := &opStorage{
		// No auth-code clients are registered here; the example's global
		// client list is not used, so providers in parallel tests don't share it.
		Storage: storage.NewStorageWithClients(storage.NewUserStore(p.Issuer), map[string]*storage.Client{}),
		idp:     p,
	}
	// A nil logger keeps exampleop from replacing slog's default.
	srv.Config.Handler = exampleop.SetupServer(p.Issuer, st, nil, false)
	srv.Start()
	t.Cleanup(srv.Close)

	var disc struct {
		Issuer   string `json:"issuer"`
		TokenURL string `json:"token_endpoint"`
		JWKSURL  string `json:"jwks_uri"`
	}
	if err := getJSON(t.Context(), p.Issuer+"/.well-known/openid-configuration", &disc); err != nil {
		t.Fatalf("testidp: discovery: %v", err)
	}
	if disc.Issuer != p.Issuer {
		t.Fatalf("testidp: discovery names issuer %q, want %q", disc.Issuer, p.Issuer)
	}
	p.tokenURL, p.jwksURL = disc.TokenURL, disc.JWKSURL
	return p
}

// AddClient registers (or replaces) a service client.
func (p *IDP) AddClient(c Client) {
	p.mu.Lock()
	defer p.mu.Unlock()
	c.Claims = maps.Clone(c.Claims)
	p.clients[c.ID] = c
}

// Token obtains an access token for the client clientID through the
// token endpoint, asking for scopes. It fails the test on error.
func (p *IDP) Token(t testing.TB, clientID string, scopes ...string) string {
	t.Helper()
	tok, err := p.TokenContext(t.Context(), clientID, scopes...)
	if err != nil {
		t.Fatalf("testidp: token for %s: %v", clientID, err)
	}
	return tok
}

// TokenContext is Token returning its error.
func (p *IDP) TokenContext(ctx context.Context, clientID string, scopes ...string) (string, error) {
	p.mu.Lock()
	c, ok := p.clients[clientID]
	p.mu.Unlock()
	if !ok {
		return "", fmt.Errorf("no client %q", clientID)
	}
	cc := clientcredentials.Config{
		ClientID:     c.ID,
		ClientSecret: c.Secret,
		TokenURL:     p.tokenURL,
		Scopes:       scopes,
		AuthStyle:    oauth2.AuthStyleInHeader,
	}
	tok, err := cc.Token(ctx)
	if err != nil {
		return "", err
	}
	return tok.AccessToken, nil
}

// KeyID returns the ID of the key the provider signs with now.
func (p *IDP) KeyID() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.signing.id
}

// RotateKey makes a new key of alg (RS256 or ES256) the signing key,
// publishes it, and returns its ID. The old key stays in the JWKS until
// RetireKey.
func (p *IDP) RotateKey(t testing.TB, alg jose.SignatureAlgorithm) string {
	t.Helper()
	var priv crypto.Signer
	var err error
	switch alg {
	case jose.RS256:
		priv, err = rsa.GenerateKey(rand.Reader, 2048)
	case jose.ES256:
		priv, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	default:
		t.Fatalf("testidp: RotateKey: unsupported algorithm %s", alg)
	}
	if err != nil {
		t.Fatalf("testidp: generating %s key: %v", alg, err)
	}
	k := &signingKey{id: uuid.NewString(), alg: alg, priv: priv}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.signing = k
	p.published = append(p.published, k)
	return k.id
}

// RetireKey removes the key kid from the JWKS. Retiring the signing key
// leaves the provider signing tokens nobody can verify.
func (p *IDP) RetireKey(kid string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.published = slices.DeleteFunc(p.published, func(k *signingKey) bool { return k.id == kid })
}

// PublishedKeyIDs returns the key IDs in the provider's JWKS, read from its
// jwks_uri.
func (p *IDP) PublishedKeyIDs(t testing.TB) []string {
	t.Helper()
	var set jose.JSONWebKeySet
	if err := getJSON(t.Context(), p.jwksURL, &set); err != nil {
		t.Fatalf("testidp: reading JWKS: %v", err)
	}
	ids := make([]string, 0, len(set.Keys))
	for _, k := range set.Keys {
		ids = append(ids, k.KeyID)
	}
	return ids
}

func getJSON(ctx context.Context, url string, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return json.NewDecoder(resp.Body).Decode(v)
}

// signingKey is both the op.SigningKey the provider signs with and, through
// publicKey, the op.Key it publishes.
type signingKey struct {
	id   string
	alg  jose.SignatureAlgorithm
	priv crypto.Signer
}

func (k *signingKey) SignatureAlgorithm() jose.SignatureAlgorithm { return k.alg }
func (k *signingKey) Key() any                                    { return k.priv }
func (k *signingKey) ID() string                                  { return k.id }

type publicKey struct{ k *signingKey }

func (k publicKey) ID() string                         { return k.k.id }
func (k publicKey) Algorithm() jose.SignatureAlgorithm { return k.k.alg }
func (k publicKey) Use() string                        { return "sig" }
func (k publicKey) Key() any                           { return k.k.priv.Public() }

// opStorage is the example storage with the IDP's service clients and keys.
type opStorage struct {
	*storage.Storage
	idp *IDP
}

func (s *opStorage) client(id string) (Client, bool) {
	s.idp.mu.Lock()
	defer s.idp.mu.Unlock()
	c, ok := s.idp.clients[id]
	return c, ok
}

// ClientCredentials implements op.ClientCredentialsStorage.
func (s *opStorage) ClientCredentials(ctx context.Context, clientID, clientSecret string) (op.Client, error) {
	c, ok := s.client(clientID)
	if !ok || c.Secret != clientSecret {
		return nil, fmt.Errorf("wrong client or secret")
	}
	return &serviceClient{Client: storage.WebClient(c.ID, c.Secret), skew: c.skew()}, nil
}

// ClientCredentialsTokenRequest implements op.ClientCredentialsStorage: the
// token names the client as subject, carries the client's audience and the
// requested scopes it may have.
func (s *opStorage) ClientCredentialsTokenRequest(ctx context.Context, clientID string, scopes []string) (op.TokenRequest, error) {
	c, ok := s.client(clientID)
	if !ok {
		return nil, fmt.Errorf("wrong client or secret")
	}
	aud := c.Audience
	if len(aud) == 0 {
		aud = []string{c.ID}
	}
	granted := slices.DeleteFunc(slices.Clone(scopes), func(sc string) bool { return !slices.Contains(c.Scopes, sc) })
	return &oidc.JWTTokenRequest{Subject: c.ID, Audience: slices.Clone(aud), Scopes: granted}, nil
}

// CreateAccessToken implements op.Storage, giving service clients their
// Lifetime and ClockSkew.
func (s *opStorage) CreateAccessToken(ctx context.Context, req op.TokenRequest) (string, time.Time, error) {
	id, exp, err := s.Storage.CreateAccessToken(ctx, req)
	if err != nil {
		return "", time.Time{}, err
	}
	if c, ok := s.client(req.GetSubject()); ok {
		exp = c.expiry(time.Now())
	}
	return id, exp, nil
}

// GetPrivateClaimsFromRequest implements op.CanGetPrivateClaimsFromRequest:
// a service client's Claims and the granted scopes.
func (s *opStorage) GetPrivateClaimsFromRequest(ctx context.Context, req op.TokenRequest, scopes []string) (map[string]any, error) {
	claims, err := s.Storage.GetPrivateClaimsFromScopes(ctx, req.GetSubject(), "", scopes)
	if err != nil {
		return nil, err
	}
	if c, ok := s.client(req.GetSubject()); ok {
		if claims == nil {
			claims = map[string]any{}
		}
		maps.Copy(claims, c.Claims)
		if len(scopes) > 0 {
			claims["scope"] = oidc.SpaceDelimitedArray(scopes).String()
		}
	}
	return claims, nil
}

// SigningKey implements op.Storage.
func (s *opStorage) SigningKey(context.Context) (op.SigningKey, error) {
	s.idp.mu.Lock()
	defer s.idp.mu.Unlock()
	return s.idp.signing, nil
}

// SignatureAlgorithms implements op.Storage.
func (s *opStorage) SignatureAlgorithms(context.Context) ([]jose.SignatureAlgorithm, error) {
	s.idp.mu.Lock()
	defer s.idp.mu.Unlock()
	var algs []jose.SignatureAlgorithm
	for _, k := range s.idp.published {
		if !slices.Contains(algs, k.alg) {
			algs = append(algs, k.alg)
		}
	}
	return algs, nil
}

// KeySet implements op.Storage: the published keys.
func (s *opStorage) KeySet(context.Context) ([]op.Key, error) {
	s.idp.mu.Lock()
	defer s.idp.mu.Unlock()
	keys := make([]op.Key, 0, len(s.idp.published))
	for _, k := range s.idp.published {
		keys = append(keys, publicKey{k})
	}
	return keys, nil
}

// serviceClient is a client of the client credentials grant only, whose
// access tokens are JWTs.
type serviceClient struct {
	*storage.Client
	skew time.Duration
}

func (c *serviceClient) GrantTypes() []oidc.GrantType {
	return []oidc.GrantType{oidc.GrantTypeClientCredentials}
}
func (c *serviceClient) AccessTokenType() op.AccessTokenType { return op.AccessTokenTypeJWT }
func (c *serviceClient) ClockSkew() time.Duration            { return c.skew }
