package testidp

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"sync"

	"github.com/zitadel/oidc/v3/example/server/storage"
	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"
)

// WebClient is a confidential client of the authorization code grant
// (PKCE accepted, client_secret_basic), for browser sign-in tests.
type WebClient struct {
	ID, Secret   string
	RedirectURIs []string
}

// The example's users, signed in through its login form at
// /login/username. Their passwords are UserPassword.
const (
	// UserID is the ID (the tokens' sub) of the user TestUsername names.
	UserID = "id1"
	// User2ID is the ID of User2Username.
	User2ID       = "id2"
	User2Username = "test-user2"
	UserPassword  = "verysecure"
)

// TestUsername is the username of UserID: the example derives it from the
// issuer's host.
func (p *IDP) TestUsername() string {
	u, _ := url.Parse(p.Issuer)
	return "test-user@" + u.Hostname()
}

// browserState is what the browser helpers add to an IDP. It lives beside
// the IDP rather than in it so that testidp.go stays as it is.
type browserState struct {
	mu         sync.Mutex
	webClients map[string]webClient      // guarded by mu
	userClaims map[string]map[string]any // guarded by mu; by user ID
}

type webClient struct {
	client *storage.Client
	secret string
}

var browserStates sync.Map // *IDP → *browserState

func (p *IDP) browser() *browserState {
	st, _ := browserStates.LoadOrStore(p, &browserState{
		webClients: map[string]webClient{},
		userClaims: map[string]map[string]any{},
	})
	return st.(*browserState)
}

// AddWebClient registers (or replaces) an authorization code client.
func (p *IDP) AddWebClient(c WebClient) {
	st := p.browser()
	st.mu.Lock()
	defer st.mu.Unlock()
	st.webClients[c.ID] = webClient{client: storage.WebClient(c.ID, c.Secret, c.RedirectURIs...), secret: c.Secret}
}

// SetUserClaims sets claims (tenant_id, roles, ...) added to the ID tokens
// of the user userID (UserID or User2ID).
func (p *IDP) SetUserClaims(userID string, claims map[string]any) {
	st := p.browser()
	st.mu.Lock()
	defer st.mu.Unlock()
	st.userClaims[userID] = maps.Clone(claims)
}

func (s *opStorage) webClient(id string) (webClient, bool) {
	st := s.idp.browser()
	st.mu.Lock()
	defer st.mu.Unlock()
	c, ok := st.webClients[id]
	return c, ok
}

// GetClientByClientID implements op.Storage: the web clients, then the
// example storage's (none).
func (s *opStorage) GetClientByClientID(ctx context.Context, clientID string) (op.Client, error) {
	if c, ok := s.webClient(clientID); ok {
		return c.client, nil
	}
	return s.Storage.GetClientByClientID(ctx, clientID)
}

// AuthorizeClientIDSecret implements op.Storage.
func (s *opStorage) AuthorizeClientIDSecret(ctx context.Context, clientID, clientSecret string) error {
	if c, ok := s.webClient(clientID); ok {
		if clientSecret == "" || subtle.ConstantTimeCompare([]byte(clientSecret), []byte(c.secret)) != 1 {
			return errors.New("invalid client secret")
		}
		return nil
	}
	return s.Storage.AuthorizeClientIDSecret(ctx, clientID, clientSecret)
}

// SetUserinfoFromRequest implements op.CanSetUserinfoFromRequest: the
// example's user info, with the claims SetUserClaims gave the user. It is
// what goes in ID tokens.
func (s *opStorage) SetUserinfoFromRequest(ctx context.Context, userinfo *oidc.UserInfo, token op.IDTokenRequest, scopes []string) error {
	if err := s.Storage.SetUserinfoFromRequest(ctx, userinfo, token, scopes); err != nil {
		return err
	}
	st := s.idp.browser()
	st.mu.Lock()
	claims := maps.Clone(st.userClaims[token.GetSubject()])
	st.mu.Unlock()
	for k, v := range claims {
		userinfo.AppendClaims(k, v)
	}
	return nil
}

var loginIDField = regexp.MustCompile(`name="id" value="([^"]*)"`)

// SignIn plays the browser's part at the provider: it follows authURL (the
// relying party's redirect to the authorization endpoint) to the login
// form, submits username and password through it, and follows the
// provider's redirects until one leaves the provider. It returns that
// redirect's target: the relying party's redirect URI with code and state
// (or error). client should have a cookie jar; its redirect policy is not
// used.
func (p *IDP) SignIn(ctx context.Context, client *http.Client, authURL, username, password string) (*url.URL, error) {
	c := *client
	var left *url.URL
	c.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		if len(via) > 10 {
			return errors.New("too many redirects")
		}
		if !strings.HasPrefix(req.URL.String(), p.Issuer+"/") {
			left = req.URL
			return http.ErrUseLastResponse
		}
		return nil
	}
	do := func(req *http.Request) (string, error) {
		resp, err := c.Do(req)
		if err != nil {
			return "", err
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		if err != nil {
			return "", err
		}
		if left == nil && resp.StatusCode != http.StatusOK {
			return "", fmt.Errorf("%s %s: %s", req.Method, req.URL, resp.Status)
		}
		return string(body), nil
	}

	req, err := http.NewRequestWithContext(ctx, http.MethodGet, authURL, nil)
	if err != nil {
		return nil, err
	}
	page, err := do(req)
	if err != nil {
		return nil, err
	}
	if left != nil {
		return left, nil // the provider answered without a login (an error)
	}
	m := loginIDField.FindStringSubmatch(page)
	if m == nil {
		return nil, errors.New("no login form at the provider")
	}
	form := url.Values{"id": {m[1]}, "username": {username}, "password": {password}}
	req, err = http.NewRequestWithContext(ctx, http.MethodPost, p.Issuer+"/login/username", strings.NewReader(form.Encode()))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if _, err := do(req); err != nil {
		return nil, err
	}
	if left == nil {
		return nil, errors.New("sign-in refused by the provider (wrong username or password?)")
	}
	return left, nil
}
