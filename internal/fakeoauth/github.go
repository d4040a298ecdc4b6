package fakeoauth

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

const githubDocs = "https://docs.github.com/apps/managing-oauth-apps/troubleshooting-oauth-app-access-token-request-errors"

// handleGitHubToken handles the "POST /login/oauth/access_token" route:
// form parameters, client credentials as form fields or HTTP Basic; the
// answer is JSON only when the request accepts application/json (else
// form-encoded), and errors are answered with HTTP 200.
func (s *Server) handleGitHubToken(w http.ResponseWriter, r *http.Request) {
	asJSON := strings.Contains(r.Header.Get("Accept"), "application/json")
	answer := func(v map[string]any) {
		if asJSON {
			writeJSON(w, http.StatusOK, v)
			return
		}
		form := url.Values{}
		for k, val := range v {
			switch val := val.(type) {
			case string:
				form.Set(k, val)
			case int64:
				form.Set(k, strconv.FormatInt(val, 10))
			}
		}
		w.Header().Set("Content-Type", "application/x-www-form-urlencoded; charset=utf-8")
		w.WriteHeader(http.StatusOK)
		_, _ = io.WriteString(w, form.Encode())
	}
	fail := func(code, desc, anchor string) {
		answer(map[string]any{"error": code, "error_description": desc, "error_uri": githubDocs + "#" + anchor})
	}
	if err := r.ParseForm(); err != nil {
		fail("unsupported_grant_type", "The request body could not be read.", "unsupported-grant-type")
		return
	}
	id, secret, ok := clientAuth(r, true)
	if !ok || !s.clientOK(id, secret) {
		fail("incorrect_client_credentials", "The client_id and/or client_secret passed are incorrect.", "incorrect-client-credentials")
		return
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	var t *issued
	switch r.Form.Get("grant_type") {
	case "", "authorization_code":
		c, err := s.redeemLocked(r.Form.Get("code"), r.Form.Get("redirect_uri"), false, r.Form.Get("code_verifier"))
		switch err {
		case nil:
		case errRedirectMismatch:
			fail("redirect_uri_mismatch", "The redirect_uri MUST match the registered callback URL for this application.", "redirect-uri-mismatch2")
			return
		case errBadVerifier:
			fail("bad_verification_code", "The code_verifier does not match the code_challenge.", "bad-verification-code")
			return
		default:
			fail("bad_verification_code", "The code passed is incorrect or expired.", "bad-verification-code")
			return
		}
		s.exchanges++
		t = s.issueLocked(&grant{}, false, strings.Join(strings.FieldsFunc(c.scope, func(r rune) bool { return r == ' ' || r == ',' }), ","))
	case "refresh_token":
		if t, ok = s.refreshLocked(r.Form.Get("refresh_token")); !ok {
			fail("bad_refresh_token", "The refresh token passed is incorrect or expired.", "bad-refresh-token")
			return
		}
	default:
		fail("unsupported_grant_type", "The grant type is not supported.", "unsupported-grant-type")
		return
	}
	resp := map[string]any{"access_token": t.access, "scope": t.scope, "token_type": "bearer"}
	if n := s.expiresInLocked(t); n > 0 {
		resp["expires_in"] = n
	}
	if t.refresh != "" {
		resp["refresh_token"] = t.refresh
		resp["refresh_token_expires_in"] = int64(t.refreshExpires.Sub(s.now()).Seconds())
	}
	answer(resp)
}

// handleGitHubRevoke handles the "DELETE /applications/{client_id}/grant"
// route: HTTP Basic with the app's client ID and secret, a JSON body
// naming one of the grant's access tokens; 204 revokes every token of the
// grant.
func (s *Server) handleGitHubRevoke(w http.ResponseWriter, r *http.Request) {
	fail := func(status int, msg string) {
		writeJSON(w, status, map[string]string{
			"message":           msg,
			"documentation_url": "https://docs.github.com/rest/apps/oauth-applications#delete-an-app-authorization",
			"status":            strconv.Itoa(status),
		})
	}
	id, secret, ok := r.BasicAuth()
	switch {
	case !ok:
		fail(http.StatusUnauthorized, "Requires authentication")
		return
	case r.PathValue("client_id") != s.clientID || !s.clientOK(id, secret):
		fail(http.StatusNotFound, "Not Found")
		return
	}
	var req struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(&req); err != nil || req.AccessToken == "" {
		fail(http.StatusUnprocessableEntity, "Invalid request.\n\n\"access_token\" wasn't supplied.")
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.byAccess[req.AccessToken]
	if !ok || t.grant.revoked {
		fail(http.StatusNotFound, "Not Found")
		return
	}
	t.grant.revoked = true
	s.revocations++
	w.WriteHeader(http.StatusNoContent)
}
