package main

import (
	"fmt"
	"math"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/connectors-gateway/connectors/limits"
	"github.com/connectors-gateway/connectors/vault/embedded"
)

// Config is everything the environment says about how to run. Each field
// says what empty means.
type Config struct {
	// DataDir holds the embedded store and its key file
	// (CONNECTORS_DATA_DIR; empty: ".connectors").
	DataDir string
	// MasterKey wraps the embedded store's data keys
	// (CONNECTORS_MASTER_KEY, 32 bytes as base64 or 64 hex digits; empty: a key file in DataDir,
	// created with mode 0600 on first start).
	MasterKey []byte
	// IntegrationsFile adds and overrides integrations
	// (CONNECTORS_CONFIG or --config; empty: the built-in presets only).
	IntegrationsFile string
	// AllowedOrigins are browser origins allowed besides loopback
	// (CONNECTORS_ALLOWED_ORIGINS, comma-separated).
	AllowedOrigins []string
	// AllowedHosts are Host names accepted on loopback connections besides
	// localhost: a same-machine reverse proxy's public name
	// (CONNECTORS_ALLOWED_HOSTS, comma-separated).
	AllowedHosts []string
	// OIDCIssuer enables OAuth bearer tokens from this OpenID provider
	// besides API keys (CONNECTORS_OIDC_ISSUER; empty: API keys only).
	OIDCIssuer string
	// Resource is the gateway's canonical resource URI, the audience its
	// tokens must carry, e.g. https://gateway.example.com/mcp
	// (CONNECTORS_RESOURCE; required with OIDCIssuer).
	Resource string
	// OIDCTenantClaim names the claim holding the tenant
	// (CONNECTORS_OIDC_TENANT_CLAIM; empty: "tenant_id").
	OIDCTenantClaim string
	// OIDCAdminRole is the role or scope that makes a caller an admin, read
	// from OIDCAdminClaim (CONNECTORS_OIDC_ADMIN_ROLE,
	// CONNECTORS_OIDC_ADMIN_CLAIM; empty role: no token is an admin; empty
	// claim: roles, scope and scp).
	OIDCAdminRole, OIDCAdminClaim string
	// OIDCScopes are the scopes MCP access needs (CONNECTORS_OIDC_SCOPES,
	// comma-separated; empty: none).
	OIDCScopes []string
	// OIDCAdminScopes are the scopes admin routes need besides the admin
	// role (CONNECTORS_OIDC_ADMIN_SCOPES, comma-separated; empty: none).
	OIDCAdminScopes []string
	// BrowserClientID and BrowserClientSecret are the gateway's OAuth
	// client at the OpenID provider, for browser sign-in at /auth/login
	// (CONNECTORS_BROWSER_CLIENT_ID, CONNECTORS_BROWSER_CLIENT_SECRET;
	// empty: no browser sign-in). It needs BrowserSessionKey and PublicURL.
	BrowserClientID, BrowserClientSecret string
	// BrowserSessionKey seals session cookies and OAuth link states; the
	// same on every replica (CONNECTORS_BROWSER_SESSION_KEY, 32 bytes as
	// base64 or 64 hex digits; required for browser sign-in; empty without
	// it: a random key per process, so link flows must start and end on
	// one replica).
	BrowserSessionKey []byte
	// SessionKeyFromFile: BrowserSessionKey is the embedded store's key
	// file's (signin.go), not one replicas share.
	SessionKeyFromFile bool
	// PublicURL is the gateway's external base URL, e.g.
	// https://gateway.example.com; the sign-in callback is
	// {PublicURL}/auth/callback (CONNECTORS_PUBLIC_URL).
	PublicURL string
	// OAuthRedirectURIs are the places a tenant may be sent back to after
	// linking an account, the redirect_uri of /oauth/authorize, compared
	// exactly (CONNECTORS_OAUTH_REDIRECT_URIS, comma-separated; empty: only
	// the gateway's own page). Each integration's OAuth client comes from
	// {NAME}_CLIENT_ID, {NAME}_CLIENT_SECRET and {NAME}_REDIRECT_URI.
	OAuthRedirectURIs []string
	// Refresh tunes the token refresher (CONNECTORS_REFRESH_MARGIN,
	// _JITTER, _MIN_BACKOFF, _MAX_BACKOFF, _TIMEOUT: Go durations;
	// _WORKERS, _MAX_FAILURES: counts; empty: the refresher's defaults, 5m
	// before expiry, 1m jitter, 30s to 30m backoff, 5s for a provider to
	// answer, 4 workers, 5 failures).
	Refresh RefreshConfig
	// VaultAddr selects the HashiCorp Vault backend (VAULT_ADDR; empty:
	// the embedded store). A Vault HA cluster's nodes may be listed
	// separated by commas: the store follows the active node.
	VaultAddr string
	// VaultCACert is the PEM file of the CA that signed Vault's
	// certificate (VAULT_CACERT).
	VaultCACert string
	// VaultToken authenticates to Vault (VAULT_TOKEN); empty: AppRole with
	// VaultRoleID and VaultSecretID (VAULT_ROLE_ID, VAULT_SECRET_ID).
	VaultToken, VaultRoleID, VaultSecretID string
	// VaultKVEngine and VaultTransitEngine are the mounts
	// (VAULT_KV_ENGINE, VAULT_TRANSIT_ENGINE; empty: secret and transit).
	VaultKVEngine, VaultTransitEngine string
	// VaultCacheTTL bounds how long another gateway's change to a credential
	// can go unseen here (CONNECTORS_VAULT_CACHE_TTL, a Go duration; empty:
	// 5s; "0s" or negative: no cache).
	VaultCacheTTL time.Duration
	// VaultTimeout bounds each request to Vault: a Vault that does not
	// answer within it is reported unreachable (CONNECTORS_VAULT_TIMEOUT, a
	// Go duration; empty: hashicorp.DefaultTimeout, 1s).
	VaultTimeout time.Duration
	// AuditLog is where the credential audit trail goes
	// (CONNECTORS_AUDIT_LOG: "stderr", the default, beside the log;
	// "stdout"; or a file, appended to and fsync'd after every record).
	AuditLog string
	// AuditSigningKey is the file of the Ed25519 key that signs the
	// trail's checkpoints (CONNECTORS_AUDIT_SIGNING_KEY; empty:
	// audit-signing.key in the data dir, made on first use).
	AuditSigningKey string
	// AuditFsync is when a file trail's records are fsync'd
	// (CONNECTORS_AUDIT_FSYNC: "always", the default, before the operation
	// is answered; or a window such as "5ms", within which they are).
	AuditFsync string
	// PprofAddr, if set, serves Go's profiler (net/http/pprof) on this
	// address, for profiling under load; keep it on loopback
	// (CONNECTORS_PPROF_ADDR, e.g. 127.0.0.1:6060; empty: off).
	PprofAddr string
	// NoDirect turns the direct path off: every tools/call goes through
	// mcp-go on both legs (CONNECTORS_DIRECT_CALLS=off; default on).
	NoDirect bool
	// LogFormat is "json" (default) or "text" (CONNECTORS_LOG_FORMAT).
	LogFormat string
	// SessionIdleTTL ends MCP sessions (initialize era) idle this long with
	// no request running (CONNECTORS_SESSION_IDLE_TTL, a Go duration;
	// empty: 30m).
	SessionIdleTTL time.Duration
	// SessionMaxAge is how long a sealed MCP session (initialize era, with
	// CONNECTORS_BROWSER_SESSION_KEY) lasts at most, whichever replica
	// serves it (CONNECTORS_SESSION_MAX_AGE; empty: 24h).
	SessionMaxAge time.Duration
	// MaxSessions, MaxSessionsPerTenant and MaxSessionsPerIdentity bound
	// the MCP sessions open at once, in all, per tenant and per identity
	// (tenant and subject) (CONNECTORS_MAX_SESSIONS,
	// CONNECTORS_MAX_SESSIONS_PER_TENANT,
	// CONNECTORS_MAX_SESSIONS_PER_IDENTITY; empty: 10000, 1000 and 100).
	MaxSessions, MaxSessionsPerTenant, MaxSessionsPerIdentity int
	// MaxRequestsPerSession bounds the requests one MCP session has
	// running at once (CONNECTORS_MAX_REQUESTS_PER_SESSION; empty: 64).
	MaxRequestsPerSession int
	// HTTPReadTimeout bounds the reading of a request body, first byte to
	// last (CONNECTORS_HTTP_READ_TIMEOUT; empty: 15s). HTTPWriteTimeout is
	// the longest a client may take to accept each part (64 KiB) of an
	// answer or event stream, so that one that stops reading is cut off;
	// a quiet stream or a long call is not (CONNECTORS_HTTP_WRITE_TIMEOUT;
	// empty: 15s). HTTPIdleTimeout closes a keep-alive connection with no
	// request for that long (CONNECTORS_HTTP_IDLE_TIMEOUT; empty: 20s).
	// All Go durations.
	HTTPReadTimeout, HTTPWriteTimeout, HTTPIdleTimeout time.Duration
	// DrainTimeout is how long, on SIGTERM or SIGINT, the calls in flight
	// may take to finish before they are answered with an error
	// (CONNECTORS_DRAIN_TIMEOUT, a Go duration; empty: 25s; "0s": none).
	DrainTimeout time.Duration
	// UsageFlushInterval is how often this replica adds the usage it
	// counted to the tenants' figures in the store, which every replica
	// reports (CONNECTORS_USAGE_FLUSH_INTERVAL, a Go duration of 10ms or
	// more; empty: 10s): see shared.go.
	UsageFlushInterval time.Duration
	// TenantConfigFile turns on the seed's tenant config file, synced into
	// the store when serve starts (ENABLE_TENANT_CONFIG_FILE=true; empty: off).
	TenantConfigFile bool
	// TenantConfigPath is that file (TENANT_CONFIG_PATH; empty: config/tenants.json).
	TenantConfigPath string
	// Cluster tells this replica's changes to the others and theirs to it,
	// through memberlist (package cluster); see ClusterConfig.
	Cluster ClusterConfig
	// Limits are every tenant's default rate limits and quotas of tool
	// calls, which an admin's override replaces field by field
	// (CONNECTORS_LIMIT_CALLS_PER_MINUTE, _BURST, _CONCURRENT_CALLS,
	// _DAILY_CALLS, _MONTHLY_CALLS; empty or 0: no limit): see limits.go.
	Limits limits.Limits
	// Fair bounds this replica's tool calls in flight, shared among
	// tenants in turn when they reach it (CONNECTORS_MAX_CONCURRENT_CALLS,
	// CONNECTORS_CALL_QUEUE_WAIT).
	Fair limits.FairOptions
}

// ClusterConfig is how replicas sharing one Vault find each other, so that
// a change through one (a credential deleted, an integration turned off,
// a key rotated, a tenant off-boarded) drops every replica's caches and
// reaches every replica's sessions within a second or two, not when the
// caches expire.
type ClusterConfig struct {
	// Bind is the host:port memberlist listens on, UDP and TCP
	// (CONNECTORS_CLUSTER_BIND, e.g. 0.0.0.0:7946; empty: no cluster).
	// It needs VAULT_ADDR: replicas share the Vault, never an embedded store.
	Bind string
	// Advertise is the host:port the others reach this replica at
	// (CONNECTORS_CLUSTER_ADVERTISE; empty: Bind's, or a private address
	// of this machine when Bind's host is 0.0.0.0).
	Advertise string
	// Peers are the replicas to join, host:port, comma-separated; a DNS
	// name is resolved again on every join, so a Kubernetes headless
	// service names them all (CONNECTORS_CLUSTER_PEERS; empty: this replica
	// waits to be joined).
	Peers []string
	// Key encrypts and authenticates every gossip packet: the same on
	// every replica, 16, 24 or 32 random bytes in base64
	// (CONNECTORS_CLUSTER_KEY; required with Bind: there is no
	// unencrypted mode).
	Key []byte
}

// configFromEnv reads Config through getenv: the plain values here, the
// others by concern in the read functions below, in this order (the first
// mistake found is the one reported), then the checks across them.
func configFromEnv(getenv func(string) string) (Config, error) {
	c := Config{
		DataDir:            getenv("CONNECTORS_DATA_DIR"),
		IntegrationsFile:   getenv("CONNECTORS_CONFIG"),
		VaultAddr:          getenv("VAULT_ADDR"), // one address, or several separated by commas
		VaultToken:         getenv("VAULT_TOKEN"),
		VaultCACert:        getenv("VAULT_CACERT"),
		VaultRoleID:        getenv("VAULT_ROLE_ID"),
		VaultSecretID:      getenv("VAULT_SECRET_ID"),
		VaultKVEngine:      getenv("VAULT_KV_ENGINE"),
		VaultTransitEngine: getenv("VAULT_TRANSIT_ENGINE"),
		OIDCIssuer:         getenv("CONNECTORS_OIDC_ISSUER"),
		Resource:           getenv("CONNECTORS_RESOURCE"),
		OIDCTenantClaim:    getenv("CONNECTORS_OIDC_TENANT_CLAIM"),
		OIDCAdminRole:      getenv("CONNECTORS_OIDC_ADMIN_ROLE"),
		OIDCAdminClaim:     getenv("CONNECTORS_OIDC_ADMIN_CLAIM"),
		OIDCScopes:         list(getenv("CONNECTORS_OIDC_SCOPES")),
		OIDCAdminScopes:    list(getenv("CONNECTORS_OIDC_ADMIN_SCOPES")),
		LogFormat:          getenv("CONNECTORS_LOG_FORMAT"),
		AuditLog:           getenv("CONNECTORS_AUDIT_LOG"),
		AuditSigningKey:    getenv("CONNECTORS_AUDIT_SIGNING_KEY"),
		AuditFsync:         getenv("CONNECTORS_AUDIT_FSYNC"),
		PprofAddr:          getenv("CONNECTORS_PPROF_ADDR"),
		TenantConfigPath:   getenv("TENANT_CONFIG_PATH"),
		AllowedOrigins:     list(getenv("CONNECTORS_ALLOWED_ORIGINS")),
		AllowedHosts:       list(getenv("CONNECTORS_ALLOWED_HOSTS")),
		OAuthRedirectURIs:  list(getenv("CONNECTORS_OAUTH_REDIRECT_URIS")),
	}
	for _, read := range []func(*Config, func(string) string) error{
		readFeatures, readTimeouts, readBounds, readVault, readBrowser, readCluster, readLimits,
	} {
		if err := read(&c, getenv); err != nil {
			return c, err
		}
	}
	return c, c.check()
}

// readFeatures reads the switches (direct calls, the tenant config file)
// and where the embedded store lives and its master key.
func readFeatures(c *Config, getenv func(string) string) error {
	switch v := getenv("CONNECTORS_DIRECT_CALLS"); v {
	case "", "on":
	case "off":
		c.NoDirect = true
	default:
		return fmt.Errorf("CONNECTORS_DIRECT_CALLS: %q is neither on nor off", v)
	}
	if c.TenantConfigPath == "" {
		c.TenantConfigPath = filepath.Join("config", "tenants.json")
	}
	if v := getenv("ENABLE_TENANT_CONFIG_FILE"); v != "" {
		on, err := strconv.ParseBool(v)
		if err != nil {
			return fmt.Errorf("ENABLE_TENANT_CONFIG_FILE must be true or false, not %q", v)
		}
		c.TenantConfigFile = on
	}
	if c.DataDir == "" {
		c.DataDir = ".connectors"
	}
	if v := getenv("CONNECTORS_MASTER_KEY"); v != "" {
		key, err := embedded.ParseMasterKey(v)
		if err != nil {
			return fmt.Errorf("CONNECTORS_MASTER_KEY: %w", err)
		}
		c.MasterKey = key
	}
	return nil
}

// readTimeouts reads the refresher's durations, the session idle time,
// the HTTP timeouts and the drain.
func readTimeouts(c *Config, getenv func(string) string) error {
	for name, d := range map[string]*time.Duration{
		"CONNECTORS_REFRESH_MARGIN":      &c.Refresh.Margin,
		"CONNECTORS_REFRESH_JITTER":      &c.Refresh.Jitter,
		"CONNECTORS_REFRESH_MIN_BACKOFF": &c.Refresh.MinBackoff,
		"CONNECTORS_REFRESH_MAX_BACKOFF": &c.Refresh.MaxBackoff,
		"CONNECTORS_REFRESH_TIMEOUT":     &c.Refresh.Timeout,
	} {
		if err := duration(getenv, name, d, 0, `a duration such as "5m"`); err != nil {
			return err
		}
	}
	if err := duration(getenv, "CONNECTORS_SESSION_IDLE_TTL", &c.SessionIdleTTL, time.Second, `a duration of a second or more, such as "30m"`); err != nil {
		return err
	}
	if err := duration(getenv, "CONNECTORS_SESSION_MAX_AGE", &c.SessionMaxAge, time.Minute, `a duration of a minute or more, such as "24h"`); err != nil {
		return err
	}
	c.HTTPReadTimeout, c.HTTPWriteTimeout, c.HTTPIdleTimeout = 15*time.Second, 15*time.Second, 20*time.Second
	for name, d := range map[string]*time.Duration{
		"CONNECTORS_HTTP_READ_TIMEOUT":  &c.HTTPReadTimeout,
		"CONNECTORS_HTTP_WRITE_TIMEOUT": &c.HTTPWriteTimeout,
		"CONNECTORS_HTTP_IDLE_TIMEOUT":  &c.HTTPIdleTimeout,
	} {
		if err := duration(getenv, name, d, 10*time.Millisecond, `a duration of 10ms or more, such as "15s"`); err != nil {
			return err
		}
	}
	c.UsageFlushInterval = defaultUsageFlush
	if err := duration(getenv, "CONNECTORS_USAGE_FLUSH_INTERVAL", &c.UsageFlushInterval, 10*time.Millisecond, `a duration of 10ms or more, such as "10s"`); err != nil {
		return err
	}
	c.DrainTimeout = 25 * time.Second
	return duration(getenv, "CONNECTORS_DRAIN_TIMEOUT", &c.DrainTimeout, 0, `a duration such as "25s"`)
}

// readBounds reads the bounds on sessions and on the refresher's work, and
// checks the redirect allowlist.
func readBounds(c *Config, getenv func(string) string) error {
	for name, n := range map[string]*int{
		"CONNECTORS_MAX_SESSIONS":              &c.MaxSessions,
		"CONNECTORS_MAX_SESSIONS_PER_TENANT":   &c.MaxSessionsPerTenant,
		"CONNECTORS_MAX_SESSIONS_PER_IDENTITY": &c.MaxSessionsPerIdentity,
		"CONNECTORS_MAX_REQUESTS_PER_SESSION":  &c.MaxRequestsPerSession,
	} {
		if err := count(getenv, name, n, 10_000_000); err != nil {
			return err
		}
	}
	for name, n := range map[string]*int{
		"CONNECTORS_REFRESH_WORKERS":      &c.Refresh.Workers,
		"CONNECTORS_REFRESH_MAX_FAILURES": &c.Refresh.MaxFailures,
	} {
		if err := count(getenv, name, n, 1000); err != nil {
			return err
		}
	}
	return redirectURIs(c.OAuthRedirectURIs)
}

// readVault reads the HashiCorp Vault backend's cache and timeout.
func readVault(c *Config, getenv func(string) string) error {
	if err := duration(getenv, "CONNECTORS_VAULT_CACHE_TTL", &c.VaultCacheTTL, math.MinInt64, `a duration such as "5s"`); err != nil {
		return err
	}
	if getenv("CONNECTORS_VAULT_CACHE_TTL") != "" && c.VaultCacheTTL == 0 {
		c.VaultCacheTTL = -1 // "no cache" (zero means the default in hashicorp.Config)
	}
	return duration(getenv, "CONNECTORS_VAULT_TIMEOUT", &c.VaultTimeout, 1, `a positive duration such as "1s"`)
}

// readBrowser reads browser sign-in and checks it has what it needs.
func readBrowser(c *Config, getenv func(string) string) error {
	c.BrowserClientID = getenv("CONNECTORS_BROWSER_CLIENT_ID")
	c.BrowserClientSecret = getenv("CONNECTORS_BROWSER_CLIENT_SECRET")
	c.PublicURL = strings.TrimSuffix(getenv("CONNECTORS_PUBLIC_URL"), "/")
	if v := getenv("CONNECTORS_BROWSER_SESSION_KEY"); v != "" {
		key, err := embedded.ParseMasterKey(v)
		if err != nil {
			return fmt.Errorf("CONNECTORS_BROWSER_SESSION_KEY: %w", err)
		}
		c.BrowserSessionKey = key
	}
	if c.BrowserClientID != "" {
		if c.BrowserSessionKey == nil {
			return fmt.Errorf("CONNECTORS_BROWSER_SESSION_KEY is required with CONNECTORS_BROWSER_CLIENT_ID: 32 bytes as base64 or 64 hex digits")
		}
		if c.OIDCIssuer == "" || c.PublicURL == "" {
			return fmt.Errorf("CONNECTORS_BROWSER_CLIENT_ID is set: CONNECTORS_OIDC_ISSUER and CONNECTORS_PUBLIC_URL are needed too")
		}
	}
	return nil
}

// check checks what the read functions cannot alone.
func (c Config) check() error {
	if c.OIDCIssuer != "" && c.Resource == "" {
		return fmt.Errorf("CONNECTORS_OIDC_ISSUER is set: CONNECTORS_RESOURCE must name the gateway's canonical resource URI (the audience of its tokens), e.g. https://gateway.example.com/mcp")
	}
	switch c.LogFormat {
	case "", "json", "text":
	default:
		return fmt.Errorf("CONNECTORS_LOG_FORMAT must be json or text, not %q", c.LogFormat)
	}
	return nil
}

// duration sets *d to the variable name, if set, a Go duration of at
// least lowest; want describes one for the error.
func duration(getenv func(string) string, name string, d *time.Duration, lowest time.Duration, want string) error {
	v := getenv(name)
	if v == "" {
		return nil
	}
	parsed, err := time.ParseDuration(v)
	if err != nil || parsed < lowest {
		return fmt.Errorf("%s: %q is not %s", name, v, want)
	}
	*d = parsed
	return nil
}

// count sets *n to the variable name, if set, a count from 1 to most.
func count(getenv func(string) string, name string, n *int, most int) error {
	v := getenv(name)
	if v == "" {
		return nil
	}
	parsed, err := strconv.Atoi(v)
	if err != nil || parsed < 1 || parsed > most {
		return fmt.Errorf("%s: %q is not a count from 1 to %d", name, v, most)
	}
	*n = parsed
	return nil
}

// RefreshConfig tunes the token refresher; zero fields take its defaults.
type RefreshConfig struct {
	Margin, Jitter, MinBackoff, MaxBackoff time.Duration
	// Timeout bounds one call to a provider's token endpoint.
	Timeout              time.Duration
	Workers, MaxFailures int
}

func (c Config) storePath() string   { return filepath.Join(c.DataDir, "connectors.db") }
func (c Config) keyFilePath() string { return filepath.Join(c.DataDir, "master.key") }

// list splits a comma-separated value, dropping empty items.
func list(v string) []string {
	var out []string
	for item := range strings.SplitSeq(v, ",") {
		if item = strings.TrimSpace(item); item != "" {
			out = append(out, item)
		}
	}
	return out
}
