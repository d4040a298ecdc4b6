package embedded

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"fmt"
	"strconv"

	"github.com/connectors-gateway/connectors/vault"
)

// Envelope encryption in the embedded store: the master key wraps one random
// AES-256 data key per tenant and key version; a data key encrypts that
// tenant's secrets. Every ciphertext is AES-256-GCM with a random 96-bit
// nonce prepended, and associated data that names exactly where it belongs,
// so a ciphertext copied to another tenant, record or field fails to open.

const keySize = 32 // AES-256

// Fields of a credential whose values are encrypted, named as in the
// associated data.
const (
	fieldAccessToken  = "access_token"
	fieldRefreshToken = "refresh_token"
)

// keyCheckPlaintext is sealed under the master key when a store is created,
// so opening it with another master key fails at once rather than on the
// first Get.
const keyCheckPlaintext = "connectors-gateway embedded vault key check v1"

// newAEAD returns AES-256-GCM under key, generating and prepending nonces.
func newAEAD(key []byte) (cipher.AEAD, error) {
	if len(key) != keySize {
		return nil, ErrInvalidMasterKey
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCMWithRandomNonce(block)
}

// newDataKey returns a fresh random data key.
func newDataKey() []byte {
	key := make([]byte, keySize)
	_, _ = rand.Read(key) // crypto/rand.Read never fails
	return key
}

// secretAD binds a secret to its tenant, integration and field, e.g.
// "tenant-1/notion/access_token".
func secretAD(tenant, integration, field string) []byte {
	return []byte(tenant + "/" + integration + "/" + field)
}

// dataKeyAD binds a wrapped data key to its tenant and version.
func dataKeyAD(tenant string, version uint64) []byte {
	return []byte("data-key:" + tenant + ":" + strconv.FormatUint(version, 10))
}

// keyCheckAD is the associated data of the master-key check value.
var keyCheckAD = []byte("key-check")

// sealSecret encrypts one field of one record.
func sealSecret(aead cipher.AEAD, tenant, integration, field, value string) []byte {
	return aead.Seal(nil, nil, []byte(value), secretAD(tenant, integration, field))
}

// openSecret decrypts one field of one record, failing with
// *vault.VaultEncryptionError if the ciphertext was made for anywhere else.
func openSecret(aead cipher.AEAD, tenant, integration, field string, sealed []byte) (string, error) {
	plain, err := aead.Open(nil, nil, sealed, secretAD(tenant, integration, field))
	if err != nil {
		return "", &vault.VaultEncryptionError{Err: fmt.Errorf("%s of %s/%s: %w", field, tenant, integration, err)}
	}
	return string(plain), nil
}
