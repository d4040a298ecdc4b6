package server

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/mark3labs/mcp-go/mcp"
	mcpserver "github.com/mark3labs/mcp-go/server"

	"github.com/connectors-gateway/connectors/tenants"
	"github.com/connectors-gateway/connectors/tools"
	"github.com/connectors-gateway/connectors/vault"
)

// A tenant's catalogue is its own. An upstream's tools and prompts can
// depend on the account they are listed with (GitHub's MCP server offers
// toolsets by token scope; a description can carry a workspace's names),
// so each view discovers them per (tenant, integration), through that
// tenant's own connection, and serves a tenant only what its own
// connection listed: tools/list, tools/call, prompts/list, prompts/get,
// the direct path and REST invoke all look a name up there.
//
// Catalogues are immutable once listed and shared by content: tenants
// whose upstreams listed byte-identical catalogues hold the same
// *catalogue, so 100,000 tenants of one integration cost one catalogue
// and a map entry each.
//
// mcp-go routes a tools/call or prompts/get by the name it has registered,
// one registry for every tenant. So the registry holds no upstream tool
// or prompt: each view registers one route per integration under a name
// no agent can know (it holds a random part), and a hook rewrites a
// request for a name in the caller's catalogue to that route, carrying the
// name in a header of the request that the hook always sets itself
// (whatever the agent sent under it is dropped). A name the caller's
// catalogue lacks is never rewritten, and mcp-go answers that the tool or
// prompt was not found, as for any unknown name. Nothing is registered
// after start, so discovery never makes mcp-go announce a list change.

// routedHeader carries the upstream's own name of the tool or prompt a
// request was routed for, from the hook to the route's handler. It is
// never forwarded upstream (tools.Conn sends no header of the agent's
// request).
const routedHeader = "X-Connectors-Routed-Name"

// rediscoverAfter is how long a tenant's failed discovery is not tried
// again: a tenant whose upstream is down does not wait for it on every
// list. Its last catalogue, if any, is served meanwhile.
const rediscoverAfter = 5 * time.Second

// catalogueTTL is how long a tenant's catalogue is served before it is
// listed again: not every upstream can announce a change (an HTTP upstream
// announces only on a call's stream), and an account's tools can change
// on the provider's side (a token granted a new scope).
const catalogueTTL = 5 * time.Minute

// relistAfter is how soon after a listing an announced change lists again:
// an upstream that announces changes in a loop gets at most one listing a
// second of each tenant's catalogue.
const relistAfter = time.Second

// maxTenantCatalogues bounds the per-tenant entries of one view; past it
// the idle ones are dropped (and listed again when next used).
const maxTenantCatalogues = 1_000_000

// catalogue is one upstream's tools (and, in a single-integration view,
// prompts) as one tenant's connection listed them, under the names the
// view exposes. It is never changed once interned.
type catalogue struct {
	sum     [sha256.Size]byte
	refs    int        // tenant entries holding it; guarded by catalogues.mu
	tools   []mcp.Tool // sorted by exposed name
	byName  map[string]catalogueTool
	prompts []mcp.Prompt
	prompt  map[string]bool // prompt name → listed
}

// catalogueTool is what a call needs of one listed tool.
type catalogueTool struct {
	upstream string // the upstream's own name
	direct   bool   // may take the direct path
	// params is the tool as listed when some of its arguments travel in
	// Mcp-Param headers too (x-mcp-header), nil otherwise.
	params *mcp.Tool
}

type catalogueKey struct{ tenant, integration string }

// tenantCatalogue is what a view knows of one tenant's catalogue of one
// integration.
type tenantCatalogue struct {
	cat     *catalogue    // nil until listed once
	version int64         // the credential version cat was listed with
	listed  time.Time     // when cat was listed
	stale   bool          // the upstream or the credential changed since
	gen     uint64        // counts the changes (forget), so a listing in flight knows it is stale
	running chan struct{} // closed when the discovery in flight ends
	failed  time.Time     // when the last discovery failed
}

// catalogues are one view's catalogues, per tenant and shared by content.
type catalogues struct {
	mu       sync.RWMutex
	byTenant map[catalogueKey]*tenantCatalogue // guarded by mu
	interned map[[sha256.Size]byte]*catalogue  // guarded by mu
	routes   map[string]string                 // integration → its route's name; set at start
	route    map[string]string                 // route name → integration; set at start
	nonce    string                            // the random part of route names
}

func newCatalogues() catalogues {
	return catalogues{
		byTenant: map[catalogueKey]*tenantCatalogue{},
		interned: map[[sha256.Size]byte]*catalogue{},
		routes:   map[string]string{},
		route:    map[string]string{},
		nonce:    tenants.RandomToken()[:16],
	}
}

// addRoutes registers, for each integration of the view, the tool (and in
// a single-integration view the prompt) that calls of its tenants' tools
// are routed to.
func (v *view) addRoutes() {
	integrations := []string{v.only}
	if v.only == "" {
		integrations = v.g.reg.Names()
	}
	for _, integ := range integrations {
		name := "connectors-route-" + v.cats.nonce + "-" + integ
		v.cats.routes[integ], v.cats.route[name] = name, integ
		v.mcp.AddTool(mcp.Tool{Name: name, RawInputSchema: json.RawMessage(`{"type":"object"}`)}, v.routedCall(integ))
		if v.only != "" {
			v.mcp.AddPrompt(mcp.Prompt{Name: name}, v.routedPrompt)
		}
	}
}

// isRoute reports whether name is one of the view's route names.
func (v *view) isRoute(name string) bool {
	_, ok := v.cats.route[name]
	return ok
}

// routeCall is the tools/call hook: a call of a tool in the caller's
// catalogue goes to its integration's route.
func (v *view) routeCall(ctx context.Context, req *mcp.CallToolRequest) {
	req.Header = withoutRouted(req.Header)
	name := req.Params.Name
	if v.only == "" {
		if integ, ok := v.g.isConnectTool(name); ok {
			// Once linked the connect tool is no longer listed, but the
			// agent's retry of the link offer (or its call from a list
			// made before) is answered that the account is connected.
			if acc, err := v.g.access(ctx); err == nil && acc(integ) == accessLinked {
				req.Header.Set(routedHeader, linkedRoute)
				req.Params.Name = v.cats.routes[integ]
			}
			return
		}
	}
	integ, ok := v.integrationOf(name)
	if !ok {
		return
	}
	t, ok := v.tenantTool(ctx, integ, name)
	if !ok {
		return
	}
	req.Header.Set(routedHeader, t.upstream)
	req.Params.Name = v.cats.routes[integ]
	// The gateway offers no tasks (it does not declare the capability, and
	// mcp-go would keep every task it ran, unbounded, with no way for the
	// agent to read it): a task parameter is dropped and the call runs as
	// an ordinary one.
	req.Params.Task = nil
}

// routePrompt is the prompts/get hook: routeCall for prompts.
func (v *view) routePrompt(ctx context.Context, req *mcp.GetPromptRequest) {
	req.Header = withoutRouted(req.Header)
	if cat := v.callerCatalogue(ctx, v.only); cat != nil && cat.prompt[req.Params.Name] {
		req.Header.Set(routedHeader, req.Params.Name)
		req.Params.Name = v.cats.routes[v.only]
	}
}

// withoutRouted returns h (allocated when nil) without the routed header,
// which only the hooks may set.
func withoutRouted(h http.Header) http.Header {
	if h == nil {
		return http.Header{}
	}
	h.Del(routedHeader)
	return h
}

// errRoutedNotFound answers a route called by its own name: no hook put a
// listed name on the request.
var errRoutedNotFound = errors.New("tool not found")

// routedCall is the handler of integration's route: the call of the tool
// the hook found in the caller's catalogue (and only the hook sets the
// routed header).
func (v *view) routedCall(integration string) mcpserver.ToolHandlerFunc {
	srv := func() *mcpserver.MCPServer { return v.mcp }
	return func(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		upstream := req.Header.Get(routedHeader)
		switch upstream {
		case "":
			return nil, errRoutedNotFound
		case linkedRoute:
			return v.g.linked(ctx, integration, req) // link.go
		}
		return v.g.forward(srv, integration, upstream)(ctx, req)
	}
}

// routedPrompt is the handler of the single view's prompt route.
func (v *view) routedPrompt(ctx context.Context, req mcp.GetPromptRequest) (*mcp.GetPromptResult, error) {
	name := req.Header.Get(routedHeader)
	if name == "" {
		return nil, errRoutedNotFound
	}
	req.Params.Name = name
	return v.forwardPrompt(ctx, req)
}

// tenantTool returns the tool exposed as name in the calling tenant's
// catalogue of integration, when the tenant may call it: it holds a
// credential for integration, which is on for it, and its settings allow
// the tool (the rule tools/list applies).
func (v *view) tenantTool(ctx context.Context, integration, name string) (catalogueTool, bool) {
	id, ok := tenants.FromContext(ctx)
	acc, err := v.g.accessVersions(ctx)
	if !ok || err != nil {
		return catalogueTool{}, false
	}
	a, version := acc(integration)
	var t catalogueTool
	found := false
	if cat := v.routing(ctx, id.Tenant, integration, a, version); cat != nil {
		t, found = cat.byName[name]
	}
	if !found { // not in the catalogue this credential listed: wait for a listing
		cat := v.catalogueFor(ctx, id.Tenant, integration, a, version)
		if cat == nil {
			return catalogueTool{}, false
		}
		if t, found = cat.byName[name]; !found {
			return catalogueTool{}, false
		}
	}
	if settings, err := v.g.settings(ctx, id.Tenant); err != nil || !settings.AllowsTool(integration, t.upstream) {
		return catalogueTool{}, false // settings unreadable since access read them: closed
	}
	return t, true
}

// relistTimeout bounds a listing started in the background.
const relistTimeout = 30 * time.Second

// routing returns the catalogue a call is routed by, without waiting for
// a listing: tenant's catalogue of integration as last listed with the
// credential version given, also when a change was announced since or it
// is past catalogueTTL, in which case a listing starts in the background.
// A call made right after a list change (the upstream's, or another
// tenant's on a shared upstream) is then not held up by a tools/list
// upstream; a tool that is gone is refused by the upstream itself. nil
// when the tenant may not call integration or nothing was listed with
// this credential: the caller then waits for a listing (catalogueFor).
func (v *view) routing(ctx context.Context, tenant, integration string, a access, version int64) *catalogue {
	if a != accessLinked {
		return nil
	}
	v.cats.mu.RLock()
	e := v.cats.byTenant[catalogueKey{tenant, integration}]
	if e == nil || e.cat == nil || e.version != version {
		v.cats.mu.RUnlock()
		return nil
	}
	cat, now := e.cat, time.Now()
	relist := !e.fresh(version, now) && e.running == nil && now.Sub(e.failed) >= rediscoverAfter
	v.cats.mu.RUnlock()
	if id, ok := tenants.FromContext(ctx); relist && ok {
		// The caller's identity only: nothing of its request (its session,
		// its stream, its memo) is used once it has answered.
		go func() {
			ctx, cancel := context.WithTimeout(tenants.NewContext(context.Background(), id), relistTimeout)
			defer cancel()
			v.catalogueOf(ctx, tenant, integration, version, true)
		}()
	}
	return cat
}

// callerCatalogue is tenantCatalogue for the tenant of ctx.
func (v *view) callerCatalogue(ctx context.Context, integration string) *catalogue {
	id, ok := tenants.FromContext(ctx)
	acc, err := v.g.accessVersions(ctx)
	if !ok || err != nil {
		return nil
	}
	return v.tenantCatalogue(ctx, id.Tenant, integration, acc)
}

// tenantCatalogue returns tenant's catalogue of integration, listing it
// first when none is known for the tenant's credential; nil when the
// tenant may not use integration or it could not be listed. A credential
// that needs a new link is not listed with: its last catalogue is served.
func (v *view) tenantCatalogue(ctx context.Context, tenant, integration string, acc func(string) (access, int64)) *catalogue {
	a, version := acc(integration)
	return v.catalogueFor(ctx, tenant, integration, a, version)
}

// catalogueFor is tenantCatalogue for a tenant whose access to
// integration is a, on a credential of the version given.
func (v *view) catalogueFor(ctx context.Context, tenant, integration string, a access, version int64) *catalogue {
	if a != accessLinked && a != accessRelink {
		return nil
	}
	return v.catalogueOf(ctx, tenant, integration, version, a == accessLinked)
}

// cached returns tenant's catalogue of integration when it was listed with
// the credential version given and is fresh; it never lists.
func (v *view) cached(tenant, integration string, version int64) *catalogue {
	v.cats.mu.RLock()
	defer v.cats.mu.RUnlock()
	if e := v.cats.byTenant[catalogueKey{tenant, integration}]; e != nil && e.fresh(version, time.Now()) {
		return e.cat
	}
	return nil
}

// fresh reports whether e's catalogue may be served as it is to a caller
// whose credential has the version given: listed with it, and neither
// older than catalogueTTL nor announced changed (but for an announcement
// within relistAfter of the listing, which waits for the next use).
func (e *tenantCatalogue) fresh(version int64, now time.Time) bool {
	if e.cat == nil || e.version != version {
		return false
	}
	age := now.Sub(e.listed)
	return age < relistAfter || !e.stale && age < catalogueTTL
}

// catalogueOf returns tenant's catalogue of integration as listed with the
// credential version given, listing it (when list is set) through the
// tenant's connection when it was not. Concurrent callers share one
// listing. While a listing fails, the tenant's last catalogue is served.
func (v *view) catalogueOf(ctx context.Context, tenant, integration string, version int64, list bool) *catalogue {
	if cat := v.cached(tenant, integration, version); cat != nil {
		return cat
	}
	key := catalogueKey{tenant, integration}
	for {
		v.cats.mu.Lock()
		e := v.cats.byTenant[key]
		if e == nil {
			v.boundLocked()
			e = &tenantCatalogue{}
			v.cats.byTenant[key] = e
		}
		if e.fresh(version, time.Now()) {
			cat := e.cat // read before unlocking: a listing may replace it
			v.cats.mu.Unlock()
			return cat
		}
		if !list || time.Since(e.failed) < rediscoverAfter {
			cat := e.cat
			v.cats.mu.Unlock()
			return cat
		}
		if running := e.running; running != nil {
			v.cats.mu.Unlock()
			select {
			case <-running:
				// What that listing found; or, if its caller went away
				// before it found anything, this caller lists.
				continue
			case <-ctx.Done():
				return nil
			}
		}
		e.running = make(chan struct{})
		gen := e.gen
		v.cats.mu.Unlock()

		cat, err := v.list(ctx, integration)

		v.cats.mu.Lock()
		switch {
		case err == nil:
			v.keepLocked(e, cat, version, gen)
			e.failed = time.Time{}
		case ctx.Err() == nil:
			e.failed = time.Now()
		}
		close(e.running)
		e.running = nil
		cat = e.cat
		v.cats.mu.Unlock()
		if err != nil {
			level := slog.LevelWarn
			if vault.IsNotFound(err) || errors.Is(err, errNeedsLink) || ctx.Err() != nil {
				level = slog.LevelDebug
			}
			v.g.log.Log(ctx, level, "tool_discovery_failed", "tenantId", tenant, "integration", integration, "view", v.only, "error", err)
		} else {
			v.g.log.DebugContext(ctx, "integration_catalogue_listed", "tenantId", tenant, "integration", integration, "view", v.only,
				"tools", len(cat.tools), "prompts", len(cat.prompts))
		}
		return cat
	}
}

// keepLocked makes cat (or the interned catalogue of the same content) e's,
// as listed with the credential version given, from a listing that began
// at change count gen: stale if a change was announced since.
func (v *view) keepLocked(e *tenantCatalogue, cat *catalogue, version int64, gen uint64) {
	if shared, ok := v.cats.interned[cat.sum]; ok {
		cat = shared
	} else {
		v.cats.interned[cat.sum] = cat
	}
	if e.cat != cat {
		cat.refs++
		v.releaseLocked(e.cat)
	}
	e.cat, e.version, e.stale, e.listed = cat, version, e.gen != gen, time.Now()
}

func (v *view) releaseLocked(cat *catalogue) {
	if cat == nil {
		return
	}
	if cat.refs--; cat.refs <= 0 {
		delete(v.cats.interned, cat.sum)
	}
}

// boundLocked drops the idle tenant entries when there are too many.
func (v *view) boundLocked() {
	if len(v.cats.byTenant) < maxTenantCatalogues {
		return
	}
	for k, e := range v.cats.byTenant {
		if e.running == nil {
			v.releaseLocked(e.cat)
			delete(v.cats.byTenant, k)
		}
	}
}

// forget marks tenant's catalogue of integration stale (its upstream
// announced a change, or its credential changed): the next use lists it
// again. An empty integration is every integration of tenant. It reports
// whether any of them had been listed (and so may have been shown).
func (v *view) forget(tenant, integration string) (listed bool) {
	v.cats.mu.Lock()
	defer v.cats.mu.Unlock()
	for integ := range v.cats.routes {
		if integration == "" || integ == integration {
			if e := v.cats.byTenant[catalogueKey{tenant, integ}]; e != nil {
				listed = listed || e.cat != nil
				e.stale, e.failed = true, time.Time{}
				e.gen++
			}
		}
	}
	return listed
}

// prefixedFirst returns upstream's tools with those that carry
// integration's prefix already first: their exposed name is their own, and
// a tool without it whose exposed name is the same ("post" beside
// "slack_post") is the one marked (tools.MarkedName).
func prefixedFirst(integration string, upstream []mcp.Tool) []mcp.Tool {
	out := slices.Clone(upstream)
	slices.SortStableFunc(out, func(a, b mcp.Tool) int {
		pa, pb := tools.Prefixed(integration, a.Name), tools.Prefixed(integration, b.Name)
		switch {
		case pa == pb:
			return 0
		case pa:
			return -1
		}
		return 1
	})
	return out
}

// list lists integration's catalogue through the calling tenant's
// connection.
func (v *view) list(ctx context.Context, integration string) (*catalogue, error) {
	conn, err := v.g.conn(ctx, integration)
	if err != nil {
		return nil, err
	}
	cat := &catalogue{byName: map[string]catalogueTool{}, prompt: map[string]bool{}}
	caps := conn.Capabilities()
	if caps.Tools != nil || v.only == "" {
		upstream, err := conn.Tools(ctx)
		if err != nil {
			return nil, err
		}
		for _, t := range prefixedFirst(integration, upstream) {
			name := t.Name
			if v.isRoute(name) {
				continue
			}
			t.Name = v.expose(integration, name)
			if _, dup := cat.byName[t.Name]; dup && v.only == "" {
				t.Name = tools.MarkedName(integration, name)
			}
			if _, dup := cat.byName[t.Name]; dup {
				continue
			}
			if _, connect := v.g.isConnectTool(t.Name); connect && v.only == "" {
				continue // the aggregate's own tool of that name
			}
			ct := catalogueTool{upstream: name, direct: takesDirect(t)}
			if len(mcp.ExtractParamHeaderBindings(&t)) > 0 {
				ct.params = &t
			}
			cat.byName[t.Name] = ct
			cat.tools = append(cat.tools, t)
		}
		slices.SortFunc(cat.tools, func(a, b mcp.Tool) int { return cmp.Compare(a.Name, b.Name) })
	}
	if v.only != "" && caps.Prompts != nil {
		prompts, err := conn.Prompts(ctx)
		if err != nil {
			return nil, err
		}
		for _, p := range prompts {
			if v.isRoute(p.Name) || cat.prompt[p.Name] {
				continue
			}
			cat.prompt[p.Name] = true
			cat.prompts = append(cat.prompts, p)
		}
		slices.SortFunc(cat.prompts, func(a, b mcp.Prompt) int { return cmp.Compare(a.Name, b.Name) })
	}
	// The content address: the catalogue as the agent is shown it.
	raw, err := json.Marshal(struct {
		Tools   []mcp.Tool   `json:"tools"`
		Prompts []mcp.Prompt `json:"prompts"`
	}{cat.tools, cat.prompts})
	if err != nil {
		return nil, err
	}
	cat.sum = sha256.Sum256(raw)
	return cat, nil
}

// listTools is the tools/list answer of the calling tenant: the connect
// tools mcp-go kept (the tool filter decides those), and the tools of
// every integration of the view the tenant may use, as its own
// connections listed them.
func (v *view) listTools(ctx context.Context, kept []mcp.Tool) []mcp.Tool {
	out := slices.DeleteFunc(kept, func(t mcp.Tool) bool { return v.isRoute(t.Name) })
	id, ok := tenants.FromContext(ctx)
	acc, err := v.g.accessVersions(ctx)
	if !ok || err != nil {
		return out
	}
	settings, err := v.g.settings(ctx, id.Tenant)
	if err != nil { // unreadable since access read them: offer nothing
		return out
	}
	type usable struct {
		integration string
		a           access
		version     int64
	}
	var integrations []usable
	for integ := range v.cats.routes {
		if a, version := acc(integ); a == accessLinked || a == accessRelink {
			integrations = append(integrations, usable{integ, a, version})
		}
	}
	cats := make([]*catalogue, len(integrations))
	if len(integrations) == 1 {
		u := integrations[0]
		cats[0] = v.catalogueFor(ctx, id.Tenant, u.integration, u.a, u.version)
	} else {
		var wg sync.WaitGroup
		for i, u := range integrations {
			wg.Go(func() { cats[i] = v.catalogueFor(ctx, id.Tenant, u.integration, u.a, u.version) })
		}
		wg.Wait()
	}
	for i, cat := range cats {
		if cat == nil {
			continue
		}
		for _, t := range cat.tools {
			if settings.AllowsTool(integrations[i].integration, cat.byName[t.Name].upstream) {
				out = append(out, t)
			}
		}
	}
	slices.SortFunc(out, func(a, b mcp.Tool) int { return cmp.Compare(a.Name, b.Name) })
	return out
}

// listPrompts is the prompts/list answer of the calling tenant.
func (v *view) listPrompts(ctx context.Context) []mcp.Prompt {
	cat := v.callerCatalogue(ctx, v.only)
	if cat == nil {
		return []mcp.Prompt{}
	}
	return slices.Clone(cat.prompts)
}

// directTool returns the tool exposed as name in tenant's catalogue of
// integration when it may take the direct path: the catalogue was listed
// with the credential version given, and the tool takes the direct path. It never
// lists.
func (v *view) directTool(tenant, integration, name string, version int64) (catalogueTool, bool) {
	cat := v.cached(tenant, integration, version)
	if cat == nil {
		return catalogueTool{}, false
	}
	t, ok := cat.byName[name]
	return t, ok && t.direct
}

// catalogueCounts returns the number of distinct catalogues the view
// holds and of tenant entries.
func (v *view) catalogueCounts() (distinct, entries int) {
	v.cats.mu.RLock()
	defer v.cats.mu.RUnlock()
	return len(v.cats.interned), len(v.cats.byTenant)
}
