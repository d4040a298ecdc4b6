package main

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"time"

	"github.com/connectors-gateway/connectors/limits"
	"github.com/connectors-gateway/connectors/vault"
)

// Shared quotas: each replica counts its tenants' calls in memory (package
// limits) and every UsageFlushInterval adds what it counted towards their
// daily and monthly quotas to the tenant's record "limits-quota"
// (check-and-set, as the usage figures), reading back every replica's
// totals, which it then holds the quotas to (limits.Limiter.Settle): a
// batch per tenant and interval, never a write per call, and once more
// when it stops. A replica started afresh reads a tenant's totals at its
// first flush after the tenant's first call. The same tick tells the
// limiter how many replicas the gossip counts, among which each tenant's
// per-minute budget is shared.

const quotaRecordName = "limits-quota"

// quotaRecord is the record "limits-quota": the calls every replica
// counted towards a tenant's quotas, its own (key "") and of each of its
// integrations (by name).
type quotaRecord map[string]limits.QuotaCounts

// sharedQuotas settles the limiter's quota counts through the store.
type sharedQuotas struct {
	lim   *limits.Limiter
	store vault.TenantRecords
	peers *peers // how many replicas the gossip counts; nil: one
	log   *slog.Logger
	done  chan struct{}
}

// shareLimits starts settling the limiter's counts with the store, and
// following the cluster's members, every interval until ctx ends; what
// is left is settled when m closes.
func (m *Main) shareLimits(ctx context.Context, every time.Duration, st vault.TenantRecords, p *peers, log *slog.Logger) {
	q := &sharedQuotas{lim: m.limiter, store: st, peers: p, log: log, done: make(chan struct{})}
	ctx, stop := context.WithCancel(ctx)
	go q.run(ctx, every)
	m.onClose(func() error {
		stop()
		<-q.done
		ctx, cancel := context.WithTimeout(context.Background(), sharedTimeout)
		defer cancel()
		q.flush(ctx)
		return nil
	})
}

func (q *sharedQuotas) run(ctx context.Context, every time.Duration) {
	defer close(q.done)
	everyTick(ctx, every, func() {
		if n := q.peers.node.Load(); n != nil {
			q.lim.SetReplicas(n.Members())
		}
		q.flush(ctx)
	})
}

// flush settles every pending count, tenant by tenant.
func (q *sharedQuotas) flush(ctx context.Context) {
	pending := q.lim.Pending() // ordered by tenant
	for i := 0; i < len(pending); {
		j := i
		for j < len(pending) && pending[j].Tenant == pending[i].Tenant {
			j++
		}
		if err := q.flushTenant(ctx, pending[i:j]); err != nil {
			q.log.Warn("limits_flush_failed", "tenantId", pending[i].Tenant, "error", err)
		}
		i = j
	}
}

// flushTenant adds one tenant's pending counts to its record and settles
// them with the totals; counts it could not add stay pending.
func (q *sharedQuotas) flushTenant(parent context.Context, ps []limits.Pending) error {
	ctx, cancel := context.WithTimeout(parent, sharedTimeout)
	defer cancel()
	tenant := ps[0].Tenant
	var rec quotaRecord
	err := checkAndSet(ctx, q.store, tenant, quotaRecordName, func() ([]byte, int64, error) {
		var version int64
		var err error
		if rec, version, err = q.read(ctx, tenant); err != nil {
			return nil, 0, err
		}
		changed := false
		for _, p := range ps {
			if p.Counts.DayCalls != 0 || p.Counts.MonthCalls != 0 {
				rec[p.Integration] = rec[p.Integration].Add(p.Counts)
				changed = true
			}
		}
		if !changed {
			return nil, 0, nil // only the totals to read
		}
		out, err := json.Marshal(rec)
		return out, version, err
	})
	if err != nil {
		return err
	}
	for _, p := range ps {
		q.lim.Settle(p, rec[p.Integration])
	}
	return nil
}

// read returns the tenant's record; one that does not parse, or holds a
// negative count, is logged and read as none (the next write replaces it).
func (q *sharedQuotas) read(ctx context.Context, tenant string) (quotaRecord, int64, error) {
	raw, version, err := q.store.GetTenantRecord(ctx, tenant, quotaRecordName)
	rec := quotaRecord{}
	if err != nil || raw == nil {
		return rec, version, err
	}
	err = json.Unmarshal(raw, &rec)
	if err == nil && negative(rec) {
		err = errors.New("counts out of range")
	}
	if err != nil {
		q.log.Warn("shared_record_malformed", "tenantId", tenant, "record", quotaRecordName, "error", err)
		return quotaRecord{}, version, nil
	}
	return rec, version, nil
}

func negative(rec quotaRecord) bool {
	for _, c := range rec {
		if c.DayCalls < 0 || c.MonthCalls < 0 {
			return true
		}
	}
	return false
}
