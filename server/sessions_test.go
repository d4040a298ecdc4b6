package server

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	mcpserver "github.com/mark3labs/mcp-go/server"
)

// TestResumable: a session's POST runs on when the agent's connection
// drops, and ends with the session; other requests keep the connection's
// context.
func TestResumable(t *testing.T) {
	h := &Handler{sessions: newSessions(sessionLimits{})}
	who := owner{tenant: "tenant-a", subject: "s"}
	session := (&boundSessions{s: h.sessions, who: who}).Generate()

	// serve runs a request whose connection drops at once, and returns the
	// context its handler saw.
	serve := func(method, session string) context.Context {
		got := make(chan context.Context, 1)
		next := http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) { got <- r.Context() })
		conn, drop := context.WithCancel(context.Background())
		r := httptest.NewRequestWithContext(conn, method, "/mcp", nil)
		if session != "" {
			r.Header.Set(mcpserver.HeaderKeySessionID, session)
		}
		go func() {
			h.resumable(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				drop()
				next.ServeHTTP(w, r)
				<-r.Context().Done() // the handler runs until its context ends
			})).ServeHTTP(httptest.NewRecorder(), r)
		}()
		return <-got
	}
	ended := func(ctx context.Context) bool {
		select {
		case <-ctx.Done():
			return true
		case <-time.After(50 * time.Millisecond):
			return false
		}
	}

	call := serve("POST", session)
	if ended(call) {
		t.Fatal("a session's POST ended with its connection")
	}
	if ended(serve("GET", session)) == false {
		t.Error("a GET outlived its connection")
	}
	if ended(serve("POST", "")) == false {
		t.Error("a POST without a session outlived its connection")
	}
	if ended(serve("POST", "made-up")) == false {
		t.Error("a POST of an unknown session outlived its connection")
	}
	// Another identity cannot end the session; its owner can.
	_, _ = (&boundSessions{s: h.sessions, who: owner{tenant: "tenant-b"}}).Terminate(session)
	if ended(call) {
		t.Fatal("another tenant ended the session's request")
	}
	_, _ = (&boundSessions{s: h.sessions, who: who}).Terminate(session)
	if !ended(call) {
		t.Error("the request outlived its session")
	}
}

// TestListening: a session is listening once mcp-go has answered 200 to
// its GET stream (without Last-Event-ID: a resumed stream is not the
// listening one), and not before.
func TestListening(t *testing.T) {
	h := &Handler{sessions: newSessions(sessionLimits{})}
	session := (&boundSessions{s: h.sessions}).Generate()
	listening := h.sessions.lookup(session).listening
	open := func() bool {
		select {
		case <-listening:
			return true
		default:
			return false
		}
	}
	get := func(status int, header map[string]string) {
		before := open()
		r := httptest.NewRequest("GET", "/mcp", nil)
		r.Header.Set(mcpserver.HeaderKeySessionID, session)
		for k, v := range header {
			r.Header.Set(k, v)
		}
		h.bindSession(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			if open() != before {
				t.Error("listening before the stream's answer")
			}
			w.WriteHeader(status)
		})).ServeHTTP(httptest.NewRecorder(), r)
	}
	get(http.StatusOK, map[string]string{"Last-Event-ID": "7"})
	get(http.StatusBadRequest, nil)
	if open() {
		t.Fatal("listening after a resumed stream or a refused GET")
	}
	get(http.StatusOK, nil)
	if !open() {
		t.Fatal("not listening after the GET stream's 200")
	}
	get(http.StatusOK, nil) // a second stream: no double close
}
