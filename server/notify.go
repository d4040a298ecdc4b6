package server

import (
	"context"
	"encoding/json"
	"slices"

	"github.com/mark3labs/mcp-go/mcp"
	mcpserver "github.com/mark3labs/mcp-go/server"

	"github.com/connectors-gateway/connectors/tenants"
)

// viewSession is one agent session of a view: whose it is, and which
// resources it subscribed to.
type viewSession struct {
	tenant string
	uris   []string

	// For the direct path (guarded by v.mu): the mcp-go session, whether
	// the agent asked for log messages (logging/setLevel), and its
	// capabilities as the upstream is told them (encoded at its first
	// direct call).
	session      mcpserver.ClientSession
	logging      bool
	capabilities json.RawMessage
}

// trackSessions keeps v.sessions in step with the mcp-go server's
// sessions, and v.listens with its subscriptions/listen streams.
func (v *view) trackSessions(hooks *mcpserver.Hooks) {
	v.trackListens(hooks)
	hooks.AddOnRegisterSession(func(ctx context.Context, s mcpserver.ClientSession) {
		if id, ok := tenants.FromContext(ctx); ok {
			v.mu.Lock()
			v.sessions[s.SessionID()] = &viewSession{tenant: id.Tenant, session: s}
			v.mu.Unlock()
		}
	})
	hooks.AddAfterSetLevel(func(ctx context.Context, _ any, _ *mcp.SetLevelRequest, _ *mcp.EmptyResult) {
		if s := mcpserver.ClientSessionFromContext(ctx); s != nil {
			v.mu.Lock()
			if vs := v.sessions[s.SessionID()]; vs != nil {
				vs.logging = true
			}
			v.mu.Unlock()
		}
	})
	hooks.AddOnUnregisterSession(func(ctx context.Context, s mcpserver.ClientSession) {
		v.mu.Lock()
		vs := v.sessions[s.SessionID()]
		delete(v.sessions, s.SessionID())
		v.mu.Unlock()
		if vs != nil {
			for _, uri := range vs.uris {
				v.releaseUpstream(context.WithoutCancel(ctx), vs.tenant, uri)
			}
		}
	})
}

// notify sends a notification to every session of tenant on this view,
// and to the tenant's subscriptions/listen streams that asked for it.
func (v *view) notify(tenant string, method string, params map[string]any) {
	v.notifyWhere(tenant, method, params, func(*viewSession) bool { return true })
	v.notifyListens(tenant, method, params)
}

func (v *view) notifyWhere(tenant string, method string, params map[string]any, match func(*viewSession) bool) {
	v.mu.Lock()
	var ids []string
	for id, s := range v.sessions {
		if s.tenant == tenant && match(s) {
			ids = append(ids, id)
		}
	}
	v.mu.Unlock()
	for _, id := range ids {
		_ = v.mcp.SendNotificationToSpecificClient(id, method, params)
	}
}

// subscribe records that the calling session wants resources/updated for
// uri, and subscribes upstream when it is the tenant's first subscriber.
func (v *view) subscribe(ctx context.Context, uri string) {
	session := mcpserver.ClientSessionFromContext(ctx)
	if session == nil || uri == "" {
		return
	}
	v.mu.Lock()
	vs := v.sessions[session.SessionID()]
	first := vs != nil && !slices.Contains(vs.uris, uri) && !v.subscribedLocked(vs.tenant, uri)
	if vs != nil && !slices.Contains(vs.uris, uri) {
		vs.uris = append(vs.uris, uri)
	}
	v.mu.Unlock()
	if !first {
		return
	}
	conn, err := v.allowedConn(ctx)
	if err == nil {
		err = conn.Subscribe(ctx, uri)
	}
	if err != nil {
		v.g.log.InfoContext(ctx, "upstream_subscribe_failed", "integration", v.only, "error", err)
	}
}

// unsubscribe drops the calling session's subscription to uri, and the
// upstream's when no session of the tenant still wants it.
func (v *view) unsubscribe(ctx context.Context, uri string) {
	session := mcpserver.ClientSessionFromContext(ctx)
	if session == nil {
		return
	}
	v.mu.Lock()
	vs := v.sessions[session.SessionID()]
	if vs == nil || !slices.Contains(vs.uris, uri) {
		v.mu.Unlock()
		return
	}
	vs.uris = slices.DeleteFunc(vs.uris, func(u string) bool { return u == uri })
	tenant := vs.tenant
	v.mu.Unlock()
	v.releaseUpstream(ctx, tenant, uri)
}

// releaseUpstream unsubscribes upstream from uri unless a session of tenant
// still subscribes to it.
func (v *view) releaseUpstream(ctx context.Context, tenant, uri string) {
	v.mu.Lock()
	still := v.subscribedLocked(tenant, uri)
	v.mu.Unlock()
	if still {
		return
	}
	if conn, err := v.g.conn(tenants.NewContext(ctx, tenants.Identity{Tenant: tenant}), v.only); err == nil {
		_ = conn.Unsubscribe(ctx, uri)
	}
}

func (v *view) subscribedLocked(tenant, uri string) bool {
	for _, s := range v.sessions {
		if s.tenant == tenant && slices.Contains(s.uris, uri) {
			return true
		}
	}
	return false
}

// UpstreamNotification carries a notification an upstream sent outside any
// call (tools.PoolOptions.OnNotification) to the sessions it concerns: those
// of the tenant whose connection it came on.
func (g *Gateway) UpstreamNotification(tenant, integration string, n mcp.JSONRPCNotification) {
	single := g.single[integration]
	switch n.Method {
	case string(mcp.MethodNotificationToolsListChanged):
		// A catalogue never listed was never shown: nothing to announce
		// (an upstream may announce changes while it starts).
		if g.aggregate.forget(tenant, integration) {
			g.aggregate.notify(tenant, n.Method, nil)
		}
		if single != nil && single.forget(tenant, integration) {
			single.notify(tenant, n.Method, nil)
		}
	case string(mcp.MethodNotificationPromptsListChanged):
		if single != nil && single.forget(tenant, integration) {
			single.notify(tenant, n.Method, nil)
		}
	case string(mcp.MethodNotificationResourcesListChanged):
		if single != nil {
			single.notify(tenant, n.Method, nil)
		}
	case string(mcp.MethodNotificationResourceUpdated):
		uri, _ := n.Params.AdditionalFields["uri"].(string)
		if single != nil && uri != "" {
			single.notifyWhere(tenant, n.Method, map[string]any{"uri": uri}, func(s *viewSession) bool {
				return slices.Contains(s.uris, uri)
			})
		}
	}
}

// ActiveSessions counts the open MCP sessions of every view, for metrics.
func (g *Gateway) ActiveSessions() int {
	n := g.aggregate.sessionCount()
	for _, v := range g.single {
		n += v.sessionCount()
	}
	return n
}

func (v *view) sessionCount() int {
	v.mu.Lock()
	defer v.mu.Unlock()
	return len(v.sessions)
}
