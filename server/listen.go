package server

import (
	"context"

	"github.com/mark3labs/mcp-go/mcp"
	mcpserver "github.com/mark3labs/mcp-go/server"

	"github.com/connectors-gateway/connectors/tenants"
)

// listenSession is the session mcp-go serves one subscriptions/listen
// request with.
type listenSession = mcpserver.SessionWithSubscriptionFilter

// listTTL is the freshness the 2026-07-28 caching hints give a tools/list
// or prompts/list answer: the catalogue's relist interval, as an announced
// change is listed again no sooner (relistAfter). Every such answer is
// the calling tenant's own catalogue, so its scope is private, never
// public (catalogueHints).
const listTTL = relistAfter

// catalogueHints are the caching hints of the list answers that carry a
// tenant's catalogue.
func catalogueHints(method mcp.MCPMethod) mcpserver.ServerOption {
	return mcpserver.WithMethodCacheHints(method, listTTL.Milliseconds(), mcp.CacheScopePrivate)
}

// trackListens keeps v.listens in step with the 2026-07-28
// subscriptions/listen streams open on the view: each stream is served by
// a session of its own (mcp-go's, for the one request) that no session
// hook announces, and it is the tenant's while its request runs.
func (v *view) trackListens(hooks *mcpserver.Hooks) {
	hooks.AddBeforeSubscriptionsListen(func(ctx context.Context, _ any, _ *mcp.SubscriptionsListenRequest) {
		s, ok := mcpserver.ClientSessionFromContext(ctx).(listenSession)
		id, known := tenants.FromContext(ctx)
		if !ok || !known {
			return
		}
		v.mu.Lock()
		defer v.mu.Unlock()
		if v.sessions[s.SessionID()] != nil {
			// A registered session (stdio) hears the tenant's notifications
			// as a session already (stdioStreams keeps to its filter).
			return
		}
		v.listens[s] = id.Tenant
		context.AfterFunc(ctx, func() {
			v.mu.Lock()
			delete(v.listens, s)
			v.mu.Unlock()
		})
	})
}

// notifyListens sends a notification to tenant's subscriptions/listen
// streams on this view that asked for its kind. mcp-go v1.2.1 reaches a
// listen stream only by a broadcast to every tenant's: its session has no
// ID to address it by (see mcpgo.go).
func (v *view) notifyListens(tenant string, method string, params map[string]any) {
	n := mcp.JSONRPCNotification{
		JSONRPC:      mcp.JSONRPC_VERSION,
		Notification: mcp.Notification{Method: method, Params: mcp.NotificationParams{AdditionalFields: params}},
	}
	v.mu.Lock()
	var to []listenSession
	for s, t := range v.listens {
		if filter, open := s.SubscriptionFilter(); t == tenant && open && asked(filter, method) {
			to = append(to, s)
		}
	}
	v.mu.Unlock()
	for _, s := range to {
		select {
		case s.NotificationChannel() <- n:
		default:
			// A stream that does not keep up misses a list_changed, as mcp-go's
			// own broadcast would have it.
		}
	}
}

// asked reports whether a subscriptions/listen filter opted in to the
// notification method: the 2026-07-28 opt-in is absolute.
func asked(filter mcp.SubscriptionFilter, method string) bool {
	switch method {
	case mcp.MethodNotificationToolsListChanged:
		return filter.ToolsListChanged
	case mcp.MethodNotificationPromptsListChanged:
		return filter.PromptsListChanged
	case mcp.MethodNotificationResourcesListChanged:
		return filter.ResourcesListChanged
	}
	return false
}
