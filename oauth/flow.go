package oauth

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"slices"
	"sort"
	"strings"
	"time"

	"golang.org/x/oauth2"

	"github.com/connectors-gateway/connectors/tenants"
	"github.com/connectors-gateway/connectors/vault"
)

// Errors of Flow.Authorize.
var (
	// ErrNoProvider is an integration without an OAuth provider configured
	// (unknown, or its client ID is not set).
	ErrNoProvider = errors.New("integration has no OAuth provider configured")
	// ErrRedirectURI is a redirect_uri that is not exactly one of the
	// allowlisted values.
	ErrRedirectURI = errors.New("redirect_uri is not allowed")
)

// DefaultStateTTL bounds a link flow, from Authorize to Callback.
const DefaultStateTTL = 10 * time.Minute

// FlowStore is what the link flow needs of the credential store.
type FlowStore interface {
	Get(ctx context.Context, tenant, integration string) (vault.Credential, int64, error)
	Put(ctx context.Context, tenant, integration string, cred vault.Credential, version int64) (int64, error)
	Claim(ctx context.Context, key string, until time.Time) error
}

// FlowOptions configure a Flow. Store and Sealer are required.
type FlowOptions struct {
	// Providers are the integrations tenants can link, by name.
	Providers map[string]*Provider
	Store     FlowStore
	Sealer    Sealer
	// Callbacks are the gateway's own callback URLs given to each provider
	// (NOTION_REDIRECT_URI, ...): https://gateway.example.com/oauth/callback/notion.
	Callbacks map[string]string
	// RedirectURIs are the places a tenant may be sent back to after the
	// flow (the redirect_uri parameter of Authorize), compared exactly.
	RedirectURIs []string
	// PublicURL is the gateway's external base URL, for consent links
	// ({PublicURL}/oauth/link/{id}); empty makes them relative.
	PublicURL string
	// StateTTL bounds a flow; zero means DefaultStateTTL.
	StateTTL time.Duration
	// OnLinked is called after a credential is stored (schedule its
	// refresh, tell the tenant's sessions that its tools changed).
	OnLinked func(tenant, integration string, cred vault.Credential)
	Logger   *slog.Logger     // nil: discard
	Now      func() time.Time // nil: time.Now
}

// Flow is the OAuth link flow.
type Flow struct {
	providers map[string]*Provider
	store     FlowStore
	sealer    Sealer
	callbacks map[string]string
	redirects []string
	publicURL string
	stateTTL  time.Duration
	onLinked  func(tenant, integration string, cred vault.Credential)
	log       *slog.Logger
	now       func() time.Time
}

// NewFlow returns the link flow.
func NewFlow(opts FlowOptions) (*Flow, error) {
	if opts.Store == nil || opts.Sealer == nil {
		return nil, errors.New("oauth: Store and Sealer are required")
	}
	for name := range opts.Providers {
		if opts.Callbacks[name] == "" {
			return nil, fmt.Errorf("oauth: integration %s has no callback URL", name)
		}
	}
	f := &Flow{
		providers: opts.Providers,
		store:     opts.Store,
		sealer:    opts.Sealer,
		callbacks: opts.Callbacks,
		redirects: slices.Clone(opts.RedirectURIs),
		publicURL: strings.TrimSuffix(opts.PublicURL, "/"),
		stateTTL:  opts.StateTTL,
		onLinked:  opts.OnLinked,
		log:       opts.Logger,
		now:       opts.Now,
	}
	if f.stateTTL <= 0 {
		f.stateTTL = DefaultStateTTL
	}
	if f.log == nil {
		f.log = slog.New(slog.DiscardHandler)
	}
	if f.now == nil {
		f.now = time.Now
	}
	return f, nil
}

// Integrations lists the integrations tenants can link, sorted.
func (f *Flow) Integrations() []string {
	names := make([]string, 0, len(f.providers))
	for n := range f.providers {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Provider returns integration's provider, if it has one.
func (f *Flow) Provider(integration string) (*Provider, bool) {
	p, ok := f.providers[integration]
	return p, ok
}

// Authorize starts a link flow of integration for caller's tenant (the
// caller is checked by the transport: it is the tenant, or an admin
// acting for it) in a browser that is already the person's: a signed-in
// browser session. binding is that browser's binding secret (the value of
// an HttpOnly cookie it holds); the state the provider carries back is
// valid only with it, so the URL is of no use to anyone else. redirectURI
// is where the tenant lands afterwards: empty for the gateway's own page,
// else exactly an allowlisted value. It returns the provider's consent URL
// and the state it carries. Agents and API callers get a consent link
// from Begin instead.
func (f *Flow) Authorize(ctx context.Context, caller tenants.Identity, tenant, integration, redirectURI, binding string) (authURL, stateValue string, err error) {
	if err := f.checkStart(tenant, integration, redirectURI); err != nil {
		return "", "", err
	}
	return f.authorize(ctx, caller.Subject, tenant, integration, redirectURI, binding)
}

func (f *Flow) authorize(ctx context.Context, subject, tenant, integration, redirectURI, binding string) (authURL, stateValue string, err error) {
	if binding == "" {
		return "", "", ErrNoBinding
	}
	p := f.providers[integration]
	s := state{
		Nonce:       tenants.RandomToken(),
		Tenant:      tenant,
		Integration: integration,
		Subject:     subject,
		RedirectURI: redirectURI,
		Binding:     bindingHash(binding),
	}
	challenge := ""
	if p.PKCE {
		s.Verifier = oauth2.GenerateVerifier()
		challenge = challengeS256(s.Verifier)
	}
	if stateValue, err = f.sealState(s); err != nil {
		return "", "", fmt.Errorf("sealing the OAuth state: %w", err)
	}
	f.log.InfoContext(ctx, "oauth_authorize", "tenantId", tenant, "integration", integration, "subject", subject)
	return p.AuthCodeURL(stateValue, f.callbacks[integration], challenge), stateValue, nil
}

// CallbackURL returns the gateway's own callback URL of integration.
func (f *Flow) CallbackURL(integration string) string { return f.callbacks[integration] }

// CallbackResult is where a callback's tenant goes next.
type CallbackResult struct {
	Tenant, Integration string
	RedirectURI         string // empty: the gateway's own page
}

// ProviderError is the provider's answer to a tenant who did not grant
// access (error=access_denied on the callback), or a failed code exchange.
// Nothing was stored; the tenant is sent back with Code as the error.
type ProviderError struct {
	Code string // access_denied, ..., or "exchange_failed"
	Err  error  // the exchange's error, if that failed
}

func (e *ProviderError) Error() string {
	if e.Err != nil {
		return "OAuth provider: " + e.Code + ": " + e.Err.Error()
	}
	return "OAuth provider: " + e.Code
}
func (e *ProviderError) Unwrap() error { return e.Err }

// Callback completes a link flow from the provider's redirect (its query
// q: code and state, or error and state). browserTenant is the tenant of
// the browser's gateway session, "" when it has none: a browser signed in
// as another tenant may not complete this tenant's flow. binding is the
// browser's binding secret (its link cookie), "" when it sent none: only
// the browser the flow was confirmed in can complete it.
//
// A state that is not valid, expired, used or arriving in another browser
// is ErrStateInvalid, ErrStateExpired, ErrStateUsed or ErrStateBrowser,
// with an empty result: the caller must
// not redirect anywhere. A provider refusal or failed exchange is a
// *ProviderError with the result filled in, for the caller to send the
// tenant back with the error. Either way nothing is stored.
func (f *Flow) Callback(ctx context.Context, integration string, q url.Values, browserTenant, binding string) (CallbackResult, error) {
	s, err := f.openState(q.Get("state"), integration)
	if err != nil {
		f.log.WarnContext(ctx, "oauth_callback_rejected", "integration", integration, "reason", err.Error())
		return CallbackResult{}, err
	}
	// Checked before the state is spent: a foreign browser's attempt must
	// not use up the flow of the person who confirmed it.
	if !s.boundTo(binding) {
		f.log.WarnContext(ctx, "oauth_callback_rejected", "integration", integration, "tenantId", s.Tenant, "reason", ErrStateBrowser.Error())
		return CallbackResult{}, ErrStateBrowser
	}
	if browserTenant != "" && browserTenant != s.Tenant {
		f.log.WarnContext(ctx, "oauth_callback_rejected", "integration", integration, "tenantId", s.Tenant, "reason", ErrStateTenant.Error())
		return CallbackResult{}, ErrStateTenant
	}
	if err := f.spend(ctx, s); err != nil {
		f.log.WarnContext(ctx, "oauth_callback_rejected", "integration", integration, "tenantId", s.Tenant, "reason", err.Error())
		return CallbackResult{}, err
	}
	res := CallbackResult{Tenant: s.Tenant, Integration: integration, RedirectURI: s.RedirectURI}
	if code := q.Get("error"); code != "" {
		f.log.InfoContext(ctx, "oauth_denied", "tenantId", s.Tenant, "integration", integration, "error", clip(code))
		return res, &ProviderError{Code: clip(code)}
	}
	code := q.Get("code")
	if code == "" {
		return res, &ProviderError{Code: "invalid_request", Err: errors.New("no code in the callback")}
	}
	p := f.providers[integration] // the state names only integrations with a provider
	tok, err := p.Exchange(ctx, code, f.callbacks[integration], s.Verifier)
	if err != nil {
		f.log.ErrorContext(ctx, "oauth_exchange_failed", "tenantId", s.Tenant, "integration", integration, "error", err)
		return res, &ProviderError{Code: "exchange_failed", Err: err}
	}
	cred, err := f.save(ctx, s.Tenant, integration, tok)
	if err != nil {
		f.log.ErrorContext(ctx, "oauth_store_failed", "tenantId", s.Tenant, "integration", integration, "error", err)
		return res, &ProviderError{Code: "server_error", Err: err}
	}
	f.log.InfoContext(ctx, "oauth_linked", "tenantId", s.Tenant, "integration", integration, "subject", s.Subject)
	if f.onLinked != nil {
		f.onLinked(s.Tenant, integration, cred)
	}
	return res, nil
}

// save writes a freshly linked token over whatever the tenant had: a new
// link replaces the old credential (its refresh token too) but keeps its
// creation time.
func (f *Flow) save(ctx context.Context, tenant, integration string, tok Token) (vault.Credential, error) {
	for range 3 {
		prev, version, err := f.store.Get(ctx, tenant, integration)
		if vault.IsNotFound(err) {
			prev, version, err = vault.Credential{}, 0, nil
		}
		if _, unreadable := errors.AsType[*vault.VaultEncryptionError](err); unreadable {
			// A record that no longer decrypts (a retired key, a copy):
			// linking again is how the tenant mends it.
			prev, version, err = vault.Credential{}, vault.AnyVersion, nil
		}
		if err != nil {
			return vault.Credential{}, err
		}
		cred := tok.Credential(vault.Credential{CreatedAt: prev.CreatedAt}, f.now())
		_, err = f.store.Put(ctx, tenant, integration, cred, version)
		if _, lost := errors.AsType[*vault.ConflictError](err); lost {
			continue
		}
		return cred, err
	}
	return vault.Credential{}, errors.New("the credential kept changing while it was being stored")
}

// clip bounds a provider-supplied string before it is logged or echoed.
func clip(s string) string {
	const max = 64
	out := make([]rune, 0, len(s))
	for _, r := range s {
		if len(out) == max {
			break
		}
		if r < 0x20 || r == 0x7f {
			continue
		}
		out = append(out, r)
	}
	return string(out)
}
