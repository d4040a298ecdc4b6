package tenants

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// Errors of BrowserSessions.Open and OpenData.
var (
	// ErrSessionInvalid is a value that was not sealed with this key and
	// purpose, or was altered since.
	ErrSessionInvalid = errors.New("browser session not valid")
	// ErrSessionExpired is a genuine value past its expiry.
	ErrSessionExpired = errors.New("browser session expired")
)

// BrowserSessionKeySize is the size of a BrowserSessions key (AES-256).
const BrowserSessionKeySize = 32

// BrowserSession is what a sealed browser session cookie holds.
type BrowserSession struct {
	Identity Identity
	Expiry   time.Time
	// CSRF is the session's anti-CSRF token, to be echoed by the page on
	// every state-changing request (X-CSRF-Token or csrf_token).
	CSRF string
}

// BrowserSessions seals and opens browser cookie values with AES-256-GCM:
// their content is neither readable nor alterable by the browser. Each
// value is bound to a purpose (as GCM additional data), so that, say, a
// sign-in state cookie cannot stand in for a session cookie. It is safe
// for concurrent use.
type BrowserSessions struct {
	aead cipher.AEAD
	now  func() time.Time
}

// NewBrowserSessions returns a sealer with key, which must be
// BrowserSessionKeySize random bytes, kept secret and shared by every
// gateway replica. now is the clock; nil means time.Now.
func NewBrowserSessions(key []byte, now func() time.Time) (*BrowserSessions, error) {
	if len(key) != BrowserSessionKeySize {
		return nil, fmt.Errorf("browser session key: need %d bytes, got %d", BrowserSessionKeySize, len(key))
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	if now == nil {
		now = time.Now
	}
	return &BrowserSessions{aead: aead, now: now}, nil
}

const purposeSession = "cgw-browser-session/v1"

type sealedSession struct {
	Tenant  string `json:"t"`
	Subject string `json:"s"`
	Admin   bool   `json:"a,omitempty"`
	CSRF    string `json:"c"`
}

type envelope struct {
	Expiry int64           `json:"e"` // Unix seconds
	Data   json.RawMessage `json:"d"`
}

// Seal returns a cookie value holding id for ttl, with a fresh CSRF token.
func (s *BrowserSessions) Seal(id Identity, ttl time.Duration) (string, error) {
	if err := ValidateID(id.Tenant); err != nil {
		return "", fmt.Errorf("browser session: %w", err)
	}
	if id.Subject == "" {
		return "", errors.New("browser session: no subject")
	}
	data, err := json.Marshal(sealedSession{Tenant: id.Tenant, Subject: id.Subject, Admin: id.Admin, CSRF: RandomToken()})
	if err != nil {
		return "", err
	}
	return s.SealData(purposeSession, data, ttl)
}

// Open returns the session a value of Seal holds. A value altered, sealed
// with another key or for another purpose is ErrSessionInvalid; one past
// its expiry ErrSessionExpired.
func (s *BrowserSessions) Open(value string) (BrowserSession, error) {
	data, exp, err := s.openData(purposeSession, value)
	if err != nil {
		return BrowserSession{}, err
	}
	var ss sealedSession
	if err := json.Unmarshal(data, &ss); err != nil || ss.Subject == "" || ss.CSRF == "" || ValidateID(ss.Tenant) != nil {
		return BrowserSession{}, ErrSessionInvalid
	}
	return BrowserSession{
		Identity: Identity{Tenant: ss.Tenant, Subject: ss.Subject, Admin: ss.Admin},
		Expiry:   exp,
		CSRF:     ss.CSRF,
	}, nil
}

// SealData seals data for purpose, valid for ttl.
func (s *BrowserSessions) SealData(purpose string, data []byte, ttl time.Duration) (string, error) {
	if ttl <= 0 {
		return "", errors.New("browser session: ttl must be positive")
	}
	if !json.Valid(data) {
		// Keep the envelope JSON: wrap arbitrary bytes as a string.
		var err error
		if data, err = json.Marshal(data); err != nil {
			return "", err
		}
	}
	plain, err := json.Marshal(envelope{Expiry: s.now().Add(ttl).Unix(), Data: data})
	if err != nil {
		return "", err
	}
	nonce := make([]byte, s.aead.NonceSize(), s.aead.NonceSize()+len(plain)+s.aead.Overhead())
	if _, err := rand.Read(nonce); err != nil {
		return "", err
	}
	sealed := s.aead.Seal(nonce, nonce, plain, []byte(purpose))
	return base64.RawURLEncoding.EncodeToString(sealed), nil
}

// OpenData returns the data a value of SealData for purpose holds. Data
// that was not JSON comes back as the JSON string SealData made of it.
func (s *BrowserSessions) OpenData(purpose, value string) ([]byte, error) {
	data, _, err := s.openData(purpose, value)
	return data, err
}

func (s *BrowserSessions) openData(purpose, value string) ([]byte, time.Time, error) {
	raw, err := base64.RawURLEncoding.DecodeString(value)
	if err != nil || len(raw) < s.aead.NonceSize()+s.aead.Overhead() {
		return nil, time.Time{}, ErrSessionInvalid
	}
	n := s.aead.NonceSize()
	plain, err := s.aead.Open(nil, raw[:n], raw[n:], []byte(purpose))
	if err != nil {
		return nil, time.Time{}, ErrSessionInvalid
	}
	var env envelope
	if err := json.Unmarshal(plain, &env); err != nil {
		return nil, time.Time{}, ErrSessionInvalid
	}
	exp := time.Unix(env.Expiry, 0)
	if !s.now().Before(exp) {
		return nil, time.Time{}, ErrSessionExpired
	}
	return env.Data, exp, nil
}

// RandomToken returns 32 random bytes, base64url-encoded: a CSRF token,
// an OAuth state or a nonce.
func RandomToken() string {
	var b [32]byte
	_, _ = rand.Read(b[:]) // never fails (crypto/rand)
	return base64.RawURLEncoding.EncodeToString(b[:])
}
