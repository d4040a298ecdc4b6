package embedded

import (
	"bytes"
	"context"
	"fmt"
	"regexp"

	bolt "go.etcd.io/bbolt"

	"github.com/connectors-gateway/connectors/vault"
)

// apiKeyIDPattern bounds the IDs the embedded store accepts for API keys.
// The format of keys and records belongs to package tenants; the store only
// keeps opaque records by ID.
var apiKeyIDPattern = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

// PutAPIKey stores an API-key record under id, failing with vault.ErrAPIKeyExists
// if id is taken. The record is stored as given (it must hold no secret).
func (e *Store) PutAPIKey(ctx context.Context, id string, record []byte) error {
	if !vault.ValidAPIKeyID(id) {
		return fmt.Errorf("vault: putting API key %q: %w", id, vault.ErrInvalidAPIKeyID)
	}
	if len(record) == 0 {
		return fmt.Errorf("vault: putting API key %s: empty record", id)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	return e.update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketAPIKeys)
		if b.Get([]byte(id)) != nil {
			return fmt.Errorf("vault: putting API key %s: %w", id, vault.ErrAPIKeyExists)
		}
		if err := b.Put([]byte(id), record); err != nil {
			return fmt.Errorf("vault: putting API key %s: %w", id, err)
		}
		return nil
	})
}

// GetAPIKey returns the API-key record stored under id, or an error wrapping
// vault.ErrAPIKeyNotFound (and so fs.ErrNotExist).
func (e *Store) GetAPIKey(ctx context.Context, id string) ([]byte, error) {
	if !vault.ValidAPIKeyID(id) {
		return nil, fmt.Errorf("vault: getting API key: %w", vault.ErrAPIKeyNotFound) // no such key can exist
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var record []byte
	err := e.view(func(tx *bolt.Tx) error {
		record = bytes.Clone(tx.Bucket(bucketAPIKeys).Get([]byte(id)))
		if record == nil {
			return fmt.Errorf("vault: getting API key %s: %w", id, vault.ErrAPIKeyNotFound)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return record, nil
}

// DeleteAPIKey removes the API-key record stored under id, or fails with an
// error wrapping vault.ErrAPIKeyNotFound.
func (e *Store) DeleteAPIKey(ctx context.Context, id string) error {
	if !vault.ValidAPIKeyID(id) {
		return fmt.Errorf("vault: deleting API key: %w", vault.ErrAPIKeyNotFound)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	return e.update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketAPIKeys)
		if b.Get([]byte(id)) == nil {
			return fmt.Errorf("vault: deleting API key %s: %w", id, vault.ErrAPIKeyNotFound)
		}
		if err := b.Delete([]byte(id)); err != nil {
			return fmt.Errorf("vault: deleting API key %s: %w", id, err)
		}
		return nil
	})
}

// ListAPIKeys returns the IDs of all stored API keys, sorted.
func (e *Store) ListAPIKeys(ctx context.Context) ([]string, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	ids := []string{}
	err := e.view(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketAPIKeys).ForEach(func(k, _ []byte) error {
			ids = append(ids, string(k))
			return nil
		})
	})
	if err != nil {
		return nil, err
	}
	return ids, nil
}
