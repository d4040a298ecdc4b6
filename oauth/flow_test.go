package oauth_test

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/connectors-gateway/connectors/oauth"
	"github.com/connectors-gateway/connectors/tenants"
	"github.com/connectors-gateway/connectors/vault"
	"github.com/connectors-gateway/connectors/vault/embedded"
)

// clock is a settable time for states and the store.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// tokenServer is a minimal RFC 6749 token endpoint that checks PKCE: it
// accepts code "good-code" once, with the verifier of the challenge the
// test registered.
type tokenServer struct {
	*httptest.Server
	challenge atomic.Value // string
	exchanges atomic.Int32
}

func newTokenServer(t *testing.T) *tokenServer {
	ts := &tokenServer{}
	var used sync.Map
	ts.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = r.ParseForm()
		fail := func(code string) {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusBadRequest)
			_ = json.NewEncoder(w).Encode(map[string]string{"error": code})
		}
		if id, secret, ok := r.BasicAuth(); !ok || id != "client" || secret != "s3cret" {
			fail("invalid_client")
			return
		}
		code := r.PostForm.Get("code")
		if _, dup := used.LoadOrStore(code, true); dup || code != "good-code" {
			fail("invalid_grant")
			return
		}
		sum := sha256.Sum256([]byte(r.PostForm.Get("code_verifier")))
		if want, _ := ts.challenge.Load().(string); base64.RawURLEncoding.EncodeToString(sum[:]) != want {
			fail("invalid_grant")
			return
		}
		ts.exchanges.Add(1)
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{
			"access_token": "at-linked-secret", "refresh_token": "rt-linked-secret", "token_type": "Bearer", "expires_in": 3600,
		})
	}))
	t.Cleanup(ts.Close)
	return ts
}

type flowEnv struct {
	flow  *oauth.Flow
	store *embedded.Store
	clock *clock
	ts    *tokenServer
	key   []byte
}

func newFlow(t *testing.T) *flowEnv {
	t.Helper()
	c := &clock{t: time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)}
	st, err := embedded.Open(filepath.Join(t.TempDir(), "store.db"), &embedded.Options{MasterKey: make([]byte, 32), Now: c.Now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	key := []byte("0123456789abcdef0123456789abcdef")
	sealer, err := tenants.NewBrowserSessions(key, c.Now)
	if err != nil {
		t.Fatal(err)
	}
	ts := newTokenServer(t)
	flow, err := oauth.NewFlow(oauth.FlowOptions{
		Providers: map[string]*oauth.Provider{"crm": {
			Integration: "crm", ClientID: "client", ClientSecret: "s3cret",
			AuthorizeURL: ts.URL + "/authorize", TokenURL: ts.URL + "/token", PKCE: true,
		}},
		Store:        st,
		Sealer:       sealer,
		Callbacks:    map[string]string{"crm": "https://gw.example.com/oauth/callback/crm"},
		RedirectURIs: []string{"https://app.example.com/done"},
		Now:          c.Now,
	})
	if err != nil {
		t.Fatal(err)
	}
	return &flowEnv{flow: flow, store: st, clock: c, ts: ts, key: key}
}

// start begins a flow for tenant and returns its state, registering the
// PKCE challenge with the token server.
func (e *flowEnv) start(t *testing.T, tenant string) string {
	t.Helper()
	authURL, state, err := e.flow.Authorize(context.Background(), tenants.Identity{Tenant: tenant, Subject: "u1"}, tenant, "crm", "https://app.example.com/done", browserOne)
	if err != nil {
		t.Fatal(err)
	}
	u, _ := url.Parse(authURL)
	e.ts.challenge.Store(u.Query().Get("code_challenge"))
	return state
}

// browserOne is the binding secret (link cookie) of the browser the tests'
// flows are started in.
const browserOne = "browser-one-binding-secret-0123456789abcdefghij"

func (e *flowEnv) callback(state, browserTenant string) (oauth.CallbackResult, error) {
	return e.callbackIn(state, browserTenant, browserOne)
}

func (e *flowEnv) callbackIn(state, browserTenant, binding string) (oauth.CallbackResult, error) {
	return e.flow.Callback(context.Background(), "crm", url.Values{"code": {"good-code"}, "state": {state}}, browserTenant, binding)
}

func (e *flowEnv) stored(t *testing.T, tenant string) bool {
	t.Helper()
	_, _, err := e.store.Get(context.Background(), tenant, "crm")
	if err != nil && !vault.IsNotFound(err) {
		t.Fatal(err)
	}
	return err == nil
}

func TestFlowLinks(t *testing.T) {
	e := newFlow(t)
	state := e.start(t, "tenant-a")
	res, err := e.callback(state, "")
	if err != nil {
		t.Fatal(err)
	}
	if res != (oauth.CallbackResult{Tenant: "tenant-a", Integration: "crm", RedirectURI: "https://app.example.com/done"}) {
		t.Errorf("result = %+v", res)
	}
	cred, _, err := e.store.Get(context.Background(), "tenant-a", "crm")
	if err != nil {
		t.Fatal(err)
	}
	if cred.AccessToken != "at-linked-secret" || cred.RefreshToken != "rt-linked-secret" || cred.ExpiresAt.IsZero() {
		t.Errorf("stored %+v", cred)
	}
	if _, err := e.callback(state, ""); !errors.Is(err, oauth.ErrStateUsed) {
		t.Errorf("replay: %v, want ErrStateUsed", err)
	}
}

func TestFlowStateRefusals(t *testing.T) {
	e := newFlow(t)
	other, _ := tenants.NewBrowserSessions([]byte("another key, another gateway!!!!"), nil)
	foreign, _ := other.SealData("cgw-oauth-state/v1", []byte(`{"n":"x","t":"tenant-a","i":"crm"}`), time.Minute)
	mine, _ := tenants.NewBrowserSessions(e.key, e.clock.Now)
	cookie, _ := mine.Seal(tenants.Identity{Tenant: "tenant-a", Subject: "u"}, time.Hour) // another purpose
	for name, state := range map[string]string{
		"empty": "", "garbage": "not-a-state", "another gateway's": foreign, "a session cookie": cookie,
		"too long": string(make([]byte, 5000)),
	} {
		if _, err := e.callback(state, ""); !errors.Is(err, oauth.ErrStateInvalid) {
			t.Errorf("%s state: %v, want ErrStateInvalid", name, err)
		}
	}
	// A state of this integration presented at another's callback.
	state := e.start(t, "tenant-a")
	if _, err := e.flow.Callback(context.Background(), "other", url.Values{"code": {"good-code"}, "state": {state}}, "", browserOne); !errors.Is(err, oauth.ErrStateInvalid) {
		t.Errorf("state at another integration: %v, want ErrStateInvalid", err)
	}
	// A browser signed in as tenant-b may not finish tenant-a's flow, and
	// its attempt does not spend the state.
	if _, err := e.callback(state, "tenant-b"); !errors.Is(err, oauth.ErrStateTenant) {
		t.Errorf("other tenant's browser: %v, want ErrStateTenant", err)
	}
	if e.stored(t, "tenant-a") || e.stored(t, "tenant-b") {
		t.Fatal("a refused callback stored a credential")
	}
	if _, err := e.callback(state, "tenant-a"); err != nil {
		t.Errorf("the right browser after a refused one: %v", err)
	}
	// Expiry: ten minutes.
	state = e.start(t, "tenant-c")
	e.clock.Add(oauth.DefaultStateTTL + time.Second)
	if _, err := e.callback(state, ""); !errors.Is(err, oauth.ErrStateExpired) {
		t.Errorf("expired state: %v, want ErrStateExpired", err)
	}
	if e.stored(t, "tenant-c") {
		t.Error("an expired state stored a credential")
	}
}

// TestFlowConcurrentCallbacks: one state, many callbacks at once (a
// double-clicked link, a replaying attacker): one exchange, one winner.
func TestFlowConcurrentCallbacks(t *testing.T) {
	e := newFlow(t)
	state := e.start(t, "tenant-a")
	var wg sync.WaitGroup
	var won atomic.Int32
	for range 10 {
		wg.Go(func() {
			if _, err := e.callback(state, ""); err == nil {
				won.Add(1)
			} else if !errors.Is(err, oauth.ErrStateUsed) {
				t.Errorf("callback: %v", err)
			}
		})
	}
	wg.Wait()
	if won.Load() != 1 || e.ts.exchanges.Load() != 1 {
		t.Errorf("%d callbacks won, %d exchanges; want 1 and 1", won.Load(), e.ts.exchanges.Load())
	}
}

func TestFlowProviderRefusal(t *testing.T) {
	e := newFlow(t)
	state := e.start(t, "tenant-a")
	res, err := e.flow.Callback(context.Background(), "crm", url.Values{"error": {"access_denied"}, "state": {state}}, "", browserOne)
	var perr *oauth.ProviderError
	if !errors.As(err, &perr) || perr.Code != "access_denied" || res.RedirectURI != "https://app.example.com/done" {
		t.Fatalf("denied: %+v, %v", res, err)
	}
	// PKCE: the exchange must carry this flow's verifier; a code
	// presented with another flow's state fails.
	s1 := e.start(t, "tenant-a")
	e.start(t, "tenant-a") // the token server now expects the second flow's challenge
	if _, err := e.callback(s1, ""); !errors.As(err, &perr) || perr.Code != "exchange_failed" {
		t.Errorf("exchange with the wrong verifier: %v, want exchange_failed", err)
	}
	if e.stored(t, "tenant-a") {
		t.Error("a refused flow stored a credential")
	}
}

func TestFlowAuthorizeRefusals(t *testing.T) {
	e := newFlow(t)
	id := tenants.Identity{Tenant: "tenant-a"}
	for _, ru := range []string{"https://app.example.com/done/", "https://app.example.com/done?x", "HTTPS://app.example.com/done", "https://app.example.com.evil/done"} {
		if _, _, err := e.flow.Authorize(context.Background(), id, "tenant-a", "crm", ru, browserOne); !errors.Is(err, oauth.ErrRedirectURI) {
			t.Errorf("redirect_uri %q: %v, want ErrRedirectURI", ru, err)
		}
	}
	if _, _, err := e.flow.Authorize(context.Background(), id, "tenant-a", "nope", "", browserOne); !errors.Is(err, oauth.ErrNoProvider) {
		t.Errorf("unknown integration: %v", err)
	}
	if _, _, err := e.flow.Authorize(context.Background(), id, "../tenant-b", "crm", "", browserOne); !errors.Is(err, tenants.ErrInvalidID) {
		t.Errorf("hostile tenant: %v", err)
	}
	// No flow without a browser binding: its URL would be anyone's.
	if _, _, err := e.flow.Authorize(context.Background(), id, "tenant-a", "crm", "", ""); !errors.Is(err, oauth.ErrNoBinding) {
		t.Errorf("no binding: %v, want ErrNoBinding", err)
	}
	if _, err := e.flow.Begin(context.Background(), id, "tenant-a", "crm", "https://evil.example/done"); !errors.Is(err, oauth.ErrRedirectURI) {
		t.Errorf("Begin with a redirect_uri not allowed: %v", err)
	}
}

// TestFlowBrowserBinding: a state completes only in the browser it was
// bound to; another browser's attempt (or one without the cookie) stores
// nothing and does not spend it.
func TestFlowBrowserBinding(t *testing.T) {
	e := newFlow(t)
	state := e.start(t, "tenant-a")
	for name, binding := range map[string]string{"no cookie": "", "another browser": "browser-two-binding-secret-0123456789abcdefghij"} {
		if _, err := e.callbackIn(state, "", binding); !errors.Is(err, oauth.ErrStateBrowser) {
			t.Errorf("%s: %v, want ErrStateBrowser", name, err)
		}
	}
	if e.stored(t, "tenant-a") || e.ts.exchanges.Load() != 0 {
		t.Fatal("a callback in another browser exchanged the code or stored a credential")
	}
	if _, err := e.callback(state, ""); err != nil {
		t.Errorf("the browser the flow was bound to: %v", err)
	}
}

// TestFlowConsentLink: a link begun by an agent names its tenant,
// integration and starter; confirming it once, in one browser, gives the
// provider URL whose state only that browser can complete.
func TestFlowConsentLink(t *testing.T) {
	e := newFlow(t)
	agent := tenants.Identity{Tenant: "tenant-a", Subject: "apikey:agent-1"}
	link, err := e.flow.Begin(context.Background(), agent, "tenant-a", "crm", "")
	if err != nil {
		t.Fatal(err)
	}
	got, err := e.flow.Link(link.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Tenant != "tenant-a" || got.Integration != "crm" || got.Subject != "apikey:agent-1" || got.URL != "/oauth/link/"+link.ID ||
		!got.Expires.Equal(e.clock.Now().Add(oauth.DefaultStateTTL).Truncate(time.Second)) {
		t.Errorf("link = %+v", got)
	}
	// The link's ID is no state: presented at the callback it is refused.
	if _, err := e.callback(link.ID, ""); !errors.Is(err, oauth.ErrStateInvalid) {
		t.Errorf("a link ID as state: %v, want ErrStateInvalid", err)
	}
	// Nor is a state a link.
	state := e.start(t, "tenant-a")
	if _, err := e.flow.Link(state); !errors.Is(err, oauth.ErrLinkInvalid) {
		t.Errorf("a state as link ID: %v, want ErrLinkInvalid", err)
	}
	if _, err := e.flow.Confirm(context.Background(), link.ID, ""); !errors.Is(err, oauth.ErrNoBinding) {
		t.Errorf("confirm without a browser binding: %v", err)
	}
	authURL, err := e.flow.Confirm(context.Background(), link.ID, browserOne)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.flow.Confirm(context.Background(), link.ID, "browser-two-binding-secret-0123456789abcdefghij"); !errors.Is(err, oauth.ErrLinkUsed) {
		t.Errorf("a second confirmation: %v, want ErrLinkUsed", err)
	}
	u, _ := url.Parse(authURL)
	e.ts.challenge.Store(u.Query().Get("code_challenge"))
	if _, err := e.callbackIn(u.Query().Get("state"), "", "browser-two-binding-secret-0123456789abcdefghij"); !errors.Is(err, oauth.ErrStateBrowser) {
		t.Errorf("callback in another browser: %v", err)
	}
	res, err := e.callback(u.Query().Get("state"), "")
	if err != nil || res.Tenant != "tenant-a" {
		t.Fatalf("callback in the confirming browser: %+v, %v", res, err)
	}
	if !e.stored(t, "tenant-a") {
		t.Error("nothing stored")
	}
	// Forged and expired links.
	forged := []byte(link.ID)
	forged[len(forged)/2] ^= 1
	if _, err := e.flow.Link(string(forged)); !errors.Is(err, oauth.ErrLinkInvalid) {
		t.Errorf("an altered link: %v", err)
	}
	late, _ := e.flow.Begin(context.Background(), agent, "tenant-a", "crm", "")
	e.clock.Add(oauth.DefaultStateTTL + time.Second)
	if _, err := e.flow.Confirm(context.Background(), late.ID, browserOne); !errors.Is(err, oauth.ErrLinkExpired) {
		t.Errorf("an expired link: %v, want ErrLinkExpired", err)
	}
}
