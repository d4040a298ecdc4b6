package oauth

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"golang.org/x/oauth2"

	"github.com/connectors-gateway/connectors/vault"
)

// Provider kinds: the dialect of a token endpoint.
const (
	KindStandard = "standard"
	KindNotion   = "notion"
	KindGitHub   = "github"
	KindSlack    = "slack"
)

// ErrRevokeUnsupported is returned by Revoke for a provider without a
// revocation endpoint.
var ErrRevokeUnsupported = errors.New("provider does not support revocation")

// Provider is one integration's OAuth 2.0 client.
type Provider struct {
	Integration  string
	Kind         string // KindStandard (default), KindNotion, KindGitHub, KindSlack
	ClientID     string
	ClientSecret string
	AuthorizeURL string
	TokenURL     string
	RevokeURL    string // empty: no revocation
	Scopes       []string
	AuthStyle    string // "basic" (default) or "body"
	PKCE         bool
	// HTTPClient reaches the provider; nil means a client with a 30 s timeout.
	HTTPClient *http.Client
}

// AuthCodeURL returns the provider's consent URL for state, redirecting to
// redirectURI; challenge is the PKCE S256 challenge, sent when p.PKCE.
func (p *Provider) AuthCodeURL(state, redirectURI, challenge string) string {
	cfg := oauth2.Config{
		ClientID:    p.ClientID,
		Endpoint:    oauth2.Endpoint{AuthURL: p.AuthorizeURL},
		RedirectURL: redirectURI,
	}
	var opts []oauth2.AuthCodeOption
	switch p.kind() {
	case KindSlack:
		// Slack's scope parameter (bot scopes) is comma-separated.
		if len(p.Scopes) > 0 {
			opts = append(opts, oauth2.SetAuthURLParam("scope", strings.Join(p.Scopes, ",")))
		}
	case KindNotion:
		// Notion has no scopes; owner=user is part of its consent URL.
		cfg.Scopes = p.Scopes
		opts = append(opts, oauth2.SetAuthURLParam("owner", "user"))
	default:
		cfg.Scopes = p.Scopes
	}
	if p.PKCE && challenge != "" {
		// x/oauth2's S256ChallengeOption wants the verifier; we hold only
		// the challenge here.
		opts = append(opts,
			oauth2.SetAuthURLParam("code_challenge", challenge),
			oauth2.SetAuthURLParam("code_challenge_method", "S256"))
	}
	return cfg.AuthCodeURL(state, opts...)
}

// Exchange trades an authorization code for a token; verifier is the PKCE
// code verifier ("" when p.PKCE is off).
func (p *Provider) Exchange(ctx context.Context, code, redirectURI, verifier string) (Token, error) {
	secrets := []string{code, verifier}
	switch p.kind() {
	case KindStandard:
		return p.standardExchange(ctx, code, redirectURI, verifier)
	case KindNotion:
		body := map[string]string{"grant_type": "authorization_code", "code": code, "redirect_uri": redirectURI}
		if verifier != "" {
			body["code_verifier"] = verifier
		}
		return p.notionToken(ctx, body, secrets)
	case KindGitHub, KindSlack:
		form := url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {redirectURI}}
		if verifier != "" {
			form.Set("code_verifier", verifier)
		}
		if p.kind() == KindGitHub {
			return p.githubToken(ctx, form, secrets)
		}
		return p.slackToken(ctx, form, secrets)
	}
	return Token{}, p.unknownKind()
}

// Refresh spends refreshToken for a new token.
func (p *Provider) Refresh(ctx context.Context, refreshToken string) (Token, error) {
	if refreshToken == "" {
		return Token{}, fmt.Errorf("%s: no refresh token to refresh with", p.Integration)
	}
	secrets := []string{refreshToken}
	switch p.kind() {
	case KindStandard:
		return p.standardRefresh(ctx, refreshToken)
	case KindNotion:
		return p.notionToken(ctx, map[string]string{"grant_type": "refresh_token", "refresh_token": refreshToken}, secrets)
	case KindGitHub:
		return p.githubToken(ctx, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {refreshToken}}, secrets)
	case KindSlack:
		return p.slackToken(ctx, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {refreshToken}}, secrets)
	}
	return Token{}, p.unknownKind()
}

// Revoke revokes cred at the provider, or returns ErrRevokeUnsupported.
//
// Standard and Notion providers get an RFC 7009 request for the refresh
// token if cred has one (which revokes the grant), else the access token;
// Slack's auth.revoke revokes the access token it is called with; GitHub's
// grant deletion revokes every token of the authorization. A token the
// provider reports as already revoked is an error like any other refusal.
func (p *Provider) Revoke(ctx context.Context, cred vault.Credential) error {
	if p.RevokeURL == "" {
		return ErrRevokeUnsupported
	}
	switch p.kind() {
	case KindStandard, KindNotion:
		return p.revokeRFC7009(ctx, cred)
	case KindGitHub:
		return p.revokeGitHub(ctx, cred)
	case KindSlack:
		return p.revokeSlack(ctx, cred)
	}
	return p.unknownKind()
}

func (p *Provider) kind() string {
	if p.Kind == "" {
		return KindStandard
	}
	return p.Kind
}

func (p *Provider) unknownKind() error {
	return fmt.Errorf("%s: unknown provider kind %q", p.Integration, p.Kind)
}

// defaultHTTPClient reaches providers when Provider.HTTPClient is nil.
var defaultHTTPClient = &http.Client{Timeout: 30 * time.Second}

func (p *Provider) httpClient() *http.Client {
	if p.HTTPClient != nil {
		return p.HTTPClient
	}
	return defaultHTTPClient
}

// maxProviderResponse bounds what is read of a provider's answer.
const maxProviderResponse = 1 << 20

// providerResponse is a provider endpoint's answer, read whole.
type providerResponse struct {
	status      int
	contentType string // the media type, without parameters
	body        []byte
}

// send sends req and reads the answer. Not reaching the provider, or
// failing to read its answer, is an error wrapping the cause (never a
// *TokenError); endpoint names the endpoint for that error.
func (p *Provider) send(req *http.Request, endpoint string) (providerResponse, error) {
	resp, err := p.httpClient().Do(req)
	if err != nil {
		return providerResponse{}, fmt.Errorf("%s %s: %w", p.Integration, endpoint, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxProviderResponse))
	if err != nil {
		return providerResponse{}, fmt.Errorf("%s %s: reading the response: %w", p.Integration, endpoint, err)
	}
	return providerResponse{status: resp.StatusCode, contentType: mediaType(resp.Header), body: body}, nil
}

func mediaType(h http.Header) string {
	ct := h.Get("Content-Type")
	if ct == "" {
		return ""
	}
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil {
		return "invalid"
	}
	return mt
}

// isFormResponse reports whether an answer of media type mt is
// form-encoded rather than JSON (GitHub without Accept: application/json).
func isFormResponse(mt string) bool {
	return mt == "application/x-www-form-urlencoded" || mt == "text/plain"
}

// unreadable is the TokenError for an answer that isn't what a token
// endpoint answers. It describes the answer without quoting it: a body
// could hold a token.
func (p *Provider) unreadable(r providerResponse) *TokenError {
	ct := r.contentType
	if ct == "" {
		ct = "none"
	}
	return &TokenError{
		Integration: p.Integration,
		Status:      r.status,
		Description: fmt.Sprintf("unreadable response (%d bytes, content type %s)", len(r.body), ct),
	}
}

// noAccessToken is the TokenError for a readable answer without a token.
func (p *Provider) noAccessToken(r providerResponse) *TokenError {
	return &TokenError{Integration: p.Integration, Status: r.status, Description: "response has no access_token"}
}

// refused is the TokenError for a provider's error code. The description
// comes from the provider: it is clipped, and any secret the request
// carried (secrets) is cut out of it, should the provider echo one.
func (p *Provider) refused(status int, code, description string, secrets []string) *TokenError {
	return &TokenError{
		Integration: p.Integration,
		Status:      status,
		Code:        scrub(code, 64, p.ClientSecret, secrets),
		Description: scrub(description, 300, p.ClientSecret, secrets),
	}
}

// revocationError is a revocation endpoint's refusal, described like a
// TokenError (code and description scrubbed of secrets).
func (p *Provider) revocationError(status int, code, description string, secrets []string) error {
	msg := fmt.Sprintf("%s revocation endpoint: HTTP %d", p.Integration, status)
	if code != "" {
		msg += ": " + scrub(code, 64, p.ClientSecret, secrets)
	}
	if description != "" {
		msg += ": " + scrub(description, 300, p.ClientSecret, secrets)
	}
	return errors.New(msg)
}

// scrub returns s without secret values and control characters, at most
// max bytes long.
func scrub(s string, max int, clientSecret string, secrets []string) string {
	// The client secret also as sent in HTTP Basic, form-encoded.
	for _, secret := range append([]string{clientSecret, url.QueryEscape(clientSecret)}, secrets...) {
		if len(secret) >= 4 {
			s = strings.ReplaceAll(s, secret, "[redacted]")
		}
	}
	s = strings.Map(func(r rune) rune {
		if r < ' ' || r == 0x7f {
			return ' '
		}
		return r
	}, s)
	if len(s) > max {
		s = strings.ToValidUTF8(s[:max], "") + "…"
	}
	return s
}

// seconds is a lifetime in seconds (expires_in), read from a JSON number
// or string; anything else reads as 0, no expiry.
type seconds int64

func (s *seconds) UnmarshalJSON(b []byte) error {
	n, err := strconv.ParseFloat(strings.Trim(string(b), `"`), 64)
	if err != nil || n <= 0 || n > 1<<40 {
		*s = 0
		return nil
	}
	*s = seconds(n)
	return nil
}

func parseSeconds(v string) seconds {
	var s seconds
	_ = s.UnmarshalJSON([]byte(v))
	return s
}

// after returns now plus s, or the zero time when s is 0.
func (s seconds) after(now time.Time) time.Time {
	if s <= 0 {
		return time.Time{}
	}
	return now.Add(time.Duration(s) * time.Second)
}

// splitScopes splits a scope value on spaces (RFC 6749) and commas
// (GitHub, Slack).
func splitScopes(v string) []string {
	return strings.FieldsFunc(v, func(r rune) bool { return r == ' ' || r == ',' })
}

// postForm returns a POST of form to endpoint, with the client
// credentials in HTTP Basic when basic, else in the form. formEncode
// encodes Basic credentials first, as RFC 6749 §2.3.1 asks (providers with
// their own dialect take them raw).
func (p *Provider) postForm(ctx context.Context, endpoint string, form url.Values, basic, formEncode bool) (*http.Request, error) {
	form = maps.Clone(form)
	if !basic {
		form.Set("client_id", p.ClientID)
		form.Set("client_secret", p.ClientSecret)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, strings.NewReader(form.Encode()))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", p.Integration, err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if basic {
		if formEncode {
			req.SetBasicAuth(url.QueryEscape(p.ClientID), url.QueryEscape(p.ClientSecret))
		} else {
			req.SetBasicAuth(p.ClientID, p.ClientSecret)
		}
	}
	return req, nil
}
