package main

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"sync/atomic"
	"time"

	"github.com/connectors-gateway/connectors/cluster"
	"github.com/connectors-gateway/connectors/oauth"
	"github.com/connectors-gateway/connectors/tenants"
	"github.com/connectors-gateway/connectors/tools"
	"github.com/connectors-gateway/connectors/vault"
)

// readCluster reads the cluster's variables (see ClusterConfig).
func readCluster(c *Config, getenv func(string) string) error {
	cc := ClusterConfig{
		Bind:      getenv("CONNECTORS_CLUSTER_BIND"),
		Advertise: getenv("CONNECTORS_CLUSTER_ADVERTISE"),
		Peers:     list(getenv("CONNECTORS_CLUSTER_PEERS")),
	}
	key := getenv("CONNECTORS_CLUSTER_KEY")
	if cc.Bind == "" {
		if cc.Advertise != "" || len(cc.Peers) > 0 || key != "" {
			return errors.New("CONNECTORS_CLUSTER_ADVERTISE, _PEERS and _KEY need CONNECTORS_CLUSTER_BIND")
		}
		return nil
	}
	for name, v := range map[string]string{"CONNECTORS_CLUSTER_BIND": cc.Bind, "CONNECTORS_CLUSTER_ADVERTISE": cc.Advertise} {
		if _, _, err := net.SplitHostPort(v); v != "" && err != nil {
			return fmt.Errorf("%s: %q is not host:port", name, v)
		}
	}
	for _, p := range cc.Peers {
		if _, _, err := net.SplitHostPort(p); err != nil {
			return fmt.Errorf("CONNECTORS_CLUSTER_PEERS: %q is not host:port", p)
		}
	}
	raw, err := base64.StdEncoding.DecodeString(key)
	if err != nil || (len(raw) != 16 && len(raw) != 24 && len(raw) != 32) {
		return errors.New("CONNECTORS_CLUSTER_KEY is required with CONNECTORS_CLUSTER_BIND: 16, 24 or 32 random bytes in base64 (openssl rand -base64 32), the same on every replica")
	}
	cc.Key = raw
	if c.VaultAddr == "" {
		return errors.New("CONNECTORS_CLUSTER_BIND needs VAULT_ADDR: replicas share one Vault (an embedded store belongs to one process)")
	}
	c.Cluster = cc
	return nil
}

// publisher tells the other replicas of a change; *cluster.Node is one.
type publisher interface {
	Publish(cluster.Change) error
}

// peers is the other replicas as credentialChanges tells them: nowhere
// when no cluster is configured.
type peers struct {
	node atomic.Pointer[cluster.Node]
	log  *slog.Logger
}

// tell publishes c to the other replicas, if there are any. A failure is
// logged: the change is made here, and the others see it when their
// caches expire.
func (p *peers) tell(c cluster.Change) {
	n := p.node.Load()
	if n == nil {
		return
	}
	if err := n.Publish(c); err != nil {
		p.log.Warn("cluster_publish_failed", "kind", c.Kind, "tenantId", c.Tenant, "integration", c.Integration, "error", err)
	}
}

// SessionEnded tells the other replicas that the MCP session id was
// ended here, so that they end their copy of it: the MCP handler's
// SessionEnded.
func (p *peers) SessionEnded(id string) {
	p.tell(cluster.Change{Kind: cluster.KindSessionEnded, Session: id})
}

// invalidator drops a store's cached credentials of (tenant, integration),
// or of the whole tenant with integration empty; the Vault store is one.
type invalidator interface {
	Invalidate(tenant, integration string)
}

// replicaChanges does on this replica what another's change did there,
// minus what that replica did at the provider and in the audit trail:
// the store's cached credential is dropped, the refresh schedule follows
// the credential as the store now holds it (read again, never refreshed),
// the settings are read again, and the tenant's sessions here hear that
// their tools changed. A change names what to read again; nothing in it is
// believed: a forged one costs reads, it grants nothing.
type replicaChanges struct {
	store     vault.Store
	cache     invalidator // nil: the store keeps no cache to drop
	reg       *tools.Registry
	refresher *oauth.Refresher // nil without OAuth providers
	linkable  []string         // the integrations the refresher serves
	sessions  *sessionRelay
	keys      *tenants.APIKeys // the API keys this replica verifies
	log       *slog.Logger
	rereads   chan struct{} // bounds the store reads running at once

	endSession atomic.Pointer[func(id string)] // see SetEndSession

	ignored atomic.Int64 // changes naming no valid tenant or integration
}

// SetEndSession makes end what a session_ended change heard does: end
// the MCP session id on this replica, if it holds it (the MCP handler's
// EndSession). Until it is set, such changes are dropped. The session's
// own checks still apply: ending a session grants nothing.
func (r *replicaChanges) SetEndSession(end func(id string)) {
	r.endSession.Store(&end)
}

// rereadTimeout bounds one read of the store for a change heard.
const rereadTimeout = 5 * time.Second

// apply is the cluster node's OnChange.
func (r *replicaChanges) apply(c cluster.Change) {
	switch c.Kind {
	case cluster.KindSessionEnded:
		if end := r.endSession.Load(); end != nil {
			(*end)(c.Session)
		}
		return
	case cluster.KindAPIKeyRevoked:
		r.keys.Forget(c.Key)
		return
	}
	if err := tenants.ValidateID(c.Tenant); err != nil {
		r.ignore(c, err)
		return
	}
	if c.Integration != "" {
		if _, ok := r.reg.Get(c.Integration); !ok {
			r.ignore(c, errors.New("no such integration"))
			return
		}
	}
	r.log.Debug("cluster_change_applied", "kind", c.Kind, "tenantId", c.Tenant, "integration", c.Integration)
	switch c.Kind {
	case cluster.KindCredential, cluster.KindRefreshed:
		r.invalidate(c.Tenant, c.Integration)
		r.reschedule(c.Tenant, []string{c.Integration}, c.Kind == cluster.KindCredential)
		if c.Kind == cluster.KindCredential {
			r.sessions.NotifyToolsChanged(c.Tenant)
		}
	case cluster.KindSettings:
		r.sessions.InvalidateSettings(c.Tenant)
	case cluster.KindKeyRotated:
		r.invalidate(c.Tenant, "")
	case cluster.KindOffboarded:
		r.keys.ForgetTenant(c.Tenant)
		r.invalidate(c.Tenant, "")
		r.reschedule(c.Tenant, r.linkable, false)
		r.sessions.InvalidateSettings(c.Tenant)
	}
}

// ignore counts and logs a change this replica will not act on.
func (r *replicaChanges) ignore(c cluster.Change, err error) {
	r.ignored.Add(1)
	r.log.Warn("cluster_change_ignored", "kind", c.Kind, "error", err)
}

func (r *replicaChanges) invalidate(tenant, integration string) {
	if r.cache != nil {
		r.cache.Invalidate(tenant, integration)
	}
}

// reschedule reads the tenant's credentials of integrations (those the
// refresher serves) again, in the background, and schedules each as it
// now is (as found: maybe just refreshed by the replica that told), or
// forgets it when it is gone (marked revoked, as a local
// delete marks it, when revoked). A store that cannot be read leaves the
// schedule as it was: the scheduled refresh reads the store anyway.
func (r *replicaChanges) reschedule(tenant string, integrations []string, revoked bool) {
	if r.refresher == nil {
		return
	}
	integrations = slices.DeleteFunc(slices.Clone(integrations), func(i string) bool { return !slices.Contains(r.linkable, i) })
	if len(integrations) == 0 {
		return
	}
	go func() {
		r.rereads <- struct{}{}
		defer func() { <-r.rereads }()
		for _, integration := range integrations {
			ctx, cancel := context.WithTimeout(context.Background(), rereadTimeout)
			cred, _, err := r.store.Get(ctx, tenant, integration)
			cancel()
			switch {
			case err == nil:
				r.refresher.ScheduleFound(tenant, integration, cred)
			case vault.IsNotFound(err) && revoked:
				r.refresher.MarkRevoked(tenant, integration)
			case vault.IsNotFound(err):
				r.refresher.Forget(tenant, integration)
			default:
				r.log.Warn("cluster_reread_failed", "tenantId", tenant, "integration", integration, "error", err)
			}
		}
	}()
}

// joinCluster joins the other replicas when a cluster is configured: from
// then on the changes made through this one are told to them, and theirs
// applied here. It returns nil when none is configured.
func (m *Main) joinCluster(cfg Config, st vault.Backend, reg *tools.Registry, keys *tenants.APIKeys, relay *sessionRelay, changes *credentialChanges, log *slog.Logger) (*replicaChanges, error) {
	if cfg.Cluster.Bind == "" {
		return nil, nil
	}
	r := &replicaChanges{
		store: st, reg: reg, refresher: changes.refresher, sessions: relay, keys: keys,
		log: log, rereads: make(chan struct{}, 4),
	}
	r.cache, _ = st.(invalidator)
	if changes.flow != nil {
		r.linkable = changes.flow.Integrations()
	}
	node, err := cluster.New(cluster.Options{
		Bind: cfg.Cluster.Bind, Advertise: cfg.Cluster.Advertise, Peers: cfg.Cluster.Peers,
		Secret: cfg.Cluster.Key, Logger: log, OnChange: r.apply,
	})
	if err != nil {
		return nil, err
	}
	m.onClose(node.Close)
	m.metrics.Cluster(node.Members,
		func() int { return int(node.Received()) }, func() int { return int(node.Dropped()) },
		func() int { return int(r.ignored.Load()) })
	changes.peers.node.Store(node)
	return r, nil
}

// announce tells the running replicas of a change an operator command
// made, when a cluster is configured: the command joins it from a port of
// its own (the serving replica beside it holds the configured one),
// publishes, and leaves once the change went out. Without an answering
// replica it says so: the gateways then see the change when their caches
// expire.
func (m *Main) announce(cfg Config, c cluster.Change) {
	if cfg.Cluster.Bind == "" {
		return
	}
	host, _, _ := net.SplitHostPort(cfg.Cluster.Bind)
	n, err := cluster.New(cluster.Options{
		Bind: net.JoinHostPort(host, "0"), Peers: cfg.Cluster.Peers, Secret: cfg.Cluster.Key, Logger: m.quietLogger(),
	})
	if err != nil {
		fmt.Fprintf(m.Stderr, "warning: the cluster was not told: %v\n", err)
		return
	}
	defer n.Close()
	if n.Members() < 2 {
		fmt.Fprintln(m.Stderr, "warning: no gateway of the cluster answered; running gateways see the change when their caches expire")
		return
	}
	if err := n.Publish(c); err != nil {
		fmt.Fprintf(m.Stderr, "warning: the cluster was not told: %v\n", err)
	}
}
