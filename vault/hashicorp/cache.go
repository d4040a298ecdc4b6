package hashicorp

import (
	"time"

	"github.com/connectors-gateway/connectors/vault"
)

// recordRef names one credential record.
type recordRef struct{ tenant, integration string }

// cachedCredential is a decrypted credential held in memory by
// [Store], with the record version it was read or written at.
type cachedCredential struct {
	cred    vault.Credential
	version int64
	checked time.Time // when Vault last confirmed version was current
}

// cached returns the cached credential for ref. With fresh, only one Vault
// confirmed less than CacheTTL ago; without, any (the caller compares its
// version with Vault's).
func (h *Store) cached(ref recordRef, fresh bool) (vault.Credential, int64, bool) {
	if h.cacheTTL < 0 {
		return vault.Credential{}, 0, false
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	c, ok := h.cache[ref]
	if !ok || (fresh && h.now().Sub(c.checked) >= h.cacheTTL) {
		return vault.Credential{}, 0, false
	}
	return c.cred.Clone(), c.version, true
}

// recache records that Vault confirmed the cached version of ref is current.
func (h *Store) recache(ref recordRef, version int64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if c, ok := h.cache[ref]; ok && c.version == version {
		c.checked = h.now()
		h.cache[ref] = c
	}
}

// store caches cred at version, unless the cache already holds a newer
// version (a concurrent writer finished first).
func (h *Store) store(ref recordRef, cred vault.Credential, version int64) {
	if h.cacheTTL < 0 {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if c, ok := h.cache[ref]; ok && c.version > version {
		return
	}
	h.cache[ref] = cachedCredential{cred: cred.Clone(), version: version, checked: h.now()}
}

// uncache drops ref, after a delete or a lost check-and-set.
func (h *Store) uncache(ref recordRef) {
	h.mu.Lock()
	defer h.mu.Unlock()
	delete(h.cache, ref)
}
