// Package cluster tells a gateway's replicas of each other's changes, so
// that a change made through one (a credential deleted, an integration
// turned off, a key rotated, a tenant off-boarded, a session ended) drops
// the others' caches and reaches their sessions within a second or two,
// not when a cache expires.
//
// # Overview
//
// It is a thin layer on HashiCorp memberlist, the gossip library of
// Consul, Nomad and Serf: memberlist keeps the membership (SWIM failure
// detection, push-pull anti-entropy), encrypts and authenticates every
// packet with the shared key (AES-GCM), and piggybacks the changes on its
// gossip through its TransmitLimitedQueue. This package adds only the
// change message, its validation, and delivering each change once.
//
// A change is a hint, never an authority: a replica receiving one re-reads
// the store or ends a session. A forged or replayed change can cost a
// replica a cache miss; it cannot grant anything.
//
// # Usage
//
//	n, err := cluster.New(cluster.Options{
//		Bind: "0.0.0.0:7946", Peers: []string{"gateway-headless:7946"},
//		Secret: key, OnChange: apply,
//	})
//	...
//	n.Publish(cluster.Change{Kind: cluster.KindCredential, Tenant: t, Integration: i})
package cluster

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/memberlist"
)

// DefaultRejoinInterval is how often a node joins its peers again when
// Options.RejoinInterval is zero.
const DefaultRejoinInterval = 10 * time.Second

// Options configures a Node. Each field says what empty means.
type Options struct {
	// Bind is the host:port memberlist listens on, UDP and TCP (required;
	// port 0: one chosen by the system, which Addr reports).
	Bind string
	// Advertise is the host:port other nodes reach this one at (empty:
	// Bind's, or with a wildcard host a private address of this machine).
	Advertise string
	// Peers are the nodes to join, as host:port; a host may be a DNS name,
	// resolved again on every attempt (a Kubernetes headless service names
	// every replica). Empty: this node waits to be joined.
	Peers []string
	// Secret is the key every node shares, 16, 24 or 32 bytes (AES-128,
	// -192 or -256): memberlist encrypts and authenticates every packet
	// with it. Required, peers or not: a node without it would take
	// membership and changes from anyone who can reach its port. There is
	// no insecure mode.
	Secret []byte
	// Name is this node's name among its peers (empty: the host name and a
	// random suffix, so that a restarted node is a new member).
	Name string
	// RejoinInterval is how often the node joins Peers again, so that a
	// node restarted, or started before its peers, finds them (zero:
	// DefaultRejoinInterval).
	RejoinInterval time.Duration
	// Logger receives the node's log (nil: discarded).
	Logger *slog.Logger
	// OnChange is told of each change another node published, once, in
	// the order heard, from one goroutine (nil: changes are only counted).
	OnChange func(Change)
}

// Node is this process's member of the cluster.
type Node struct {
	ml       *memberlist.Memberlist
	queue    *memberlist.TransmitLimitedQueue
	log      *slog.Logger
	peers    []string
	onChange func(Change)

	gossipNodes int // memberlist's GossipNodes: how many nodes one round reaches

	seen     seenSet
	inbox    chan Change
	dropped  atomic.Int64
	received atomic.Int64

	stop      chan struct{}
	wg        sync.WaitGroup
	closeOnce sync.Once
}

// changeRetransmitMult is how many times (times log10 of the cluster size,
// rounded up) each node sends a change on. memberlist counts one transmit
// per node sent to, not per round, so its default of 4 reaches only 4
// nodes from each: in six nodes a given node then misses a change about
// once in 300 (each informed node misses it with (2/5)^1·(4/5) ≈ 0.32,
// five of them ≈ 0.3 %). At 10 each informed node misses it with
// (2/5)^3·(4/5) ≈ 0.05, five of them ≈ 4·10⁻⁷. Changes are rare and small
// (administrative events), so the extra packets cost nothing that counts.
const changeRetransmitMult = 10

// inboxSize bounds the changes heard and not yet handed to OnChange;
// beyond it a change is dropped and counted (its caches then expire as
// they would without the cluster).
const inboxSize = 4096

// New starts a node, joins Peers (none answering is not an error: the
// node keeps trying every RejoinInterval) and returns it.
func New(opts Options) (*Node, error) {
	if err := memberlist.ValidateKey(opts.Secret); err != nil {
		return nil, fmt.Errorf("cluster: the secret: %w", err)
	}
	cfg, err := config(opts)
	if err != nil {
		return nil, err
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	n := &Node{
		log: log, peers: opts.Peers, onChange: opts.OnChange,
		inbox: make(chan Change, inboxSize), stop: make(chan struct{}),
		gossipNodes: cfg.GossipNodes,
	}
	n.queue = &memberlist.TransmitLimitedQueue{NumNodes: n.Members, RetransmitMult: changeRetransmitMult}
	cfg.Delegate = delegate{n}
	cfg.Events = events{log}
	cfg.Logger = memberlistLogger(log)
	if n.ml, err = memberlist.Create(cfg); err != nil {
		return nil, fmt.Errorf("cluster: starting memberlist on %s: %w", opts.Bind, err)
	}
	log.Info("cluster_started", "node", cfg.Name, "addr", n.Addr(), "peers", opts.Peers)
	every := opts.RejoinInterval
	if every <= 0 {
		every = DefaultRejoinInterval
	}
	n.join()
	n.wg.Add(2)
	go n.deliver()
	go n.rejoin(every)
	return n, nil
}

// config is memberlist's LAN configuration, tuned: gossip every 100 ms
// (not 200) so that a change reaches every replica in a few hundred
// milliseconds at worst; the rest is memberlist's own.
func config(opts Options) (*memberlist.Config, error) {
	cfg := memberlist.DefaultLANConfig()
	cfg.GossipInterval = 100 * time.Millisecond
	cfg.TCPTimeout = 5 * time.Second
	cfg.SecretKey = opts.Secret
	cfg.GossipVerifyIncoming, cfg.GossipVerifyOutgoing = true, true
	cfg.Label = "connectors"
	host, port, err := hostPort("Bind", opts.Bind)
	if err != nil {
		return nil, err
	}
	cfg.BindAddr, cfg.BindPort = host, port
	cfg.AdvertisePort = port
	if opts.Advertise != "" {
		if cfg.AdvertiseAddr, cfg.AdvertisePort, err = hostPort("Advertise", opts.Advertise); err != nil {
			return nil, err
		}
	}
	cfg.Name = opts.Name
	if cfg.Name == "" {
		host, _ := os.Hostname()
		cfg.Name = host + "-" + newID()[:8]
	}
	return cfg, nil
}

// hostPort splits a host:port option.
func hostPort(name, v string) (string, int, error) {
	host, p, err := net.SplitHostPort(v)
	if err != nil {
		return "", 0, fmt.Errorf("cluster: %s %q: %w", name, v, err)
	}
	port, err := strconv.Atoi(p)
	if err != nil || port < 0 || port > 65535 {
		return "", 0, fmt.Errorf("cluster: %s %q: bad port", name, v)
	}
	if host == "" {
		host = "0.0.0.0"
	}
	return host, port, nil
}

// Addr is the host:port other nodes reach this one at.
func (n *Node) Addr() string {
	return n.ml.LocalNode().Address()
}

// Members is the number of nodes alive, this one included.
func (n *Node) Members() int {
	return n.ml.NumMembers()
}

// Dropped is the number of messages received and dropped: malformed, of a
// kind this node does not know, or beyond the inbox.
func (n *Node) Dropped() int64 { return n.dropped.Load() }

// Received is the number of changes received and handed on (each once).
func (n *Node) Received() int64 { return n.received.Load() }

// Publish tells every other node of c. It returns at once: the change is
// gossiped (or, too large for a packet, sent to each member over TCP) in
// the background. An invalid change is an error.
func (n *Node) Publish(c Change) error {
	id := newID()
	msg, err := encode(id, c)
	if err != nil {
		return err
	}
	n.seen.add(id) // an echo of it is not ours to apply
	if len(msg) <= maxBroadcast {
		n.queue.QueueBroadcast(broadcast(msg))
		return nil
	}
	if len(msg) > maxMessage {
		return fmt.Errorf("%w: %d bytes encoded", ErrMalformed, len(msg))
	}
	self := n.ml.LocalNode().Name
	for _, m := range n.ml.Members() {
		if m.Name == self {
			continue
		}
		go func() {
			if err := n.ml.SendReliable(m, msg); err != nil {
				n.log.Warn("cluster_send_failed", "node", m.Name, "error", err)
			}
		}()
	}
	return nil
}

// drainTimeout bounds how long Close waits for the changes queued to go out.
const drainTimeout = 2 * time.Second

// Close sends the changes still queued (for up to two seconds, while any
// other node is there to hear them), leaves the cluster (the others learn
// at once rather than by probing) and stops the node. A short-lived
// publisher, an operator command, publishes and closes.
func (n *Node) Close() error {
	var err error
	n.closeOnce.Do(func() {
		deadline := time.Now().Add(drainTimeout)
		for n.queue.NumQueued() > 0 && n.Members() > 1 && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		close(n.stop)
		n.wg.Wait()
		err = errors.Join(n.ml.Leave(time.Second), n.ml.Shutdown())
	})
	return err
}

// receive takes one message from memberlist: validated, heard once, then
// queued for OnChange and, in a cluster larger than one gossip round
// reaches, gossiped on, so that it reaches nodes the publisher's gossip
// missed (epidemic broadcast, as Serf does). In a smaller one the
// publisher gossips to every node each round and passing it on would only
// slow the queues down.
func (n *Node) receive(msg []byte) {
	e, err := decode(msg)
	if err != nil {
		n.dropped.Add(1)
		n.log.Warn("cluster_change_dropped", "error", err, "bytes", len(msg))
		return
	}
	if !n.seen.add(e.ID) {
		return
	}
	if len(msg) <= maxBroadcast && n.Members() > n.gossipNodes+1 {
		n.queue.QueueBroadcast(broadcast(append([]byte(nil), msg...)))
	}
	select {
	case n.inbox <- e.Change:
	default:
		n.dropped.Add(1)
		n.log.Warn("cluster_change_dropped", "error", "inbox full", "kind", e.Kind)
	}
}

// deliver hands the inbox to OnChange until the node stops.
func (n *Node) deliver() {
	defer n.wg.Done()
	for {
		select {
		case <-n.stop:
			return
		case c := <-n.inbox:
			n.received.Add(1)
			if n.onChange != nil {
				n.onChange(c)
			}
		}
	}
}

// rejoin joins the peers again every interval, and forgets old message IDs.
func (n *Node) rejoin(every time.Duration) {
	defer n.wg.Done()
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-n.stop:
			return
		case <-t.C:
			n.join()
			n.seen.prune()
		}
	}
}

// join joins the peers; memberlist resolves their names on each call.
func (n *Node) join() {
	if len(n.peers) == 0 {
		return
	}
	joined, err := n.ml.Join(n.peers)
	if err != nil && joined == 0 {
		n.log.Warn("cluster_join_failed", "peers", n.peers, "members", n.Members(), "error", err)
	}
}
