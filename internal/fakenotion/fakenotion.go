// Package fakenotion is a stand-in for Notion's REST API (api.notion.com),
// which cannot be reached here, for the real @notionhq/notion-mcp-server to
// talk to through its BASE_URL setting. It follows Notion's documented
// behaviour for what the tests touch: bearer tokens, the required
// Notion-Version header, the error object shape, GET /v1/users/me and
// POST /v1/search. It records the token of every request, so tests can see
// exactly which tenant's credential reached "Notion".
package fakenotion

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
)

// Request is one request the fake received.
type Request struct {
	Method, Path string
	Token        string // the bearer token, as sent
}

// Server is a fake Notion API.
type Server struct {
	URL string

	mu       sync.Mutex
	bots     map[string]string // valid token → bot name
	requests []Request
	accept   func(token string) (bot string, ok bool) // beside bots; guarded by mu
	rejected map[string]bool                          // tokens refused whatever else says; guarded by mu
}

// Accept makes the fake also accept the tokens f accepts (those a fake
// OAuth provider issued, say), as the bot f names.
func (s *Server) Accept(f func(token string) (bot string, ok bool)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.accept = f
}

// Reject makes the fake refuse token from now on (401 unauthorized), as
// Notion does once a token is revoked.
func (s *Server) Reject(token string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.rejected == nil {
		s.rejected = map[string]bool{}
	}
	s.rejected[token] = true
}

// Start starts a fake Notion API on loopback that accepts the given tokens
// (token → bot user name), closed when tb ends.
func Start(tb testing.TB, bots map[string]string) *Server {
	s := &Server{bots: bots}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/users/me", s.auth(s.handleMe))
	mux.HandleFunc("POST /v1/search", s.auth(s.handleSearch))
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusBadRequest, "invalid_request_url", "Invalid request URL.")
	})
	ts := httptest.NewServer(mux)
	tb.Cleanup(ts.Close)
	s.URL = ts.URL
	return s
}

// Requests returns every request received so far.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Request(nil), s.requests...)
}

func (s *Server) auth(next func(http.ResponseWriter, *http.Request, string)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		token, _ := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		s.mu.Lock()
		s.requests = append(s.requests, Request{Method: r.Method, Path: r.URL.Path, Token: token})
		bot, ok := s.bots[token]
		if !ok && s.accept != nil {
			bot, ok = s.accept(token)
		}
		if s.rejected[token] {
			ok = false
		}
		s.mu.Unlock()
		if r.Header.Get("Notion-Version") == "" {
			writeError(w, http.StatusBadRequest, "missing_version", "Notion-Version header failed validation: Notion-Version header should be defined, instead was `undefined`.")
			return
		}
		if !ok {
			writeError(w, http.StatusUnauthorized, "unauthorized", "API token is invalid.")
			return
		}
		next(w, r, bot)
	}
}

// handleMe handles "GET /v1/users/me": the bot user the token belongs to.
func (s *Server) handleMe(w http.ResponseWriter, _ *http.Request, bot string) {
	writeJSON(w, http.StatusOK, map[string]any{
		"object": "user", "id": "bot-" + bot, "type": "bot", "name": bot,
		"bot": map[string]any{"owner": map[string]any{"type": "workspace", "workspace": true}},
	})
}

// handleSearch handles "POST /v1/search": one page titled after the bot,
// so a result shows whose workspace answered.
func (s *Server) handleSearch(w http.ResponseWriter, r *http.Request, bot string) {
	var body struct {
		Query string `json:"query"`
	}
	_ = json.NewDecoder(r.Body).Decode(&body)
	writeJSON(w, http.StatusOK, map[string]any{
		"object": "list", "has_more": false, "next_cursor": nil, "type": "page_or_database",
		"results": []any{map[string]any{
			"object": "page", "id": "page-" + bot,
			"properties": map[string]any{"title": map[string]any{"title": []any{
				map[string]any{"plain_text": bot + ": " + body.Query},
			}}},
		}},
	})
}

func writeError(w http.ResponseWriter, status int, code, message string) {
	writeJSON(w, status, map[string]any{"object": "error", "status": status, "code": code, "message": message})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
