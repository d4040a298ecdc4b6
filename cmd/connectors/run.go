package main

import (
	"slices"

	"context"
	"crypto/rand"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"github.com/hashicorp/vault/api"
	"golang.org/x/oauth2"

	"github.com/connectors-gateway/connectors/audit"
	"github.com/connectors-gateway/connectors/console"
	"github.com/connectors-gateway/connectors/limits"
	"github.com/connectors-gateway/connectors/metrics"
	"github.com/connectors-gateway/connectors/oauth"
	"github.com/connectors-gateway/connectors/server"
	"github.com/connectors-gateway/connectors/tenants"
	"github.com/connectors-gateway/connectors/tools"
	"github.com/connectors-gateway/connectors/transport"
	"github.com/connectors-gateway/connectors/vault"
	"github.com/connectors-gateway/connectors/vault/embedded"
	"github.com/connectors-gateway/connectors/vault/hashicorp"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

const usage = `connectors — a multi-tenant MCP gateway

Usage:
  connectors serve [--addr 127.0.0.1:3000] [--config integrations.json]
  connectors stdio --tenant TENANT [--config integrations.json]
  connectors credential put    --tenant T --integration I   < credential.json
  connectors credential get    --tenant T --integration I
  connectors credential delete --tenant T --integration I
  connectors credential list   --tenant T
  connectors apikey create --tenant T [--admin] [--name NAME]
  connectors apikey revoke ID
  connectors apikey list [--tenant T] [--json]
  connectors key rotate --tenant T [--retire-old]
  connectors tenant offboard --tenant T
  connectors integrations [--config integrations.json]
  connectors integrations prepare [--config integrations.json] [NAME ...]
  connectors console link --tenant T | --admin [--ttl 10m]   (a one-time sign-in link)
  connectors audit verify [--public-key KEY] FILE...   (the trail's chain and signed checkpoints)
  connectors audit key                                  (the public key that verifies them)
  connectors doctor [--config integrations.json] [--timeout 3s]   (what serve would start from, checked)

Through a running gateway's API (CONNECTORS_GATEWAY_URL, CONNECTORS_API_KEY):
  connectors remote tenants [--json]
  connectors remote health  [--json]
  connectors remote integrations --tenant T [--json]
  connectors remote put    --tenant T --integration I [--json] < credential.json
  connectors remote delete --tenant T --integration I [--json]
  connectors remote rotate --tenant T [--json]
  connectors remote offboard --tenant T [--json]
  connectors remote limits get --tenant T [--json]
  connectors remote limits set --tenant T [--calls-per-minute N] [--burst N]
      [--concurrent-calls N] [--daily-calls N] [--monthly-calls N] [--json] [< limits.json]

credential.json has the shape of the HTTP API's body:
  {"accessToken": "...", "refreshToken": "...", "tokenType": "bearer",
   "expiresIn": 3600, "scopes": ["..."], "extra": {"workspace_id": "..."}}

Environment: CONNECTORS_DATA_DIR, CONNECTORS_MASTER_KEY, CONNECTORS_CONFIG,
CONNECTORS_ALLOWED_ORIGINS, CONNECTORS_ALLOWED_HOSTS, CONNECTORS_LOG_FORMAT,
CONNECTORS_OIDC_*, CONNECTORS_RESOURCE, CONNECTORS_HTTP_{READ,WRITE,IDLE}_TIMEOUT,
CONNECTORS_DRAIN_TIMEOUT, CONNECTORS_CLUSTER_{BIND,ADVERTISE,PEERS,KEY},
CONNECTORS_LIMIT_{CALLS_PER_MINUTE,BURST,CONCURRENT_CALLS,DAILY_CALLS,MONTHLY_CALLS},
ENABLE_TENANT_CONFIG_FILE, TENANT_CONFIG_PATH, VAULT_ADDR
(see README and .env.example; .env in the working directory is read too).
`

// usageError is a mistake in the command line; it exits 2.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func exitCode(err error) int {
	var u usageError
	if errors.As(err, &u) {
		return 2
	}
	return 1
}

// Main is the program: main() builds one and runs it; tests drive it the
// same way, with their own streams and environment.
type Main struct {
	Stdin          io.Reader
	Stdout, Stderr io.Writer
	Getenv         func(string) string

	// DotEnv, if set, is a .env file Run reads first (dotenv.go): "" for
	// none; NewMain's is .env in the working directory.
	DotEnv string

	// Listening, if set, receives the HTTP address once serve listens.
	Listening func(addr string)

	closers []func() error
	audit   *audit.Logger            // the audit trail, once opened
	metrics *metrics.Metrics         // serve's metrics; nil for other commands
	usage   *metrics.Usage           // serve's per-tenant figures
	shared  *sharedUsage             // flushes usage to the store (shared.go)
	pool    *tools.Pool              // the gateway's upstreams, once started
	limiter *limits.Limiter          // the tenants' rate limits (limits.go)
	sealer  *tenants.BrowserSessions // see stateSealer

	// operator marks an operator command (credential, apikey, key,
	// tenant), whose audit trail goes only where it is configured (openAudit).
	operator bool
}

// NewMain returns a Main on the process's own streams and environment.
func NewMain() *Main {
	return &Main{Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr, Getenv: os.Getenv, DotEnv: ".env"}
}

// Close releases what Run opened, last opened first.
func (m *Main) Close() error {
	var errs []error
	for i := len(m.closers) - 1; i >= 0; i-- {
		errs = append(errs, m.closers[i]())
	}
	m.closers = nil
	return errors.Join(errs...)
}

func (m *Main) onClose(f func() error) { m.closers = append(m.closers, f) }

// Run runs the subcommand args[0] with the rest of args.
func (m *Main) Run(ctx context.Context, args []string) error {
	if len(args) == 0 {
		fmt.Fprint(m.Stderr, usage)
		return usageError{"no subcommand"}
	}
	if err := m.loadDotEnv(); err != nil {
		return err
	}
	if args[0] == "doctor" { // doctor.go: it reports a configuration that does not parse
		return m.doctor(ctx, args[1:])
	}
	cfg, err := configFromEnv(m.Getenv)
	if err != nil {
		return err
	}
	// Operator commands act as the person at the terminal: their audit
	// records say so.
	// Operator commands are recorded as cli:$USER (cli:unknown when the
	// environment names no user, as in many containers).
	user := m.Getenv("USER")
	if user == "" {
		user = "unknown"
	}
	operator := tenants.NewContext(ctx, tenants.Identity{Subject: "cli:" + user})
	switch args[0] {
	case "credential", "apikey", "key", "tenant":
		m.operator = true
	}
	switch cmd, rest := args[0], args[1:]; cmd {
	case "serve":
		return m.serve(ctx, cfg, rest)
	case "stdio":
		return m.stdio(ctx, cfg, rest)
	case "credential":
		return m.credential(operator, cfg, rest)
	case "apikey":
		return m.apikey(operator, cfg, rest)
	case "key":
		return m.key(operator, cfg, rest)
	case "tenant":
		return m.tenant(operator, cfg, rest)
	case "integrations":
		if len(rest) > 0 && rest[0] == "prepare" {
			return m.prepare(ctx, cfg, rest[1:]) // prepare.go
		}
		return m.integrations(cfg, rest)
	case "console":
		return m.console(cfg, rest) // signin.go
	case "audit":
		return m.auditCmd(cfg, rest) // auditcmd.go
	case "remote":
		return m.remote(ctx, rest)
	case "help", "-h", "--help":
		fmt.Fprint(m.Stdout, usage)
		return nil
	default:
		fmt.Fprint(m.Stderr, usage)
		return usageError{fmt.Sprintf("unknown subcommand %q", cmd)}
	}
}

func (m *Main) flags(name string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(m.Stderr)
	return fs
}

func parse(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		return usageError{err.Error()}
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Sprintf("%s: unexpected argument %q", fs.Name(), fs.Arg(0))}
	}
	return nil
}

func (m *Main) logger(cfg Config) *slog.Logger {
	opts := &slog.HandlerOptions{Level: slog.LevelInfo}
	if cfg.LogFormat == "text" {
		return slog.New(slog.NewTextHandler(m.Stderr, opts))
	}
	return slog.New(slog.NewJSONHandler(m.Stderr, opts))
}

// quietLogger is for operator commands: their output is the answer, so
// only errors are logged (the store's development-use warning is for serve).
func (m *Main) quietLogger() *slog.Logger {
	return slog.New(slog.NewTextHandler(m.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))
}

// openStore opens the configured credential store: HashiCorp Vault when
// VAULT_ADDR is set, else the embedded store. Every credential operation
// is recorded in the audit trail and, when serving, the metrics.
func (m *Main) openStore(cfg Config, log *slog.Logger) (vault.Backend, error) {
	trail, err := m.openAudit(cfg)
	if err != nil {
		return nil, err
	}
	obs := storeObserver{trail: trail, metrics: m.metrics, usage: m.usage, backend: metrics.BackendEmbedded}
	if cfg.VaultAddr != "" {
		obs.backend = metrics.BackendVault
		return m.openVault(cfg, obs, log)
	}
	return m.openEmbedded(cfg, obs, log)
}

// openEmbedded opens the embedded store in the data directory.
func (m *Main) openEmbedded(cfg Config, obs vault.Observer, log *slog.Logger) (vault.Backend, error) {
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("creating data directory: %w", err)
	}
	if m.operator && gatewayAnswers(cfg) { // adminsock.go: no need to wait for the lock
		return nil, fmt.Errorf("opening embedded store %s: %w (a running gateway holds it)", cfg.storePath(), embedded.ErrLocked)
	}
	st, err := embedded.Open(cfg.storePath(), &embedded.Options{
		MasterKey: cfg.MasterKey,
		KeyFile:   cfg.keyFilePath(),
		Logger:    log,
		Observer:  obs,
	})
	if err != nil {
		return nil, err
	}
	m.onClose(st.Close)
	if st.Created() && m.operator {
		abs, _ := filepath.Abs(cfg.storePath())
		fmt.Fprintf(m.Stderr, "created a new empty store at %s\n", abs)
	}
	return st, nil
}

// openVault opens the HashiCorp Vault backend. Vault's usual TLS
// variables (VAULT_CACERT, VAULT_CLIENT_CERT, ...) apply; VAULT_CACERT
// also as the configuration has it (Config.VaultCACert).
func (m *Main) openVault(cfg Config, obs vault.Observer, log *slog.Logger) (vault.Backend, error) {
	apiCfg := api.DefaultConfig()
	if apiCfg.Error != nil {
		return nil, fmt.Errorf("Vault client configuration: %w", apiCfg.Error)
	}
	if cfg.VaultCACert != "" {
		if err := apiCfg.ConfigureTLS(&api.TLSConfig{CACert: cfg.VaultCACert}); err != nil {
			return nil, fmt.Errorf("VAULT_CACERT: %w", err)
		}
	}
	hc := hashicorp.Config{
		Addr:         cfg.VaultAddr,
		Token:        cfg.VaultToken,
		KVMount:      cfg.VaultKVEngine,
		TransitMount: cfg.VaultTransitEngine,
		API:          apiCfg,
		CacheTTL:     cfg.VaultCacheTTL,
		Timeout:      cfg.VaultTimeout,
		Logger:       log,
		Observer:     obs,
	}
	if cfg.VaultToken == "" {
		if cfg.VaultRoleID == "" || cfg.VaultSecretID == "" {
			return nil, errors.New("VAULT_ADDR is set: give VAULT_TOKEN, or VAULT_ROLE_ID and VAULT_SECRET_ID for AppRole")
		}
		hc.AppRole = &hashicorp.AppRole{RoleID: cfg.VaultRoleID, SecretID: cfg.VaultSecretID}
	}
	st, err := hashicorp.Open(hc)
	if err != nil {
		return nil, err
	}
	m.onClose(st.Close)
	return st, nil
}

// registry builds the integration registry: presets plus the config file.
func registry(cfg Config) (*tools.Registry, error) {
	ints := tools.Presets()
	if cfg.IntegrationsFile != "" {
		var err error
		if ints, err = tools.LoadConfig(cfg.IntegrationsFile, ints); err != nil {
			return nil, err
		}
	}
	return tools.NewRegistry(ints...)
}

// open opens what every gateway serves from: the integration registry
// and the credential store.
func (m *Main) open(cfg Config, log *slog.Logger) (*tools.Registry, vault.Backend, error) {
	reg, err := registry(cfg)
	if err != nil {
		return nil, nil, err
	}
	st, err := m.openStore(cfg, log)
	if err != nil {
		return nil, nil, err
	}
	return reg, st, nil
}

// gateway wires registry, store, upstream pool and, if changes is set,
// the link flow into the MCP gateway, and binds relay to it. The pool and
// the link flow were built before the gateway and tell its sessions
// through relay (see sessionRelay).
func (m *Main) gateway(log *slog.Logger, reg *tools.Registry, st vault.Backend, relay *sessionRelay, changes *credentialChanges) *server.Gateway {
	opts := server.Options{Registry: reg, Store: st, Settings: st, Logger: log, Version: version}
	if changes != nil {
		opts.Linker, opts.Refresher = changes.linker()
	}
	opts.Metrics, opts.Usage = m.metrics, m.usage
	opts.Limits, opts.Audit = m.limiter, m.audit
	if m.sealer != nil {
		opts.Sealer = m.sealer
	}
	pool := tools.NewPool(&tools.PoolOptions{
		Logger: log,
		// The integration's OAuth client secret never reaches an upstream,
		// but no answer may carry it either (one quoting a misconfigured
		// environment, say).
		Secrets: func(integration string) []string {
			return []string{m.Getenv(envPrefix(integration) + "_CLIENT_SECRET")}
		},
		OnNotification: relay.UpstreamNotification,
	})
	m.onClose(func() error { pool.Close(); return nil })
	opts.Upstreams = pool
	m.pool = pool
	g := server.New(opts)
	relay.bind(g)
	return g
}

// serve runs the gateway over HTTP until ctx ends, then drains it. It
// reads top to bottom: listen, open registry and store, build the
// credential changes (the link flow and the refresher, which tell the
// sessions through relay), the gateway, what runs beside it, and the HTTP
// routes.
func (m *Main) serve(ctx context.Context, cfg Config, args []string) error {
	ln, log, err := m.listen(ctx, &cfg, args)
	if err != nil {
		return err
	}
	if err := m.startTracing(log); err != nil { // tracing.go
		return err
	}
	defer ln.Close()
	if err := sessionKey(&cfg); err != nil { // signin.go
		return err
	}
	base := cfg.PublicURL
	if base == "" {
		base = "http://" + ln.Addr().String()
	}
	reg, st, err := m.open(cfg, log)
	if err != nil {
		return err
	}
	relay := new(sessionRelay)
	changes, err := m.credentialChanges(cfg, base, reg, st, relay, log)
	if err != nil {
		return err
	}
	if _, err := m.stateSealer(cfg, log); err != nil {
		return err
	}
	m.startLimits(ctx, cfg)
	g := m.gateway(log, reg, st, relay, changes)
	keys := tenants.NewAPIKeys(st)
	replicas, err := m.joinCluster(cfg, st, reg, keys, relay, changes, log)
	if err != nil {
		return err
	}
	if err := m.background(ctx, cfg, g, reg, st, changes, log); err != nil {
		return err
	}
	auth, err := m.authenticator(ctx, cfg, keys)
	if err != nil {
		return err
	}
	auth = withSocketAuth(cfg, auth) // adminsock.go
	var issuers []string
	if cfg.OIDCIssuer != "" {
		issuers = []string{cfg.OIDCIssuer}
	}
	browser, err := m.browser(ctx, cfg, st, log)
	if err != nil {
		return err
	}
	mcp := m.mcpHandler(cfg, g, changes, replicas, log)
	h := transport.NewHTTP(transport.HTTPOptions{
		Browser:              browser,
		OAuth:                changes.flow,
		Credentials:          credentialRoutes(st, reg, g, changes, keys, m.limiter),
		Invoke:               g,
		APIKeys:              apiKeyRoutes(keys, changes),
		Console:              m.tenantConsole(cfg, changes.flow, log),
		Audit:                m.audit,
		Metrics:              m.metrics,
		Usage:                m.usage,
		UsageTotals:          m.shared.Tenant,
		UsageDaily:           m.shared.Daily,
		MCP:                  mcp,
		Auth:                 auth,
		Resource:             cfg.Resource,
		AuthorizationServers: issuers,
		Scopes:               cfg.OIDCScopes,
		AdminScopes:          cfg.OIDCAdminScopes,
		AllowedOrigins:       cfg.AllowedOrigins,
		AllowedHosts:         cfg.AllowedHosts,
		ReadTimeout:          cfg.HTTPReadTimeout,
		WriteTimeout:         cfg.HTTPWriteTimeout,
		Ready:                st.Ping,
		Logger:               log,
	})
	defer m.serveAdminSocket(cfg, h, keys, log)() // adminsock.go
	return m.serveHTTP(ctx, cfg, ln, h, log)
}

// mcpHandler is the gateway's MCP endpoint over HTTP. With the key
// replicas share, session IDs are sealed, so that any replica serves any
// session (server's sealedsessions.go; a key of this process's own would
// seal them for nothing), and a session's DELETE is told to the others
// (replicas, nil without a cluster), whose DELETEs end it here.
func (m *Main) mcpHandler(cfg Config, g *server.Gateway, changes *credentialChanges, replicas *replicaChanges, log *slog.Logger) *server.Handler {
	var sessionSealer server.Sealer
	if cfg.BrowserSessionKey != nil && !cfg.SessionKeyFromFile {
		sessionSealer = m.sealer
	}
	h := g.Handler(server.HTTPOptions{
		Sealer:                 sessionSealer,
		SessionEnded:           changes.peers.SessionEnded,
		SessionIdleTTL:         cfg.SessionIdleTTL,
		SessionMaxAge:          cfg.SessionMaxAge,
		MaxSessions:            cfg.MaxSessions,
		MaxSessionsPerTenant:   cfg.MaxSessionsPerTenant,
		MaxSessionsPerIdentity: cfg.MaxSessionsPerIdentity,
		MaxRequestsPerSession:  cfg.MaxRequestsPerSession,
		Direct:                 direct(cfg, g),
		Audit:                  m.audit,
		Logger:                 log,
	})
	if replicas != nil {
		replicas.SetEndSession(h.EndSession)
	}
	return h
}

// listen parses serve's flags into cfg, sets up the log, the GC target,
// the metrics and the profiler, and listens on the address.
func (m *Main) listen(ctx context.Context, cfg *Config, args []string) (net.Listener, *slog.Logger, error) {
	fs := m.flags("serve")
	addr := fs.String("addr", "127.0.0.1:3000", "listen address `host:port`")
	fs.StringVar(&cfg.IntegrationsFile, "config", cfg.IntegrationsFile, "integrations config `file`")
	if err := parse(fs, args); err != nil {
		return nil, nil, err
	}
	log := m.logger(*cfg)
	if m.Getenv("GOGC") == "" {
		// The gateway's live heap is small (tens of MiB at 100,000
		// tenants) and every call allocates: collecting at 5× the live
		// heap instead of 2× takes about a fifth off its CPU per call
		// (BENCHMARKS.md). GOGC in the environment still decides.
		debug.SetGCPercent(400)
	}
	m.metrics, m.usage = metrics.New(), metrics.NewUsage(0)
	if cfg.PprofAddr != "" {
		if err := servePprof(ctx, cfg.PprofAddr, log); err != nil {
			return nil, nil, err
		}
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return nil, nil, err
	}
	return ln, log, nil
}

// background syncs the tenant config file, which must succeed before
// serving, and starts what runs beside the HTTP server: the claim sweeper
// (Vault's), the gauges, the refresher and the schedule of the stored
// credentials, the file's among them.
func (m *Main) background(ctx context.Context, cfg Config, g *server.Gateway, reg *tools.Registry, st vault.Backend, changes *credentialChanges, log *slog.Logger) error {
	if cfg.TenantConfigFile {
		if err := syncTenantConfig(ctx, cfg, st, reg, log); err != nil {
			return err
		}
	}
	if sweeper, ok := st.(claimSweeper); ok {
		go sweepClaims(ctx, sweeper, log)
	}
	m.metrics.ActiveSessions(g.ActiveSessions)
	m.metrics.UpstreamProcesses(m.pool.Processes)
	if changes.refresher != nil {
		m.metrics.RefreshQueue(changes.refresher.QueueLen)
		go func() { _ = changes.refresher.Run(ctx) }()
		go changes.ScheduleStored(ctx, st, log)
		go changes.health.run(ctx)
	}
	m.shared = startSharedUsage(m.usage, st, cfg.UsageFlushInterval, log)
	m.onClose(func() error { m.shared.stop(); return nil })
	m.shareLimits(ctx, cfg.UsageFlushInterval, st, &changes.peers, log) // limitsquota.go
	return nil
}

// serveHTTP serves h on ln until ctx ends, then shuts down.
func (m *Main) serveHTTP(ctx context.Context, cfg Config, ln net.Listener, h *transport.HTTP, log *slog.Logger) error {
	// Body reads and writes are bounded per request (transport.exchange):
	// the server's own ReadTimeout and WriteTimeout would cut event streams
	// and long calls.
	srv := &http.Server{Handler: h, ReadHeaderTimeout: min(10*time.Second, cfg.HTTPReadTimeout), IdleTimeout: cfg.HTTPIdleTimeout}
	log.Info("gateway_listening", "addr", ln.Addr().String(), "mcp", "http://"+ln.Addr().String()+"/mcp")
	if m.Listening != nil {
		m.Listening(ln.Addr().String())
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	return m.shutdown(cfg, srv, h, log)
}

// shutdownGrace is how long, after the drain, the handlers it answered or
// ended have to return before their connections are closed under them.
const shutdownGrace = 5 * time.Second

// shutdown stops serve gracefully: the drain (new requests refused, calls
// in flight finished or, at the drain time, answered with an error,
// streams ended), then the HTTP server and the upstreams. A handler that
// does not return in time has its connection closed: that is logged, not
// a failure of the shutdown, which has done what it must.
func (m *Main) shutdown(cfg Config, srv *http.Server, h *transport.HTTP, log *slog.Logger) error {
	srv.SetKeepAlivesEnabled(false) // every answer from now on closes its connection
	drain, cancel := context.WithTimeout(context.Background(), cfg.DrainTimeout)
	cut := h.Drain(drain)
	cancel()
	closing, cancel := context.WithTimeout(context.Background(), shutdownGrace)
	defer cancel()
	_ = h.Close(closing)
	if err := srv.Shutdown(closing); err != nil {
		log.Warn("gateway_shutdown_forced", "error", err)
		_ = srv.Close()
	}
	m.pool.Close()
	m.shared.close(closing) // the calls drained are counted: flush them
	log.Info("gateway_stopped", "calls_cut", cut)
	return nil
}

// authenticator is how HTTP callers prove who they are: API keys, and
// OAuth bearer tokens from the OpenID provider when one is configured.
func (m *Main) authenticator(ctx context.Context, cfg Config, apiKeys *tenants.APIKeys) (transport.Authenticator, error) {
	keys := transport.APIKeyAuth{Keys: apiKeys}
	if cfg.OIDCIssuer == "" {
		return keys, nil
	}
	v, err := tenants.NewOIDCVerifier(ctx, tenants.OIDCConfig{
		Issuer:         cfg.OIDCIssuer,
		Audience:       cfg.Resource,
		TenantClaim:    cfg.OIDCTenantClaim,
		AdminRole:      cfg.OIDCAdminRole,
		AdminClaim:     cfg.OIDCAdminClaim,
		RequiredScopes: cfg.OIDCScopes,
	})
	if err != nil {
		return nil, fmt.Errorf("OpenID provider %s: %w", cfg.OIDCIssuer, err)
	}
	return transport.Chain{keys, transport.OIDCAuth{Verifier: v}}, nil
}

// stateSealer returns the sealer of the state the gateway hands out and
// takes back on any replica: OAuth link flows' and bridged calls' input
// rounds' (server.Options.Sealer), with CONNECTORS_BROWSER_SESSION_KEY, or
// a key of this process's own when it is not set.
func (m *Main) stateSealer(cfg Config, log *slog.Logger) (*tenants.BrowserSessions, error) {
	if m.sealer != nil {
		return m.sealer, nil
	}
	key := cfg.BrowserSessionKey
	if key == nil {
		key = make([]byte, tenants.BrowserSessionKeySize)
		_, _ = rand.Read(key)
		log.Warn("oauth_state_key_ephemeral", "message", "CONNECTORS_BROWSER_SESSION_KEY is not set: OAuth link flows and the input rounds of bridged calls must start and end on this process")
	}
	sealer, err := tenants.NewBrowserSessions(key, nil)
	if err != nil {
		return nil, err
	}
	m.sealer = sealer
	return sealer, nil
}

// linkFlow sets up the OAuth link flow of providers.
func (m *Main) linkFlow(cfg Config, base string, st oauth.FlowStore, providers map[string]*oauth.Provider, callbacks map[string]string, onLinked func(string, string, vault.Credential), log *slog.Logger) (*oauth.Flow, error) {
	sealer, err := m.stateSealer(cfg, log)
	if err != nil {
		return nil, err
	}
	return oauth.NewFlow(oauth.FlowOptions{
		Providers:    providers,
		Store:        st,
		Sealer:       sealer,
		Callbacks:    callbacks,
		RedirectURIs: append(slices.Clone(cfg.OAuthRedirectURIs), console.ReturnPath),
		PublicURL:    base,
		OnLinked:     onLinked,
		Logger:       log,
	})
}

// browser sets up browser sign-in on the process's one sealer: sign-in
// links (signin.go), spent once through claims, and sign-in at the
// OpenID provider when a browser client is configured.
func (m *Main) browser(ctx context.Context, cfg Config, claims vault.Claims, log *slog.Logger) (*transport.Browser, error) {
	sessions, err := m.stateSealer(cfg, log)
	if err != nil {
		return nil, err
	}
	bc := transport.BrowserConfig{
		Sessions: sessions,
		Claims:   claims,
		Secure:   strings.HasPrefix(cfg.PublicURL, "https://"),
		Logger:   log,
	}
	if u, err := url.Parse(cfg.PublicURL); err == nil && u.Host != "" {
		bc.Origins = []string{u.Scheme + "://" + u.Host}
	}
	if cfg.BrowserClientID == "" {
		return transport.NewBrowser(bc)
	}
	provider, err := oidc.NewProvider(ctx, cfg.OIDCIssuer)
	if err != nil {
		return nil, fmt.Errorf("OpenID provider %s: %w", cfg.OIDCIssuer, err)
	}
	// ID tokens: audience is the client, and they carry no scopes.
	verifier, err := tenants.NewOIDCVerifier(ctx, tenants.OIDCConfig{
		Issuer:      cfg.OIDCIssuer,
		Audience:    cfg.BrowserClientID,
		TenantClaim: cfg.OIDCTenantClaim,
		AdminRole:   cfg.OIDCAdminRole,
		AdminClaim:  cfg.OIDCAdminClaim,
	})
	if err != nil {
		return nil, fmt.Errorf("OpenID provider %s: %w", cfg.OIDCIssuer, err)
	}
	bc.OAuth2 = &oauth2.Config{
		ClientID:     cfg.BrowserClientID,
		ClientSecret: cfg.BrowserClientSecret,
		Endpoint:     provider.Endpoint(),
		RedirectURL:  cfg.PublicURL + "/auth/callback",
		Scopes:       []string{oidc.ScopeOpenID, "profile"},
	}
	bc.Verifier = verifier
	return transport.NewBrowser(bc)
}

func (m *Main) stdio(ctx context.Context, cfg Config, args []string) error {
	fs := m.flags("stdio")
	tenant := fs.String("tenant", "", "the tenant this process serves (required)")
	fs.StringVar(&cfg.IntegrationsFile, "config", cfg.IntegrationsFile, "integrations config `file`")
	if err := parse(fs, args); err != nil {
		return err
	}
	if err := tenants.ValidateID(*tenant); err != nil {
		return usageError{fmt.Sprintf("stdio --tenant: %v", err)}
	}
	// stdout carries the protocol: logs go to stderr only.
	log := m.logger(cfg)
	if err := m.startTracing(log); err != nil { // tracing.go
		return err
	}
	reg, st, err := m.open(cfg, log)
	if err != nil {
		return err
	}
	m.startLimits(ctx, cfg)
	g := m.gateway(log, reg, st, new(sessionRelay), nil)
	id := tenants.Identity{Tenant: *tenant, Subject: "stdio"}
	err = g.ServeStdio(ctx, id, m.Stdin, m.Stdout)
	if errors.Is(err, context.Canceled) || errors.Is(err, io.EOF) {
		return nil
	}
	return err
}

func (m *Main) integrations(cfg Config, args []string) error {
	fs := m.flags("integrations")
	fs.StringVar(&cfg.IntegrationsFile, "config", cfg.IntegrationsFile, "integrations config `file`")
	if err := parse(fs, args); err != nil {
		return err
	}
	reg, err := registry(cfg)
	if err != nil {
		return err
	}
	for _, in := range reg.All() {
		up := in.Upstream.URL
		if up == "" {
			up = in.Upstream.Command
		}
		fmt.Fprintf(m.Stdout, "%-16s %-14s %s\n", in.Name, in.Category, up)
	}
	return nil
}

// direct is the gateway's direct path, unless the configuration turns it
// off.
func direct(cfg Config, g *server.Gateway) server.Director {
	if cfg.NoDirect {
		return nil
	}
	return g
}
