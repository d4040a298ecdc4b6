package fakeoauth

import (
	"encoding/json"
	"io"
	"mime"
	"net/http"

	"github.com/google/uuid"
)

// handleNotionToken handles the "POST /v1/oauth/token" route: client
// credentials in HTTP Basic only, a JSON body only; errors are 4xx with an
// OAuth error object; no expires_in unless SetExpiresIn asked for one.
func (s *Server) handleNotionToken(w http.ResponseWriter, r *http.Request) {
	fail := func(status int, code, desc string) {
		writeJSON(w, status, map[string]string{"error": code, "error_description": desc})
	}
	id, secret, ok := r.BasicAuth()
	if !ok || !s.clientOK(id, secret) {
		fail(http.StatusUnauthorized, "invalid_client", "Client authentication failed: send the client ID and secret with HTTP Basic authentication.")
		return
	}
	if ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); ct != "application/json" {
		fail(http.StatusBadRequest, "invalid_request", "Request body must be JSON (Content-Type: application/json).")
		return
	}
	var req struct {
		GrantType    string `json:"grant_type"`
		Code         string `json:"code"`
		RedirectURI  string `json:"redirect_uri"`
		RefreshToken string `json:"refresh_token"`
	}
	if err := json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(&req); err != nil {
		fail(http.StatusBadRequest, "invalid_request", "Request body is not valid JSON.")
		return
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	var t *issued
	switch req.GrantType {
	case "authorization_code":
		if req.RedirectURI == "" {
			fail(http.StatusBadRequest, "invalid_request", "redirect_uri is required.")
			return
		}
		switch _, err := s.redeemLocked(req.Code, req.RedirectURI, true, ""); err {
		case nil:
		case errRedirectMismatch:
			fail(http.StatusBadRequest, "invalid_grant", "Invalid redirect_uri: it must match the authorization request.")
			return
		default:
			fail(http.StatusBadRequest, "invalid_grant", "Invalid code.")
			return
		}
		s.exchanges++
		t = s.issueLocked(&grant{}, false, "")
	case "refresh_token":
		if t, ok = s.refreshLocked(req.RefreshToken); !ok {
			fail(http.StatusBadRequest, "invalid_grant", "Invalid refresh token.")
			return
		}
	default:
		fail(http.StatusBadRequest, "unsupported_grant_type", "grant_type must be authorization_code or refresh_token.")
		return
	}
	resp := map[string]any{
		"access_token":   t.access,
		"token_type":     "bearer",
		"refresh_token":  t.refresh,
		"bot_id":         NotionBotID,
		"workspace_id":   NotionWorkspaceID,
		"workspace_name": NotionWorkspaceName,
		"workspace_icon": "https://www.notion.so/images/favicon.ico",
		"owner": map[string]any{
			"type": "user",
			"user": map[string]any{"object": "user", "id": NotionUserID},
		},
		"duplicated_template_id": nil,
		"request_id":             uuid.NewString(),
	}
	if n := s.expiresInLocked(t); n > 0 {
		resp["expires_in"] = n
	}
	writeJSON(w, http.StatusOK, resp)
}
