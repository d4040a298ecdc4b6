package vault

import (
	"errors"
	"fmt"
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
