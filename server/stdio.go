package server

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"sync"

	mcpserver "github.com/mark3labs/mcp-go/server"

	"github.com/connectors-gateway/connectors/internal/httpwire"
	"github.com/connectors-gateway/connectors/tenants"
)

// ServeStdio serves the aggregate over in/out for one identity, bound for
// the whole process as the MCP specification wants for stdio, until in
// closes or ctx ends. A message the protocol does not allow (see
// message.refusal) is answered with its error here, as over HTTP, and
// never reaches mcp-go.
func (g *Gateway) ServeStdio(ctx context.Context, id tenants.Identity, in io.Reader, out io.Writer) error {
	return serveStdio(ctx, g.aggregate.mcp, id, in, out)
}

// serveStdio serves srv as ServeStdio serves the aggregate.
func serveStdio(ctx context.Context, srv *mcpserver.MCPServer, id tenants.Identity, in io.Reader, out io.Writer) error {
	stdio := mcpserver.NewStdioServer(srv)
	stdio.SetContextFunc(func(ctx context.Context) context.Context {
		return tenants.NewContext(ctx, id)
	})
	// A 2026-07-28 agent gets no notification it did not ask for.
	in, out = stdioStreams(in, out)
	w := &lineWriter{w: out}
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(screen(in, pw, w)) }()
	defer pr.Close()
	return stdio.Listen(tenants.NewContext(ctx, id), pr, w)
}

// screen copies in to pass line by line, but for the lines refused, which
// it answers on out.
func screen(in io.Reader, pass io.Writer, out io.Writer) error {
	r := bufio.NewReader(in)
	for {
		line, err := r.ReadBytes('\n')
		if len(line) > 0 {
			var m message
			var no *refusedMessage
			if json.Unmarshal(bytes.TrimSpace(line), &m) == nil {
				no = m.refusal()
			}
			if no != nil {
				if werr := writeRefusal(out, no); werr != nil {
					return werr
				}
			} else if _, werr := pass.Write(line); werr != nil {
				return werr
			}
		}
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// writeRefusal answers a refused line on out.
func writeRefusal(out io.Writer, no *refusedMessage) error {
	b, err := json.Marshal(httpwire.JSONRPCError(no.id, no.code, no.message))
	if err != nil {
		return err
	}
	_, err = out.Write(append(b, '\n'))
	return err
}

// lineWriter lets the refusals and mcp-go (which writes each message in
// one Write) share the output without interleaving.
type lineWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lineWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
