package tenants

import (
	"bytes"
	"encoding/base64"
	"errors"
	"reflect"
	"testing"
	"time"
)

func TestBrowserSessionsRoundTrip(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	clock := func() time.Time { return now }
	key := bytes.Repeat([]byte{7}, BrowserSessionKeySize)
	s, err := NewBrowserSessions(key, clock)
	if err != nil {
		t.Fatal(err)
	}
	id := Identity{Tenant: "acme", Subject: "oidc:u1", Admin: true}
	v, err := s.Seal(id, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	got, err := s.Open(v)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got.Identity, id) || got.CSRF == "" || !got.Expiry.Equal(now.Add(time.Hour)) {
		t.Fatalf("Open = %+v", got)
	}
	v2, _ := s.Seal(id, time.Hour)
	if got2, _ := s.Open(v2); got2.CSRF == got.CSRF {
		t.Fatal("CSRF token reused across sessions")
	}

	// Tampered: every byte flipped in turn is refused.
	raw, _ := base64.RawURLEncoding.DecodeString(v)
	for i := range raw {
		bad := bytes.Clone(raw)
		bad[i] ^= 1
		if _, err := s.Open(base64.RawURLEncoding.EncodeToString(bad)); !errors.Is(err, ErrSessionInvalid) {
			t.Fatalf("byte %d flipped: err = %v", i, err)
		}
	}
	for _, bad := range []string{"", "x", "!!!", v[:len(v)-3]} {
		if _, err := s.Open(bad); !errors.Is(err, ErrSessionInvalid) {
			t.Fatalf("Open(%q) err = %v", bad, err)
		}
	}
	// Another key.
	other, _ := NewBrowserSessions(bytes.Repeat([]byte{8}, BrowserSessionKeySize), clock)
	if _, err := other.Open(v); !errors.Is(err, ErrSessionInvalid) {
		t.Fatalf("other key: err = %v", err)
	}
	// Another purpose.
	d, _ := s.SealData("login-state", []byte(`{"x":1}`), time.Hour)
	if _, err := s.Open(d); !errors.Is(err, ErrSessionInvalid) {
		t.Fatalf("state cookie as session: err = %v", err)
	}
	if got, err := s.OpenData("login-state", d); err != nil || string(got) != `{"x":1}` {
		t.Fatalf("OpenData = %s, %v", got, err)
	}
	// Expired.
	now = now.Add(time.Hour)
	if _, err := s.Open(v); !errors.Is(err, ErrSessionExpired) {
		t.Fatalf("expired: err = %v", err)
	}
}

func TestBrowserSessionsRefuses(t *testing.T) {
	if _, err := NewBrowserSessions(make([]byte, 16), nil); err == nil {
		t.Fatal("short key accepted")
	}
	s, _ := NewBrowserSessions(make([]byte, BrowserSessionKeySize), nil)
	if _, err := s.Seal(Identity{Tenant: "Not Valid!", Subject: "x"}, time.Hour); err == nil {
		t.Fatal("invalid tenant sealed")
	}
	if _, err := s.Seal(Identity{Tenant: "acme"}, time.Hour); err == nil {
		t.Fatal("no subject sealed")
	}
	if _, err := s.Seal(Identity{Tenant: "acme", Subject: "x"}, 0); err == nil {
		t.Fatal("zero ttl sealed")
	}
}
