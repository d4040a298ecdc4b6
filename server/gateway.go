// Package server is the aggregating MCP server: one tool catalogue per
// tenant, built from the integrations that tenant holds a credential for,
// and every request forwarded to the tenant's own upstream connection with
// the tenant's own credential.
//
// # Overview
//
// A [Gateway] serves two kinds of MCP server, each an mcp-go server:
//
//   - the aggregate ([Gateway.MCPServer]), at /mcp and over stdio: the tools
//     of every integration the tenant has connected, named
//     {integration}_{tool};
//   - one per integration ([Gateway.Integration]), at /mcp/{integration}:
//     that upstream alone under its own names, with its resources, prompts,
//     completion, and the upstream's sampling and elicitation requests
//     carried to the agent.
//
// The tenant of a request comes from the identity that transport put into
// the context ([tenants.FromContext]); a request without one is refused.
// One function, [Gateway.allowed], decides what a tenant may list and call.
//
// Every call of an upstream tool follows one plan (plan.go): which
// integration, which credential, which connection, and the retry after
// the upstream refused a token. Three lanes use it: mcp-go's tool
// handlers, REST invoke ([Gateway.Invoke]), and the direct path
// ([Gateway.CallDirect]), which serves a plain tools/call of protocol
// 2026-07-28 to a tool of a 2026-07-28 upstream with arguments and result
// forwarded as bytes, without mcp-go's decoding and encoding on either
// leg.
//
// Tool and prompt catalogues are the tenant's own: discovered lazily per
// (tenant, integration) through the tenant's own connection, listed again
// when its credential changes or the upstream announces a change, and
// shared in memory only between tenants whose upstreams listed identical
// catalogues (catalogue.go). Resources are the tenant's own data, listed
// through the tenant's connection on every request and never shared.
package server

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/mark3labs/mcp-go/mcp"
	mcpserver "github.com/mark3labs/mcp-go/server"

	"github.com/connectors-gateway/connectors/audit"
	"github.com/connectors-gateway/connectors/limits"
	"github.com/connectors-gateway/connectors/metrics"
	"github.com/connectors-gateway/connectors/tenants"
	"github.com/connectors-gateway/connectors/tools"
	"github.com/connectors-gateway/connectors/vault"
)

// CredentialStore is what the gateway needs of a credential store.
type CredentialStore interface {
	Get(ctx context.Context, tenant, integration string) (vault.Credential, int64, error)
	Integrations(ctx context.Context, tenant string) ([]string, error)
}

// Upstreams hands out live upstream connections, one per (tenant,
// integration), started with the given credential template values.
type Upstreams interface {
	Conn(ctx context.Context, tenant string, in tools.Integration, vars map[string]string) (*tools.Conn, error)
}

// Refresher renews a tenant's access token that expired or that the
// upstream refused; oauth.Refresher is one. stale is the token that
// failed. It returns oauth.ErrNeedsReauth when only a new link can help.
type Refresher interface {
	Refresh(ctx context.Context, tenant, integration, stale string) (vault.Credential, error)
}

// Options configure a Gateway. Registry, Store and Upstreams are required.
type Options struct {
	Registry  *tools.Registry
	Store     CredentialStore
	Upstreams Upstreams
	// Refresher, if set, renews expired tokens before a call and, once,
	// a token the upstream refused (HTTP 401).
	Refresher Refresher
	// Settings, if set, holds tenants' settings (integrations turned off
	// or narrowed to some tools); nil: everything registered is allowed.
	Settings SettingsStore
	// Linker, if set, offers the link for integrations a tenant has not
	// linked: a connect tool in the aggregate, and the link (URL-mode
	// elicitation or text) when a call needs a new link.
	Linker Linker
	// Metrics and Usage, if set, count tool calls (by integration and
	// outcome) and each tenant's use.
	Metrics *metrics.Metrics
	Usage   *metrics.Usage
	// Limits, if set, holds tenants' tool calls to their rate limits and
	// quotas (limits.go); nil: no limits. Audit, if set, records the
	// first refusal of each limit's window.
	Limits *limits.Limiter
	Audit  *audit.Logger
	// Sealer seals the requestState of the calls the gateway bridges
	// between the protocol eras (replay.go), with the key every replica
	// shares; nil: a key of this process's own.
	Sealer  Sealer
	Logger  *slog.Logger // nil: discard
	Name    string       // server name in initialize; empty: "connectors"
	Version string       // empty: "dev"
}

// Gateway is the aggregating MCP server and the per-integration ones.
type Gateway struct {
	reg       *tools.Registry
	store     CredentialStore
	upstreams Upstreams
	refresher Refresher
	linker    Linker
	sealer    Sealer
	log       *slog.Logger

	settingsStore SettingsStore
	settingsCache settingsCache
	metrics       *metrics.Metrics
	usage         *metrics.Usage
	limits        *limits.Limiter
	stdioRefused  sync.Map // tenant → the minute (Unix/60) of its last stdio_processes refusal
	audit         *audit.Logger
	name          string
	version       string

	aggregate *view
	single    map[string]*view // integration → its own server
}

// New returns a Gateway.
func New(opts Options) *Gateway {
	g := &Gateway{
		reg:       opts.Registry,
		store:     opts.Store,
		upstreams: opts.Upstreams,
		refresher: opts.Refresher,
		linker:    opts.Linker,
		sealer:    opts.Sealer,
		log:       opts.Logger,

		settingsStore: opts.Settings,
		metrics:       opts.Metrics,
		usage:         opts.Usage,
		limits:        opts.Limits,
		audit:         opts.Audit,
		name:          opts.Name,
		version:       opts.Version,
		single:        map[string]*view{},
	}
	if g.log == nil {
		g.log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if g.name == "" {
		g.name = "connectors"
	}
	if g.version == "" {
		g.version = "dev"
	}
	if g.sealer == nil {
		key := make([]byte, tenants.BrowserSessionKeySize)
		_, _ = rand.Read(key)
		g.sealer, _ = tenants.NewBrowserSessions(key, nil) // never fails with a key of that size
	}
	g.aggregate = newAggregate(g)
	for _, in := range g.reg.All() {
		g.single[in.Name] = newSingle(g, in.Name)
	}
	return g
}

// NotifyToolsChanged tells every open session of tenant that its tool list
// changed (a credential was added, replaced or removed, or its settings
// changed), and lists the tenant's catalogues again when next used.
func (g *Gateway) NotifyToolsChanged(tenant string) {
	g.aggregate.forget(tenant, "")
	g.aggregate.notify(tenant, mcp.MethodNotificationToolsListChanged, nil)
	for _, v := range g.single {
		v.forget(tenant, "")
		v.notify(tenant, mcp.MethodNotificationToolsListChanged, nil)
	}
}

var errNoIdentity = errors.New("no authenticated tenant on this request")

// connected returns the registered integrations tenant holds a credential for.
func (g *Gateway) connected(ctx context.Context, tenant string) ([]string, error) {
	names, err := g.store.Integrations(ctx, tenant)
	if err != nil {
		return nil, err
	}
	return slices.DeleteFunc(names, func(n string) bool {
		_, ok := g.reg.Get(n)
		return !ok
	}), nil
}

// access is what a tenant may do with one integration.
type access int

const (
	accessNone     access = iota // registered, no credential
	accessLinked                 // a credential to call with
	accessRelink                 // a credential whose refresh failed for good
	accessDisabled               // not registered, or turned off for the tenant
	// accessUnreadable: the credential could not be read or opened
	// (Vault down, a record that no longer decrypts). Neither its tools
	// nor its connect tool are offered: the tenant may well be linked.
	accessUnreadable
)

// allowed is the one decision behind every list and every call: a tenant
// may use an integration when the integration is registered and the tenant
// holds a credential for it. It asks the store for the one credential
// (which the store caches, and a call reads anyway) rather than listing
// the tenant's integrations, which Vault cannot cache; each integration is
// asked about once per request.
func (g *Gateway) allowed(ctx context.Context) (func(integration string) bool, error) {
	acc, err := g.access(ctx)
	if err != nil {
		return nil, err
	}
	return func(integration string) bool { a := acc(integration); return a == accessLinked || a == accessRelink }, nil
}

// access is allowed with the credential's state: linked, or in need of a
// new link.
func (g *Gateway) access(ctx context.Context) (func(integration string) access, error) {
	acc, err := g.accessVersions(ctx)
	if err != nil {
		return nil, err
	}
	return func(integration string) access { a, _ := acc(integration); return a }, nil
}

// accessVersions is access that also returns the version of the
// credential the decision was made on (0 without one): the version a
// tenant's catalogue must have been listed with.
func (g *Gateway) accessVersions(ctx context.Context) (func(integration string) (access, int64), error) {
	id, ok := tenants.FromContext(ctx)
	if !ok {
		return nil, errNoIdentity
	}
	// Settings that cannot be read fail the whole decision (closed).
	settings, err := g.settings(ctx, id.Tenant)
	if err != nil {
		return nil, err
	}
	type decision struct {
		a       access
		version int64
	}
	seen := map[string]decision{}
	return func(integration string) (access, int64) {
		if d, done := seen[integration]; done {
			return d.a, d.version
		}
		d := decision{a: accessDisabled}
		if _, known := g.reg.Get(integration); known && settings.Enabled(integration) {
			d.a = accessNone
			cred, version, err := g.storeGet(ctx, id.Tenant, integration)
			switch {
			case err == nil && cred.Status == vault.StatusNeedsReauth:
				d = decision{accessRelink, version}
			case err == nil:
				d = decision{accessLinked, version}
			case !vault.IsNotFound(err):
				d.a = accessUnreadable
				g.log.WarnContext(ctx, "credential_check_failed", "tenantId", id.Tenant, "integration", integration, "error", err)
			}
		}
		seen[integration] = d
		return d.a, d.version
	}, nil
}

// conn returns the calling tenant's live connection to integration,
// started with the tenant's current credential.
func (g *Gateway) conn(ctx context.Context, integration string) (*tools.Conn, error) {
	p, err := g.newPlan(ctx, integration)
	if err != nil {
		return nil, err
	}
	return p.connect(ctx)
}

// forward returns the handler of one upstream tool: it calls the tool on
// the calling tenant's connection and returns the upstream's result as is.
// A token the upstream refuses is refreshed and the call made once more.
// The call is admitted first within the tenant's limits (limits.go).
func (g *Gateway) forward(srv func() *mcpserver.MCPServer, integration, upstreamTool string) mcpserver.ToolHandlerFunc {
	return g.measured(integration, g.limited(integration, g.call(srv, integration, upstreamTool)))
}

// measured counts a tool handler's calls: by integration and outcome in
// the metrics, by tenant in the usage figures.
func (g *Gateway) measured(integration string, h mcpserver.ToolHandlerFunc) mcpserver.ToolHandlerFunc {
	if g.metrics == nil && g.usage == nil {
		return h
	}
	return func(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		start := time.Now()
		res, err := h(ctx, req)
		outcome := metrics.OutcomeOK
		switch {
		case err != nil && (vault.IsNotFound(err) || errors.Is(err, errNoIdentity) || isRefusal(err)), limitedResult(res):
			outcome = metrics.OutcomeDenied
		case err != nil:
			outcome = metrics.OutcomeError
		case res != nil && res.IsError:
			outcome = metrics.OutcomeToolError
		}
		g.count(ctx, integration, outcome, start)
		return res, err
	}
}

// call is the handler of one upstream tool, unmeasured: the plan of the
// call (plan.go), with the upstream's progress and log notifications
// relayed to the agent. A retry of the gateway's link offer goes upstream
// without the offer's state and answers.
func (g *Gateway) call(srv func() *mcpserver.MCPServer, integration, upstreamTool string) mcpserver.ToolHandlerFunc {
	return func(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		if err := takeLinkRetry(ctx, integration, &req.Params); err != nil {
			return nil, err
		}
		p, err := g.newPlan(ctx, integration)
		var conn *tools.Conn
		if err == nil {
			conn, err = p.connect(ctx)
		}
		if err != nil {
			return g.unavailable(ctx, integration, err)
		}
		req.Params.Name = upstreamTool
		r := newRelay(ctx, srv())
		retry := retried(req.Params.MultiRoundTripParams)
		res, err := g.callUpstream(ctx, p, conn, r, integration, &req)
		r.flush()
		switch {
		case errors.Is(err, errNeedsLink):
			return g.linkResult(ctx, integration)
		case err != nil && ctx.Err() != nil:
			return nil, ctx.Err()
		case errors.Is(err, errReplayState), err != nil && retry && tools.Answered(err):
			// The gateway or the upstream refused a round's answers or its
			// requestState: a protocol error, which the agent must see as
			// one (SEP-2322).
			return nil, err
		case isRefusal(err): // the upstream's own limit (limits.go)
			r, _ := errors.AsType[*limits.Refusal](err)
			return refusedAnswer(ctx, r)
		case err != nil:
			// Upstream failures (crash, timeout) are tool execution errors:
			// the model sees them and can decide what to do.
			return mcp.NewToolResultError(g.agentText(ctx, integration, err)), nil
		}
		return res, nil
	}
}

// callUpstream makes the call req upstream across the protocol eras: a
// 2026-07-28 agent's call of an initialize-era upstream is replayed round
// by round (replay.go), the input rounds of a 2026-07-28 upstream are put
// to an initialize-era agent as requests (bridge.go), and anything else
// goes as it is.
func (g *Gateway) callUpstream(ctx context.Context, p *plan, conn *tools.Conn, r relay, integration string, req *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
	ctx = withAgent(ctx) // bridge.go
	rp, err := g.replayFor(ctx, conn.Modern(), integration, req.Params.Name, req.Params.Arguments, &req.Params.MultiRoundTripParams)
	if err != nil {
		return nil, err
	}
	r.replay = rp
	once := func(ctx context.Context, rt mcp.MultiRoundTripParams) (*mcp.CallToolResult, error) {
		req.Params.MultiRoundTripParams = rt
		return run(ctx, p, conn, func(ctx context.Context, conn *tools.Conn) (*mcp.CallToolResult, error) {
			return conn.CallTool(ctx, *req, r)
		}, refused)
	}
	if rp != nil {
		var res *mcp.CallToolResult
		next, asked, err := rp.round(ctx, g.sealer, func(ctx context.Context) (err error) {
			res, err = once(ctx, mcp.MultiRoundTripParams{})
			return err
		})
		if asked && err == nil {
			return &mcp.CallToolResult{Result: asksInput, MultiRoundTripResult: next}, nil
		}
		return res, err
	}
	res, err := once(ctx, req.Params.MultiRoundTripParams)
	if err == nil {
		res, err = answerRounds(ctx, r, res, toolNeeds, once) // bridge.go
	}
	return res, err
}

// count is the accounting of one call, on every lane: by integration and
// outcome in the metrics, by tenant in the usage figures (with the outcome
// and latency in the day's).
func (g *Gateway) count(ctx context.Context, integration, outcome string, start time.Time) {
	took := time.Since(start)
	g.metrics.ToolCall(integration, outcome, took)
	if id, ok := tenants.FromContext(ctx); ok {
		g.usage.CallResult(id.Tenant, integration, outcome, took)
	}
}

// unavailable answers a call whose connection could not be made.
func (g *Gateway) unavailable(ctx context.Context, integration string, err error) (*mcp.CallToolResult, error) {
	switch {
	case errors.Is(err, errNeedsLink), vault.IsNotFound(err) && g.linker != nil && g.linker.CanLink(integration):
		return g.linkResult(ctx, integration)
	case vault.IsNotFound(err), errors.Is(err, errNoIdentity):
		return nil, err
	case storeFailure(err):
		// A JSON-RPC error naming VaultError or VaultEncryptionError, not
		// a tool result the model might take for the upstream's answer.
		return nil, credentialUnavailable(integration, err)
	case isRefusal(err): // the tenant's stdio processes, all busy (limits.go)
		r, _ := errors.AsType[*limits.Refusal](err)
		g.noteStdioRefusal(ctx, integration, r)
		return refusedAnswer(ctx, r)
	}
	return mcp.NewToolResultError(fmt.Sprintf("integration %s is unavailable: %s", integration, g.agentText(ctx, integration, err))), nil
}
