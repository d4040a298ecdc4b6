package server

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	mcpserver "github.com/mark3labs/mcp-go/server"

	"github.com/connectors-gateway/connectors/internal/mcptest"
)

// BenchmarkSessionSeal is what sealing adds to an initialize: the claims
// encoded and sealed (AES-256-GCM).
func BenchmarkSessionSeal(b *testing.B) {
	ss := newSealedSessions(HTTPOptions{Sealer: newSealer(b)})
	who, body := owner{tenant: "tenant-a", subject: "apikey:a"}, []byte(initBody)
	b.ReportAllocs()
	for b.Loop() {
		if id, _ := ss.seal(who, "", body); id == "" {
			b.Fatal("not sealed")
		}
	}
}

// BenchmarkSessionOpen is what a replica pays to open a session ID it does
// not hold, before it adopts it.
func BenchmarkSessionOpen(b *testing.B) {
	ss := newSealedSessions(HTTPOptions{Sealer: newSealer(b)})
	id, _ := ss.seal(owner{tenant: "tenant-a", subject: "apikey:a"}, "", []byte(initBody))
	b.ReportAllocs()
	for b.Loop() {
		if _, ok := ss.open(id); !ok {
			b.Fatal("not opened")
		}
	}
}

// benchEndpoint is a Handler over mcptest's server, served in process.
func benchEndpoint(b *testing.B, opts HTTPOptions) (*Handler, http.Handler) {
	var counts mcptest.Counts
	h := NewHandler(mcptest.NewServer("test", &counts), map[string]*mcpserver.MCPServer{}, opts)
	b.Cleanup(func() { _ = h.Close(context.Background()) })
	return h, endpoints(h)
}

// serve sends one request of session ("": none) to mux, in process, as a
// 2025-11-25 client, and returns its answer.
func serve(mux http.Handler, session, body string) *httptest.ResponseRecorder {
	r := httptest.NewRequest("POST", "/mcp", strings.NewReader(body))
	r.Header.Set("Content-Type", "application/json")
	r.Header.Set("Accept", "application/json, text/event-stream")
	r.Header.Set("Authorization", "Bearer key-a")
	r.Header.Set("MCP-Protocol-Version", "2025-11-25")
	if session != "" {
		r.Header.Set("Mcp-Session-Id", session)
	}
	w := httptest.NewRecorder()
	mux.ServeHTTP(w, r)
	return w
}

const benchPing = `{"jsonrpc":"2.0","id":2,"method":"ping"}`

// BenchmarkSessionAdopt is a ping on a session the replica does not hold:
// opened, adopted (mcp-go's replayed initialize included), then served.
func BenchmarkSessionAdopt(b *testing.B) {
	sealer := newSealer(b)
	h, mux := benchEndpoint(b, HTTPOptions{Sealer: sealer})
	maker := newSealedSessions(HTTPOptions{Sealer: sealer})
	who := owner{tenant: "tenant-a", subject: "apikey:a"}
	b.ReportAllocs()
	for b.Loop() {
		b.StopTimer()
		id, _ := maker.seal(who, "", []byte(initBody))
		b.StartTimer()
		if w := serve(mux, id, benchPing); w.Code != http.StatusOK {
			b.Fatalf("adopted ping: %d", w.Code)
		}
		b.StopTimer()
		h.endHere(id)
		b.StartTimer()
	}
}

// BenchmarkHeldSession is a ping on a session the replica holds, its ID
// sealed or not: sealing costs such a request nothing.
func BenchmarkHeldSession(b *testing.B) {
	for _, c := range []struct {
		name string
		opts HTTPOptions
	}{{"local", HTTPOptions{}}, {"sealed", HTTPOptions{Sealer: newSealer(b)}}} {
		b.Run(c.name, func(b *testing.B) {
			_, mux := benchEndpoint(b, c.opts)
			id := serve(mux, "", initBody).Header().Get("Mcp-Session-Id")
			if id == "" || strings.HasPrefix(id, sealedPrefix) != (c.opts.Sealer != nil) {
				b.Fatalf("session %q", id)
			}
			b.ReportAllocs()
			for b.Loop() {
				if w := serve(mux, id, benchPing); w.Code != http.StatusOK {
					b.Fatalf("ping: %d", w.Code)
				}
			}
		})
	}
}
