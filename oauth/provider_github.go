package oauth

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/connectors-gateway/connectors/vault"
)

// githubToken posts form to GitHub's token endpoint, asking for JSON.
// Client credentials go in the form unless AuthStyle is "basic". GitHub
// answers errors with HTTP 200 and an error field; expiring user tokens
// come with expires_in (8 h), a refresh token and its lifetime
// (refresh_token_expires_in, about 6 months); classic tokens with neither.
func (p *Provider) githubToken(ctx context.Context, form url.Values, secrets []string) (Token, error) {
	req, err := p.postForm(ctx, p.TokenURL, form, p.AuthStyle == "basic", false)
	if err != nil {
		return Token{}, err
	}
	req.Header.Set("Accept", "application/json")
	r, err := p.send(req, "token endpoint")
	if err != nil {
		return Token{}, err
	}
	// GitHub answers form-encoded to a client that didn't ask for JSON;
	// read that too, should a proxy drop the Accept header.
	f, ok := parseFields(r)
	switch {
	case !ok:
		return Token{}, p.unreadable(r)
	case f["error"] != "":
		return Token{}, p.refused(r.status, f["error"], f["error_description"], secrets)
	case r.status < 200 || r.status > 299:
		return Token{}, p.unreadable(r)
	case f["access_token"] == "":
		return Token{}, p.noAccessToken(r)
	}
	now := time.Now()
	t := Token{
		AccessToken:  f["access_token"],
		RefreshToken: f["refresh_token"],
		TokenType:    f["token_type"],
		Expiry:       parseSeconds(f["expires_in"]).after(now),
		Scopes:       splitScopes(f["scope"]), // comma-separated
	}
	if at := parseSeconds(f["refresh_token_expires_in"]).after(now); !at.IsZero() {
		t.Extra = map[string]string{"refresh_token_expires_at": at.UTC().Format(time.RFC3339)}
	}
	return t, nil
}

// revokeGitHub deletes the app's grant for cred's access token ("DELETE
// /applications/{client_id}/grant", HTTP Basic with the client ID and
// secret), which revokes every token of the authorization.
func (p *Provider) revokeGitHub(ctx context.Context, cred vault.Credential) error {
	if cred.AccessToken == "" {
		return fmt.Errorf("%s revocation: the credential has no access token", p.Integration)
	}
	endpoint := strings.ReplaceAll(p.RevokeURL, "{client_id}", url.PathEscape(p.ClientID))
	body, err := json.Marshal(map[string]string{"access_token": cred.AccessToken})
	if err != nil {
		return fmt.Errorf("%s: %w", p.Integration, err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodDelete, endpoint, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("%s: %w", p.Integration, err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/vnd.github+json")
	req.Header.Set("X-GitHub-Api-Version", "2022-11-28")
	req.SetBasicAuth(p.ClientID, p.ClientSecret)
	r, err := p.send(req, "revocation endpoint")
	if err != nil {
		return err
	}
	if r.status == http.StatusNoContent || r.status == http.StatusOK {
		return nil
	}
	var e struct {
		Message string `json:"message"`
	}
	if json.Unmarshal(r.body, &e) == nil && e.Message != "" {
		return p.revocationError(r.status, "", e.Message, []string{cred.AccessToken, cred.RefreshToken})
	}
	return p.revocationError(r.status, "", p.unreadable(r).Description, nil)
}
