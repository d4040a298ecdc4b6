package server

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/mark3labs/mcp-go/mcp"
	mcpserver "github.com/mark3labs/mcp-go/server"

	"github.com/connectors-gateway/connectors/internal/httpwire"
	"github.com/connectors-gateway/connectors/tenants"
)

// sessions tracks the MCP sessions (initialize era) this gateway created,
// the identity each belongs to and the endpoint it was made on. A session
// ID that is made up, terminated, presented by another identity or on
// another endpoint is answered 404, so it cannot be guessed, revived,
// borrowed or carried to another integration's endpoint.
//
// It also bounds them (see reserve), and it sweeps the idle ones (sweep).
type sessions struct {
	limits sessionLimits
	// sealed, if set, seals the IDs of the sessions made here and adopts
	// those made on other replicas (sealedsessions.go).
	sealed *sealedSessions

	mu   sync.Mutex
	live map[string]*liveSession // by session ID
	// The places taken per identity, per tenant and in all.
	byOwner  map[owner]*tally
	byTenant map[string]*tally
	all      tally
}

// sessionLimits bound the places taken in all, per tenant and per
// identity, and the requests one session has running; zero: no bound.
type sessionLimits struct{ all, perTenant, perIdentity, running int }

// tally is the places taken: by live sessions, and by the initialize
// requests under way, which may each make one (see reserve).
type tally struct{ live, reserved int }

func (t *tally) full(limit int) bool { return limit > 0 && t.live+t.reserved >= limit }
func (t *tally) empty() bool         { return t.live <= 0 && t.reserved <= 0 }

type liveSession struct {
	owner owner // who created it
	// endpoint is the integration of the /mcp/{integration} endpoint that
	// made it, or empty for /mcp.
	endpoint string
	// served is when mcp-go last served a request of the session (see
	// mcpDue).
	served time.Time
	// active is when a request of the session last began or ended, and
	// running how many are under way: the sweeper ends a session idle for
	// the TTL with none running.
	active  time.Time
	running int
	// listening is closed once the agent's GET stream is attached (see
	// resumable).
	listening chan struct{}
	// ctx ends with the session (see resumable).
	ctx context.Context
	end context.CancelFunc
	// ready, if set, is closed once mcp-go holds the session: one adopted
	// from another replica (see Handler.adopt); nil for one made here.
	ready chan struct{}
	// expires, if set, is a sealed session's absolute expiry
	// (HTTPOptions.SessionMaxAge).
	expires time.Time
}

// expired reports whether l is past its absolute expiry at now.
func (l *liveSession) expired(now time.Time) bool {
	return !l.expires.IsZero() && !now.Before(l.expires)
}

type owner struct{ tenant, subject string }

// newSessions returns an empty registry with those bounds.
func newSessions(limits sessionLimits) *sessions {
	return &sessions{limits: limits, live: map[string]*liveSession{}, byOwner: map[owner]*tally{}, byTenant: map[string]*tally{}}
}

// talliesLocked returns who's tallies, creating them.
func (s *sessions) talliesLocked(who owner) (mine, tenant *tally) {
	if mine = s.byOwner[who]; mine == nil {
		mine = &tally{}
		s.byOwner[who] = mine
	}
	if tenant = s.byTenant[who.tenant]; tenant == nil {
		tenant = &tally{}
		s.byTenant[who.tenant] = tenant
	}
	return mine, tenant
}

// tidyLocked drops who's tallies once empty.
func (s *sessions) tidyLocked(who owner) {
	if t := s.byOwner[who]; t != nil && t.empty() {
		delete(s.byOwner, who)
	}
	if t := s.byTenant[who.tenant]; t != nil && t.empty() {
		delete(s.byTenant, who.tenant)
	}
}

// mcpDue reports whether session's next request should go to mcp-go so
// that its idle sweeper sees the session in use: mcp-go last served it at
// least within ago.
func (s *sessions) mcpDue(session string, within time.Duration) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	l := s.live[session]
	return l == nil || time.Since(l.served) >= within
}

// servedByMCP records that mcp-go serves a request of session now.
func (s *sessions) servedByMCP(session string) {
	now := time.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	if l := s.live[session]; l != nil {
		l.served = now
	}
}

// lookup returns the live session (nil if unknown). Its listening, ctx
// and end never change: they are read without the lock.
func (s *sessions) lookup(session string) *liveSession {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.live[session]
}

// attached records that session's GET stream is attached.
func (s *sessions) attached(session string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	l := s.live[session]
	if l == nil {
		return
	}
	select {
	case <-l.listening:
	default:
		close(l.listening)
	}
}

// resumable keeps a session's request running when the agent's
// connection drops. In the initialize era the agent can resume a POST's
// event stream (GET with Last-Event-ID; mcp-go records every event of it),
// and the specification says a disconnection is not a cancellation: the
// agent sends notifications/cancelled for that. So the request ends when
// it completes, when the agent cancels it, or when the session ends, not
// with the connection. (The conformance suite's client drops and resumes a
// call's stream when it is slow; the call used to fail with "context
// canceled".)
//
// It also tells the relay when the session's GET stream is attached
// (withListening; see sampleOnAttachedStream for the mcp-go defect).
func (h *Handler) resumable(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var l *liveSession
		if r.Method == http.MethodPost {
			l = h.sessions.lookup(r.Header.Get(mcpserver.HeaderKeySessionID))
		}
		if l == nil {
			next.ServeHTTP(w, r)
			return
		}
		ctx, cancel := context.WithCancel(context.WithoutCancel(r.Context()))
		defer cancel()
		defer context.AfterFunc(l.ctx, cancel)()
		next.ServeHTTP(w, r.WithContext(withListening(ctx, l.listening)))
	})
}

var errUnknownSession = errors.New("unknown session")

// ResolveSessionIdManager implements mcpserver.SessionIdManagerResolver:
// the manager it returns is bound to the identity of r and to its
// endpoint.
func (s *sessions) ResolveSessionIdManager(r *http.Request) mcpserver.SessionIdManager {
	if r == nil { // an idle sweeper (mcp-go's is off: see HTTP.streamable)
		return &boundSessions{s: s}
	}
	if id, ok := r.Context().Value(adoptionKey{}).(string); ok {
		return &boundSessions{s: s, adopt: id}
	}
	res, _ := r.Context().Value(reservationKey{}).(*reservation)
	b := &boundSessions{s: s, who: ownerOf(r), endpoint: r.PathValue("integration"), res: res}
	if s.sealed != nil {
		b.body, _ = httpwire.Bytes(r.Body) // checkMessage's: the initialize, for Generate
	}
	return b
}

// ownerOf is the identity r was authenticated as.
func ownerOf(r *http.Request) owner {
	id, _ := tenants.FromContext(r.Context())
	return owner{tenant: id.Tenant, subject: id.Subject}
}

// validFor reports whether session is live, belongs to who and was made on
// endpoint.
func (s *sessions) validFor(session string, who owner, endpoint string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	l := s.live[session]
	return l != nil && l.owner == who && l.endpoint == endpoint
}

// ownerOfSession returns the owner of a live session.
func (s *sessions) ownerOfSession(session string) (owner, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	l := s.live[session]
	if l == nil {
		return owner{}, false
	}
	return l.owner, true
}

// errSessionCap is a refused new session: the bound it would pass.
type errSessionCap struct{ bound string }

// The bounds an errSessionCap names.
const (
	boundIdentity = "identity"
	boundTenant   = "tenant"
	boundAll      = "gateway"
)

func (e errSessionCap) Error() string { return "too many sessions for this " + e.bound }

// reserve counts an initialize request of who as a session until release
// is called, refusing it when a bound would be passed. mcp-go makes the
// session itself (Generate), which cannot fail; so the bound is checked
// before it sees the request, and an initialize under way holds a place,
// so that concurrent ones cannot all pass the same last place.
//
// The bound per tenant keeps one tenant (many users or keys) from taking
// every place on the gateway from the others.
//
// The session an initialize makes takes over its place (Generate, given
// the reservation through the request's context): counted once, never as
// both a reservation and a session, which would refuse a concurrent
// initialize though a place is free.
func (s *sessions) reserve(who owner) (res *reservation, release func(), err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.fullLocked(who); err != nil {
		return nil, nil, err
	}
	mine, tenant := s.talliesLocked(who)
	mine.reserved++
	tenant.reserved++
	s.all.reserved++
	res = &reservation{who: who}
	return res, func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		s.unreserveLocked(res)
		s.tidyLocked(who)
	}, nil
}

// fullLocked returns the bound one more session of who would pass, if
// any.
func (s *sessions) fullLocked(who owner) error {
	mine, tenant := s.talliesLocked(who)
	var err error
	switch {
	case mine.full(s.limits.perIdentity):
		err = errSessionCap{boundIdentity}
	case tenant.full(s.limits.perTenant):
		err = errSessionCap{boundTenant}
	case s.all.full(s.limits.all):
		err = errSessionCap{boundAll}
	}
	if err != nil {
		s.tidyLocked(who)
	}
	return err
}

// reservation is a place an initialize holds; dropped is guarded by
// sessions.mu.
type reservation struct {
	who     owner
	dropped bool // released, or taken over by the session it made
}

type reservationKey struct{}

// withReservation returns ctx carrying res, for the session it makes.
func withReservation(ctx context.Context, res *reservation) context.Context {
	return context.WithValue(ctx, reservationKey{}, res)
}

// unreserveLocked gives res's place back, once.
func (s *sessions) unreserveLocked(res *reservation) {
	if res == nil || res.dropped {
		return
	}
	res.dropped = true
	mine, tenant := s.talliesLocked(res.who)
	mine.reserved--
	tenant.reserved--
	s.all.reserved--
}

// errSessionBusy is a request of a session that has as many running as
// it may.
var errSessionBusy = errors.New("too many requests running in this session")

// begin records that a request of session starts, if the session is
// live, belongs to who and was made on endpoint (else it returns nil) and
// has room for one more request (else errSessionBusy); done records its
// end.
func (s *sessions) begin(session string, who owner, endpoint string) (*liveSession, error) {
	now := time.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	l := s.live[session]
	if l == nil || l.owner != who || l.endpoint != endpoint || l.expired(now) {
		return nil, nil
	}
	if s.limits.running > 0 && l.running >= s.limits.running {
		return nil, errSessionBusy
	}
	l.running++
	l.active = now
	return l, nil
}

// done records that a request of l, begun with begin, ended.
func (s *sessions) done(l *liveSession) {
	now := time.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	l.running--
	l.active = now
}

// removeLocked forgets session, freeing its place under the bounds.
func (s *sessions) removeLocked(session string, l *liveSession) {
	delete(s.live, session)
	mine, tenant := s.talliesLocked(l.owner)
	mine.live--
	tenant.live--
	s.all.live--
	s.tidyLocked(l.owner)
}

// idle removes and returns the sessions idle for ttl, or past their
// absolute expiry, with no request running, by endpoint.
func (s *sessions) idle(ttl time.Duration) map[string][]string {
	now := time.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	var out map[string][]string
	for id, l := range s.live {
		if l.running > 0 || now.Sub(l.active) < ttl && !l.expired(now) {
			continue
		}
		s.removeLocked(id, l)
		l.end()
		if out == nil {
			out = map[string][]string{}
		}
		out[l.endpoint] = append(out[l.endpoint], id)
	}
	return out
}

// boundSessions is the session manager of one request's identity and
// endpoint.
type boundSessions struct {
	s        *sessions
	who      owner
	endpoint string
	res      *reservation // the initialize's place, taken over by Generate
	body     []byte       // the request's, when sessions are sealed
	adopt    string       // the session Generate names (adoptInMCP's)
}

func (b *boundSessions) Generate() string {
	if b.adopt != "" {
		return b.adopt // registered by Handler.adopt
	}
	var id string
	var expires time.Time
	if b.s.sealed != nil {
		id, expires = b.s.sealed.seal(b.who, b.endpoint, b.body)
	}
	if id == "" {
		id = rand.Text()
	}
	b.s.mu.Lock()
	defer b.s.mu.Unlock()
	b.s.addLocked(id, b.who, b.endpoint, b.res).expires = expires
	return id
}

// addLocked registers session as live for who on endpoint, taking over
// res's place (an initialize's, or an adoption's).
func (s *sessions) addLocked(session string, who owner, endpoint string, res *reservation) *liveSession {
	ctx, end := context.WithCancel(context.Background())
	now := time.Now()
	l := &liveSession{owner: who, endpoint: endpoint, served: now, active: now, listening: make(chan struct{}), ctx: ctx, end: end}
	s.live[session] = l
	if res != nil && res.who == who {
		s.unreserveLocked(res)
	}
	mine, tenant := s.talliesLocked(who)
	mine.live++
	tenant.live++
	s.all.live++
	return l
}

func (b *boundSessions) Validate(session string) (bool, error) {
	if !b.s.validFor(session, b.who, b.endpoint) {
		return false, errUnknownSession
	}
	return false, nil
}

// Terminate ends the session of its owner's DELETE, and the requests it
// has running; a sealed one is remembered as ended, and
// HTTPOptions.SessionEnded told. (The sweeper, and EndSession, remove a
// session before they ask mcp-go to forget it, so their DELETE finds
// nothing here.)
func (b *boundSessions) Terminate(session string) (bool, error) {
	b.s.mu.Lock()
	l := b.s.live[session]
	ours := l != nil && l.owner == b.who && l.endpoint == b.endpoint
	if ours {
		b.s.removeLocked(session, l)
		l.end()
	}
	b.s.mu.Unlock()
	if ours && b.s.sealed != nil {
		b.s.sealed.terminated(session)
	}
	return false, nil
}

// endAll ends every live session and the requests it has running: the
// gateway is stopping, and a session's requests outlive their connections
// (resumable), so nothing else would end them before the shutdown's
// deadline.
func (s *sessions) endAll() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for id, l := range s.live {
		s.removeLocked(id, l)
		l.end()
	}
}

// bindSession answers before mcp-go sees a request that names a session
// this identity does not own, or that was made on another endpoint (404,
// as for a session that ended; another identity's is recorded as a refused
// attempt), and a GET or DELETE that names no session (refuseSessionless).
// A sealed session made on another replica is adopted (Handler.adopt).
// mcp-go checks POSTs itself through Validate; GET and DELETE it would
// otherwise serve or accept. It also tells the sweeper which sessions are
// in use.
func (h *Handler) bindSession(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		session := r.Header.Get(mcpserver.HeaderKeySessionID)
		if session == "" {
			if !refuseSessionless(w, r) {
				next.ServeHTTP(w, r)
			}
			return
		}
		who := ownerOf(r)
		if h.serveBound(w, r, session, who, next) {
			return
		}
		if o, held := h.sessions.ownerOfSession(session); held {
			if o != who {
				id, _ := tenants.FromContext(r.Context())
				httpwire.Denied(r, h.opts.Audit, h.log, id, o.tenant, "foreign_session")
			}
		} else if h.adopt(w, r, session, next) {
			return
		}
		sessionNotFound(w, r)
	})
}

// serveBound serves r, of a session that is live, who's and made on r's
// endpoint (once mcp-go holds it), and tells the sweeper the session is
// in use; it reports whether it answered (not: no such session here).
func (h *Handler) serveBound(w http.ResponseWriter, r *http.Request, session string, who owner, next http.Handler) bool {
	l, err := h.sessions.begin(session, who, r.PathValue("integration"))
	if errors.Is(err, errSessionBusy) {
		w.Header().Set("Retry-After", "1")
		httpwire.WriteJSONRPCError(w, http.StatusTooManyRequests, nil, mcp.INVALID_REQUEST,
			fmt.Sprintf("this session has %d requests running, as many as it may (CONNECTORS_MAX_REQUESTS_PER_SESSION): wait for one to end", h.opts.MaxRequestsPerSession))
		return true
	}
	if l == nil {
		return false
	}
	defer h.sessions.done(l)
	if l.ready != nil {
		select {
		case <-l.ready:
		case <-r.Context().Done():
			return true
		}
	}
	w = sampleOnAttachedStream(w, r, func() { h.sessions.attached(session) })
	next.ServeHTTP(w, r)
	return true
}

// sessionNotFound answers a request naming a session that is not, or not
// the caller's, or not of this endpoint.
func sessionNotFound(w http.ResponseWriter, r *http.Request) {
	httpwire.WriteError(w, r, http.StatusNotFound, "SessionNotFound", "session not found")
}

// sweep ends, until ctx ends, the sessions idle for the TTL with no
// request running, and has mcp-go forget them. mcp-go's own sweeper is
// off: it counts only the starts of the requests it serves (not the
// direct path's), and it would end a session, and the answer of its call,
// when one call runs longer than the TTL.
func (h *Handler) sweep(ctx context.Context) {
	t := time.NewTicker(max(h.opts.SessionIdleTTL/4, 10*time.Millisecond))
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			h.sweepIdle()
		}
	}
}

// sweepIdle ends the sessions idle now. A sealed one is this replica's
// copy only (the agent may be busy on another replica): it is neither
// remembered as ended nor told to other replicas, and is adopted again
// when used here again (sealedsessions.go).
func (h *Handler) sweepIdle() {
	for endpoint, ids := range h.sessions.idle(h.opts.SessionIdleTTL) {
		srv := h.server(endpoint)
		for _, id := range ids {
			forgetSession(srv, id)
		}
		h.log.Info("mcp_sessions_swept", "endpoint", "/mcp/"+endpoint, "count", len(ids))
	}
}
