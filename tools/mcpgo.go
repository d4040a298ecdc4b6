package tools

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/mcp"
)

// This file holds the workarounds of defects of mcp-go v1.2.1's client,
// each held by a test that fails without it:
//
//   - it decodes a tool's inputSchema and outputSchema into the keywords it
//     knows, dropping the rest of JSON Schema 2020-12: the raw listings are
//     kept and the schemas put back byte for byte (below); held by
//     cmd/connectors' TestSchemasPassThrough;
//   - it sends notifications/cancelled for a call the gateway gives up on
//     over stdio only: over initialize-era HTTP the tracked transport sends
//     it (sendCancelled); held by TestHTTPCancelReachesUpstream.
//
// (Its server side is server/mcpgo.go's.)

// An upstream's tool schemas are handed to the agent byte for byte. mcp-go
// decodes a tool's inputSchema and outputSchema into a struct of the
// keywords it knows (type, properties, required, ...), which drops the
// rest of JSON Schema 2020-12 ($schema, allOf, if/then/else, $anchor, ...)
// and rewrites some references. So the listing requests' raw results are
// collected on their way in (by the tracked transport) and each tool's
// schemas are put back as raw bytes.

// listPages collects the raw results of the tools/list requests sent with
// a context that carries it.
type listPages struct {
	mu    sync.Mutex
	pages []json.RawMessage // guarded by mu
}

type listPagesKey struct{}

func withListPages(ctx context.Context) (context.Context, *listPages) {
	p := &listPages{}
	return context.WithValue(ctx, listPagesKey{}, p), p
}

// collect records the raw result of a tools/list request sent with ctx.
func collect(ctx context.Context, method string, result json.RawMessage) {
	if method != string(mcp.MethodToolsList) || len(result) == 0 {
		return
	}
	if p, ok := ctx.Value(listPagesKey{}).(*listPages); ok {
		p.mu.Lock()
		p.pages = append(p.pages, bytes.Clone(result))
		p.mu.Unlock()
	}
}

// Bounds of one listing of an upstream's tools: an upstream that pages on
// for ever, or lists without end, fails the listing rather than growing
// the gateway's memory (GitHub's MCP server lists about a hundred tools).
const (
	maxListPages = 100
	maxListTools = 5000
	maxListBytes = 16 << 20
)

// ErrCatalogueTooLarge is a listing past those bounds.
var ErrCatalogueTooLarge = errors.New("the upstream's catalogue is too large")

// listAll lists every page of cli's tools, within the bounds above.
func listAll(ctx context.Context, cli *client.Client, pages *listPages) ([]mcp.Tool, error) {
	var tools []mcp.Tool
	var req mcp.ListToolsRequest
	seen := map[mcp.Cursor]bool{}
	for range maxListPages {
		res, err := cli.ListToolsByPage(ctx, req)
		if err != nil {
			return nil, err
		}
		tools = append(tools, res.Tools...)
		if len(tools) > maxListTools || pages.size() > maxListBytes {
			return nil, fmt.Errorf("%w: more than %d tools or %d MiB", ErrCatalogueTooLarge, maxListTools, maxListBytes>>20)
		}
		if res.NextCursor == "" {
			return tools, nil
		}
		if seen[res.NextCursor] {
			return nil, fmt.Errorf("the upstream's tools/list pages loop (cursor %q again)", res.NextCursor)
		}
		seen[res.NextCursor] = true
		req.Params.Cursor = res.NextCursor
	}
	return nil, fmt.Errorf("%w: more than %d pages", ErrCatalogueTooLarge, maxListPages)
}

// size is the bytes of the pages collected.
func (p *listPages) size() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for _, page := range p.pages {
		n += len(page)
	}
	return n
}

func (p *listPages) reset() {
	p.mu.Lock()
	p.pages = nil
	p.mu.Unlock()
}

// rawSchemas are one tool's schemas as the upstream wrote them.
type rawSchemas struct {
	Name         string          `json:"name"`
	InputSchema  json.RawMessage `json:"inputSchema"`
	OutputSchema json.RawMessage `json:"outputSchema"`
}

// restore gives each tool the schemas its upstream wrote. A tool whose
// raw listing is not found (or is not an object) keeps mcp-go's decoding.
func (p *listPages) restore(tools []mcp.Tool) {
	p.mu.Lock()
	pages := p.pages
	p.mu.Unlock()
	byName := map[string]rawSchemas{}
	for _, page := range pages {
		var res struct {
			Tools []rawSchemas `json:"tools"`
		}
		if json.Unmarshal(page, &res) != nil {
			continue
		}
		for _, s := range res.Tools {
			byName[s.Name] = s
		}
	}
	for i := range tools {
		s, ok := byName[tools[i].Name]
		if !ok {
			continue
		}
		if isObject(s.InputSchema) {
			tools[i].InputSchema, tools[i].RawInputSchema = mcp.ToolInputSchema{}, s.InputSchema
		}
		if isObject(s.OutputSchema) {
			tools[i].OutputSchema, tools[i].RawOutputSchema = mcp.ToolOutputSchema{}, s.OutputSchema
		}
	}
}

func isObject(raw json.RawMessage) bool {
	raw = bytes.TrimSpace(raw)
	return len(raw) > 1 && raw[0] == '{'
}

// sendCancelled tells the upstream that the call of id is given up: what
// mcp-go's client does over stdio, and not over HTTP.
func (t *tracked) sendCancelled(ctx context.Context, id mcp.RequestId) {
	n := mcp.JSONRPCNotification{
		JSONRPC: mcp.JSONRPC_VERSION,
		Notification: mcp.Notification{
			Method: string(mcp.MethodNotificationCancelled),
			Params: mcp.NotificationParams{AdditionalFields: map[string]any{
				"requestId": id, "reason": context.Cause(ctx).Error(),
			}},
		},
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	go func() {
		defer cancel()
		if err := t.Interface.SendNotification(ctx, n); err != nil {
			t.conn.logger.Debug("upstream_cancel_failed", "error", t.conn.scrubber.String(err.Error()))
		}
	}()
}
