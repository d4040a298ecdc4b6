package oauth

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/connectors-gateway/connectors/vault"
)

// Token is what a provider's token endpoint answered to a code exchange or
// a refresh, in one shape for every provider.
type Token struct {
	AccessToken  string
	RefreshToken string // empty: the provider sent none (keep the old one)
	TokenType    string
	Expiry       time.Time // zero: the provider gave no expiry
	Scopes       []string
	// Extra holds the provider's other string values worth keeping, such as
	// Notion's workspace_id or Slack's team_id and bot_user_id.
	Extra map[string]string
}

// Credential returns the stored form of t, replacing prev: a refresh that
// brought no new refresh token keeps prev's, and prev's extras are kept
// unless t brings a new value. now stamps UpdatedAt (and CreatedAt for a
// first credential).
func (t Token) Credential(prev vault.Credential, now time.Time) vault.Credential {
	c := vault.Credential{
		AccessToken:  t.AccessToken,
		RefreshToken: t.RefreshToken,
		TokenType:    t.TokenType,
		ExpiresAt:    t.Expiry,
		Scopes:       slices.Clone(t.Scopes),
		CreatedAt:    prev.CreatedAt,
		UpdatedAt:    now.UTC(),
	}
	if c.RefreshToken == "" {
		c.RefreshToken = prev.RefreshToken
	}
	if c.TokenType == "" {
		c.TokenType = prev.TokenType
	}
	if len(c.Scopes) == 0 {
		c.Scopes = slices.Clone(prev.Scopes)
	}
	if c.CreatedAt.IsZero() {
		c.CreatedAt = now.UTC()
	}
	if len(prev.Extra) > 0 || len(t.Extra) > 0 {
		c.Extra = maps.Clone(prev.Extra)
		if c.Extra == nil {
			c.Extra = map[string]string{}
		}
		maps.Copy(c.Extra, t.Extra)
	}
	return c
}

// TokenError is a provider's refusal, as its token endpoint reported it
// (an OAuth error code such as invalid_grant, GitHub's bad_refresh_token,
// Slack's invalid_refresh_token), or a response that could not be read.
// It never holds a token.
type TokenError struct {
	Integration string
	Status      int    // HTTP status; GitHub and Slack answer errors with 200
	Code        string // the provider's error code; empty for an unreadable answer
	Description string
}

func (e *TokenError) Error() string {
	msg := fmt.Sprintf("%s token endpoint: HTTP %d", e.Integration, e.Status)
	if e.Code != "" {
		msg += ": " + e.Code
	}
	if e.Description != "" {
		msg += ": " + e.Description
	}
	return msg
}

// permanentCodes are the error codes saying a grant (code or refresh
// token) is dead: retrying it will never work, the tenant must link again.
var permanentCodes = map[string]bool{
	"invalid_grant":         true, // RFC 6749, Notion
	"bad_refresh_token":     true, // GitHub
	"bad_verification_code": true, // GitHub
	"invalid_refresh_token": true, // Slack
	"invalid_code":          true, // Slack
	"code_already_used":     true, // Slack
	"token_revoked":         true, // Slack
	"token_expired":         true, // Slack: an expired refresh token
	"unauthorized_client":   true,
	"invalid_client":        true,
}

// IsPermanent reports whether err says the grant can never succeed again
// (the tenant must re-authorize), as opposed to a failure worth retrying:
// the provider down, slow, or answering garbage.
func IsPermanent(err error) bool {
	var te *TokenError
	return errors.As(err, &te) && permanentCodes[te.Code]
}
