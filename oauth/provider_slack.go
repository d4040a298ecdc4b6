package oauth

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"time"

	"github.com/connectors-gateway/connectors/vault"
)

// slackAccess is an oauth.v2.access answer. A code exchange answers the
// bot token at the top level and the installing user under authed_user
// (with a user token when user scopes were granted); a refresh answers the
// refreshed token, bot or user, at the top level.
type slackAccess struct {
	OK           bool    `json:"ok"`
	Error        string  `json:"error"`
	AccessToken  string  `json:"access_token"`
	TokenType    string  `json:"token_type"`
	Scope        string  `json:"scope"`
	RefreshToken string  `json:"refresh_token"`
	ExpiresIn    seconds `json:"expires_in"`
	BotUserID    string  `json:"bot_user_id"`
	AppID        string  `json:"app_id"`
	UserID       string  `json:"user_id"` // a user token's refresh
	Team         *struct {
		ID   string `json:"id"`
		Name string `json:"name"`
	} `json:"team"`
	AuthedUser *struct {
		ID           string  `json:"id"`
		Scope        string  `json:"scope"`
		AccessToken  string  `json:"access_token"`
		TokenType    string  `json:"token_type"`
		RefreshToken string  `json:"refresh_token"`
		ExpiresIn    seconds `json:"expires_in"`
	} `json:"authed_user"`
}

// slackToken posts form to Slack's oauth.v2.access. Client credentials go
// in the form unless AuthStyle is "basic". Slack answers every error with
// HTTP 200 and {"ok":false,"error":CODE}. The bot token is the Token; an
// install that granted only user scopes has the user token instead.
func (p *Provider) slackToken(ctx context.Context, form url.Values, secrets []string) (Token, error) {
	req, err := p.postForm(ctx, p.TokenURL, form, p.AuthStyle == "basic", false)
	if err != nil {
		return Token{}, err
	}
	r, err := p.send(req, "token endpoint")
	if err != nil {
		return Token{}, err
	}
	var j slackAccess
	if err := json.Unmarshal(r.body, &j); err != nil {
		return Token{}, p.unreadable(r)
	}
	switch {
	case !j.OK && j.Error != "":
		return Token{}, p.refused(r.status, j.Error, "", secrets)
	case !j.OK || r.status < 200 || r.status > 299:
		return Token{}, p.unreadable(r)
	}
	now := time.Now()
	t := Token{
		AccessToken:  j.AccessToken,
		RefreshToken: j.RefreshToken,
		TokenType:    j.TokenType,
		Expiry:       j.ExpiresIn.after(now),
		Scopes:       splitScopes(j.Scope),
	}
	if t.AccessToken == "" && j.AuthedUser != nil && j.AuthedUser.AccessToken != "" {
		u := j.AuthedUser
		t = Token{
			AccessToken:  u.AccessToken,
			RefreshToken: u.RefreshToken,
			TokenType:    u.TokenType,
			Expiry:       u.ExpiresIn.after(now),
			Scopes:       splitScopes(u.Scope),
		}
		if t.TokenType == "" {
			t.TokenType = "user"
		}
	}
	if t.AccessToken == "" {
		return Token{}, p.noAccessToken(r)
	}
	extra := map[string]string{"bot_user_id": j.BotUserID, "app_id": j.AppID, "authed_user_id": j.UserID}
	if j.Team != nil {
		extra["team_id"], extra["team_name"] = j.Team.ID, j.Team.Name
	}
	if j.AuthedUser != nil && j.AuthedUser.ID != "" {
		extra["authed_user_id"] = j.AuthedUser.ID
	}
	for k, v := range extra {
		if v == "" {
			delete(extra, k)
		}
	}
	if len(extra) > 0 {
		t.Extra = extra
	}
	return t, nil
}

// revokeSlack calls auth.revoke with cred's access token, which revokes
// that token.
func (p *Provider) revokeSlack(ctx context.Context, cred vault.Credential) error {
	if cred.AccessToken == "" {
		return fmt.Errorf("%s revocation: the credential has no access token", p.Integration)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.RevokeURL, nil)
	if err != nil {
		return fmt.Errorf("%s: %w", p.Integration, err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Authorization", "Bearer "+cred.AccessToken)
	r, err := p.send(req, "revocation endpoint")
	if err != nil {
		return err
	}
	var j struct {
		OK      bool   `json:"ok"`
		Error   string `json:"error"`
		Revoked bool   `json:"revoked"`
	}
	switch {
	case json.Unmarshal(r.body, &j) != nil:
		return p.revocationError(r.status, "", p.unreadable(r).Description, nil)
	case !j.OK:
		return p.revocationError(r.status, j.Error, "", []string{cred.AccessToken, cred.RefreshToken})
	case !j.Revoked:
		return p.revocationError(r.status, "", "the token was not revoked", nil)
	}
	return nil
}
