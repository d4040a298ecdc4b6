package server

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/mark3labs/mcp-go/mcp"
	mcpserver "github.com/mark3labs/mcp-go/server"

	"github.com/connectors-gateway/connectors/internal/httpwire"
	"github.com/connectors-gateway/connectors/tenants"
)

// Sealed sessions: any replica serves any initialize-era session. With a
// Sealer (HTTPOptions.Sealer, the key every replica shares), the session
// ID an initialize is given is sealed (AES-256-GCM) and carries what a
// replica needs to serve the session: the identity it is bound to, the
// endpoint it was made on, the negotiated protocol version, the client's
// capabilities and client info, when it was made, and a random part. A
// replica that is sent a session it does not hold opens the ID, and if it
// opens, is bound to the caller's identity and endpoint and has not ended,
// adopts it: the session is counted under the bounds as a live one, and
// mcp-go is made to hold it as initialized with those capabilities and
// version (adoptInMCP), so that the request, and the next ones, are served
// as on the replica that made it. Anything else is 404 as before; another
// identity's session is recorded as a refused attempt.
//
// What the ID does not carry starts afresh on the adopting replica: the
// log level set with logging/setLevel (the default: no log messages until
// the agent sets one again), the resources it subscribed to, the events
// recorded for a Last-Event-ID replay, and the requests in flight on the
// other replica (an answer to a server's request, say sampling, must reach
// the replica that asked).
//
// Ending. A DELETE ends the session here, and HTTPOptions.SessionEnded is
// told, for the other replicas' EndSession. An ended ID is remembered
// until it would expire, so that it is not adopted again. A sweep of idle
// sessions is this replica's idleness only (the agent may be busy on
// another): the local copy is dropped, not ended; the session is adopted
// again when it is used here again. So a sealed session ends with its
// DELETE or at its absolute expiry (HTTPOptions.SessionMaxAge, 24 h by
// default), not when idle. A replica that never heard of a DELETE (it was
// down, or restarted and forgot) could adopt the session again until that
// expiry, for its own identity only: that is the bound.

// Sealed session IDs.
const (
	// sealedPrefix begins a sealed session ID, so that no other ID is
	// opened.
	sealedPrefix   = "cgw1."
	sessionPurpose = "cgw-mcp-session/v1"
	// DefaultSessionMaxAge is how long a sealed session lasts at most.
	DefaultSessionMaxAge = 24 * time.Hour
	// maxSealedSession bounds what a sealed ID carries (it travels in a
	// header of every request): past it, the session is this replica's
	// alone.
	maxSealedSession = 2 << 10
	// maxSealedID bounds the length of a session ID that is opened: a
	// sealed one of maxSealedSession is about 2.8 KB.
	maxSealedID = 4 << 10
	// maxEndedSessions bounds the ended sessions remembered: past it, those
	// nearest their expiry are forgotten first.
	maxEndedSessions = 100_000
)

// sealedClaims is what a sealed session ID holds.
type sealedClaims struct {
	Tenant       string          `json:"t"`
	Subject      string          `json:"s"`
	Endpoint     string          `json:"e,omitempty"`
	Protocol     string          `json:"v"`
	Capabilities json.RawMessage `json:"c,omitempty"`
	ClientInfo   json.RawMessage `json:"i,omitempty"`
	Created      int64           `json:"at"` // Unix milliseconds
	Random       string          `json:"r"`
}

func (c *sealedClaims) owner() owner { return owner{tenant: c.Tenant, subject: c.Subject} }

// expires is when the session ends at the latest.
func (c *sealedClaims) expires(maxAge time.Duration) time.Time {
	return time.UnixMilli(c.Created).Add(maxAge)
}

// sealedSessions seals and opens session IDs, and remembers the ended ones.
type sealedSessions struct {
	sealer Sealer
	maxAge time.Duration
	ended  func(id string) // HTTPOptions.SessionEnded; may be nil

	mu   sync.Mutex
	gone map[[16]byte]time.Time // ended IDs' digests → when they would expire
}

// newSealedSessions returns the sealing of opts, or nil without a Sealer.
func newSealedSessions(opts HTTPOptions) *sealedSessions {
	if opts.Sealer == nil {
		return nil
	}
	maxAge := opts.SessionMaxAge
	if maxAge <= 0 {
		maxAge = DefaultSessionMaxAge
	}
	return &sealedSessions{sealer: opts.Sealer, maxAge: maxAge, ended: opts.SessionEnded, gone: map[[16]byte]time.Time{}}
}

// initializeParams is what an initialize request's params say of the
// client.
type initializeParams struct {
	ProtocolVersion string          `json:"protocolVersion"`
	Capabilities    json.RawMessage `json:"capabilities,omitempty"`
	ClientInfo      json.RawMessage `json:"clientInfo,omitempty"`
}

// seal returns the sealed ID of a session of who on endpoint made by the
// initialize body, and its expiry, or "" when it cannot be sealed (not
// readable, too large): the caller makes a local one.
func (ss *sealedSessions) seal(who owner, endpoint string, body []byte) (string, time.Time) {
	var m struct {
		Params initializeParams `json:"params"`
	}
	if json.Unmarshal(body, &m) != nil {
		return "", time.Time{}
	}
	c := sealedClaims{
		Tenant: who.tenant, Subject: who.subject, Endpoint: endpoint,
		Protocol:     mcp.NegotiateLegacyVersion(m.Params.ProtocolVersion), // as mcp-go does
		Capabilities: m.Params.Capabilities, ClientInfo: m.Params.ClientInfo,
		Created: time.Now().UnixMilli(), Random: rand.Text(),
	}
	b, err := json.Marshal(c)
	if err != nil || len(b) > maxSealedSession {
		return "", time.Time{}
	}
	// The sealer's expiry is in whole seconds: the age is checked in
	// milliseconds on opening (open).
	sealed, err := ss.sealer.SealData(sessionPurpose, b, ss.maxAge+time.Second)
	if err != nil {
		return "", time.Time{}
	}
	return sealedPrefix + sealed, c.expires(ss.maxAge)
}

// open returns the claims of a sealed ID that is genuine, not expired and
// not ended.
func (ss *sealedSessions) open(id string) (*sealedClaims, bool) {
	value, ok := strings.CutPrefix(id, sealedPrefix)
	if !ok || len(id) > maxSealedID || ss.isEnded(id) {
		return nil, false
	}
	data, err := ss.sealer.OpenData(sessionPurpose, value)
	if err != nil {
		return nil, false
	}
	var c sealedClaims
	if json.Unmarshal(data, &c) != nil || c.Tenant == "" || c.Protocol == "" {
		return nil, false
	}
	if !time.Now().Before(c.expires(ss.maxAge)) {
		return nil, false // sealed with a longer age than now allowed
	}
	return &c, true
}

func sessionDigest(id string) [16]byte {
	sum := sha256.Sum256([]byte(id))
	return [16]byte(sum[:16])
}

// isEnded reports whether id was ended.
func (ss *sealedSessions) isEnded(id string) bool {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	exp, ok := ss.gone[sessionDigest(id)]
	return ok && time.Now().Before(exp)
}

// remember records that the session of c, id, ended.
func (ss *sealedSessions) remember(id string, c *sealedClaims) {
	exp := c.expires(ss.maxAge)
	now := time.Now()
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if len(ss.gone) >= maxEndedSessions {
		ss.pruneLocked(now)
	}
	ss.gone[sessionDigest(id)] = exp
}

// terminated records that the agent ended the session id here (DELETE),
// and tells the other replicas.
func (ss *sealedSessions) terminated(id string) {
	c, ok := ss.open(id)
	if !ok {
		return // not sealed: this replica's alone
	}
	ss.remember(id, c)
	if ss.ended != nil {
		ss.ended(id)
	}
}

// pruneLocked forgets the expired ended sessions, and if that is not
// enough, the tenth nearest their expiry.
func (ss *sealedSessions) pruneLocked(now time.Time) {
	for k, exp := range ss.gone {
		if !now.Before(exp) {
			delete(ss.gone, k)
		}
	}
	if len(ss.gone) < maxEndedSessions {
		return
	}
	exps := make([]time.Time, 0, len(ss.gone))
	for _, exp := range ss.gone {
		exps = append(exps, exp)
	}
	slices.SortFunc(exps, time.Time.Compare)
	cut := exps[len(exps)/10]
	for k, exp := range ss.gone {
		if !exp.After(cut) {
			delete(ss.gone, k)
		}
	}
}

// adopt serves a request naming a session this replica does not hold
// (session), if it is a sealed one of the caller's on this endpoint: it
// is adopted (or, for a DELETE, ended everywhere without being adopted).
// It reports whether it answered r; if not, the caller 404s.
func (h *Handler) adopt(w http.ResponseWriter, r *http.Request, session string, next http.Handler) bool {
	ss := h.sessions.sealed
	if ss == nil {
		return false
	}
	c, ok := ss.open(session)
	if !ok {
		return false
	}
	who, endpoint := ownerOf(r), r.PathValue("integration")
	if c.owner() != who {
		id, _ := tenants.FromContext(r.Context())
		httpwire.Denied(r, h.opts.Audit, h.log, id, c.Tenant, "foreign_session")
		return false
	}
	if c.Endpoint != endpoint {
		return false
	}
	if r.Method == http.MethodDelete {
		ss.remember(session, c)
		h.endHere(session)
		if ss.ended != nil {
			ss.ended(session)
		}
		w.WriteHeader(http.StatusOK)
		return true
	}
	l, mine, err := h.sessions.adopted(session, who, endpoint, c.expires(ss.maxAge))
	if err != nil {
		h.sessionCapped(w, r, nil, err)
		return true
	}
	if mine {
		h.adoptInMCP(r.Context(), session, c)
		close(l.ready)
		if h.sessions.lookup(session) != l { // ended meanwhile: mcp-go forgets it too
			forgetSession(h.server(endpoint), session)
		}
		h.log.InfoContext(r.Context(), "mcp_session_adopted", "tenantId", who.tenant, "endpoint", "/mcp/"+endpoint)
	}
	if !h.serveBound(w, r, session, who, next) {
		sessionNotFound(w, r) // ended meanwhile
	}
	return true
}

// adopted registers session as live for who on endpoint, if the bounds
// on sessions allow one more, unless a concurrent request has already:
// mine says whether the caller is to make mcp-go hold it (and then close
// l.ready).
func (s *sessions) adopted(session string, who owner, endpoint string, expires time.Time) (l *liveSession, mine bool, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if l := s.live[session]; l != nil {
		return l, false, nil
	}
	if err := s.fullLocked(who); err != nil {
		return nil, false, err
	}
	l = s.addLocked(session, who, endpoint, nil)
	l.ready = make(chan struct{})
	l.expires = expires
	return l, true, nil
}

// adoptionKey marks the context of adoptInMCP's initialize with the ID
// the session manager is to hand mcp-go.
type adoptionKey struct{}

// endHere ends this replica's copy of session, if it holds one, and has
// mcp-go forget it.
func (h *Handler) endHere(session string) {
	h.sessions.mu.Lock()
	l := h.sessions.live[session]
	if l != nil {
		h.sessions.removeLocked(session, l)
		l.end()
	}
	h.sessions.mu.Unlock()
	if l != nil {
		forgetSession(h.server(l.endpoint), session)
	}
}

// server is the streamable-HTTP server of endpoint.
func (h *Handler) server(endpoint string) *mcpserver.StreamableHTTPServer {
	if endpoint == "" {
		return h.mcp
	}
	return h.single[endpoint]
}

// EndSession ends the session id, which another replica was told the
// agent ended (HTTPOptions.SessionEnded there): this replica's copy, if it
// holds one, and the requests it has running; and the ID is remembered
// as ended until it would expire, so that it is not adopted again. An ID
// that is not a genuine sealed one is ignored.
func (h *Handler) EndSession(id string) {
	ss := h.sessions.sealed
	if ss == nil {
		return
	}
	c, ok := ss.open(id)
	if !ok {
		return
	}
	ss.remember(id, c)
	h.endHere(id)
}
