package oauth

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/connectors-gateway/connectors/tenants"
	"github.com/connectors-gateway/connectors/vault"
)

// Errors of the consent step (Flow.Link, Flow.Confirm) and of a callback
// arriving in the wrong browser.
var (
	// ErrLinkInvalid is a consent link this gateway did not issue, or
	// altered; ErrLinkExpired one older than the flow's StateTTL;
	// ErrLinkUsed one already confirmed (on any replica).
	ErrLinkInvalid = errors.New("link request not valid")
	ErrLinkExpired = errors.New("link request expired")
	ErrLinkUsed    = errors.New("link request already confirmed")
	// ErrStateBrowser is a callback that arrives without the browser
	// binding of the browser that confirmed the link (another browser, a
	// link forwarded after the consent, a script replaying a captured
	// callback URL).
	ErrStateBrowser = errors.New("OAuth state belongs to another browser")
	// ErrNoBinding is a flow started without a browser binding: the
	// gateway never issues a provider URL that anyone could complete.
	ErrNoBinding = errors.New("OAuth flow without a browser binding")
)

// purposeLink binds the seal of a consent link's ID.
const purposeLink = "cgw-oauth-link/v1"

// LinkPath is where the gateway serves consent pages: LinkPath + id.
const LinkPath = "/oauth/link/"

// Link is a link flow begun by an agent or API caller and waiting for a
// person to confirm it on the gateway's consent page. Its ID is sealed:
// unguessable, unalterable, and readable by every replica.
type Link struct {
	ID          string
	URL         string // the consent page: {PublicURL}/oauth/link/{ID}
	Tenant      string
	Integration string
	Subject     string // who began it
	RedirectURI string
	Expires     time.Time
}

// pendingLink is what a consent link's ID carries, sealed.
type pendingLink struct {
	Nonce       string `json:"n"`
	Tenant      string `json:"t"`
	Integration string `json:"i"`
	Subject     string `json:"s,omitempty"`
	RedirectURI string `json:"r,omitempty"`
	Expires     int64  `json:"e"`
}

// Begin starts a link flow of integration for tenant on behalf of caller
// (checked by the transport) and returns the consent link to hand to a
// person. Nothing goes to the provider until that person confirms on the
// consent page, in a browser that then alone can complete the flow.
func (f *Flow) Begin(ctx context.Context, caller tenants.Identity, tenant, integration, redirectURI string) (Link, error) {
	if err := f.checkStart(tenant, integration, redirectURI); err != nil {
		return Link{}, err
	}
	exp := f.now().Add(f.stateTTL)
	p := pendingLink{Nonce: tenants.RandomToken(), Tenant: tenant, Integration: integration,
		Subject: caller.Subject, RedirectURI: redirectURI, Expires: exp.Unix()}
	data, err := json.Marshal(p)
	if err != nil {
		return Link{}, err
	}
	id, err := f.sealer.SealData(purposeLink, data, f.stateTTL)
	if err != nil {
		return Link{}, fmt.Errorf("sealing the link request: %w", err)
	}
	f.log.InfoContext(ctx, "oauth_link_started", "tenantId", tenant, "integration", integration, "subject", caller.Subject)
	return p.link(id, f.publicURL), nil
}

func (p pendingLink) link(id, public string) Link {
	return Link{ID: id, URL: public + LinkPath + id, Tenant: p.Tenant, Integration: p.Integration,
		Subject: p.Subject, RedirectURI: p.RedirectURI, Expires: time.Unix(p.Expires, 0)}
}

// Link opens a consent link's ID: ErrLinkInvalid or ErrLinkExpired when it
// cannot be used. It does not spend it.
func (f *Flow) Link(id string) (Link, error) {
	p, err := f.openLink(id)
	if err != nil {
		return Link{}, err
	}
	return p.link(id, f.publicURL), nil
}

func (f *Flow) openLink(id string) (pendingLink, error) {
	if id == "" || len(id) > 4096 {
		return pendingLink{}, ErrLinkInvalid
	}
	data, err := f.sealer.OpenData(purposeLink, id)
	if err != nil {
		if errors.Is(err, tenants.ErrSessionExpired) {
			return pendingLink{}, ErrLinkExpired
		}
		return pendingLink{}, ErrLinkInvalid
	}
	var p pendingLink
	if err := json.Unmarshal(data, &p); err != nil || p.Nonce == "" || tenants.ValidateID(p.Tenant) != nil {
		return pendingLink{}, ErrLinkInvalid
	}
	if _, ok := f.providers[p.Integration]; !ok {
		return pendingLink{}, ErrLinkInvalid
	}
	return p, nil
}

// Confirm spends the consent link id, confirmed by a person in the browser
// whose binding secret (an HttpOnly cookie's value) is binding, and returns
// the provider's consent URL, whose state only that browser can complete.
func (f *Flow) Confirm(ctx context.Context, id, binding string) (authURL string, err error) {
	if binding == "" {
		return "", ErrNoBinding
	}
	p, err := f.openLink(id)
	if err != nil {
		return "", err
	}
	// The claim outlives the link, so it can never be confirmed twice.
	switch err := f.store.Claim(ctx, "oauth-link/"+p.Nonce, f.now().Add(f.stateTTL+time.Minute)); {
	case errors.Is(err, vault.ErrClaimed):
		return "", ErrLinkUsed
	case err != nil:
		return "", fmt.Errorf("recording the link request as confirmed: %w", err)
	}
	authURL, _, err = f.authorize(ctx, p.Subject, p.Tenant, p.Integration, p.RedirectURI, binding)
	if err == nil {
		f.log.InfoContext(ctx, "oauth_link_confirmed", "tenantId", p.Tenant, "integration", p.Integration, "subject", p.Subject)
	}
	return authURL, err
}

// checkStart checks what both ways of starting a flow are given.
func (f *Flow) checkStart(tenant, integration, redirectURI string) error {
	if _, ok := f.providers[integration]; !ok {
		return ErrNoProvider
	}
	if err := tenants.ValidateID(tenant); err != nil {
		return err
	}
	if redirectURI != "" && !slices.Contains(f.redirects, redirectURI) {
		return ErrRedirectURI
	}
	return nil
}

// bindingHash is what a state keeps of a browser's binding secret: the
// secret itself stays in the browser's HttpOnly cookie.
func bindingHash(binding string) string {
	sum := sha256.Sum256([]byte("cgw-oauth-binding/v1\x00" + binding))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// boundTo reports whether the browser binding secret binding is the one s
// was issued for.
func (s state) boundTo(binding string) bool {
	return s.Binding != "" && binding != "" &&
		subtle.ConstantTimeCompare([]byte(s.Binding), []byte(bindingHash(binding))) == 1
}
