package tools

import (
	"container/list"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mark3labs/mcp-go/mcp"
)

// ErrPoolClosed is returned by Conn after Close.
var ErrPoolClosed = errors.New("upstream pool closed")

// PoolOptions configures a Pool. A zero field takes the default it names.
type PoolOptions struct {
	// MaxConns bounds the live connections; past it the least recently
	// used idle one is closed. Zero means 256. Connections with calls in
	// flight are never evicted, so the bound can be exceeded while all are
	// busy.
	MaxConns int

	// IdleTimeout closes a connection unused for that long. Zero means
	// 10 minutes.
	IdleTimeout time.Duration

	// StartTimeout bounds starting an upstream and its MCP handshake. Zero
	// means 30 seconds.
	StartTimeout time.Duration

	// RetryAfter is how long a failed start is remembered: calls in between
	// get its error at once instead of each spawning the broken upstream
	// again. A changed credential or configuration retries at once. Zero
	// means 10 seconds.
	RetryAfter time.Duration

	// EnvAllowlist names the variables of the gateway's own environment a
	// stdio upstream inherits; nothing else of it reaches the child. Nil
	// means PATH, HOME, LANG, TZ and TMPDIR.
	EnvAllowlist []string

	// HTTPClient carries every HTTP upstream's requests. Nil means a shared
	// client with pooled keep-alive connections and no overall timeout (the
	// per-call timeout bounds calls; response streams are long-lived).
	HTTPClient *http.Client

	// Logger receives the pool's events; nil discards. Token values are
	// never logged.
	Logger *slog.Logger

	// OnNotification, if set, receives the notifications an upstream sends
	// that belong to no call: list_changed of tools, prompts and resources,
	// and resources/updated. It is called from the connection's reading
	// goroutine and must not block.
	OnNotification func(tenant, integration string, n mcp.JSONRPCNotification)

	// ClientInfo is how the gateway introduces itself to upstreams. Empty
	// means {"connectors-gateway", "dev"}.
	ClientInfo mcp.Implementation

	// Secrets, if set, returns values besides the credential's that no
	// answer of an integration's upstream may carry to an agent (the
	// integration's OAuth client secret). It is called when a connection
	// is made.
	Secrets func(integration string) []string
}

// DefaultEnvAllowlist is the gateway environment a stdio upstream inherits
// when PoolOptions.EnvAllowlist is nil.
var DefaultEnvAllowlist = []string{"PATH", "HOME", "LANG", "TZ", "TMPDIR"}

// Pool owns the live upstream connections: one per (tenant, integration),
// started on first use with that tenant's credential and reused. It is safe
// for concurrent use.
type Pool struct {
	opts PoolOptions
	lane directLane // nil in a build without the direct lane

	ctx    context.Context // ends at Close: aborts starts in progress
	cancel context.CancelFunc
	wg     sync.WaitGroup // starts, closes and the reaper
	starts atomic.Int64   // upstream sessions started, for tests

	mu      sync.Mutex
	entries map[poolKey]*entry // guarded by mu
	lru     *list.List         // guarded by mu; of *entry, most recent first
	closed  bool               // guarded by mu
}

// directLane is the direct lane's side of a pool (direct.go, h1.go): it
// readies each HTTP conn for direct calls, and keeps the connections they
// go out on. It is optional: the lane registers it (newDirectLane), and a
// build without the lane's files serves every call the usual way.
type directLane interface {
	// target returns where the direct calls of a conn dialled from l go.
	target(l *launch) *directTarget
	// reap closes the connections idle too long; close closes them all.
	reap(now time.Time)
	close()
}

// newDirectLane makes a pool's direct lane, given the pool's HTTP client
// and whether it is the pool's default; nil without the lane.
var newDirectLane func(client *http.Client, isDefault bool) directLane

type poolKey struct{ tenant, integration string }

// entry is a connection being started or started.
type entry struct {
	key         poolKey
	fingerprint [sha256.Size]byte
	// in and vars are what the entry was started from: a Conn asking for
	// exactly these is answered without preparing a launch again.
	in      Integration
	vars    map[string]string
	elem    *list.Element
	removed bool // guarded by Pool.mu

	ready    chan struct{} // closed once conn or err is set
	conn     *Conn
	err      error
	failedAt time.Time // when err was set; written before ready closes
}

// settled reports whether the start finished (conn or err is readable).
func (e *entry) settled() bool {
	select {
	case <-e.ready:
		return true
	default:
		return false
	}
}

// NewPool returns a Pool; opts may be nil.
func NewPool(opts *PoolOptions) *Pool {
	var o PoolOptions
	if opts != nil {
		o = *opts
	}
	if o.MaxConns <= 0 {
		o.MaxConns = 256
	}
	if o.IdleTimeout <= 0 {
		o.IdleTimeout = 10 * time.Minute
	}
	if o.StartTimeout <= 0 {
		o.StartTimeout = 30 * time.Second
	}
	if o.RetryAfter <= 0 {
		o.RetryAfter = 10 * time.Second
	}
	if o.EnvAllowlist == nil {
		o.EnvAllowlist = DefaultEnvAllowlist
	}
	isDefault := o.HTTPClient == nil
	if isDefault {
		o.HTTPClient = defaultHTTPClient()
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if o.ClientInfo.Name == "" {
		o.ClientInfo = mcp.Implementation{Name: "connectors-gateway", Version: "dev"}
	}
	p := &Pool{
		opts:    o,
		entries: make(map[poolKey]*entry),
		lru:     list.New(),
	}
	if newDirectLane != nil {
		p.lane = newDirectLane(o.HTTPClient, isDefault)
	}
	p.ctx, p.cancel = context.WithCancel(context.Background())
	p.wg.Add(1)
	go p.reap()
	return p
}

// Conn returns the tenant's live connection to in, starting it if there is
// none. vars are the values of in's templates: "access_token",
// "token_type", "refresh_token" and "extra.NAME". If they differ from the
// ones the live connection was started with (the credential changed), that
// connection is closed and a new one started. Concurrent first calls share
// one start.
//
// The returned Conn stays usable until the pool closes it (eviction, idle
// timeout, Drop, a changed credential, Close); a call on a closed Conn
// returns an error wrapping ErrConnClosed, and the caller gets a fresh one
// from Conn.
func (p *Pool) Conn(ctx context.Context, tenant string, in Integration, vars map[string]string) (*Conn, error) {
	if c := p.live(poolKey{tenant, in.Name}, in, vars); c != nil {
		c.touch()
		return c, nil
	}
	if err := validate(in, 0); err != nil {
		return nil, err
	}
	var extra []string
	if p.opts.Secrets != nil {
		extra = p.opts.Secrets(in.Name)
	}
	l, err := prepare(in, vars, extra...)
	if err != nil {
		return nil, err
	}
	key := poolKey{tenant, in.Name}
	lim, _ := ctx.Value(stdioLimitKey{}).(stdioLimit)
	// A connection whose process dies right after its start is retried
	// once; a second death is reported.
	for attempt := 0; ; attempt++ {
		e, err := p.entryWithin(ctx, key, l, in, vars, lim)
		if err != nil {
			return nil, err
		}
		select {
		case <-e.ready:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		if e.err != nil {
			return nil, e.err
		}
		if err := e.conn.Err(); err != nil {
			if attempt == 0 {
				continue
			}
			return nil, scrub(failure(in.Name, err), l.scrubber)
		}
		e.conn.touch()
		return e.conn, nil
	}
}

// live returns key's live connection if it was started from exactly in
// and vars: the common case, answered without rendering and hashing a
// launch.
func (p *Pool) live(key poolKey, in Integration, vars map[string]string) *Conn {
	p.mu.Lock()
	defer p.mu.Unlock()
	e := p.entries[key]
	if e == nil || !e.settled() || e.err != nil || e.conn.Err() != nil ||
		!maps.Equal(e.vars, vars) || !e.in.equal(&in) {
		return nil
	}
	p.lru.MoveToFront(e.elem)
	return e.conn
}

// entry returns the live or starting entry for key, or starts one: a
// stdio one only within the tenant's most running (roomLocked).
func (p *Pool) entry(key poolKey, l *launch, in Integration, vars map[string]string, most int) (*entry, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return nil, ErrPoolClosed
	}
	if e := p.entries[key]; e != nil {
		dead := e.settled() && (e.err != nil || e.conn.Err() != nil)
		if e.fingerprint == l.fingerprint && e.settled() && e.err != nil && time.Since(e.failedAt) < p.opts.RetryAfter {
			return e, nil // a recent failed start: its error, without a new start
		}
		if e.fingerprint == l.fingerprint && !dead {
			p.lru.MoveToFront(e.elem)
			return e, nil
		}
		if !dead {
			p.opts.Logger.Info("upstream_replaced", "tenantId", key.tenant, "integration", key.integration, "reason", "credential or configuration changed")
		}
		p.removeLocked(e)
	}
	if in.Upstream.Command != "" && most > 0 {
		if err := p.roomLocked(key.tenant, most); err != nil {
			return nil, err
		}
	}
	e := &entry{key: key, fingerprint: l.fingerprint, in: in, vars: maps.Clone(vars), ready: make(chan struct{})}
	e.elem = p.lru.PushFront(e)
	p.entries[key] = e
	p.evictLocked()
	p.wg.Add(1)
	go p.start(e, l)
	return e, nil
}

func (p *Pool) start(e *entry, l *launch) {
	defer p.wg.Done()
	ctx, cancel := context.WithTimeout(p.ctx, p.opts.StartTimeout)
	defer cancel()
	p.starts.Add(1)
	var conn *Conn
	var err error
	if l.in.Upstream.Command != "" {
		conn, err = p.dialStdio(ctx, e.key.tenant, l)
	} else {
		conn, err = p.dialHTTP(ctx, e.key.tenant, l)
	}
	if err != nil {
		// The agent is told what failed (startFailure); the log has
		// where and why.
		detail := scrub(err, l.scrubber).Error()
		err = scrub(startFailure(l.in.Name, p.opts.StartTimeout, ctx.Err() != nil && p.ctx.Err() == nil, err), l.scrubber)
		p.opts.Logger.Warn("upstream_start_failed", "tenantId", e.key.tenant, "integration", l.in.Name, "reason", err.Error(), "error", detail)
	} else {
		p.opts.Logger.Info("upstream_started", "tenantId", e.key.tenant, "integration", l.in.Name)
	}
	e.conn, e.err = conn, err
	if err != nil {
		e.failedAt = time.Now()
	}
	// A failed entry stays, answering its error, for RetryAfter: entry()
	// then replaces it, or the reaper removes it.
	close(e.ready)
}

// removeLocked forgets e and closes its connection once it has one.
func (p *Pool) removeLocked(e *entry) {
	if e.removed {
		return
	}
	e.removed = true
	if p.entries[e.key] == e {
		delete(p.entries, e.key)
	}
	p.lru.Remove(e.elem)
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		<-e.ready
		if e.conn != nil {
			e.conn.Close()
		}
	}()
}

// evictLocked closes the least recently used idle connections beyond
// MaxConns.
func (p *Pool) evictLocked() {
	for el := p.lru.Back(); el != nil && len(p.entries) > p.opts.MaxConns; {
		e := el.Value.(*entry)
		el = el.Prev()
		if !e.settled() {
			continue
		}
		if e.conn != nil {
			if busy, _ := e.conn.idle(); busy {
				continue
			}
		}
		p.opts.Logger.Info("upstream_evicted", "tenantId", e.key.tenant, "integration", e.key.integration)
		p.removeLocked(e)
	}
}

// Drop closes the tenant's connection to integration, if any (for example
// when the tenant's credential is revoked).
func (p *Pool) Drop(tenant, integration string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if e := p.entries[poolKey{tenant, integration}]; e != nil {
		p.removeLocked(e)
	}
}

// Close closes every connection, ending every upstream process, and waits
// for them to exit.
func (p *Pool) Close() {
	p.mu.Lock()
	p.closed = true
	for _, e := range p.entries {
		p.removeLocked(e)
	}
	p.mu.Unlock()
	p.cancel()
	p.wg.Wait()
	if p.lane != nil {
		p.lane.close()
	}
}

// reap closes idle and dead connections.
func (p *Pool) reap() {
	defer p.wg.Done()
	every := min(max(p.opts.IdleTimeout/4, 10*time.Millisecond), time.Minute)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-p.ctx.Done():
			return
		case now := <-t.C:
			p.reapOnce(now)
			if p.lane != nil {
				p.lane.reap(now)
			}
		}
	}
}

func (p *Pool) reapOnce(now time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, e := range p.entries {
		if !e.settled() {
			continue
		}
		if e.conn == nil { // a failed start, remembered for RetryAfter
			if now.Sub(e.failedAt) >= p.opts.RetryAfter {
				p.removeLocked(e)
			}
			continue
		}
		if e.conn.Err() != nil {
			p.removeLocked(e)
			continue
		}
		if busy, since := e.conn.idle(); !busy && now.Sub(since) >= p.opts.IdleTimeout {
			p.opts.Logger.Info("upstream_idle_closed", "tenantId", e.key.tenant, "integration", e.key.integration)
			p.removeLocked(e)
		}
	}
}

// launch is an integration with its templates rendered for one credential.
type launch struct {
	in          Integration
	env         []string          // stdio: rendered Env, "K=V", sorted
	headers     map[string]string // HTTP: rendered Headers
	scrubber    *Scrubber         // cuts the secrets out of what the upstream sends
	fingerprint [sha256.Size]byte // of all the above: a change means a new conn
}

// prepare renders in for vars; secrets are values besides vars' that no
// answer of the upstream may carry.
func prepare(in Integration, vars map[string]string, secrets ...string) (*launch, error) {
	l := &launch{in: in.clone()}
	fail := func(field string, err error) error {
		return &IntegrationError{Integration: in.Name, Field: field, Err: err}
	}
	for _, k := range sortedKeys(in.Upstream.Env) {
		v, err := render(in.Upstream.Env[k], vars)
		if err != nil {
			return nil, fail("upstream.env."+k, err)
		}
		l.env = append(l.env, k+"="+v)
	}
	if len(in.Upstream.Headers) > 0 {
		l.headers = make(map[string]string, len(in.Upstream.Headers))
		for _, k := range sortedKeys(in.Upstream.Headers) {
			v, err := render(in.Upstream.Headers[k], vars)
			if err != nil {
				return nil, fail("upstream.headers."+k, err)
			}
			l.headers[k] = v
		}
	}
	for k, v := range vars {
		// token_type ("Bearer") is no secret; NewScrubber leaves out
		// values too short to be one (MinSecretLen).
		if k != VarTokenType {
			secrets = append(secrets, v)
		}
	}
	l.scrubber = NewScrubber(secrets...)
	b, _ := json.Marshal(struct {
		In      Integration
		Timeout time.Duration
		Env     []string
		Headers map[string]string
	}{l.in, in.Timeout, l.env, l.headers})
	l.fingerprint = sha256.Sum256(b)
	return l, nil
}

// Processes returns how many stdio upstream processes the pool holds
// running, for metrics.
func (p *Pool) Processes() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for _, e := range p.entries {
		if e.settled() && e.conn != nil && e.conn.Stdio() {
			n++
		}
	}
	return n
}
