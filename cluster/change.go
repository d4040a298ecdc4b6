package cluster

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
)

// Kind says what changed.
type Kind string

// The kinds of change replicas tell each other. A kind a replica does not
// know (a newer replica's) is dropped and counted, never guessed at.
const (
	// KindCredential: the tenant's credential for Integration was stored,
	// linked, replaced or deleted.
	KindCredential Kind = "credential"
	// KindRefreshed: the tenant's credential for Integration was refreshed
	// (a new token, the same link): caches only, the tools are the same.
	KindRefreshed Kind = "refreshed"
	// KindSettings: the tenant's settings changed (an integration turned
	// on or off, or its tools narrowed); Integration names it, or is empty.
	KindSettings Kind = "settings"
	// KindKeyRotated: the tenant's encryption key was rotated and its
	// records rewrapped.
	KindKeyRotated Kind = "key_rotated"
	// KindOffboarded: the tenant was off-boarded: every credential
	// deleted, its key destroyed.
	KindOffboarded Kind = "offboarded"
	// KindAPIKeyRevoked: the API key Key was revoked; Tenant is the key's,
	// if known.
	KindAPIKeyRevoked Kind = "api_key_revoked"
	// KindSessionEnded: the MCP session Session was ended (DELETE) on the
	// replica that published it; Tenant is the session's, if known.
	KindSessionEnded Kind = "session_ended"
)

// Change is one change a replica tells the others of. It names what to
// read again, never what to believe: a replica receiving one drops its
// caches of it and re-reads the store, or ends a session; it grants
// nothing.
type Change struct {
	Kind        Kind   `json:"kind"`
	Tenant      string `json:"tenant,omitempty"`
	Integration string `json:"integration,omitempty"`
	Session     string `json:"session,omitempty"`
	Key         string `json:"key,omitempty"` // an API key's ID, never its secret
}

// Field bounds: tenant IDs and integration names are short (their own
// grammars are checked where they are used); a session ID may be a sealed
// blob.
const (
	maxName    = 128
	maxSession = 4096 // server's maxSealedID: a sealed session ID of the largest claims is about 2.8 KB
	// maxMessage bounds an encoded message; a larger one is dropped unread.
	maxMessage = 8192
	// maxBroadcast is the largest message gossiped in a UDP packet
	// (memberlist's packets are 1,400 bytes); a larger one goes to every
	// member over TCP instead.
	maxBroadcast = 1000
)

// Errors of a change that does not validate.
var (
	ErrUnknownKind = errors.New("cluster: unknown change kind")
	ErrMalformed   = errors.New("cluster: malformed change")
)

// Validate reports whether c is well formed: a known kind with the fields
// it needs, each of printable ASCII within its bound.
func (c Change) Validate() error {
	switch c.Kind {
	case KindCredential, KindRefreshed:
		if c.Integration == "" {
			return fmt.Errorf("%w: %s needs an integration", ErrMalformed, c.Kind)
		}
	case KindSettings:
	case KindKeyRotated, KindOffboarded:
		if c.Integration != "" {
			return fmt.Errorf("%w: %s names no integration", ErrMalformed, c.Kind)
		}
	case KindSessionEnded:
		if c.Session == "" {
			return fmt.Errorf("%w: %s needs a session", ErrMalformed, c.Kind)
		}
	case KindAPIKeyRevoked:
		if c.Key == "" || c.Integration != "" {
			return fmt.Errorf("%w: %s needs a key and names no integration", ErrMalformed, c.Kind)
		}
	default:
		return fmt.Errorf("%w %q", ErrUnknownKind, truncate(string(c.Kind)))
	}
	if c.Kind != KindAPIKeyRevoked && c.Kind != KindSessionEnded && c.Tenant == "" {
		return fmt.Errorf("%w: %s needs a tenant", ErrMalformed, c.Kind)
	}
	if c.Kind != KindSessionEnded && c.Session != "" {
		return fmt.Errorf("%w: %s names no session", ErrMalformed, c.Kind)
	}
	if c.Kind != KindAPIKeyRevoked && c.Key != "" {
		return fmt.Errorf("%w: %s names no key", ErrMalformed, c.Kind)
	}
	for _, f := range []struct {
		name, v string
		max     int
	}{{"tenant", c.Tenant, maxName}, {"integration", c.Integration, maxName}, {"session", c.Session, maxSession}, {"key", c.Key, maxName}} {
		if !printable(f.v, f.max) {
			return fmt.Errorf("%w: %s is not printable ASCII of at most %d bytes", ErrMalformed, f.name, f.max)
		}
	}
	return nil
}

// envelope is a change on the wire: the change and an ID, by which a
// replica that hears it more than once (gossip repeats itself) acts once.
type envelope struct {
	ID string `json:"id"`
	Change
}

// newID returns a random message ID.
func newID() string {
	b := make([]byte, 12)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// encode returns the message carrying c.
func encode(id string, c Change) ([]byte, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return json.Marshal(envelope{ID: id, Change: c})
}

// decode reads a message, which is validated; a received message is
// hostile until it does.
func decode(msg []byte) (envelope, error) {
	if len(msg) > maxMessage {
		return envelope{}, fmt.Errorf("%w: %d bytes", ErrMalformed, len(msg))
	}
	var e envelope
	if err := json.Unmarshal(msg, &e); err != nil {
		return envelope{}, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	if len(e.ID) != 24 || !printable(e.ID, 24) {
		return envelope{}, fmt.Errorf("%w: bad message ID", ErrMalformed)
	}
	if err := e.Validate(); err != nil {
		return envelope{}, err
	}
	return e, nil
}

// printable reports whether s is at most max bytes of printable ASCII.
func printable(s string, max int) bool {
	if len(s) > max {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < 0x21 || s[i] > 0x7e {
			return false
		}
	}
	return true
}

// truncate shortens a hostile value for an error message.
func truncate(s string) string {
	if len(s) > 32 {
		return s[:32] + "…"
	}
	return s
}
