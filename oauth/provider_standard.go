package oauth

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"golang.org/x/oauth2"

	"github.com/connectors-gateway/connectors/vault"
)

// The standard kind (RFC 6749) goes through golang.org/x/oauth2.

func (p *Provider) oauth2Config(redirectURI string) *oauth2.Config {
	style := oauth2.AuthStyleInHeader // never auto-detect: it retries with the secret elsewhere
	if p.AuthStyle == "body" {
		style = oauth2.AuthStyleInParams
	}
	return &oauth2.Config{
		ClientID:     p.ClientID,
		ClientSecret: p.ClientSecret,
		Endpoint:     oauth2.Endpoint{AuthURL: p.AuthorizeURL, TokenURL: p.TokenURL, AuthStyle: style},
		RedirectURL:  redirectURI,
		Scopes:       slices.Clone(p.Scopes),
	}
}

func (p *Provider) standardExchange(ctx context.Context, code, redirectURI, verifier string) (Token, error) {
	var opts []oauth2.AuthCodeOption
	if verifier != "" {
		opts = append(opts, oauth2.VerifierOption(verifier))
	}
	rec, ctx := p.recording(ctx)
	tok, err := p.oauth2Config(redirectURI).Exchange(ctx, code, opts...)
	if err != nil {
		return Token{}, p.standardError(rec, err, []string{code, verifier})
	}
	t := p.standardToken(rec, tok)
	if len(t.Scopes) == 0 {
		// RFC 6749 §5.1: no scope in the answer means the scopes asked for.
		t.Scopes = slices.Clone(p.Scopes)
	}
	return t, nil
}

func (p *Provider) standardRefresh(ctx context.Context, refreshToken string) (Token, error) {
	rec, ctx := p.recording(ctx)
	// A token with only a refresh token is never valid: Token refreshes.
	src := p.oauth2Config("").TokenSource(ctx, &oauth2.Token{RefreshToken: refreshToken, Expiry: time.Unix(1, 0)})
	tok, err := src.Token()
	if err != nil {
		return Token{}, p.standardError(rec, err, []string{refreshToken})
	}
	return p.standardToken(rec, tok), nil
}

// standardError maps x/oauth2's error to ours: the provider's refusal or an
// answer it could not read to *TokenError, anything else (the provider not
// reached) wrapped.
func (p *Provider) standardError(rec *recorder, err error, secrets []string) error {
	var re *oauth2.RetrieveError
	switch {
	case errors.As(err, &re):
		r := providerResponse{body: re.Body}
		if re.Response != nil {
			r.status, r.contentType = re.Response.StatusCode, mediaType(re.Response.Header)
		}
		if re.ErrorCode == "" {
			return p.unreadable(r)
		}
		return p.refused(r.status, re.ErrorCode, re.ErrorDescription, secrets)
	case rec.readErr != nil:
		return fmt.Errorf("%s token endpoint: reading the response: %w", p.Integration, rec.readErr)
	case rec.answered:
		// An answer x/oauth2 could not parse, or one without access_token.
		r := rec.response()
		if fields, ok := parseFields(r); ok {
			if _, has := fields["access_token"]; !has {
				return p.noAccessToken(r)
			}
		}
		return p.unreadable(r)
	}
	return fmt.Errorf("%s token endpoint: %w", p.Integration, err)
}

// standardToken converts x/oauth2's token, taking from the raw answer what
// x/oauth2 doesn't keep.
func (p *Provider) standardToken(rec *recorder, tok *oauth2.Token) Token {
	t := Token{
		AccessToken: tok.AccessToken,
		TokenType:   tok.TokenType,
		Expiry:      tok.Expiry,
	}
	// x/oauth2 puts the refresh token it sent in place of a missing one;
	// ours says what the provider sent.
	if rt, _ := tok.Extra("refresh_token").(string); rt != "" {
		t.RefreshToken = tok.RefreshToken
	}
	if sc, _ := tok.Extra("scope").(string); sc != "" {
		t.Scopes = strings.Fields(sc)
	}
	fields, _ := parseFields(rec.response())
	t.Extra = keptExtras(fields, time.Now())
	return t
}

// parseFields reads a token endpoint's answer as x/oauth2 does (form for
// form or text/plain content, else JSON), keeping string values and
// numbers (as their JSON text).
func parseFields(r providerResponse) (map[string]string, bool) {
	out := map[string]string{}
	if isFormResponse(r.contentType) {
		vals, err := url.ParseQuery(string(r.body))
		if err != nil {
			return nil, false
		}
		for k := range vals {
			out[k] = vals.Get(k)
		}
		return out, true
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(r.body, &obj); err != nil {
		return nil, false
	}
	for k, raw := range obj {
		var s string
		switch {
		case json.Unmarshal(raw, &s) == nil:
			out[k] = s
		case len(raw) > 0 && (raw[0] == '-' || raw[0] >= '0' && raw[0] <= '9'):
			out[k] = string(raw)
		}
	}
	return out, true
}

// Limits on what a standard provider's answer may add to Extra.
const (
	maxExtras     = 32
	maxExtraValue = 512
)

// keptExtras returns the fields of a token answer worth keeping in Extra:
// string values that are not, and could not be, credentials (access,
// refresh and ID tokens, codes, secrets), nor what Token has fields for. A
// refresh_token_expires_in becomes refresh_token_expires_at.
func keptExtras(fields map[string]string, now time.Time) map[string]string {
	extra := map[string]string{}
	if at := parseSeconds(fields["refresh_token_expires_in"]).after(now); !at.IsZero() {
		extra["refresh_token_expires_at"] = at.UTC().Format(time.RFC3339)
	}
	for _, k := range slices.Sorted(maps.Keys(fields)) {
		v := fields[k]
		if len(extra) >= maxExtras {
			break
		}
		if v == "" || len(v) > maxExtraValue || !keepExtra(k) {
			continue
		}
		extra[k] = v
	}
	if len(extra) == 0 {
		return nil
	}
	return extra
}

// keepExtra reports whether a token answer's field may go into Extra.
func keepExtra(key string) bool {
	k := strings.ToLower(key)
	switch k {
	case "token_type", "scope", "expires_in", "expires_at", "expires", "error", "error_description", "error_uri":
		return false
	}
	for _, secretish := range []string{"token", "secret", "password", "code", "key", "assertion", "signature", "cookie", "session", "jwt"} {
		if strings.Contains(k, secretish) {
			return false
		}
	}
	return true
}

// recorder is an http.RoundTripper noting the answer x/oauth2 gets, which
// its errors don't tell: status, content type, body.
type recorder struct {
	base        http.RoundTripper
	answered    bool
	status      int
	contentType string
	body        bytes.Buffer
	readErr     error
}

// recording returns a recorder and ctx carrying the provider's HTTP client
// with it, for x/oauth2 to use.
func (p *Provider) recording(ctx context.Context) (*recorder, context.Context) {
	c := *p.httpClient()
	rec := &recorder{base: c.Transport}
	if rec.base == nil {
		rec.base = http.DefaultTransport
	}
	c.Transport = rec
	return rec, context.WithValue(ctx, oauth2.HTTPClient, &c)
}

func (rec *recorder) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := rec.base.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	rec.answered, rec.status, rec.contentType = true, resp.StatusCode, mediaType(resp.Header)
	rec.body.Reset()
	rec.readErr = nil
	resp.Body = &recordedBody{ReadCloser: resp.Body, rec: rec}
	return resp, nil
}

func (rec *recorder) response() providerResponse {
	return providerResponse{status: rec.status, contentType: rec.contentType, body: rec.body.Bytes()}
}

type recordedBody struct {
	io.ReadCloser
	rec *recorder
}

func (b *recordedBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if room := maxProviderResponse - b.rec.body.Len(); room > 0 {
		b.rec.body.Write(p[:min(n, room)])
	}
	if err != nil && err != io.EOF {
		b.rec.readErr = err
	}
	return n, err
}

// revokeRFC7009 revokes cred's refresh token, or its access token if it
// has none, at an RFC 7009 revocation endpoint.
func (p *Provider) revokeRFC7009(ctx context.Context, cred vault.Credential) error {
	form := url.Values{"token": {cred.RefreshToken}, "token_type_hint": {"refresh_token"}}
	if cred.RefreshToken == "" {
		form = url.Values{"token": {cred.AccessToken}, "token_type_hint": {"access_token"}}
	}
	if form.Get("token") == "" {
		return fmt.Errorf("%s revocation: the credential has no token", p.Integration)
	}
	req, err := p.postForm(ctx, p.RevokeURL, form, p.AuthStyle != "body", true)
	if err != nil {
		return err
	}
	r, err := p.send(req, "revocation endpoint")
	if err != nil {
		return err
	}
	if r.status == http.StatusOK {
		return nil
	}
	secrets := []string{cred.AccessToken, cred.RefreshToken}
	var e struct {
		Error            string `json:"error"`
		ErrorDescription string `json:"error_description"`
	}
	if json.Unmarshal(r.body, &e) == nil && e.Error != "" {
		return p.revocationError(r.status, e.Error, e.ErrorDescription, secrets)
	}
	return p.revocationError(r.status, "", p.unreadable(r).Description, nil)
}
