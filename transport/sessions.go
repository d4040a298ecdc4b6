package transport

import (
	"context"
	"crypto/rand"
	"errors"
	"net/http"
	"sync"
	"time"

	mcpserver "github.com/mark3labs/mcp-go/server"

	"github.com/connectors-gateway/connectors/server"
	"github.com/connectors-gateway/connectors/tenants"
)

// sessions tracks the MCP sessions (initialize era) this gateway created and
// the identity each belongs to. A session ID that is made up, terminated, or
// presented by another identity is answered 404, so it cannot be guessed,
// revived, or borrowed.
type sessions struct {
	mu   sync.Mutex
	live map[string]*liveSession // by session ID
}

type liveSession struct {
	owner owner // who created it
	// served is when mcp-go last served a request of the session: its
	// idle sweeper counts from there, and it does not see the direct
	// path's calls (see mcpDue).
	served time.Time
	// listening is closed once the agent's GET stream is attached (see
	// resumable).
	listening chan struct{}
	// ctx ends with the session (see resumable).
	ctx context.Context
	end context.CancelFunc
}

type owner struct{ tenant, subject string }

func newSessions() *sessions { return &sessions{live: map[string]*liveSession{}} }

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
// It also tells the relay when the session's GET stream is attached.
// mcp-go v1.2.1 sends a sampling request of the initialize era on that
// stream, through a pump it starts on the first GET before it attaches
// that GET's connection. A request queued before then can be taken by the
// pump while no connection is attached: it is recorded for a Last-Event-ID
// replay, which a first GET does not ask for, so the agent never sees it
// and the call hangs until the upstream gives up (the conformance suite's
// tools-call-sampling, now and then under load). The relay holds a
// sampling request until the stream is attached (server.WithListening).
func (h *HTTP) resumable(next http.Handler) http.Handler {
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
		next.ServeHTTP(w, r.WithContext(server.WithListening(ctx, l.listening)))
	})
}

var errUnknownSession = errors.New("unknown session")

// ResolveSessionIdManager implements mcpserver.SessionIdManagerResolver:
// the manager it returns is bound to the identity of r.
func (s *sessions) ResolveSessionIdManager(r *http.Request) mcpserver.SessionIdManager {
	if r == nil { // mcp-go's idle sweeper
		return &boundSessions{s: s}
	}
	id, _ := tenants.FromContext(r.Context())
	return &boundSessions{s: s, who: owner{tenant: id.Tenant, subject: id.Subject}}
}

// ownedBy reports whether session is live and belongs to who.
func (s *sessions) ownedBy(session string, who owner) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	l := s.live[session]
	return l != nil && l.owner == who
}

// boundSessions is the session manager of one request's identity.
type boundSessions struct {
	s   *sessions
	who owner
}

func (b *boundSessions) Generate() string {
	id := rand.Text()
	b.s.mu.Lock()
	ctx, end := context.WithCancel(context.Background())
	b.s.live[id] = &liveSession{owner: b.who, served: time.Now(), listening: make(chan struct{}), ctx: ctx, end: end}
	b.s.mu.Unlock()
	return id
}

func (b *boundSessions) Validate(session string) (bool, error) {
	if !b.s.ownedBy(session, b.who) {
		return false, errUnknownSession
	}
	return false, nil
}

func (b *boundSessions) Terminate(session string) (bool, error) {
	b.s.mu.Lock()
	defer b.s.mu.Unlock()
	// The idle sweeper terminates with no identity; a client only its own.
	if l := b.s.live[session]; l != nil && (b.who == owner{} || l.owner == b.who) {
		delete(b.s.live, session)
		l.end()
	}
	return false, nil
}

// bindSession answers 404 before mcp-go sees a request that names a session
// this identity does not own. (mcp-go checks POSTs itself through Validate;
// GET and DELETE it would otherwise serve or accept.)
func (h *HTTP) bindSession(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		session := r.Header.Get(mcpserver.HeaderKeySessionID)
		if session == "" {
			next.ServeHTTP(w, r)
			return
		}
		id, _ := tenants.FromContext(r.Context())
		if !h.sessions.ownedBy(session, owner{tenant: id.Tenant, subject: id.Subject}) {
			writeError(w, r, http.StatusNotFound, "SessionNotFound", "session not found")
			return
		}
		if r.Method == http.MethodGet && r.Header.Get("Last-Event-ID") == "" {
			// mcp-go has attached the stream's connection when it writes the 200.
			w = &statusWriter{ResponseWriter: w, onHeader: func(status int) {
				if status == http.StatusOK {
					h.sessions.attached(session)
				}
			}}
		}
		next.ServeHTTP(w, r)
	})
}
