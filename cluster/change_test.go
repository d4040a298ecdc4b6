package cluster

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestValidate(t *testing.T) {
	for _, tc := range []struct {
		c    Change
		want error
	}{
		{Change{Kind: KindCredential, Tenant: "acme", Integration: "notion"}, nil},
		{Change{Kind: KindRefreshed, Tenant: "acme", Integration: "notion"}, nil},
		{Change{Kind: KindSettings, Tenant: "acme"}, nil},
		{Change{Kind: KindSettings, Tenant: "acme", Integration: "notion"}, nil},
		{Change{Kind: KindKeyRotated, Tenant: "acme"}, nil},
		{Change{Kind: KindOffboarded, Tenant: "acme"}, nil},
		{Change{Kind: KindSessionEnded, Session: "abc"}, nil},
		{Change{Kind: KindSessionEnded, Tenant: "acme", Session: "abc"}, nil},
		{Change{Kind: "grant", Tenant: "acme"}, ErrUnknownKind},
		{Change{Tenant: "acme"}, ErrUnknownKind},
		{Change{Kind: KindCredential, Tenant: "acme"}, ErrMalformed},
		{Change{Kind: KindCredential, Integration: "notion"}, ErrMalformed},
		{Change{Kind: KindOffboarded, Tenant: "acme", Integration: "notion"}, ErrMalformed},
		{Change{Kind: KindSessionEnded, Tenant: "acme"}, ErrMalformed},
		{Change{Kind: KindSettings, Tenant: "acme", Session: "s"}, ErrMalformed},
		{Change{Kind: KindSettings, Tenant: "ac me"}, ErrMalformed},
		{Change{Kind: KindSettings, Tenant: "acmé"}, ErrMalformed},
		{Change{Kind: KindSettings, Tenant: strings.Repeat("a", maxName+1)}, ErrMalformed},
		{Change{Kind: KindSessionEnded, Session: strings.Repeat("s", maxSession+1)}, ErrMalformed},
		{Change{Kind: KindAPIKeyRevoked, Key: "0123abcd"}, nil},
		{Change{Kind: KindAPIKeyRevoked, Tenant: "acme", Key: "0123abcd"}, nil},
		{Change{Kind: KindAPIKeyRevoked}, ErrMalformed},
		{Change{Kind: KindAPIKeyRevoked, Key: "k", Integration: "notion"}, ErrMalformed},
		{Change{Kind: KindSettings, Tenant: "acme", Key: "k"}, ErrMalformed},
		{Change{Kind: KindAPIKeyRevoked, Key: strings.Repeat("k", maxName+1)}, ErrMalformed},
	} {
		if err := tc.c.Validate(); !errors.Is(err, tc.want) {
			t.Errorf("%+v: Validate() = %v, want %v", tc.c, err, tc.want)
		}
	}
}

func TestEncodeDecode(t *testing.T) {
	c := Change{Kind: KindCredential, Tenant: "acme", Integration: "notion"}
	id := newID()
	msg, err := encode(id, c)
	if err != nil {
		t.Fatal(err)
	}
	e, err := decode(msg)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(envelope{ID: id, Change: c}, e); diff != "" {
		t.Errorf("decode(encode(c)) (-want +got):\n%s", diff)
	}
	if len(msg) > 120 {
		t.Errorf("a credential change is %d bytes: %s", len(msg), msg)
	}
	if _, err := encode(id, Change{Kind: "nope"}); !errors.Is(err, ErrUnknownKind) {
		t.Errorf("encode of an unknown kind: %v", err)
	}
}

// FuzzDecode: no input panics, and whatever decodes validates.
func FuzzDecode(f *testing.F) {
	f.Add([]byte(`{"id":"0123456789abcdef01234567","kind":"credential","tenant":"acme","integration":"notion"}`))
	f.Add([]byte(`{"id":"0123456789abcdef01234567","kind":"session_ended","session":"x"}`))
	f.Fuzz(func(t *testing.T, msg []byte) {
		e, err := decode(msg)
		if err == nil && e.Validate() != nil {
			t.Errorf("decoded %+v does not validate", e)
		}
	})
}
