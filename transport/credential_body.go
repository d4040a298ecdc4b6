package transport

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"regexp"
	"strings"
	"time"

	"github.com/connectors-gateway/connectors/vault"
)

// FieldError is a credential body that is not acceptable, naming the
// field at fault.
type FieldError struct {
	Field string // "" for the body as a whole
	Msg   string
}

func (e *FieldError) Error() string {
	if e.Field == "" {
		return e.Msg
	}
	return e.Field + ": " + e.Msg
}

// extraName is the grammar of a provider extra's name (bot_id,
// workspace_id, team_id, ...).
var extraName = regexp.MustCompile(`^[a-zA-Z][a-zA-Z0-9_]{0,63}$`)

// credentialFields are the body's own fields (the seed's names).
var credentialFields = map[string]bool{
	"accessToken": true, "refreshToken": true, "tokenType": true, "expiresIn": true, "scopes": true, "extra": true,
}

// DecodeCredential reads the body of POST
// /tenants/{tenantId}/integrations/{integration}/credentials (and of the
// CLI's "credential put"):
//
//	{"accessToken": "...", "refreshToken": "...", "tokenType": "bearer",
//	 "expiresIn": 3600, "scopes": ["..."], "extra": {"workspace_id": "..."}}
//
// accessToken is required; expiresIn is seconds, 0 meaning never. Provider
// extras (bot_id, workspace_id, ...) may also be given as top-level string
// fields. Errors are *FieldError naming the field; no error repeats a value.
func DecodeCredential(r io.Reader, now time.Time) (vault.Credential, error) {
	raw, err := io.ReadAll(r)
	if err != nil {
		return vault.Credential{}, err
	}
	var body credentialBody
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if err := dec.Decode(&body); err != nil || body == nil {
		return vault.Credential{}, &FieldError{Msg: "the body must be a JSON object"}
	}
	if dec.More() {
		return vault.Credential{}, &FieldError{Msg: "the body must hold one JSON object"}
	}
	var cred vault.Credential
	if err := body.tokens(&cred); err != nil {
		return vault.Credential{}, err
	}
	if err := body.expiry(&cred, now); err != nil {
		return vault.Credential{}, err
	}
	if err := body.scopes(&cred); err != nil {
		return vault.Credential{}, err
	}
	if err := body.extras(&cred); err != nil {
		return vault.Credential{}, err
	}
	return cred, nil
}

// credentialBody is the body of a credential, field by field.
type credentialBody map[string]json.RawMessage

// given returns the field name, unless it is absent or null.
func (b credentialBody) given(name string) (json.RawMessage, bool) {
	v, ok := b[name]
	return v, ok && string(v) != "null"
}

// tokens reads accessToken (required), refreshToken and tokenType
// ("bearer" when not given), each at most 16 KiB.
func (b credentialBody) tokens(cred *vault.Credential) error {
	for _, f := range []struct {
		name string
		out  *string
	}{{"accessToken", &cred.AccessToken}, {"refreshToken", &cred.RefreshToken}, {"tokenType", &cred.TokenType}} {
		if v, ok := b.given(f.name); ok && json.Unmarshal(v, f.out) != nil {
			return &FieldError{Field: f.name, Msg: "must be a string"}
		}
	}
	if cred.AccessToken == "" {
		return &FieldError{Field: "accessToken", Msg: "is required"}
	}
	if len(cred.AccessToken) > 16<<10 || len(cred.RefreshToken) > 16<<10 {
		return &FieldError{Field: "accessToken", Msg: "tokens are limited to 16 KiB"}
	}
	if cred.TokenType == "" {
		cred.TokenType = "bearer"
	}
	return nil
}

// expiry reads expiresIn, seconds from now (0: never).
func (b credentialBody) expiry(cred *vault.Credential, now time.Time) error {
	v, ok := b.given("expiresIn")
	if !ok {
		return nil
	}
	var n json.Number
	if err := json.Unmarshal(v, &n); err != nil {
		return &FieldError{Field: "expiresIn", Msg: "must be a whole number of seconds"}
	}
	secs, err := n.Int64()
	switch {
	case err != nil:
		return &FieldError{Field: "expiresIn", Msg: "must be a whole number of seconds"}
	case secs < 0:
		return &FieldError{Field: "expiresIn", Msg: "must be 0 (never expires) or positive"}
	case secs > 100*365*24*3600:
		return &FieldError{Field: "expiresIn", Msg: "is more than a hundred years"}
	case secs > 0:
		cred.ExpiresAt = now.UTC().Add(time.Duration(secs) * time.Second).Truncate(time.Second)
	}
	return nil
}

// scopes reads scopes: non-empty strings without spaces.
func (b credentialBody) scopes(cred *vault.Credential) error {
	v, ok := b.given("scopes")
	if !ok {
		return nil
	}
	if err := json.Unmarshal(v, &cred.Scopes); err != nil {
		return &FieldError{Field: "scopes", Msg: "must be an array of strings"}
	}
	for _, s := range cred.Scopes {
		if s == "" || strings.ContainsAny(s, " \t\r\n") {
			return &FieldError{Field: "scopes", Msg: "each scope must be non-empty, without spaces"}
		}
	}
	return nil
}

// extras reads the provider extras: the members of extra, and every
// top-level field that is not one of the body's own.
func (b credentialBody) extras(cred *vault.Credential) error {
	if v, ok := b.given("extra"); ok {
		var extra map[string]json.RawMessage
		if err := json.Unmarshal(v, &extra); err != nil {
			return &FieldError{Field: "extra", Msg: "must be an object of strings"}
		}
		for name, value := range extra {
			if err := addExtra(cred, "extra."+name, name, value); err != nil {
				return err
			}
		}
	}
	for name, value := range b {
		if credentialFields[name] {
			continue
		}
		if err := addExtra(cred, name, name, value); err != nil {
			var fe *FieldError
			if errors.As(err, &fe) && fe.Msg == "must be a string" {
				fe.Msg = "unknown field: provider extras must be strings"
			}
			return err
		}
	}
	return nil
}

// addExtra adds the provider extra name, given as field, to cred.
func addExtra(cred *vault.Credential, field, name string, v json.RawMessage) error {
	var s string
	if err := json.Unmarshal(v, &s); err != nil {
		return &FieldError{Field: field, Msg: "must be a string"}
	}
	if !extraName.MatchString(name) || vaultReserved[name] {
		return &FieldError{Field: field, Msg: "is not an accepted field name"}
	}
	if cred.Extra == nil {
		cred.Extra = map[string]string{}
	}
	cred.Extra[name] = s
	return nil
}

// vaultReserved are the stored record's own field names, which an extra
// may not take.
var vaultReserved = map[string]bool{
	"access_token": true, "refresh_token": true, "token_type": true, "expires_at": true,
	"scopes": true, "created_at": true, "updated_at": true, "status": true,
}
