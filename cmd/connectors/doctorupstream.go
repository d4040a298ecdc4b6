package main

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/connectors-gateway/connectors/tools"
)

// doctorUpstreams checks each integration's upstream, the HTTP ones at
// once, and reports them in the registry's order.
func (m *Main) doctorUpstreams(ctx context.Context, r *doctorReport, reg *tools.Registry, timeout time.Duration) {
	ints := reg.All()
	lines := make([]func(), len(ints))
	var wg sync.WaitGroup
	for i, in := range ints {
		check := "upstream." + in.Name
		if in.Upstream.URL == "" {
			lines[i] = m.doctorStdio(r, check, in.Upstream)
			continue
		}
		wg.Go(func() { lines[i] = doctorHTTP(ctx, r, check, in.Upstream.URL, timeout) })
	}
	wg.Wait()
	for _, line := range lines {
		line()
	}
}

// doctorStdio checks a stdio upstream: its command is on PATH and, for a
// package run through npx, whether npx has it cached already.
func (m *Main) doctorStdio(r *doctorReport, check string, up tools.Upstream) func() {
	path, err := lookPath(up.Command, m.Getenv("PATH"))
	if err != nil {
		fix := "install it, or give its full path as upstream.command in the integrations file"
		if filepath.Base(up.Command) == "npx" {
			fix = "install Node.js (it brings npx), or put it on the gateway's PATH"
		}
		return func() { r.fail(check, fmt.Sprintf("the command %q %v", up.Command, err), fix) }
	}
	spec, ok := tools.NPXPackage(up)
	if !ok {
		return func() { r.ok(check, "stdio: %s", path) }
	}
	if !npxCached(m.npmCache(), spec) {
		return func() {
			r.warn(check, "stdio: "+spec+" is not in npx's cache: the first call waits for its download (or fails offline)",
				"connectors integrations prepare "+strings.TrimPrefix(check, "upstream."))
		}
	}
	return func() { r.ok(check, "stdio: %s; %s is in npx's cache", path, spec) }
}

// lookPath finds command as exec.LookPath does, on the PATH given.
func lookPath(command, pathEnv string) (string, error) {
	if command == "" {
		return "", errors.New("is empty")
	}
	executable := func(p string) bool {
		fi, err := os.Stat(p)
		return err == nil && !fi.IsDir() && fi.Mode().Perm()&0o111 != 0
	}
	if strings.Contains(command, "/") {
		if executable(command) {
			return command, nil
		}
		return "", errors.New("is not an executable file")
	}
	for _, dir := range filepath.SplitList(pathEnv) {
		if dir == "" {
			dir = "."
		}
		if p := filepath.Join(dir, command); executable(p) {
			return p, nil
		}
	}
	return "", errors.New("is not on PATH")
}

// npmCache is npm's cache directory, as npm finds it: npm_config_cache,
// else .npm in the home directory (the process's own, which the stdio
// upstreams it starts inherit).
func (m *Main) npmCache() string {
	if v := m.Getenv("npm_config_cache"); v != "" {
		return v
	}
	home, _ := os.UserHomeDir()
	return filepath.Join(home, ".npm")
}

// npxCached reports whether npx has installed spec (name@version, or a
// name) into one of its directories under cache/_npx.
func npxCached(cache, spec string) bool {
	name, version := spec, ""
	if i := strings.LastIndex(spec, "@"); i > 0 {
		name, version = spec[:i], spec[i+1:]
	}
	dirs, _ := filepath.Glob(filepath.Join(cache, "_npx", "*", "node_modules", filepath.FromSlash(name), "package.json"))
	for _, p := range dirs {
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		var pkg struct{ Version string }
		if json.Unmarshal(b, &pkg) == nil && (version == "" || pkg.Version == version) {
			return true
		}
	}
	return false
}

// doctorHTTP checks an HTTP upstream answers: any HTTP status will do. No
// answer is a warning (this machine may be offline, the gateway's may
// not); a TLS failure is a failure, the gateway would meet it too.
func doctorHTTP(ctx context.Context, r *doctorReport, check, raw string, timeout time.Duration) func() {
	u, err := url.Parse(raw)
	if err != nil {
		return func() {
			r.fail(check, "the upstream URL does not parse", "correct upstream.url in the integrations file")
		}
	}
	shown := safeURL(u)
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, raw, nil)
	if err != nil {
		return func() {
			r.fail(check, "the upstream URL "+shown+" is not usable", "correct upstream.url in the integrations file")
		}
	}
	req.Header.Set("Accept", "application/json, text/event-stream")
	tr := http.DefaultTransport.(*http.Transport).Clone()
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}).Do(req)
	if err == nil {
		resp.Body.Close()
		return func() { r.ok(check, "http: %s answers (HTTP %d)", shown, resp.StatusCode) }
	}
	var uerr *url.Error
	if errors.As(err, &uerr) {
		err = uerr.Err // the URL it names may hold a secret in its query
	}
	var certErr *tls.CertificateVerificationError
	if errors.As(err, &certErr) {
		return func() {
			r.fail(check, "http: "+shown+": its TLS certificate does not verify ("+certErr.Err.Error()+")", "fix the upstream's certificate, or the URL's host")
		}
	}
	var dnsErr *net.DNSError
	problem := "http: " + shown + " did not answer: " + err.Error()
	if errors.As(err, &dnsErr) {
		problem = "http: " + shown + ": its host " + dnsErr.Name + " does not resolve here"
	}
	return func() {
		r.warn(check, problem, "check the URL and that this machine (and the gateway's) reaches it; offline, this is expected")
	}
}
