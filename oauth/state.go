package oauth

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/connectors-gateway/connectors/tenants"
	"github.com/connectors-gateway/connectors/vault"
)

// Errors of Flow.Callback about its state parameter. Each means nothing was
// exchanged and nothing stored.
var (
	// ErrStateInvalid is a state this gateway did not issue, or altered,
	// or issued for another integration.
	ErrStateInvalid = errors.New("OAuth state not valid")
	// ErrStateExpired is a genuine state older than the flow's StateTTL.
	ErrStateExpired = errors.New("OAuth state expired")
	// ErrStateUsed is a genuine state already spent by an earlier callback
	// (on any replica).
	ErrStateUsed = errors.New("OAuth state already used")
	// ErrStateTenant is a callback whose browser is signed in as another
	// tenant than the one the flow was started for.
	ErrStateTenant = errors.New("OAuth state belongs to another tenant")
)

// purposeState binds the seal of a state, so no other sealed value of the
// gateway (a browser session, a sign-in state) can stand in for one.
const purposeState = "cgw-oauth-state/v1"

// Sealer seals and opens the state's content; tenants.BrowserSessions is
// one. Its key is shared by every replica, so any replica can read a state
// another issued.
type Sealer interface {
	SealData(purpose string, data []byte, ttl time.Duration) (string, error)
	OpenData(purpose, value string) ([]byte, error)
}

// state is what an OAuth state parameter carries, sealed: everything the
// callback needs, so no replica has to remember the flow.
type state struct {
	Nonce       string `json:"n"`
	Tenant      string `json:"t"`
	Integration string `json:"i"`
	Subject     string `json:"s,omitempty"` // who started the flow, for the audit trail
	RedirectURI string `json:"r,omitempty"` // where the tenant lands; empty: the gateway's own page
	Verifier    string `json:"v,omitempty"` // PKCE code verifier
	Binding     string `json:"b"`           // bindingHash of the browser's binding secret
}

func (f *Flow) sealState(s state) (string, error) {
	data, err := json.Marshal(s)
	if err != nil {
		return "", err
	}
	return f.sealer.SealData(purposeState, data, f.stateTTL)
}

// openState returns the state value holds, checked against integration.
func (f *Flow) openState(value, integration string) (state, error) {
	if value == "" || len(value) > 4096 {
		return state{}, ErrStateInvalid
	}
	data, err := f.sealer.OpenData(purposeState, value)
	if err != nil {
		if errors.Is(err, tenants.ErrSessionExpired) {
			return state{}, ErrStateExpired
		}
		return state{}, ErrStateInvalid
	}
	var s state
	if err := json.Unmarshal(data, &s); err != nil || s.Nonce == "" || s.Integration != integration {
		return state{}, ErrStateInvalid
	}
	return s, nil
}

// spend marks s used, once across every replica sharing the store.
func (f *Flow) spend(ctx context.Context, s state) error {
	// The claim outlives the state, so a state can never be spent twice.
	err := f.store.Claim(ctx, "oauth-state/"+s.Nonce, f.now().Add(f.stateTTL+time.Minute))
	if errors.Is(err, vault.ErrClaimed) {
		return ErrStateUsed
	}
	if err != nil {
		return fmt.Errorf("recording the OAuth state as used: %w", err)
	}
	return nil
}

// challengeS256 is the PKCE S256 challenge of verifier (RFC 7636).
func challengeS256(verifier string) string {
	sum := sha256.Sum256([]byte(verifier))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}
