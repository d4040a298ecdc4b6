package fakeoauth

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// These tests speak raw HTTP to the fakes, as a provider's documentation
// describes the exchange, independently of the gateway's client.

const redirect = "https://gateway.example/oauth/callback"

type answer struct {
	status      int
	contentType string
	body        string
}

func (a answer) json(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(a.body), &m); err != nil {
		t.Fatalf("answer %d %s is not JSON: %v", a.status, a.body, err)
	}
	return m
}

func do(t *testing.T, req *http.Request) answer {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return answer{resp.StatusCode, resp.Header.Get("Content-Type"), string(body)}
}

func post(t *testing.T, endpoint, contentType, body string, mod func(*http.Request)) answer {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, endpoint, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", contentType)
	if mod != nil {
		mod(req)
	}
	return do(t, req)
}

// code authorizes at s with extra query parameters and returns the code.
func code(t *testing.T, s *Server, params url.Values) string {
	t.Helper()
	q := url.Values{"client_id": {s.clientID}, "redirect_uri": {redirect}, "state": {"xyz"}, "response_type": {"code"}}
	switch s.kind {
	case Notion:
		q.Set("owner", "user")
	case Slack:
		q.Set("scope", "chat:write")
	}
	for k, v := range params {
		q[k] = v
	}
	target, err := s.Authorize(t.Context(), s.OAuth().AuthorizeURL+"?"+q.Encode())
	if err != nil {
		t.Fatal(err)
	}
	if target.Query().Get("state") != "xyz" || target.Query().Get("code") == "" {
		t.Fatalf("redirected to %s, want code and state", target)
	}
	return target.Query().Get("code")
}

func TestOAuthSettings(t *testing.T) {
	for _, kind := range []string{Notion, GitHub, Slack} {
		s := New(t, kind, "cid", "csecret")
		o := s.OAuth()
		if o.Kind != kind || !strings.HasPrefix(o.AuthorizeURL, s.URL()+"/") || !strings.HasPrefix(o.TokenURL, s.URL()+"/") {
			t.Errorf("%s: OAuth() = %+v, want endpoints at %s", kind, o, s.URL())
		}
	}
	gh := New(t, GitHub, "cid", "csecret").OAuth()
	if !strings.HasSuffix(gh.RevokeURL, "/applications/{client_id}/grant") || gh.AuthStyle != "body" || !gh.UsesPKCE() {
		t.Errorf("github OAuth() = %+v", gh)
	}
	if n := New(t, Notion, "cid", "csecret").OAuth(); n.RevokeURL != "" || n.UsesPKCE() || n.AuthStyle != "basic" {
		t.Errorf("notion OAuth() = %+v", n)
	}
}

func TestAuthorize(t *testing.T) {
	s := New(t, Notion, "cid", "csecret")
	tests := []struct {
		name   string
		query  url.Values
		status int
	}{
		{"wrong client", url.Values{"client_id": {"other"}, "redirect_uri": {redirect}, "response_type": {"code"}, "owner": {"user"}}, http.StatusBadRequest},
		{"no redirect", url.Values{"client_id": {"cid"}, "response_type": {"code"}, "owner": {"user"}}, http.StatusBadRequest},
		{"notion without owner", url.Values{"client_id": {"cid"}, "redirect_uri": {redirect}, "response_type": {"code"}}, http.StatusBadRequest},
		{"ok", url.Values{"client_id": {"cid"}, "redirect_uri": {redirect}, "response_type": {"code"}, "owner": {"user"}}, http.StatusFound},
	}
	for _, tt := range tests {
		req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, s.URL()+"/v1/oauth/authorize?"+tt.query.Encode(), nil)
		resp, err := http.DefaultTransport.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tt.status {
			t.Errorf("%s: HTTP %d, want %d", tt.name, resp.StatusCode, tt.status)
		}
	}

	s.Deny(true)
	target, err := s.Authorize(t.Context(), s.URL()+"/v1/oauth/authorize?"+url.Values{"client_id": {"cid"}, "redirect_uri": {redirect + "?keep=1"}, "response_type": {"code"}, "owner": {"user"}, "state": {"s1"}}.Encode())
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(url.Values{"error": {"access_denied"}, "state": {"s1"}, "keep": {"1"}}, target.Query()); diff != "" {
		t.Errorf("denied redirect query (-want +got):\n%s", diff)
	}
}

func TestNotionToken(t *testing.T) {
	s := New(t, Notion, "cid", "csecret")
	endpoint := s.OAuth().TokenURL
	basic := func(r *http.Request) { r.SetBasicAuth("cid", "csecret") }

	c := code(t, s, nil)
	// A form body, or credentials in the body, are not what Notion takes.
	form := url.Values{"grant_type": {"authorization_code"}, "code": {c}, "redirect_uri": {redirect}}.Encode()
	if a := post(t, endpoint, "application/x-www-form-urlencoded", form, basic); a.status != http.StatusBadRequest || a.json(t)["error"] != "invalid_request" {
		t.Errorf("form body: %d %s, want 400 invalid_request", a.status, a.body)
	}
	inBody := `{"grant_type":"authorization_code","code":"` + c + `","redirect_uri":"` + redirect + `","client_id":"cid","client_secret":"csecret"}`
	if a := post(t, endpoint, "application/json", inBody, nil); a.status != http.StatusUnauthorized || a.json(t)["error"] != "invalid_client" {
		t.Errorf("credentials in the body: %d %s, want 401 invalid_client", a.status, a.body)
	}

	a := post(t, endpoint, "application/json", `{"grant_type":"authorization_code","code":"`+c+`","redirect_uri":"`+redirect+`"}`, basic)
	m := a.json(t)
	if a.status != http.StatusOK || !strings.HasPrefix(m["access_token"].(string), "ntn_") || !strings.HasPrefix(m["refresh_token"].(string), "nrt_") {
		t.Fatalf("exchange: %d %s", a.status, a.body)
	}
	if _, ok := m["expires_in"]; ok {
		t.Errorf("Notion answered expires_in: %s", a.body)
	}
	for _, k := range []string{"bot_id", "workspace_id", "workspace_name", "workspace_icon", "owner", "duplicated_template_id", "token_type"} {
		if _, ok := m[k]; !ok {
			t.Errorf("answer lacks %s", k)
		}
	}
	// The code is spent.
	if a := post(t, endpoint, "application/json", `{"grant_type":"authorization_code","code":"`+c+`","redirect_uri":"`+redirect+`"}`, basic); a.status != http.StatusBadRequest || a.json(t)["error"] != "invalid_grant" {
		t.Errorf("code reused: %d %s, want 400 invalid_grant", a.status, a.body)
	}

	rt := m["refresh_token"].(string)
	a = post(t, endpoint, "application/json", `{"grant_type":"refresh_token","refresh_token":"`+rt+`"}`, basic)
	if a.status != http.StatusOK || a.json(t)["refresh_token"] == rt {
		t.Errorf("refresh: %d %s, want a new refresh token", a.status, a.body)
	}
	if a := post(t, endpoint, "application/json", `{"grant_type":"refresh_token","refresh_token":"`+rt+`"}`, basic); a.status != http.StatusBadRequest || a.json(t)["error"] != "invalid_grant" {
		t.Errorf("refresh token reused: %d %s, want 400 invalid_grant", a.status, a.body)
	}
	if s.Exchanges() != 1 || s.Refreshes() != 1 || s.RefreshAttempts() != 2 {
		t.Errorf("counts %d %d %d, want 1 1 2", s.Exchanges(), s.Refreshes(), s.RefreshAttempts())
	}
}

func TestGitHubToken(t *testing.T) {
	s := New(t, GitHub, "cid", "csecret")
	endpoint := s.OAuth().TokenURL
	acceptJSON := func(r *http.Request) { r.Header.Set("Accept", "application/json") }

	// Without Accept: application/json GitHub answers form-encoded.
	c := code(t, s, url.Values{"scope": {"repo read:user"}})
	a := post(t, endpoint, "application/x-www-form-urlencoded", url.Values{"client_id": {"cid"}, "client_secret": {"csecret"}, "code": {c}}.Encode(), nil)
	vals, err := url.ParseQuery(a.body)
	if a.status != http.StatusOK || !strings.HasPrefix(a.contentType, "application/x-www-form-urlencoded") || err != nil ||
		!strings.HasPrefix(vals.Get("access_token"), "ghu_") || !strings.HasPrefix(vals.Get("refresh_token"), "ghr_") ||
		vals.Get("expires_in") != "28800" || vals.Get("scope") != "repo,read:user" || vals.Get("token_type") != "bearer" {
		t.Errorf("form answer: %d %s %s", a.status, a.contentType, a.body)
	}

	// Errors come with HTTP 200.
	a = post(t, endpoint, "application/x-www-form-urlencoded", url.Values{"client_id": {"cid"}, "client_secret": {"csecret"}, "code": {c}}.Encode(), acceptJSON)
	if m := a.json(t); a.status != http.StatusOK || m["error"] != "bad_verification_code" || m["error_uri"] == nil {
		t.Errorf("code reused: %d %s", a.status, a.body)
	}
	a = post(t, endpoint, "application/x-www-form-urlencoded", url.Values{"client_id": {"cid"}, "client_secret": {"nope"}, "code": {"x"}}.Encode(), acceptJSON)
	if a.status != http.StatusOK || a.json(t)["error"] != "incorrect_client_credentials" {
		t.Errorf("wrong secret: %d %s", a.status, a.body)
	}
	c = code(t, s, nil)
	a = post(t, endpoint, "application/x-www-form-urlencoded", url.Values{"client_id": {"cid"}, "client_secret": {"csecret"}, "code": {c}, "redirect_uri": {"https://elsewhere.example/"}}.Encode(), acceptJSON)
	if a.status != http.StatusOK || a.json(t)["error"] != "redirect_uri_mismatch" {
		t.Errorf("redirect mismatch: %d %s", a.status, a.body)
	}

	// Codes expire after 10 minutes.
	now := time.Now()
	at := func(tm time.Time) { s.SetClock(func() time.Time { return tm }) }
	at(now)
	c = code(t, s, nil)
	now = now.Add(CodeLifetime + time.Second)
	at(now)
	a = post(t, endpoint, "application/x-www-form-urlencoded", url.Values{"client_id": {"cid"}, "client_secret": {"csecret"}, "code": {c}}.Encode(), acceptJSON)
	if a.status != http.StatusOK || a.json(t)["error"] != "bad_verification_code" {
		t.Errorf("expired code: %d %s", a.status, a.body)
	}

	// Access tokens expire; refresh tokens outlive them.
	access, refresh := s.IssueToken()
	now = now.Add(8*time.Hour + time.Second)
	at(now)
	if s.Valid(access) {
		t.Error("an access token past expires_in is valid")
	}
	a = post(t, endpoint, "application/x-www-form-urlencoded", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {refresh}}.Encode(), func(r *http.Request) {
		acceptJSON(r)
		r.SetBasicAuth("cid", "csecret")
	})
	if m := a.json(t); a.status != http.StatusOK || m["refresh_token_expires_in"] == nil || !s.Valid(m["access_token"].(string)) {
		t.Errorf("refresh with HTTP Basic: %d %s", a.status, a.body)
	}
}

func TestGitHubRevoke(t *testing.T) {
	s := New(t, GitHub, "cid", "csecret")
	access, refresh := s.IssueToken()
	del := func(path, body string, auth bool) int {
		req, _ := http.NewRequestWithContext(t.Context(), http.MethodDelete, s.URL()+path, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		if auth {
			req.SetBasicAuth("cid", "csecret")
		}
		return do(t, req).status
	}
	body := `{"access_token":"` + access + `"}`
	if got := del("/applications/cid/grant", body, false); got != http.StatusUnauthorized {
		t.Errorf("no auth: %d, want 401", got)
	}
	if got := del("/applications/other/grant", body, true); got != http.StatusNotFound {
		t.Errorf("another app: %d, want 404", got)
	}
	if got := del("/applications/cid/grant", `{}`, true); got != http.StatusUnprocessableEntity {
		t.Errorf("no token: %d, want 422", got)
	}
	if got := del("/applications/cid/grant", body, true); got != http.StatusNoContent {
		t.Errorf("revoke: %d, want 204", got)
	}
	if s.Valid(access) || s.Revocations() != 1 {
		t.Error("the token survived the grant's deletion")
	}
	s.mu.Lock()
	_, ok := s.refreshLocked(refresh)
	s.mu.Unlock()
	if ok {
		t.Error("the refresh token survived the grant's deletion")
	}
}

func TestSlackToken(t *testing.T) {
	s := New(t, Slack, "cid", "csecret")
	endpoint := s.OAuth().TokenURL
	form := func(v url.Values) string { return v.Encode() }

	c := code(t, s, url.Values{"scope": {"chat:write,users:read"}, "user_scope": {"search:read"}})
	a := post(t, endpoint, "application/x-www-form-urlencoded", form(url.Values{"client_id": {"cid"}, "client_secret": {"csecret"}, "code": {c}, "redirect_uri": {redirect}}), nil)
	m := a.json(t)
	user, _ := m["authed_user"].(map[string]any)
	if a.status != http.StatusOK || m["ok"] != true || !strings.HasPrefix(m["access_token"].(string), "xoxe.xoxb-1-") || m["token_type"] != "bot" ||
		m["scope"] != "chat:write,users:read" || m["expires_in"] != float64(43200) || !strings.HasPrefix(m["refresh_token"].(string), "xoxe-1-") ||
		user == nil || !strings.HasPrefix(user["access_token"].(string), "xoxe.xoxp-1-") || user["id"] != SlackUserID {
		t.Errorf("exchange: %d %s", a.status, a.body)
	}

	// Every error is HTTP 200 with ok:false.
	for name, tt := range map[string]struct {
		body url.Values
		want string
	}{
		"code reused":    {url.Values{"client_id": {"cid"}, "client_secret": {"csecret"}, "code": {c}, "redirect_uri": {redirect}}, "code_already_used"},
		"unknown code":   {url.Values{"client_id": {"cid"}, "client_secret": {"csecret"}, "code": {"nope"}, "redirect_uri": {redirect}}, "invalid_code"},
		"wrong secret":   {url.Values{"client_id": {"cid"}, "client_secret": {"nope"}, "code": {"nope"}}, "bad_client_secret"},
		"no client":      {url.Values{"code": {"nope"}}, "invalid_client_id"},
		"bad refresh":    {url.Values{"client_id": {"cid"}, "client_secret": {"csecret"}, "grant_type": {"refresh_token"}, "refresh_token": {"xoxe-1-nope"}}, "invalid_refresh_token"},
		"bad grant type": {url.Values{"client_id": {"cid"}, "client_secret": {"csecret"}, "grant_type": {"password"}}, "invalid_grant_type"},
	} {
		a := post(t, endpoint, "application/x-www-form-urlencoded", form(tt.body), nil)
		if m := a.json(t); a.status != http.StatusOK || m["ok"] != false || m["error"] != tt.want {
			t.Errorf("%s: %d %s, want 200 ok:false %s", name, a.status, a.body, tt.want)
		}
	}

	// auth.revoke with the token as bearer.
	revoke := func(token string) map[string]any {
		return post(t, s.OAuth().RevokeURL, "application/x-www-form-urlencoded", "", func(r *http.Request) {
			r.Header.Set("Authorization", "Bearer "+token)
		}).json(t)
	}
	bot := m["access_token"].(string)
	if got := revoke(bot); got["ok"] != true || got["revoked"] != true {
		t.Errorf("revoke: %v", got)
	}
	if got := revoke(bot); got["ok"] != false || got["error"] != "token_revoked" {
		t.Errorf("revoke again: %v", got)
	}
	if s.Valid(bot) || !s.Valid(user["access_token"].(string)) {
		t.Error("revoking the bot token should revoke it and only it")
	}

	// Without rotation Slack issues long-lived tokens, no refresh token.
	s.SetExpiresIn(0)
	access, refresh := s.IssueToken()
	if !strings.HasPrefix(access, "xoxb-") || refresh != "" {
		t.Errorf("without rotation: %.10s…, %q", access, refresh)
	}
}

func TestModes(t *testing.T) {
	s := New(t, Slack, "cid", "csecret")
	_, refresh := s.IssueToken()
	body := url.Values{"client_id": {"cid"}, "client_secret": {"csecret"}, "grant_type": {"refresh_token"}, "refresh_token": {refresh}}.Encode()

	s.SetMode(Down)
	if a := post(t, s.OAuth().TokenURL, "application/x-www-form-urlencoded", body, nil); a.status != http.StatusServiceUnavailable || !strings.HasPrefix(a.contentType, "text/html") {
		t.Errorf("down: %d %s", a.status, a.contentType)
	}
	s.SetMode(Garbage)
	if a := post(t, s.OAuth().TokenURL, "application/x-www-form-urlencoded", body, nil); a.status != http.StatusOK || !strings.Contains(a.body, "<html>") {
		t.Errorf("garbage: %d %s", a.status, a.body)
	}
	s.SetMode(Slow(time.Minute))
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, s.OAuth().TokenURL, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if _, err := http.DefaultClient.Do(req); err == nil {
		t.Error("slow: answered before the client's deadline")
	}
	s.SetMode(OK)
	if a := post(t, s.OAuth().TokenURL, "application/x-www-form-urlencoded", body, nil); a.json(t)["ok"] != true {
		t.Errorf("ok: %s", a.body)
	}
	if s.RefreshAttempts() != 4 || s.Refreshes() != 1 {
		t.Errorf("attempts %d, refreshes %d; want 4, 1", s.RefreshAttempts(), s.Refreshes())
	}
}

func TestConcurrentRefresh(t *testing.T) {
	s := New(t, Notion, "cid", "csecret")
	_, refresh := s.IssueToken()
	var wg sync.WaitGroup
	var mu sync.Mutex
	ok := 0
	for range 50 {
		wg.Go(func() {
			a := post(t, s.OAuth().TokenURL, "application/json", `{"grant_type":"refresh_token","refresh_token":"`+refresh+`"}`, func(r *http.Request) {
				r.SetBasicAuth("cid", "csecret")
			})
			if a.status == http.StatusOK {
				mu.Lock()
				ok++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if ok != 1 || s.Refreshes() != 1 || s.RefreshAttempts() != 50 {
		t.Errorf("ok %d, refreshes %d, attempts %d; want 1, 1, 50", ok, s.Refreshes(), s.RefreshAttempts())
	}
}
