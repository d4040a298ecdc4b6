package hashicorp_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/vault/api"

	"github.com/connectors-gateway/connectors/internal/testenv"
	"github.com/connectors-gateway/connectors/vault"
	"github.com/connectors-gateway/connectors/vault/hashicorp"
)

// haErrorBound is how long after a seal or a step-down of the active node
// a store operation may still fail.
const haErrorBound = 2 * time.Second

// haWorkers is the number of concurrent workers of TestVaultHAFailover.
const haWorkers = 8

// haStore starts a three-node Vault cluster and opens a store on every
// node's address, logged in with AppRole under the gateway-service policy
// and without a cache, so every call reaches Vault. It also returns a
// token holding only that policy, and the API configuration to reach the
// cluster.
func haStore(t *testing.T, logs *syncWriter) (*testenv.VaultCluster, *hashicorp.Store, string, *api.TLSConfig) {
	t.Helper()
	c := testenv.NewVaultCluster(t,
		"-policy", "gateway-service="+filepath.Join("policies", "gateway-service-policy.hcl"))
	tlsCfg := &api.TLSConfig{CACert: c.CAFile}
	active := c.Active()
	root := newTLSClient(t, c.Nodes[active], c.RootToken, tlsCfg)
	roleID, secretID := c.AppRole("gateway", "gateway-service")
	tok, err := root.Auth().Token().Create(&api.TokenCreateRequest{Policies: []string{"gateway-service"}, NoDefaultPolicy: true})
	if err != nil {
		t.Fatal(err)
	}
	// The active node first: the store starts on it, and sealing it
	// moves the store to the next one.
	addrs := append([]string{c.Nodes[active]}, slices.Delete(slices.Clone(c.Nodes), active, active+1)...)
	apiCfg := api.DefaultConfig()
	if err := apiCfg.ConfigureTLS(tlsCfg); err != nil {
		t.Fatal(err)
	}
	s, err := hashicorp.Open(hashicorp.Config{
		Addr:     strings.Join(addrs, ", "),
		AppRole:  &hashicorp.AppRole{RoleID: roleID, SecretID: secretID},
		API:      apiCfg,
		CacheTTL: -1,
		Logger:   slog.New(slog.NewJSONHandler(logs, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return c, s, tok.Auth.ClientToken, tlsCfg
}

func newTLSClient(t *testing.T, addr, token string, tlsCfg *api.TLSConfig) *api.Client {
	t.Helper()
	cfg := api.DefaultConfig()
	cfg.Address = addr
	cfg.MaxRetries = 0
	if err := cfg.ConfigureTLS(tlsCfg); err != nil {
		t.Fatal(err)
	}
	c, err := api.NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	c.SetToken(token)
	return c
}

// haOp is one store operation of a worker: when it ran and how it ended.
type haOp struct {
	start, end time.Time
	op         string
	err        error
}

// haRecord is what a worker knows of one of its records: the value and
// version of its last acknowledged write (version 0: none, or deleted),
// and, after an operation that failed, the write that may have landed.
type haRecord struct {
	value   string
	version int64
	maybe   *string // a failed Put's value ("" for a failed Delete); nil: certain
}

// haWorker writes, reads and deletes its own records until ctx is done,
// checking each answer against what it was told before, checks readiness
// now and then, and logs every operation.
type haWorker struct {
	s       *hashicorp.Store
	tenant  string
	records [4]haRecord
	ops     []haOp
	wrong   []string // answers that contradict an acknowledged write
}

func (w *haWorker) run(ctx context.Context) {
	for seq := 0; ctx.Err() == nil; seq++ {
		i := seq % len(w.records)
		integration := fmt.Sprint("int-", i)
		r := &w.records[i]
		if r.maybe != nil && !w.resync(integration, r) {
			continue
		}
		switch {
		case seq%7 == 6 && r.version > 0:
			w.delete(integration, r)
		default:
			w.put(integration, r, fmt.Sprintf("%s-%s-%d", w.tenant, integration, seq))
		}
		if r.maybe == nil {
			w.check(integration, r)
		}
		if seq%5 == 0 { // the readiness check /readyz makes
			w.do("ping", w.s.Ping)
		}
	}
}

// do runs one operation with a 5 s bound of its own and logs it.
func (w *haWorker) do(op string, f func(ctx context.Context) error) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	start := time.Now()
	err := f(ctx)
	w.ops = append(w.ops, haOp{start: start, end: time.Now(), op: op, err: err})
	return err
}

func (w *haWorker) put(integration string, r *haRecord, value string) {
	var version int64
	err := w.do("put", func(ctx context.Context) (err error) {
		version, err = w.s.Put(ctx, w.tenant, integration, vault.Credential{AccessToken: value}, r.version)
		return err
	})
	switch {
	case err == nil:
		r.value, r.version = value, version
	case errors.As(err, new(*vault.ConflictError)):
		w.wrong = append(w.wrong, fmt.Sprintf("%s/%s: put at acknowledged version %d: %v", w.tenant, integration, r.version, err))
	default:
		r.maybe = &value
	}
}

func (w *haWorker) delete(integration string, r *haRecord) {
	err := w.do("delete", func(ctx context.Context) error { return w.s.Delete(ctx, w.tenant, integration) })
	if err != nil {
		r.maybe = new(string)
		return
	}
	r.value, r.version = "", 0
}

// read reads a record; a missing one is empty at version 0.
func (w *haWorker) read(integration string) (got vault.Credential, version int64, err error) {
	err = w.do("get", func(ctx context.Context) (err error) {
		got, version, err = w.s.Get(ctx, w.tenant, integration)
		if errors.As(err, new(*vault.CredentialNotFoundError)) {
			return nil
		}
		return err
	})
	return got, version, err
}

// check reads a record and compares it with the last acknowledged write.
func (w *haWorker) check(integration string, r *haRecord) {
	got, version, err := w.read(integration)
	if err != nil {
		return
	}
	if got.AccessToken != r.value || version != r.version {
		w.wrong = append(w.wrong, fmt.Sprintf("%s/%s: read %q at version %d, acknowledged %q at %d",
			w.tenant, integration, got.AccessToken, version, r.value, r.version))
	}
}

// resync reads a record after an operation on it failed: it must hold the
// last acknowledged write or the failed one, nothing else.
func (w *haWorker) resync(integration string, r *haRecord) bool {
	got, version, err := w.read(integration)
	if err != nil {
		return false
	}
	if got.AccessToken != r.value && got.AccessToken != *r.maybe {
		w.wrong = append(w.wrong, fmt.Sprintf("%s/%s: read %q after a failed write of %q, acknowledged %q",
			w.tenant, integration, got.AccessToken, *r.maybe, r.value))
	}
	r.value, r.version, r.maybe = got.AccessToken, version, nil
	return true
}

// TestVaultHAFailover: on a three-node Vault cluster, a store given every
// node's address and logged in with AppRole under the least-privilege
// policy keeps serving eight concurrent workers while the active node is
// sealed and, 12 s later, while the next active node steps down: each
// operation begun more than haErrorBound after either event succeeds,
// no answer contradicts an acknowledged write, every acknowledged write
// is there at the end, and check-and-set still refuses a stale version.
func TestVaultHAFailover(t *testing.T) {
	var logBuf bytes.Buffer
	logs := &syncWriter{mu: new(sync.Mutex), w: &logBuf}
	c, s, token, tlsCfg := haStore(t, logs)

	ctx, stop := context.WithCancel(t.Context())
	workers := make([]*haWorker, haWorkers)
	var wg sync.WaitGroup
	for i := range workers {
		workers[i] = &haWorker{s: s, tenant: fmt.Sprint("tenant-ha-", i)}
		wg.Go(func() { workers[i].run(ctx) })
	}
	time.Sleep(2 * time.Second)
	first := c.Active()
	sealedAt := time.Now()
	c.Seal(first)
	t.Logf("sealed node %d, the active one, in %v", first, time.Since(sealedAt).Round(time.Millisecond))
	time.Sleep(12 * time.Second)
	steppedAt := time.Now()
	next := c.Active()
	now := c.StepDown()
	t.Logf("node %d stepped down; node %d active after %v", next, now, time.Since(steppedAt).Round(time.Millisecond))
	time.Sleep(5 * time.Second)
	stop()
	wg.Wait()

	var ops []haOp
	for _, w := range workers {
		ops = append(ops, w.ops...)
		for _, msg := range w.wrong {
			t.Error(msg)
		}
	}
	for _, ev := range []struct {
		name     string
		at, till time.Time
	}{
		{"before the seal", time.Time{}, sealedAt},
		{"after sealing the active node", sealedAt, steppedAt},
		{"after stepping down the next one", steppedAt, time.Now()},
	} {
		n, window, slowest, late := errorWindow(ops, ev.at, ev.till)
		t.Logf("%s: %d operations, errors for %.2f s, the slowest took %.2f s", ev.name, n, window.Seconds(), slowest.Seconds())
		for _, op := range late {
			t.Errorf("%s: a %s failed %v after it: %v", ev.name, op.op, op.end.Sub(ev.at).Round(time.Millisecond), op.err)
		}
	}
	for _, w := range workers {
		w.verifyFinal(t)
	}
	assertStaleRefused(t, s, workers[0])
	assertWaitsForUnseal(t, c, token, tlsCfg)
	// Sealing the first node moved the store to the second; stepping down
	// may move it once more (the old active node refuses a few requests
	// on its way to standby).
	logs.mu.Lock()
	defer logs.mu.Unlock()
	if n := strings.Count(logBuf.String(), "vault_node_selected"); n < 1 || n > 2 {
		t.Errorf("the store moved to another node %d times, want once or twice:\n%s", n, logBuf.String())
	}
}

// errorWindow returns the number of operations that ended in [from, till),
// how long after from the last of their errors ended, the longest one
// took, and those begun more than haErrorBound after from that failed (all
// of them when from is zero).
func errorWindow(ops []haOp, from, till time.Time) (n int, window, slowest time.Duration, late []haOp) {
	for _, op := range ops {
		if op.end.Before(from) || !op.end.Before(till) {
			continue
		}
		n++
		slowest = max(slowest, op.end.Sub(op.start))
		if op.err == nil {
			continue
		}
		if from.IsZero() || op.start.Sub(from) > haErrorBound {
			late = append(late, op)
		}
		if !from.IsZero() {
			window = max(window, op.end.Sub(from))
		}
	}
	return n, window, slowest, late
}

// verifyFinal reads every record of w once the failovers are over: each
// holds w's last acknowledged write (or is gone when w deleted it last).
func (w *haWorker) verifyFinal(t *testing.T) {
	t.Helper()
	for i := range w.records {
		integration := fmt.Sprint("int-", i)
		r := &w.records[i]
		if r.maybe != nil && !w.resync(integration, r) {
			t.Errorf("%s/%s: unreadable after the failovers", w.tenant, integration)
			continue
		}
		got, version, err := w.s.Get(t.Context(), w.tenant, integration)
		if r.version == 0 {
			if !errors.As(err, new(*vault.CredentialNotFoundError)) {
				t.Errorf("%s/%s: deleted, then read: %q at %d, %v", w.tenant, integration, got.AccessToken, version, err)
			}
			continue
		}
		if err != nil || got.AccessToken != r.value || version != r.version {
			t.Errorf("%s/%s: read %q at %d (%v), acknowledged %q at %d", w.tenant, integration, got.AccessToken, version, err, r.value, r.version)
		}
	}
	for _, msg := range w.wrong {
		t.Error(msg)
	}
	w.wrong = nil
}

// assertStaleRefused writes a record of w at a version behind its current
// one: check-and-set refuses it, and the record is unchanged.
func assertStaleRefused(t *testing.T, s *hashicorp.Store, w *haWorker) {
	t.Helper()
	ctx := t.Context()
	v1, err := s.Put(ctx, w.tenant, "cas", vault.Credential{AccessToken: "first"}, 0)
	if err != nil {
		t.Fatal(err)
	}
	v2, err := s.Put(ctx, w.tenant, "cas", vault.Credential{AccessToken: "second"}, v1)
	if err != nil {
		t.Fatal(err)
	}
	_, err = s.Put(ctx, w.tenant, "cas", vault.Credential{AccessToken: "stale"}, v1)
	var conflict *vault.ConflictError
	if !errors.As(err, &conflict) || conflict.Actual != v2 {
		t.Errorf("a write at stale version %d (current %d): %v, want a ConflictError", v1, v2, err)
	}
	if got, v, err := s.Get(ctx, w.tenant, "cas"); err != nil || got.AccessToken != "second" || v != v2 {
		t.Errorf("after the stale write: %q at %d, %v; want %q at %d", got.AccessToken, v, err, "second", v2)
	}
}

// assertWaitsForUnseal seals a standby, opens a store on a dead address
// and on that node, and unseals it: a read begun while it is sealed waits
// (every node refusing it cannot have applied it) and succeeds once the
// node is back, as a standby forwarding it to the active node.
func assertWaitsForUnseal(t *testing.T, c *testenv.VaultCluster, token string, tlsCfg *api.TLSConfig) {
	t.Helper()
	standby := -1
	for i, sealed := range c.Sealed() {
		if !sealed && i != c.Active() {
			standby = i
		}
	}
	if standby < 0 {
		t.Fatalf("no unsealed standby: sealed %v, active %d", c.Sealed(), c.Active())
	}
	apiCfg := api.DefaultConfig()
	if err := apiCfg.ConfigureTLS(tlsCfg); err != nil {
		t.Fatal(err)
	}
	s, err := hashicorp.Open(hashicorp.Config{
		Addr: closedAddr(t, "https") + "," + c.Nodes[standby], Token: token,
		API: apiCfg, CacheTTL: -1, Timeout: 5 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	c.Seal(standby)
	done := make(chan error, 1)
	start := time.Now()
	go func() {
		_, _, err := s.Get(context.Background(), "tenant-ha-0", "cas")
		done <- err
	}()
	time.Sleep(300 * time.Millisecond)
	c.Unseal(standby)
	unsealed := time.Since(start)
	if err := <-done; err != nil {
		t.Fatalf("a read through sealed node %d, unsealed %v later: after %v: %v", standby,
			unsealed.Round(time.Millisecond), time.Since(start).Round(time.Millisecond), err)
	}
	t.Logf("a read through sealed node %d waited %v; it was unsealed after %v", standby,
		time.Since(start).Round(time.Millisecond), unsealed.Round(time.Millisecond))
}

// closedAddr returns the address of a port nothing listens on.
func closedAddr(t *testing.T, scheme string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return scheme + "://" + ln.Addr().String()
}

// TestVaultAddrListFirstDead: with a list of addresses whose first is a
// closed port, the store logs in and serves from the next one, paying no
// timeout for the dead one, and says it moved on.
func TestVaultAddrListFirstDead(t *testing.T) {
	v := startVault(t)
	dead := closedAddr(t, "http")
	var logBuf bytes.Buffer
	logs := &syncWriter{mu: new(sync.Mutex), w: &logBuf}
	s := v.open(t, v.token(t, "gateway-service"), func(c *hashicorp.Config) {
		c.Addr = dead + "," + v.addr
		c.CacheTTL = -1
		c.Logger = slog.New(slog.NewJSONHandler(logs, nil))
	})
	ctx := t.Context()
	start := time.Now()
	var version int64
	for i := range 20 {
		want := fmt.Sprint("ntn_dead_first_", i)
		n, err := s.Put(ctx, "tenant-1", "notion", vault.Credential{AccessToken: want}, version)
		if err != nil {
			t.Fatalf("Put %d: %v", i, err)
		}
		version = n
		got, _, err := s.Get(ctx, "tenant-1", "notion")
		if err != nil || got.AccessToken != want {
			t.Fatalf("Get %d: %q, %v; want %q", i, got.AccessToken, err, want)
		}
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("20 writes and reads took %v with the first address dead, want well under the 1s timeout each", d)
	}
	logs.mu.Lock()
	defer logs.mu.Unlock()
	if n := strings.Count(logBuf.String(), "vault_node_selected"); n != 1 {
		t.Errorf("logged vault_node_selected %d times, want once:\n%s", n, logBuf.String())
	}
}

// TestVaultAddrListRefused: an address list that is not one is refused at
// Open, without echoing a password written in it.
func TestVaultAddrListRefused(t *testing.T) {
	for _, addr := range []string{
		"ftp://127.0.0.1:8200",
		"127.0.0.1:8200",
		"http://127.0.0.1:8200/v1/secret",
		"http://127.0.0.1:8200?x=1",
		"http://admin:hunter2@127.0.0.1:8200",
		"http://127.0.0.1:8200, https://",
		" , ",
	} {
		_, err := hashicorp.Open(hashicorp.Config{Addr: addr, Token: "t"})
		if err == nil {
			t.Errorf("Open(Addr %q) succeeded", addr)
			continue
		}
		if strings.Contains(err.Error(), "hunter2") {
			t.Errorf("Open(Addr %q): the error shows the password: %v", addr, err)
		}
	}
}

// TestVaultAddrListLostAnswerNotResent: a write that reached the first
// node and lost its answer (a timeout, or the connection reset) is never
// sent to the next node by the transport: it may have landed. Only the
// store's own resend (write.go) follows. Timed out, that resend goes to
// the same node and the write is reported of unknown outcome; reset, the
// resend finds the first node refusing, goes to the second, and learns
// from the check-and-set that the first attempt landed. Either way it
// landed once; had the transport resent it, the store would have reported
// a conflict with its own write.
func TestVaultAddrListLostAnswerNotResent(t *testing.T) {
	v := startVault(t)
	token := v.token(t, "gateway-service")
	for _, tc := range []struct {
		name    string
		then    func(*testenv.FaultProxy)
		wantErr error
	}{
		{"timeout", func(*testenv.FaultProxy) {}, hashicorp.ErrWriteOutcomeUnknown},
		{"reset", func(p *testenv.FaultProxy) { time.Sleep(outageBound / 4); p.Set(testenv.Refuse) }, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			proxy := testenv.NewFaultProxy(t, strings.TrimPrefix(v.addr, "http://"))
			s := v.open(t, token, func(c *hashicorp.Config) {
				c.Addr = proxy.URL() + "," + v.addr // two addresses of one Vault
				c.API = api.DefaultConfig()
				c.Timeout = outageBound
				c.CacheTTL = -1
			})
			ctx := t.Context()
			tenant := "tenant-resend-" + tc.name
			version, err := s.Put(ctx, tenant, "notion", vault.Credential{AccessToken: "ntn_resend_1"}, 0)
			if err != nil {
				t.Fatal(err)
			}
			proxy.SwallowFrom("PUT /v1/secret/data/" + tenant + "/notion")
			go tc.then(proxy)
			got, err := s.Put(ctx, tenant, "notion", vault.Credential{AccessToken: "ntn_resend_2"}, version)
			if tc.wantErr != nil && !errors.Is(err, tc.wantErr) || tc.wantErr == nil && (err != nil || got != version+1) {
				t.Errorf("Put whose answer is lost on the first node: version %d, %v; want version %d, error %v", got, err, version+1, tc.wantErr)
			}
			start := time.Now()
			assertStored(t, s, tenant, "ntn_resend_2", version+1)
			if d := time.Since(start); d > outageBound/2 {
				t.Errorf("a read once the first node is out took %v, want it served by the second at once", d)
			}
		})
	}
}

// TestVaultRedirectsNeverReadAsNotFound: a standby that cannot forward
// redirects to the active node, and during a step-down the node it names
// may redirect again. vault/api follows one redirect and reads a second
// as an empty answer, which a read would take for "not found" (a tool
// call answered "not linked", a refresher forgetting the credential).
// Given one address, a second redirect is a Vault error; given several,
// a redirecting node is passed over like a sealed one, and the read waits
// for a node that serves it.
func TestVaultRedirectsNeverReadAsNotFound(t *testing.T) {
	v := startVault(t)
	token := v.token(t, "gateway-service")
	real, err := url.Parse(v.addr)
	if err != nil {
		t.Fatal(err)
	}
	proxy := httputil.NewSingleHostReverseProxy(real)
	var serves atomic.Bool
	var aURL string
	b := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !serves.Load() {
			redirectTo(w, aURL+r.URL.RequestURI())
			return
		}
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(b.Close)
	a := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		redirectTo(w, b.URL+r.URL.RequestURI())
	}))
	t.Cleanup(a.Close)
	aURL = a.URL
	ctx := t.Context()
	if _, err := v.open(t, token).Put(ctx, "tenant-redirect", "notion", vault.Credential{AccessToken: "ntn_redirected"}, 0); err != nil {
		t.Fatal(err)
	}

	one := v.open(t, token, func(c *hashicorp.Config) { c.Addr = a.URL; c.CacheTTL = -1; c.Timeout = 300 * time.Millisecond })
	if _, _, err := one.Get(ctx, "tenant-redirect", "notion"); err == nil || vault.IsNotFound(err) {
		t.Errorf("a read redirected twice, one address: %v, want a Vault error", err)
	}

	several := v.open(t, token, func(c *hashicorp.Config) { c.Addr = a.URL + "," + b.URL; c.CacheTTL = -1; c.Timeout = 2 * time.Second })
	time.AfterFunc(300*time.Millisecond, func() { serves.Store(true) })
	got, _, err := several.Get(ctx, "tenant-redirect", "notion")
	if err != nil || got.AccessToken != "ntn_redirected" {
		t.Errorf("a read while every node redirects, then one serves: %q, %v; want the credential", got.AccessToken, err)
	}
}

// redirectTo answers as a Vault standby redirects: 307, a Location, no
// body.
func redirectTo(w http.ResponseWriter, location string) {
	w.Header().Set("Location", location)
	w.WriteHeader(http.StatusTemporaryRedirect)
}
