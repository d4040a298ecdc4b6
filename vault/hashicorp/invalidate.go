package hashicorp

// Invalidate drops the cached credential of (tenant, integration), or with
// integration empty every cached credential of the tenant, so that the
// next Get reads Vault: another replica changed the record (its change
// reaches this one through the cluster, well within CacheTTL). It reads
// nothing and trusts nothing: the worst a forged call can do is cost a
// read.
func (h *Store) Invalidate(tenant, integration string) {
	if integration == "" {
		h.uncacheTenant(tenant)
		return
	}
	h.uncache(recordRef{tenant, integration})
}
