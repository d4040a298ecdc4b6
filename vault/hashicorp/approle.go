package hashicorp

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/hashicorp/vault/api"

	"github.com/connectors-gateway/connectors/vault"
)

// reloginBackoff bounds the wait between failed AppRole logins.
const (
	reloginMinBackoff = time.Second
	reloginMaxBackoff = 30 * time.Second
)

// startAppRole logs in with AppRole and starts renewing the token in the
// background: while Vault renews it the store keeps it; when it can no
// longer be renewed (its max TTL is reached, or it was revoked) the store
// logs in again. Close stops it.
func (h *Store) startAppRole(auth AppRole) error {
	if auth.RoleID == "" || auth.SecretID == "" {
		return errors.New("vault: AppRole login needs a role ID and a secret ID")
	}
	if auth.Mount == "" {
		auth.Mount = "approle"
	}
	secret, err := h.loginAppRole(context.Background(), auth)
	if err != nil {
		return err
	}
	h.stopped.Add(1)
	go func() {
		defer h.stopped.Done()
		h.renewAppRole(auth, secret)
	}()
	return nil
}

// loginAppRole logs in and sets the client's token.
func (h *Store) loginAppRole(ctx context.Context, auth AppRole) (*api.Secret, error) {
	// The login itself must not carry an old token.
	c, err := h.client.Clone()
	if err != nil {
		return nil, &vault.VaultError{Err: fmt.Errorf("AppRole login: %w", err)}
	}
	c.ClearToken()
	s, err := c.Logical().WriteWithContext(ctx, "auth/"+auth.Mount+"/login", map[string]any{
		"role_id":   auth.RoleID,
		"secret_id": auth.SecretID,
	})
	if err != nil {
		return nil, h.vaultErr(ctx, "AppRole login", err)
	}
	if s == nil || s.Auth == nil || s.Auth.ClientToken == "" {
		return nil, &vault.VaultError{Err: errors.New("AppRole login: no token in Vault's answer")}
	}
	h.client.SetToken(s.Auth.ClientToken)
	h.log.Info("vault_approle_login", "mount", auth.Mount, "ttl_seconds", s.Auth.LeaseDuration, "renewable", s.Auth.Renewable)
	return s, nil
}

// renewAppRole watches the token's lifetime until Close.
func (h *Store) renewAppRole(auth AppRole, secret *api.Secret) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		<-h.stop
		cancel()
	}()
	for {
		w, err := h.client.NewLifetimeWatcher(&api.LifetimeWatcherInput{Secret: secret})
		if err != nil {
			h.log.Error("vault_token_renewal_failed", "error", err.Error())
			return
		}
		go w.Start()
	watch:
		for {
			select {
			case <-h.stop:
				w.Stop()
				return
			case r := <-w.RenewCh():
				if r != nil && r.Secret != nil && r.Secret.Auth != nil {
					h.log.Debug("vault_token_renewed", "ttl_seconds", r.Secret.Auth.LeaseDuration)
				}
			case err := <-w.DoneCh():
				attrs := []any{}
				if err != nil {
					attrs = append(attrs, "error", err.Error())
				}
				h.log.Info("vault_token_not_renewable", attrs...)
				break watch
			}
		}
		w.Stop()
		backoff := reloginMinBackoff
		for {
			s, err := h.loginAppRole(ctx, auth)
			if err == nil {
				secret = s
				break
			}
			h.log.Error("vault_approle_login_failed", "error", err.Error(), "retry_in", backoff.String())
			select {
			case <-h.stop:
				return
			case <-time.After(backoff):
			}
			if errors.Is(err, ErrUnreachable) {
				// Vault did not answer: try again soon. An attempt costs
				// nothing while it is down, and a token that expired
				// during an outage is replaced within a second of its end.
				backoff = reloginMinBackoff
			} else {
				backoff = min(2*backoff, reloginMaxBackoff)
			}
		}
	}
}
