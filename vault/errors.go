package vault

import (
	"errors"
	"fmt"
	"io/fs"
	"strings"
)

// CredentialNotFoundError reports that a tenant has no credential for an
// integration. Its message is the seed document's.
type CredentialNotFoundError struct {
	Tenant, Integration string
}

func (e *CredentialNotFoundError) Error() string {
	return fmt.Sprintf("Credentials not found for %s/%s", e.Tenant, e.Integration)
}

// ConflictError reports a lost check-and-set: the record was not at the
// version the writer expected.
type ConflictError struct {
	Tenant, Integration string
	Expected, Actual    int64
}

func (e *ConflictError) Error() string {
	return fmt.Sprintf("credential %s/%s changed concurrently: expected version %d, found %d",
		e.Tenant, e.Integration, e.Expected, e.Actual)
}

// VaultError reports that the backend could not be reached or failed.
type VaultError struct{ Err error }

func (e *VaultError) Error() string {
	if e.Err == nil {
		return "Failed to connect to Vault"
	}
	return "Failed to connect to Vault: " + e.Err.Error()
}
func (e *VaultError) Unwrap() error { return e.Err }

// VaultEncryptionError reports that a secret could not be encrypted or
// decrypted (wrong key, tampered ciphertext, ciphertext from another record).
type VaultEncryptionError struct{ Err error }

func (e *VaultEncryptionError) Error() string {
	if e.Err == nil {
		return "Failed to decrypt data"
	}
	return "Failed to decrypt data: " + e.Err.Error()
}
func (e *VaultEncryptionError) Unwrap() error { return e.Err }

// IsNotFound reports whether err is (or wraps) a *CredentialNotFoundError.
func IsNotFound(err error) bool {
	var nf *CredentialNotFoundError
	return errors.As(err, &nf)
}

// ErrInvalidIntegration is returned for an integration name outside the
// grammar (see [ValidateIntegration]), before any storage is touched.
var ErrInvalidIntegration = errors.New("invalid integration name: must match ^[a-z][a-z0-9-]{0,31}$")

// ErrAPIKeyNotFound is returned for an API key ID the store does not hold.
// It wraps [fs.ErrNotExist], so a package that must not import vault can
// recognise it with errors.Is(err, fs.ErrNotExist).
var ErrAPIKeyNotFound error = &kindError{msg: "API key not found", kind: fs.ErrNotExist}

// ErrAPIKeyExists is returned when storing an API key whose ID is taken. It
// wraps [fs.ErrExist].
var ErrAPIKeyExists error = &kindError{msg: "API key ID already exists", kind: fs.ErrExist}

// ErrInvalidAPIKeyID is returned for an API key ID that is empty, longer than
// 64 bytes, or not made of [A-Za-z0-9_-].
var ErrInvalidAPIKeyID = errors.New("invalid API key ID")

// kindError is a sentinel with its own message that also matches a
// general-purpose sentinel such as fs.ErrNotExist.
type kindError struct {
	msg  string
	kind error
}

func (e *kindError) Error() string { return e.msg }
func (e *kindError) Unwrap() error { return e.kind }

// ErrClaimed is returned by Claim for a key that another caller holds and
// whose claim has not expired: a replayed OAuth state, or a refresh that
// another replica is already doing.
var ErrClaimed = errors.New("already claimed")

// ErrSettingsChanged is a lost check-and-set on a tenant's settings.
var ErrSettingsChanged = errors.New("tenant settings changed concurrently: retry")

// OffboardError reports that off-boarding a tenant stopped because
// something of the tenant would have been left behind. The tenant's key is
// then kept, so whatever remains can still be read and deleted by an
// operator before off-boarding again.
type OffboardError struct {
	Tenant    string
	Remaining []string // record paths still present, relative to the tenant
	Err       error    // why they could not be deleted, if known
}

func (e *OffboardError) Error() string {
	msg := fmt.Sprintf("vault: off-boarding tenant %s: %d record(s) left behind (%s); the tenant's key was not deleted",
		e.Tenant, len(e.Remaining), strings.Join(e.Remaining, ", "))
	if e.Err != nil {
		msg += ": " + e.Err.Error()
	}
	return msg
}

func (e *OffboardError) Unwrap() error { return e.Err }
