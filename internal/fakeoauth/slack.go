package fakeoauth

import (
	"net/http"
	"strings"
)

// handleSlackToken handles the "POST /api/oauth.v2.access" route: form
// parameters, client credentials as form fields or HTTP Basic; every
// answer, errors included, is HTTP 200 with "ok".
func (s *Server) handleSlackToken(w http.ResponseWriter, r *http.Request) {
	fail := func(code string) {
		writeJSON(w, http.StatusOK, map[string]any{"ok": false, "error": code})
	}
	if err := r.ParseForm(); err != nil {
		fail("invalid_arguments")
		return
	}
	id, secret, ok := clientAuth(r, true)
	switch {
	case !ok || id != s.clientID:
		fail("invalid_client_id")
		return
	case !s.clientOK(id, secret):
		fail("bad_client_secret")
		return
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	switch r.Form.Get("grant_type") {
	case "", "authorization_code":
		s.slackExchangeLocked(w, r, fail)
	case "refresh_token":
		t, ok := s.refreshLocked(r.Form.Get("refresh_token"))
		if !ok {
			fail("invalid_refresh_token")
			return
		}
		// A refresh answers flat, for the bot or the user token refreshed.
		resp := map[string]any{
			"ok":                    true,
			"app_id":                SlackAppID,
			"scope":                 t.scope,
			"access_token":          t.access,
			"team":                  map[string]string{"id": SlackTeamID, "name": SlackTeamName},
			"enterprise":            nil,
			"is_enterprise_install": false,
		}
		if t.user {
			resp["token_type"], resp["user_id"] = "user", SlackUserID
		} else {
			resp["token_type"], resp["bot_user_id"] = "bot", SlackBotUserID
		}
		s.addRotationLocked(resp, t)
		writeJSON(w, http.StatusOK, resp)
	default:
		fail("invalid_grant_type")
	}
}

// slackExchangeLocked answers a code exchange (s.mu held): the bot token
// (scope) and the user token (user_scope), as Slack nests them.
func (s *Server) slackExchangeLocked(w http.ResponseWriter, r *http.Request, fail func(code string)) {
	c, err := s.redeemLocked(r.Form.Get("code"), r.Form.Get("redirect_uri"), true, r.Form.Get("code_verifier"))
	switch err {
	case nil:
	case errRedirectMismatch:
		fail("bad_redirect_uri")
		return
	case errBadVerifier:
		// Slack does not document this error's name.
		fail("invalid_code_verifier")
		return
	case errCodeUsed:
		fail("code_already_used")
		return
	default:
		fail("invalid_code")
		return
	}
	s.exchanges++
	g := &grant{}
	resp := map[string]any{
		"ok":                    true,
		"app_id":                SlackAppID,
		"team":                  map[string]string{"id": SlackTeamID, "name": SlackTeamName},
		"enterprise":            nil,
		"is_enterprise_install": false,
	}
	user := map[string]any{"id": SlackUserID}
	if c.scope != "" {
		t := s.issueLocked(g, false, c.scope)
		resp["access_token"], resp["token_type"], resp["scope"] = t.access, "bot", t.scope
		resp["bot_user_id"] = SlackBotUserID
		s.addRotationLocked(resp, t)
	}
	if c.userScope != "" {
		t := s.issueLocked(g, true, c.userScope)
		user["access_token"], user["token_type"], user["scope"] = t.access, "user", t.scope
		s.addRotationLocked(user, t)
	}
	resp["authed_user"] = user
	writeJSON(w, http.StatusOK, resp)
}

// addRotationLocked adds t's refresh token and expires_in to resp, when
// token rotation gave it some.
func (s *Server) addRotationLocked(resp map[string]any, t *issued) {
	if t.refresh != "" {
		resp["refresh_token"] = t.refresh
	}
	if n := s.expiresInLocked(t); n > 0 {
		resp["expires_in"] = n
	}
}

// handleSlackRevoke handles the "POST /api/auth.revoke" route: it revokes
// the token the request is authenticated with (Authorization: Bearer, or
// the legacy token form field).
func (s *Server) handleSlackRevoke(w http.ResponseWriter, r *http.Request) {
	fail := func(code string) {
		writeJSON(w, http.StatusOK, map[string]any{"ok": false, "error": code})
	}
	_ = r.ParseForm()
	token, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok {
		token = r.Form.Get("token")
	}
	if token == "" {
		fail("not_authed")
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.byAccess[token]
	switch {
	case !ok:
		fail("invalid_auth")
		return
	case t.revoked || t.spent || t.grant.revoked:
		fail("token_revoked")
		return
	case !t.expires.IsZero() && !s.now().Before(t.expires):
		fail("token_expired")
		return
	}
	if test := r.Form.Get("test"); test == "1" || test == "true" {
		writeJSON(w, http.StatusOK, map[string]any{"ok": true, "revoked": false})
		return
	}
	t.revoked = true
	s.revocations++
	writeJSON(w, http.StatusOK, map[string]any{"ok": true, "revoked": true})
}
