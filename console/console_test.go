package console

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
)

// fakeAPI answers the console's calls as the gateway's API would for one
// signed-in tenant, and records what it was asked.
type fakeAPI struct {
	mu    sync.Mutex
	calls []*http.Request
}

func (f *fakeAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	f.calls = append(f.calls, r.Clone(r.Context()))
	f.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	switch {
	case r.URL.Path == "/auth/session" && strings.Contains(r.Header.Get("Cookie"), "cgw_session=good"):
		_ = json.NewEncoder(w).Encode(map[string]any{"tenant": "acme", "subject": "u1", "csrf_token": "tok"})
	case r.URL.Path == "/auth/session":
		w.WriteHeader(http.StatusUnauthorized)
		_, _ = w.Write([]byte(`{"error":"Unauthorized","message":"not signed in"}`))
	case r.URL.Path == "/tenants/acme/integrations":
		_, _ = w.Write([]byte(`{"tenantId":"acme","integrations":[{"name":"<b>x</b>","hasCredentials":false,"enabled":true}]}`))
	case r.URL.Path == "/tenants/acme/integrations/notion/credentials":
		w.WriteHeader(http.StatusNoContent)
	default:
		w.WriteHeader(http.StatusNotFound)
		_, _ = w.Write([]byte(`{"error":"NotFound","message":"no such route"}`))
	}
}

func (f *fakeAPI) paths() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for _, r := range f.calls {
		out = append(out, r.Method+" "+r.URL.Path)
	}
	return out
}

func serve(c *Console, method, path, cookie string, form url.Values, header ...string) *httptest.ResponseRecorder {
	var body *strings.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	} else {
		body = strings.NewReader("")
	}
	r := httptest.NewRequest(method, path, body)
	if form != nil {
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	if cookie != "" {
		r.Header.Set("Cookie", cookie)
	}
	for i := 0; i+1 < len(header); i += 2 {
		r.Header.Set(header[i], header[i+1])
	}
	w := httptest.NewRecorder()
	c.ServeHTTP(w, r)
	return w
}

func TestConsolePages(t *testing.T) {
	api := new(fakeAPI)
	c := New(Options{})
	if w := serve(c, "GET", "/console/", "cgw_session=good", nil); w.Code != http.StatusServiceUnavailable {
		t.Fatalf("before Bind: %d, want 503", w.Code)
	}
	c.Bind(api)

	w := serve(c, "GET", "/console/", "cgw_session=good", nil, "Authorization", "Bearer cgw_agent", "X-API-Key", "cgw_agent")
	if w.Code != http.StatusOK {
		t.Fatalf("dashboard: %d %s", w.Code, w.Body)
	}
	for h, want := range map[string]string{
		"Content-Security-Policy": ContentSecurityPolicy, "X-Frame-Options": "DENY",
		"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff",
	} {
		if got := w.Header().Get(h); got != want {
			t.Errorf("%s: %q, want %q", h, got, want)
		}
	}
	if body := w.Body.String(); strings.Contains(body, "<b>x</b>") || !strings.Contains(body, "&lt;b&gt;x&lt;/b&gt;") || strings.Contains(body, "<script") {
		t.Errorf("an integration's name is not escaped, or the page has a script")
	}
	for _, r := range api.calls {
		if r.Header.Get("Authorization") != "" || r.Header.Get("X-API-Key") != "" {
			t.Errorf("%s %s was sent the browser's Authorization or X-API-Key: the console acts by the session alone", r.Method, r.URL.Path)
		}
		if r.Header.Get("Cookie") != "cgw_session=good" {
			t.Errorf("%s %s without the browser's cookie", r.Method, r.URL.Path)
		}
	}

	// Not signed in: the sign-in page, nothing else asked.
	if w := serve(c, "GET", "/console/keys", "cgw_session=bad", nil); w.Code != http.StatusSeeOther || w.Header().Get("Location") != "/console/signin" {
		t.Errorf("not signed in: %d %s", w.Code, w.Header().Get("Location"))
	}
	if w := serve(c, "GET", "/console/signin", "", nil); w.Code != http.StatusOK || !strings.Contains(w.Body.String(), "connectors console link") {
		t.Errorf("the sign-in page without OIDC: %d %s", w.Code, w.Body)
	}
}

func TestConsoleCSRF(t *testing.T) {
	api := new(fakeAPI)
	c := New(Options{})
	c.Bind(api)
	for _, token := range []string{"", "wrong", "tok "} {
		api.calls = nil
		w := serve(c, "POST", "/console/disconnect/notion", "cgw_session=good", url.Values{"csrf_token": {token}})
		if w.Code != http.StatusForbidden || !strings.Contains(w.Body.String(), "CSRFCheckFailed") {
			t.Errorf("csrf_token %q: %d", token, w.Code)
		}
		for _, p := range api.paths() {
			if p != "GET /auth/session" {
				t.Errorf("csrf_token %q: the console called %s", token, p)
			}
		}
	}
	api.calls = nil
	w := serve(c, "POST", "/console/disconnect/notion", "cgw_session=good", url.Values{"csrf_token": {"tok"}})
	if w.Code != http.StatusSeeOther || w.Header().Get("Location") != "/console/?done=disconnected" {
		t.Fatalf("disconnect: %d %s", w.Code, w.Body)
	}
	last := api.calls[len(api.calls)-1]
	if last.Method != "DELETE" || last.URL.Path != "/tenants/acme/integrations/notion/credentials" || last.Header.Get("X-CSRF-Token") != "tok" {
		t.Errorf("disconnect called %s %s with CSRF %q", last.Method, last.URL.Path, last.Header.Get("X-CSRF-Token"))
	}
	// A form too large is refused without a call.
	api.calls = nil
	big := url.Values{"csrf_token": {"tok"}, "token": {strings.Repeat("a", 70<<10)}}
	if w := serve(c, "POST", "/console/connect/notion/token", "cgw_session=good", big); w.Code != http.StatusRequestEntityTooLarge {
		t.Errorf("a 70 KiB form: %d", w.Code)
	}
	if len(api.paths()) != 1 {
		t.Errorf("a 70 KiB form made calls: %v", api.paths())
	}
}

func TestFlash(t *testing.T) {
	for q, want := range map[string]string{
		"done=revoked":                                  "The API key is revoked",
		"done=<script>":                                 "",
		"status=error&error=access_denied":              "(access_denied)",
		"status=error&error=<b>hi</b>":                  "(unknown error)",
		"status=error&error=" + strings.Repeat("a", 65): "(unknown error)",
	} {
		r := httptest.NewRequest("GET", "/console/?"+q, nil)
		if got := flash(r); want == "" && got != "" || !strings.Contains(got, want) {
			t.Errorf("flash(%s) = %q, want %q", q, got, want)
		}
	}
}

func TestToolList(t *testing.T) {
	got := toolList(" a, b\nc,,a \r\n")
	if strings.Join(got, "|") != "a|b|c" {
		t.Errorf("toolList = %q", got)
	}
}

func TestRecorderBound(t *testing.T) {
	api := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		chunk := make([]byte, 1<<20)
		for range 10 {
			if _, err := w.Write(chunk); err != nil {
				return
			}
		}
	})
	r := httptest.NewRequest("GET", "/console/", nil)
	if _, err := (call{method: "GET", path: "/big"}).do(r.Context(), api, r); err == nil {
		t.Error("a 10 MiB answer was read")
	}
}
