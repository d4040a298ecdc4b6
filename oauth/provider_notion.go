package oauth

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"time"
)

// notionToken posts body to Notion's token endpoint: HTTP Basic client
// credentials (raw, as Notion documents; Notion takes no other way, so
// AuthStyle is not consulted) and a JSON body. Notion answers
// without expires_in (its tokens live until refreshed or revoked) and with
// a new refresh token on every refresh.
func (p *Provider) notionToken(ctx context.Context, body map[string]string, secrets []string) (Token, error) {
	b, err := json.Marshal(body)
	if err != nil {
		return Token{}, fmt.Errorf("%s: %w", p.Integration, err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.TokenURL, bytes.NewReader(b))
	if err != nil {
		return Token{}, fmt.Errorf("%s: %w", p.Integration, err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	req.SetBasicAuth(p.ClientID, p.ClientSecret)
	r, err := p.send(req, "token endpoint")
	if err != nil {
		return Token{}, err
	}
	var j struct {
		AccessToken   string  `json:"access_token"`
		TokenType     string  `json:"token_type"`
		RefreshToken  string  `json:"refresh_token"`
		ExpiresIn     seconds `json:"expires_in"`
		BotID         string  `json:"bot_id"`
		WorkspaceID   string  `json:"workspace_id"`
		WorkspaceName string  `json:"workspace_name"`

		// OAuth's error shape, and Notion's API error object, should the
		// token endpoint answer with that.
		Error            string `json:"error"`
		ErrorDescription string `json:"error_description"`
		Object           string `json:"object"`
		Code             string `json:"code"`
		Message          string `json:"message"`
	}
	if err := json.Unmarshal(r.body, &j); err != nil {
		return Token{}, p.unreadable(r)
	}
	switch {
	case j.Error != "":
		return Token{}, p.refused(r.status, j.Error, j.ErrorDescription, secrets)
	case j.Object == "error" && j.Code != "":
		return Token{}, p.refused(r.status, j.Code, j.Message, secrets)
	case r.status < 200 || r.status > 299:
		return Token{}, p.unreadable(r)
	case j.AccessToken == "":
		return Token{}, p.noAccessToken(r)
	}
	t := Token{
		AccessToken:  j.AccessToken,
		RefreshToken: j.RefreshToken,
		TokenType:    j.TokenType,
		Expiry:       j.ExpiresIn.after(time.Now()),
	}
	for k, v := range map[string]string{"bot_id": j.BotID, "workspace_id": j.WorkspaceID, "workspace_name": j.WorkspaceName} {
		if v != "" {
			if t.Extra == nil {
				t.Extra = map[string]string{}
			}
			t.Extra[k] = v
		}
	}
	return t, nil
}
