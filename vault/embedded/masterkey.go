package embedded

import (
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"
)

// ErrInvalidMasterKey is returned for a master key that is not 32 bytes.
var ErrInvalidMasterKey = errors.New("invalid master key: must be 32 bytes (AES-256)")

// ErrMasterKeyMismatch is returned when a store is opened with a master key
// other than the one it was created with.
var ErrMasterKeyMismatch = errors.New("master key does not match the key this store was created with")

// ErrInsecureKeyFile is returned when the master key file can be read or
// written by its group or by others.
var ErrInsecureKeyFile = errors.New("master key file is accessible by group or others: run chmod 600 on it")

// ParseMasterKey decodes a 32-byte master key written as text, as in
// CONNECTORS_MASTER_KEY or a key file: 64 hex digits, or base64 in the
// standard or URL alphabet, padded or not. Surrounding space is ignored.
func ParseMasterKey(s string) ([]byte, error) {
	s = strings.TrimSpace(s)
	if len(s) == 2*keySize {
		if key, err := hex.DecodeString(s); err == nil {
			return key, nil
		}
	}
	for _, enc := range []*base64.Encoding{
		base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding,
	} {
		if key, err := enc.DecodeString(s); err == nil && len(key) == keySize {
			return key, nil
		}
	}
	// The message never echoes s: it may be a mistyped key.
	return nil, fmt.Errorf("%w: give 64 hex digits or base64 of 32 bytes", ErrInvalidMasterKey)
}

// readKeyFile reads the master key from path, refusing a file that its group
// or others can access. A missing file is an error wrapping fs.ErrNotExist.
func readKeyFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !info.Mode().IsRegular() {
		return nil, fmt.Errorf("master key file %s is not a regular file", path)
	}
	if perm := info.Mode().Perm(); perm&0o077 != 0 {
		return nil, fmt.Errorf("master key file %s has mode %04o: %w", path, perm, ErrInsecureKeyFile)
	}
	text, err := io.ReadAll(io.LimitReader(f, 1024))
	if err != nil {
		return nil, err
	}
	key, err := ParseMasterKey(string(text))
	if err != nil {
		return nil, fmt.Errorf("master key file %s: %w", path, err)
	}
	return key, nil
}

// createKeyFile writes a new random master key to path with mode 0600. It
// fails with an error wrapping fs.ErrExist if path exists.
func createKeyFile(path string) ([]byte, error) {
	key := newDataKey()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, err
	}
	_, err = f.WriteString(base64.StdEncoding.EncodeToString(key) + "\n")
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		_ = os.Remove(path)
		return nil, fmt.Errorf("writing master key file %s: %w", path, err)
	}
	return key, nil
}

// loadOrCreateKeyFile returns the key in path, creating the file if it is
// missing and create is true.
func loadOrCreateKeyFile(path string, create bool) (key []byte, created bool, err error) {
	key, err = readKeyFile(path)
	if err == nil || !errors.Is(err, fs.ErrNotExist) || !create {
		return key, false, err
	}
	key, err = createKeyFile(path)
	if errors.Is(err, fs.ErrExist) { // another process created it first
		key, err = readKeyFile(path)
		return key, false, err
	}
	return key, err == nil, err
}
