package oauth_test

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"testing/synctest"
	"time"

	"github.com/connectors-gateway/connectors/oauth"
	"github.com/connectors-gateway/connectors/vault"
)

func TestHealth(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := oauth.NewRefresher(oauth.RefresherOptions{Margin: 5 * time.Minute})
		now := time.Now()
		tests := []struct {
			name string
			cred *vault.Credential
			want string
		}{
			{"none", nil, ""},
			{"far from expiry", &vault.Credential{AccessToken: "a", ExpiresAt: now.Add(time.Hour)}, oauth.HealthActive},
			{"no expiry", &vault.Credential{AccessToken: "a"}, oauth.HealthActive},
			{"within margin", &vault.Credential{AccessToken: "a", ExpiresAt: now.Add(4 * time.Minute)}, oauth.HealthExpiring},
			{"expired", &vault.Credential{AccessToken: "a", ExpiresAt: now.Add(-time.Minute)}, oauth.HealthExpiring},
			{"needs reauth", &vault.Credential{AccessToken: "a", Status: vault.StatusNeedsReauth}, oauth.HealthNeedsReauth},
		}
		for _, tt := range tests {
			if got := r.Health("tenant-a", integration, tt.cred).State; got != tt.want {
				t.Errorf("%s: %q, want %q", tt.name, got, tt.want)
			}
		}
		b, err := json.Marshal(oauth.Health{State: oauth.HealthActive})
		if err != nil || string(b) != `{"status":"active"}` {
			t.Errorf("JSON of a healthy credential: %s, %v", b, err)
		}
	})
}

func TestForgetAndMarkRevoked(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s, p := openStore(t), newProvider()
		r := newRefresher(s, p, oauth.RefresherOptions{})
		a := link(t, s, p, "tenant-a", time.Now().Add(time.Hour))
		b := link(t, s, p, "tenant-b", time.Now().Add(time.Hour))
		r.Schedule("tenant-a", integration, a)
		r.Schedule("tenant-b", integration, b)
		if n := r.QueueLen(); n != 2 {
			t.Fatalf("QueueLen = %d", n)
		}
		r.Forget("tenant-a", integration)
		r.MarkRevoked("tenant-b", integration)
		if n := r.QueueLen(); n != 0 {
			t.Fatalf("QueueLen after Forget and MarkRevoked = %d", n)
		}
		run(t, r)
		advance(2 * time.Hour)
		if n := p.callCount(); n != 0 {
			t.Errorf("%d refreshes of forgotten credentials", n)
		}
		if h := r.Health("tenant-a", integration, nil); h != (oauth.Health{}) {
			t.Errorf("Health of a forgotten, deleted credential = %+v, want none", h)
		}
		if h := r.Health("tenant-b", integration, nil); h.State != oauth.HealthRevoked {
			t.Errorf("Health of a revoked credential = %+v, want revoked", h)
		}
		// Linked again: no longer revoked.
		access, refresh := p.grant()
		b = vault.Credential{AccessToken: access, RefreshToken: refresh, ExpiresAt: time.Now().Add(time.Hour)}
		r.Schedule("tenant-b", integration, b)
		if h := r.Health("tenant-b", integration, nil); h.State != "" {
			t.Errorf("Health after a new link = %+v, want no longer revoked", h)
		}
		if h := r.Health("tenant-b", integration, &b); h.State != oauth.HealthActive {
			t.Errorf("Health after a new link = %+v, want active", h)
		}
	})
}

func TestScheduleNewLinkClearsFailures(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s, p := openStore(t), newProvider()
		p.fail = func(n int, _ string) error {
			if n == 1 {
				return errors.New("upstream exploded")
			}
			return nil
		}
		r := newRefresher(s, p, oauth.RefresherOptions{MinBackoff: time.Hour, MaxBackoff: time.Hour})
		old := link(t, s, p, "tenant-a", time.Now().Add(time.Minute))
		if _, err := r.Refresh(context.Background(), "tenant-a", integration, old.AccessToken); err == nil {
			t.Fatal("Refresh succeeded")
		}
		if h := r.Health("tenant-a", integration, &old); h.State != oauth.HealthRefreshFailed {
			t.Fatalf("Health = %+v, want refresh_failed", h)
		}
		advance(time.Second)
		// The tenant links again: a new credential, no backoff inherited.
		access, refresh := p.grant()
		if _, err := s.Put(context.Background(), "tenant-a", integration,
			vault.Credential{AccessToken: access, RefreshToken: refresh, ExpiresAt: time.Now().Add(2 * time.Minute)}, vault.AnyVersion); err != nil {
			t.Fatal(err)
		}
		linked := get(t, s, "tenant-a")
		r.Schedule("tenant-a", integration, linked)
		if h := r.Health("tenant-a", integration, &linked); h.State != oauth.HealthExpiring || h.Failures != 0 {
			t.Errorf("Health of the new link = %+v, want expiring without failures", h)
		}
		run(t, r)
		advance(time.Second)
		if n := p.callCount(); n != 2 {
			t.Errorf("%d provider calls, want the new link refreshed at once (within Margin)", n)
		}
		if got := get(t, s, "tenant-a"); got.AccessToken == linked.AccessToken {
			t.Error("the new link was not refreshed")
		}
	})
}
