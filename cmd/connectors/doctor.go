package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/url"
	"path/filepath"
	"strings"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"

	"github.com/connectors-gateway/connectors/tools"
)

// doctor runs "connectors doctor": it checks what serve would start from
// (the configuration, the OpenID provider, the store, the audit trail,
// each integration's upstream, each OAuth client) and prints one line a check, "ok", "warn" or "FAIL", each
// problem with its fix on the same line. It fails when any check FAILs.
// It changes nothing, and never prints a secret: variables are named,
// never shown, and URLs lose their query and userinfo.
func (m *Main) doctor(ctx context.Context, args []string) error {
	fs := m.flags("doctor")
	config := fs.String("config", m.Getenv("CONNECTORS_CONFIG"), "integrations config `file`")
	timeout := fs.Duration("timeout", 3*time.Second, "bound on each network check")
	if err := parse(fs, args); err != nil {
		return err
	}
	r := &doctorReport{w: m.Stdout}
	cfg, reg := m.doctorConfig(r, *config)
	if reg != nil {
		doctorIssuer(ctx, r, cfg.OIDCIssuer, *timeout)
		m.doctorStore(ctx, r, cfg, *timeout) // doctorstore.go
		m.doctorAudit(r, cfg)                // doctoraudit.go
		m.doctorUpstreams(ctx, r, reg, *timeout)
		m.doctorOAuth(r, cfg, reg)
	}
	if r.failed > 0 {
		return fmt.Errorf("doctor: %d check(s) failed", r.failed)
	}
	return nil
}

// doctorReport prints the checks' lines and counts the failures.
type doctorReport struct {
	w      io.Writer
	failed int
}

func (r *doctorReport) ok(check, format string, args ...any) {
	r.line("ok", check, fmt.Sprintf(format, args...))
}

// warn reports what serve starts with but works less well for, and its fix.
func (r *doctorReport) warn(check, problem, fix string) {
	r.line("warn", check, problem+" — fix: "+fix)
}

// fail reports what keeps serve from starting or working, and its fix.
func (r *doctorReport) fail(check, problem, fix string) {
	r.failed++
	r.line("FAIL", check, problem+" — fix: "+fix)
}

// line prints one check on one line: an error quoting an answer's body
// may hold line breaks.
func (r *doctorReport) line(level, check, text string) {
	fmt.Fprintf(r.w, "%-4s  %-22s %s\n", level, check, strings.Join(strings.Fields(text), " "))
}

// doctorConfig checks the configuration as serve reads it: the
// environment, the integrations file, and the values serve refuses to
// start with. It returns the registry, nil when the rest cannot be
// checked.
func (m *Main) doctorConfig(r *doctorReport, file string) (Config, *tools.Registry) {
	cfg, err := configFromEnv(m.Getenv)
	if err != nil { // configFromEnv's messages name the variable, never a secret's value
		r.fail("config", err.Error(), "correct that variable in the environment or .env (README: Environment); nothing else was checked")
		return cfg, nil
	}
	cfg.IntegrationsFile = file
	reg, err := registry(cfg)
	if err != nil {
		r.fail("config.integrations", err.Error(), "correct the integrations file (README: Integrations); nothing else was checked")
		return cfg, nil
	}
	source := "the presets"
	if file != "" {
		source = "the presets and " + file
	}
	r.ok("config", "the environment parses; %d integrations from %s", len(reg.All()), source)
	if cfg.VaultAddr == "" {
		m.doctorSessionKey(r, cfg)
	}
	if cfg.TenantConfigFile {
		if tc, err := loadTenantConfig(cfg, reg); err != nil { // tenantconfig.go; its errors never quote a value
			r.fail("config.tenant_file", err.Error()+" (serve refuses to start)", "correct "+cfg.TenantConfigPath+", or unset ENABLE_TENANT_CONFIG_FILE")
		} else {
			r.ok("config.tenant_file", "%s: %d tenants", cfg.TenantConfigPath, len(tc.Tenants))
		}
	}
	if cfg.PublicURL != "" {
		if err := secureURL(cfg.PublicURL); err != nil {
			r.fail("config.public_url", "CONNECTORS_PUBLIC_URL "+err.Error(), "give the gateway's https:// address (plain http only on loopback)")
		}
	}
	for _, u := range cfg.OAuthRedirectURIs {
		if err := secureURL(u); err != nil {
			r.warn("config.redirect_uris", "CONNECTORS_OAUTH_REDIRECT_URIS entry "+err.Error(), "list https:// pages (plain http only on loopback)")
		}
	}
	return cfg, reg
}

// doctorSessionKey checks the browser session key file serve reads from
// the data dir on the embedded store (signin.go), if there is one.
func (m *Main) doctorSessionKey(r *doctorReport, cfg Config) {
	if cfg.BrowserSessionKey != nil {
		return
	}
	path := filepath.Join(cfg.DataDir, sessionKeyFile)
	if _, err := readSessionKey(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		r.fail("config.session_key", err.Error(), "chmod 600 "+path+", or remove it to have serve make a new one (signed-in browsers sign in again)")
	}
}

// doctorIssuer checks that the OpenID provider, if one is configured,
// serves its discovery document for the issuer named: serve refuses to
// start without it. No answer is a warning, as for an HTTP upstream.
func doctorIssuer(ctx context.Context, r *doctorReport, issuer string, timeout time.Duration) {
	if issuer == "" {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	_, err := oidc.NewProvider(ctx, issuer)
	var netErr net.Error
	switch {
	case err == nil:
		r.ok("config.oidc_issuer", "%s serves its discovery document", issuer)
	case errors.As(err, &netErr) || errors.Is(err, context.DeadlineExceeded):
		r.warn("config.oidc_issuer", issuer+" did not answer ("+err.Error()+"): serve refuses to start until it does",
			"check CONNECTORS_OIDC_ISSUER and that this machine reaches the provider")
	default:
		r.fail("config.oidc_issuer", issuer+": "+err.Error()+" (serve refuses to start)",
			"set CONNECTORS_OIDC_ISSUER to the provider's issuer URL exactly as its discovery document names it")
	}
}

// doctorOAuth checks each OAuth integration's client as providers
// (oauth.go) reads it: {NAME}_CLIENT_ID with {NAME}_CLIENT_SECRET, and a
// callback that is absolute, https unless on loopback, and this gateway's.
func (m *Main) doctorOAuth(r *doctorReport, cfg Config, reg *tools.Registry) {
	for _, in := range reg.All() {
		if in.OAuth == nil {
			continue
		}
		check, prefix := "oauth."+in.Name, envPrefix(in.Name)
		id, secret := m.Getenv(prefix+"_CLIENT_ID"), m.Getenv(prefix+"_CLIENT_SECRET")
		switch {
		case id == "" && secret == "":
			r.ok(check, "linking off (%s_CLIENT_ID is not set)", prefix)
			continue
		case id == "":
			r.warn(check, prefix+"_CLIENT_SECRET is set without "+prefix+"_CLIENT_ID: linking is off", "set "+prefix+"_CLIENT_ID too, or unset the secret")
			continue
		case secret == "":
			r.fail(check, prefix+"_CLIENT_ID is set: "+prefix+"_CLIENT_SECRET is needed too (serve refuses to start)", "set "+prefix+"_CLIENT_SECRET to the client's secret at the provider")
			continue
		}
		m.doctorCallback(r, cfg, check, prefix, in.Name)
	}
}

// doctorCallback checks one OAuth client's callback URL.
func (m *Main) doctorCallback(r *doctorReport, cfg Config, check, prefix, name string) {
	callback, fromEnv := m.Getenv(prefix+"_REDIRECT_URI"), true
	if callback == "" {
		if cfg.PublicURL == "" {
			r.warn(check, "CONNECTORS_PUBLIC_URL is not set: the callback is http://{listen address}/oauth/callback/"+name+", which only a browser on this machine reaches",
				"set CONNECTORS_PUBLIC_URL to the gateway's external https:// URL and register {it}/oauth/callback/"+name+" at the provider")
			return
		}
		callback, fromEnv = cfg.PublicURL+"/oauth/callback/"+name, false
	}
	u, err := url.Parse(callback)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		r.fail(check, prefix+"_REDIRECT_URI is not an absolute http(s) URL (serve refuses to start)", "set it to https://{gateway}/oauth/callback/"+name)
		return
	}
	if err := secureURL(callback); err != nil {
		r.fail(check, "the callback "+err.Error(), "use https:// (plain http only on loopback) in "+prefix+"_REDIRECT_URI or CONNECTORS_PUBLIC_URL")
		return
	}
	if fromEnv {
		if p, err := url.Parse(cfg.PublicURL); cfg.PublicURL != "" && err == nil && p.Host != u.Host {
			r.warn(check, fmt.Sprintf("%s_REDIRECT_URI is on host %s, CONNECTORS_PUBLIC_URL on %s", prefix, u.Host, p.Host),
				"make them the same gateway, or unset "+prefix+"_REDIRECT_URI to use {CONNECTORS_PUBLIC_URL}/oauth/callback/"+name)
			return
		}
		if u.Path != "/oauth/callback/"+name {
			r.warn(check, fmt.Sprintf("%s_REDIRECT_URI's path is %s, not the gateway's /oauth/callback/%s", prefix, u.Path, name),
				"use /oauth/callback/"+name+" unless a proxy in front rewrites it")
			return
		}
	}
	r.ok(check, "client set (%s_CLIENT_ID, %s_CLIENT_SECRET); callback %s", prefix, prefix, safeURL(u))
}

// secureURL refuses a URL that is plain http on a host other than
// loopback; its error starts with the URL, shown without userinfo or
// query.
func secureURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return errors.New("is not an absolute URL")
	}
	if u.Scheme == "http" && !isLoopbackHost(u.Hostname()) {
		return fmt.Errorf("%s is plain http on a host other than loopback", safeURL(u))
	}
	return nil
}

func isLoopbackHost(host string) bool {
	if host == "localhost" || strings.HasSuffix(host, ".localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// safeURL is u for a report: scheme, host and path, without the userinfo,
// query or fragment that may hold a secret.
func safeURL(u *url.URL) string {
	return (&url.URL{Scheme: u.Scheme, Host: u.Host, Path: u.Path}).String()
}
