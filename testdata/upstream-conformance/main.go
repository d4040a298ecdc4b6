// Command upstream-conformance is the upstream MCP server fixture expected by
// the official MCP conformance suite (@modelcontextprotocol/conformance,
// "server" active suite). It is meant to be run behind the gateway so the
// suite can be pointed at the gateway instead of at this server directly.
//
// Usage:
//
//	upstream-conformance          # streamable HTTP on $CONFORMANCE_ADDR (default 127.0.0.1:3000) at /mcp
//	upstream-conformance stdio    # newline-delimited JSON-RPC over stdin/stdout
//
// GET /health answers 200 in HTTP mode.
package main

import (
	"errors"
	"fmt"
	"log"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/mark3labs/mcp-go/server"
)

const (
	serverName    = "connectors-upstream-conformance"
	serverVersion = "1.0.0"
	defaultAddr   = "127.0.0.1:3000"
)

func main() {
	log.SetFlags(log.LstdFlags | log.Lmicroseconds)
	log.SetPrefix("upstream-conformance: ")

	tasks := newTaskStore()
	srv := newServer(tasks)

	if len(os.Args) == 2 && os.Args[1] == "stdio" {
		// stdout carries the protocol; logs go to stderr (the log default).
		if err := server.ServeStdio(srv); err != nil {
			log.Fatalf("stdio: %v", err)
		}
		return
	}
	if len(os.Args) > 1 {
		fmt.Fprintf(os.Stderr, "usage: %s [stdio]\n", os.Args[0])
		os.Exit(2)
	}

	addr := os.Getenv("CONFORMANCE_ADDR")
	if addr == "" {
		addr = defaultAddr
	}
	if err := serveHTTP(srv, tasks, addr); err != nil {
		log.Fatal(err)
	}
}

// newServer builds the MCPServer with every tool, resource, resource
// template and prompt the conformance scenarios exercise; the task tools
// are recorded in tasks as well.
func newServer(tasks *taskStore) *server.MCPServer {
	completions := &completionProvider{}
	srv := server.NewMCPServer(serverName, serverVersion,
		server.WithToolCapabilities(true),
		server.WithResourceCapabilities(true, true), // subscribe + listChanged
		server.WithPromptCapabilities(true),
		server.WithLogging(),
		server.WithCompletions(),
		server.WithPromptCompletionProvider(completions),
		server.WithResourceCompletionProvider(completions),
		server.WithRecovery(),
		server.WithExtensions(map[string]any{tasksExtension: map[string]any{}}),
		server.WithInstructions("Conformance fixture: every tool, resource and prompt required by the MCP conformance server scenarios."),
	)
	srv.EnableSampling()
	registerTools(srv)
	registerRoundTrips(srv)
	registerResources(srv)
	registerPrompts(srv)
	registerTaskTools(srv, tasks)
	return srv
}

// serveHTTP serves streamable HTTP at /mcp and a health probe at /health.
// The requests mcp-go cannot answer as the 2026-07-28 scenarios need are
// answered in front of it (intercept.go).
func serveHTTP(srv *server.MCPServer, tasks *taskStore, addr string) error {
	// The event store matters beyond resumability: without it mcp-go v1.2.1
	// can drop a tool's last progress/log notification when it races the
	// final response on the POST stream.
	streamable := server.NewStreamableHTTPServer(srv,
		server.WithEndpointPath("/mcp"),
		server.WithStateful(true),
		server.WithEventStore(server.NewInMemoryEventStore()),
	)

	mux := http.NewServeMux()
	mux.Handle("/mcp", &interceptor{next: streamable, routes: []route{
		missingCapabilityRoute(),
		tasks.toolRoute(),
		tasks.methodRoute(),
	}})
	mux.HandleFunc("/health", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write([]byte("ok\n"))
	})

	httpSrv := &http.Server{
		Addr:              addr,
		Handler:           mux,
		ReadHeaderTimeout: 10 * time.Second,
	}

	errCh := make(chan error, 1)
	go func() {
		log.Printf("listening on http://%s/mcp", addr)
		errCh <- httpSrv.ListenAndServe()
	}()

	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	select {
	case err := <-errCh:
		if errors.Is(err, http.ErrServerClosed) {
			return nil
		}
		return err
	case s := <-sig:
		log.Printf("received %s, shutting down", s)
		_ = httpSrv.Close()
		return nil
	}
}
