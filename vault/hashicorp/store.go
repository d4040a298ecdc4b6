// Package hashicorp is a credential store in HashiCorp Vault: a
// [vault.Backend] laid out as the seed document says, KV v2 records whose
// secrets are Transit ciphertext under one key per tenant. Requests go
// through a circuit breaker (breaker.go) and are never retried blindly
// (write.go); given a Vault HA cluster's nodes, the store follows the
// active one (failover.go); decrypted credentials are cached briefly
// (cache.go); an AppRole login is renewed in the background (approle.go).
// policies/ holds the Vault policies the gateway needs and init-vault.sh
// sets a Vault up with them.
package hashicorp

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/vault/api"

	"github.com/connectors-gateway/connectors/tenants"
	"github.com/connectors-gateway/connectors/vault"
)

// Config configures [Open]. The zero value of each field
// has the documented default; cmd fills it from the seed's environment
// variables (VAULT_ADDR, VAULT_TOKEN, VAULT_KV_ENGINE, VAULT_TRANSIT_ENGINE).
type Config struct {
	// Addr is Vault's address, for example https://vault.example.com:8200,
	// or the addresses of a Vault HA cluster's nodes separated by commas
	// (VAULT_ADDR may list several): the store follows the active node
	// (failover.go). Empty: API's address.
	Addr string
	// Token authenticates to Vault. Empty: log in with AppRole.
	Token string
	// AppRole logs in with a role ID and secret ID when Token is empty; the
	// token is renewed while it can be and the store logs in again when it
	// can no longer be renewed.
	AppRole *AppRole
	// KVMount is the KV v2 mount holding the records. Empty: "secret".
	KVMount string
	// TransitMount is the Transit mount holding one key per tenant.
	// Empty: "transit".
	TransitMount string
	// API is the Vault client configuration (TLS, timeouts, retries). cmd
	// builds it with api.DefaultConfig, which reads VAULT_CACERT and the other
	// TLS variables. Nil: the api package's defaults. The store keeps it
	// (the client it builds fills in its zero fields and, when Addr is set,
	// its Address): pass a config of its own to each store.
	API *api.Config
	// Timeout bounds each request to Vault, from sending it to reading its
	// answer: a Vault that does not answer within it is reported as a
	// *vault.VaultError wrapping [ErrUnreachable], and after two such
	// requests in a row the store fails at once (for half a second, then
	// tries again) instead of waiting the bound on every call. The store
	// does not retry a request: a retried write could land twice, or be
	// refused by its own check-and-set. Zero: [DefaultTimeout]; it
	// replaces the API config's Timeout and MaxRetries.
	Timeout time.Duration
	// CacheTTL bounds how long a credential read from Vault is served from
	// memory without asking Vault again, so a change made by another gateway
	// sharing the Vault is seen within CacheTTL. A change made through this
	// store is seen at once. Zero: 5s; negative: no cache.
	CacheTTL time.Duration
	// Logger receives the store's events; it never sees a token or a secret.
	// Nil: logs are discarded.
	Logger *slog.Logger
	// Now stamps CreatedAt and UpdatedAt. Nil: time.Now.
	Now func() time.Time
	// Observer, if set, is told of every credential operation (see
	// [vault.Observer]).
	Observer vault.Observer
}

// AppRole is an AppRole login.
type AppRole struct {
	RoleID   string
	SecretID string
	// Mount is the AppRole auth mount. Empty: "approle".
	Mount string
}

// DefaultCacheTTL is the CacheTTL of a zero Config.
const DefaultCacheTTL = 5 * time.Second

// DefaultTimeout is the Timeout of a zero Config.
const DefaultTimeout = time.Second

// Store is a [vault.Backend] in HashiCorp Vault, laid out as the seed document
// says: each credential is a KV v2 record at {kv}/data/{tenant}/{integration}
// whose access_token and refresh_token hold Transit ciphertext under the
// tenant's own key {transit}/keys/{tenant} (aes256-gcm96, derived, not
// exportable, created on the tenant's first write). The key derivation
// context is "tenant/integration/field", so a ciphertext copied elsewhere
// does not decrypt; a key created by hand without derivation gets the same
// binding from AES-GCM associated data. A record's version is its KV v2
// version, and every write is a KV v2 check-and-set.
//
// A Store is safe for concurrent use.
type Store struct {
	client       *api.Client
	kv           kvPaths
	transitMount string
	log          *slog.Logger
	now          func() time.Time
	obs          vault.Observer
	cacheTTL     time.Duration
	timeout      time.Duration

	mu    sync.Mutex
	keys  map[string]keyMode             // tenants whose Transit key is known to exist, and its mode; guarded by mu
	cache map[recordRef]cachedCredential // decrypted credentials; guarded by mu

	failures failureLog // unanswered requests, for the operator's log

	rewrapIgnoresAD atomic.Bool // this Vault's transit rewrap ignores associated_data (non-derived keys only)

	stop    chan struct{} // closed by Close
	stopped sync.WaitGroup
	closeMu sync.Once
}

var _ vault.Backend = (*Store)(nil)

// Open connects to Vault. With AppRole it logs in before
// returning; it does not otherwise call Vault, so a Vault that is down is
// reported by the first operation, as a *vault.VaultError.
func Open(cfg Config) (*Store, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.KVMount == "" {
		cfg.KVMount = "secret"
	}
	if cfg.TransitMount == "" {
		cfg.TransitMount = "transit"
	}
	if cfg.CacheTTL == 0 {
		cfg.CacheTTL = DefaultCacheTTL
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	for _, m := range []string{cfg.KVMount, cfg.TransitMount} {
		if strings.Trim(m, "/") != m || strings.Contains(m, "..") {
			return nil, fmt.Errorf("vault: mount %q: must not start or end with '/' or contain '..'", m)
		}
	}
	if cfg.Token == "" && cfg.AppRole == nil {
		return nil, errors.New("vault: HashiCorp Vault needs a token (VAULT_TOKEN) or an AppRole login")
	}

	apiCfg, err := clientConfig(&cfg)
	if err != nil {
		return nil, err
	}
	client, err := api.NewClient(apiCfg)
	if err != nil {
		return nil, &vault.VaultError{Err: fmt.Errorf("configuring the Vault client: %w", err)}
	}
	client.ClearToken() // NewClient reads VAULT_TOKEN; the config decides
	if cfg.Token != "" {
		client.SetToken(cfg.Token)
	}

	h := &Store{
		client:       client,
		kv:           kvPaths{mount: cfg.KVMount},
		transitMount: cfg.TransitMount,
		log:          cfg.Logger,
		now:          cfg.Now,
		obs:          cfg.Observer,
		cacheTTL:     cfg.CacheTTL,
		timeout:      cfg.Timeout,
		keys:         make(map[string]keyMode),
		cache:        make(map[recordRef]cachedCredential),
		stop:         make(chan struct{}),
	}
	if cfg.Token == "" {
		if err := h.startAppRole(*cfg.AppRole); err != nil {
			return nil, err
		}
	}
	return h, nil
}

// clientConfig is the vault/api configuration of cfg: cfg.API (or a new
// one) for cfg.Addr's nodes, with the store's timeout, no retries of
// vault/api's own, and a transport that follows the active node
// (failover.go).
func clientConfig(cfg *Config) (*api.Config, error) {
	apiCfg := cfg.API
	if apiCfg == nil {
		apiCfg = &api.Config{}
	}
	if cfg.Addr == "" {
		cfg.Addr = apiCfg.Address
	}
	if cfg.Addr == "" {
		cfg.Addr = api.DefaultAddress
	}
	addrs, err := splitAddrs(cfg.Addr)
	if err != nil {
		return nil, err
	}
	apiCfg.Address = addrs[0].String()
	// vault/api's defaults (60s, two retries a second or more apart) made
	// each call wait about 4s for a refused connection and the whole outage
	// for one that is never answered.
	apiCfg.Timeout = cfg.Timeout
	apiCfg.MaxRetries = 0
	if apiCfg.HttpClient == nil {
		apiCfg.HttpClient = api.DefaultConfig().HttpClient
	}
	if apiCfg.HttpClient.Transport == nil {
		apiCfg.HttpClient.Transport = api.DefaultConfig().HttpClient.Transport
	}
	// A config used before keeps its transport (and its breakers) when it
	// is for the same nodes.
	next := apiCfg.HttpClient.Transport
	if t, ok := next.(*failoverTransport); ok {
		next = t.direct
		if t.sameNodes(addrs) {
			next = nil
		}
	}
	if next != nil {
		apiCfg.HttpClient.Transport = newFailoverTransport(next, addrs, cfg.Timeout, cfg.Logger)
	}
	return apiCfg, nil
}

// Get implements [vault.Store]. A secret field written by hand in plaintext (the
// seed's "Option B") is returned as it is; the next Put seals it.
func (h *Store) Get(ctx context.Context, tenant, integration string) (_ vault.Credential, _ int64, err error) {
	defer vault.Observe(h.obs, ctx, vault.OpGet, tenant, integration, time.Now(), &err)
	if err := vault.ValidateRecord(tenant, integration); err != nil {
		return vault.Credential{}, 0, err
	}
	if err := ctx.Err(); err != nil {
		return vault.Credential{}, 0, err
	}
	ref := recordRef{tenant, integration}
	if c, v, ok := h.cached(ref, true); ok {
		return c, v, nil
	}
	rec, err := h.read(ctx, tenant, integration, 0)
	if err != nil {
		return vault.Credential{}, 0, err
	}
	if !rec.exists() {
		h.uncache(ref)
		return vault.Credential{}, 0, &vault.CredentialNotFoundError{Tenant: tenant, Integration: integration}
	}
	// Same version as the cache holds: the record is unchanged, skip Transit.
	if c, v, ok := h.cached(ref, false); ok && v == rec.version {
		h.recache(ref, v)
		return c, v, nil
	}
	cred, err := credentialFromKV(tenant, integration, rec.data)
	if err != nil {
		return vault.Credential{}, 0, err
	}
	if err := h.decrypt(ctx, tenant, integration, &cred); err != nil {
		return vault.Credential{}, 0, err
	}
	h.store(ref, cred, rec.version)
	return cred, rec.version, nil
}

// Put implements [vault.Store]. A zero CreatedAt keeps the record's (or is
// stamped on the first write); a zero UpdatedAt is stamped on every write.
// An Extra key may not be one of the record's own field names.
func (h *Store) Put(ctx context.Context, tenant, integration string, cred vault.Credential, version int64) (_ int64, err error) {
	defer vault.Observe(h.obs, ctx, vault.OpPut, tenant, integration, time.Now(), &err)
	if err := vault.ValidateRecord(tenant, integration); err != nil {
		return 0, err
	}
	if version < vault.AnyVersion {
		return 0, fmt.Errorf("vault: putting %s/%s: invalid expected version %d", tenant, integration, version)
	}
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	for k := range cred.Extra {
		if reservedFields[k] {
			return 0, fmt.Errorf("vault: putting %s/%s: extra field %q is one of the record's own fields", tenant, integration, k)
		}
	}
	cred = cred.Clone()
	now := h.now().UTC()

	// The version to check-and-set against, and the CreatedAt to keep.
	cas := version
	if version == vault.AnyVersion || (version > 0 && cred.CreatedAt.IsZero()) {
		at := version
		if at == vault.AnyVersion {
			at = 0 // the current version
		}
		old, err := h.read(ctx, tenant, integration, at)
		if err != nil {
			return 0, err
		}
		if version == vault.AnyVersion {
			cas = old.version // 0 when there is no record: create only
		}
		if cred.CreatedAt.IsZero() && old.exists() {
			if s, ok := old.data[fieldCreatedAt].(string); ok {
				cred.CreatedAt, _ = time.Parse(time.RFC3339Nano, s)
			}
		}
	}
	if cred.CreatedAt.IsZero() {
		cred.CreatedAt = now
	}
	if cred.UpdatedAt.IsZero() {
		cred.UpdatedAt = now
	}

	sealed, err := h.encrypt(ctx, tenant, integration, cred)
	if err != nil {
		return 0, err
	}
	data, err := kvRecord(cred, sealed)
	if err != nil {
		return 0, err
	}
	written, err := h.writeRecord(ctx, tenant, integration, cas, data)
	if err != nil {
		h.uncache(recordRef{tenant, integration})
		if isCASMismatch(err) {
			if ctx.Err() == nil {
				actual, _ := h.currentVersion(ctx, tenant, integration)
				return 0, &vault.ConflictError{Tenant: tenant, Integration: integration, Expected: version, Actual: actual}
			}
			return 0, h.vaultErr(ctx, "writing the credential record", err)
		}
		return 0, err
	}
	h.store(recordRef{tenant, integration}, cred, written)
	h.log.Debug("vault_credential_written", "tenantId", tenant, "integration", integration, "version", written)
	return written, nil
}

// Delete implements [vault.Store]. It deletes the record's metadata, so every
// version is gone and none can be undeleted.
func (h *Store) Delete(ctx context.Context, tenant, integration string) (err error) {
	defer vault.Observe(h.obs, ctx, vault.OpDelete, tenant, integration, time.Now(), &err)
	if err := vault.ValidateRecord(tenant, integration); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	h.uncache(recordRef{tenant, integration})
	path := h.kv.metadata(tenant, integration)
	meta, err := h.client.Logical().ReadWithContext(ctx, path)
	if err != nil {
		return h.vaultErr(ctx, "reading the credential record's metadata", err)
	}
	if meta == nil {
		return &vault.CredentialNotFoundError{Tenant: tenant, Integration: integration}
	}
	if _, err := h.client.Logical().DeleteWithContext(ctx, path); err != nil {
		return h.vaultErr(ctx, "deleting the credential record", err)
	}
	h.uncache(recordRef{tenant, integration})
	h.log.Debug("vault_credential_deleted", "tenantId", tenant, "integration", integration)
	return nil
}

// Integrations implements [vault.Store]. Keys under the tenant that are not valid
// integration names (written by hand) are left out.
func (h *Store) Integrations(ctx context.Context, tenant string) ([]string, error) {
	if err := vault.ValidateTenant(tenant); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	keys, err := h.list(ctx, h.kv.tenantDir(tenant))
	if err != nil {
		return nil, err
	}
	names := []string{}
	for _, k := range keys {
		if vault.ValidateIntegration(k) == nil {
			names = append(names, k)
		}
	}
	slices.Sort(names)
	return names, nil
}

// Tenants implements [vault.Store]. Folders of the KV mount that are not valid
// tenant IDs are left out.
func (h *Store) Tenants(ctx context.Context) ([]string, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	keys, err := h.list(ctx, h.kv.root())
	if err != nil {
		return nil, err
	}
	ids := []string{}
	for _, k := range keys {
		id, dir := strings.CutSuffix(k, "/")
		if dir && tenants.ValidateID(id) == nil {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	return ids, nil
}

// Close implements [vault.Store]: it stops the AppRole token renewal and drops the
// cached credentials.
func (h *Store) Close() error {
	h.closeMu.Do(func() { close(h.stop) })
	h.stopped.Wait()
	h.mu.Lock()
	clear(h.cache)
	h.mu.Unlock()
	return nil
}

// kvRead is one version of a record as KV v2 returns it.
type kvRead struct {
	data    map[string]any // nil: no record, or its version is deleted
	version int64          // 0: no record
}

func (r kvRead) exists() bool { return r.data != nil }

// read reads a record's version at (0: the current one). A missing record
// is not an error.
func (h *Store) read(ctx context.Context, tenant, integration string, at int64) (kvRead, error) {
	var query map[string][]string
	if at > 0 {
		query = map[string][]string{"version": {fmt.Sprint(at)}}
	}
	s, err := h.client.Logical().ReadWithDataWithContext(ctx, h.kv.data(tenant, integration), query)
	if err != nil {
		return kvRead{}, h.vaultErr(ctx, "reading the credential record", err)
	}
	if s == nil || s.Data == nil {
		return kvRead{}, nil
	}
	var r kvRead
	if meta, ok := s.Data["metadata"].(map[string]any); ok {
		r.version, _ = numberInt(meta["version"])
	}
	r.data, _ = s.Data["data"].(map[string]any)
	return r, nil
}

// currentVersion returns a record's current version, 0 if it has none.
func (h *Store) currentVersion(ctx context.Context, tenant, integration string) (int64, error) {
	s, err := h.client.Logical().ReadWithContext(ctx, h.kv.metadata(tenant, integration))
	if err != nil {
		return 0, h.vaultErr(ctx, "reading the credential record's metadata", err)
	}
	v, _ := jsonInt(s, "current_version")
	return v, nil
}

// list lists a KV v2 metadata folder; a missing folder is empty.
func (h *Store) list(ctx context.Context, path string) ([]string, error) {
	s, err := h.client.Logical().ListWithContext(ctx, path)
	if err != nil {
		return nil, h.vaultErr(ctx, "listing credential records", err)
	}
	if s == nil {
		return nil, nil
	}
	raw, _ := s.Data["keys"].([]any)
	keys := make([]string, 0, len(raw))
	for _, k := range raw {
		if str, ok := k.(string); ok {
			keys = append(keys, str)
		}
	}
	return keys, nil
}

// vaultErr maps an error of the Vault client to the store's errors: the
// context's own error when it is done, else a *vault.VaultError naming the
// operation, Vault's HTTP status and messages (never the token, which
// travels in a header).
func (h *Store) vaultErr(ctx context.Context, op string, err error) error {
	if ctxErr := ctx.Err(); ctxErr != nil {
		return fmt.Errorf("vault: %s: %w", op, ctxErr)
	}
	var re *api.ResponseError
	if errors.As(err, &re) {
		msg := vaultMessages(re.Errors)
		if re.RawError || msg == "" {
			msg = http.StatusText(re.StatusCode)
		}
		return &vault.VaultError{Err: fmt.Errorf("%s: %s (HTTP %d)", op, msg, re.StatusCode)}
	}
	// No answer. The client hears what happened; the operator's log also
	// gets where (Vault's address, the path).
	if !errors.Is(err, ErrUnreachable) {
		h.logFailure(op, err)
	}
	return &vault.VaultError{Err: fmt.Errorf("%s: %w", op, unanswered(err, h.timeout))}
}

// vaultMessages joins Vault's error messages on one line, unwrapping the
// "1 error occurred:\n\t* permission denied" form.
func vaultMessages(errs []string) string {
	var out []string
	for _, e := range errs {
		for line := range strings.Lines(e) {
			line = strings.TrimSpace(line)
			if strings.HasSuffix(line, "error occurred:") || strings.HasSuffix(line, "errors occurred:") || line == "" {
				continue
			}
			out = append(out, strings.TrimPrefix(line, "* "))
		}
	}
	return strings.Join(out, "; ")
}

// isCASMismatch reports whether err is KV v2's refusal of a check-and-set.
func isCASMismatch(err error) bool {
	var re *api.ResponseError
	if !errors.As(err, &re) || re.StatusCode != http.StatusBadRequest {
		return false
	}
	for _, e := range re.Errors {
		if strings.Contains(e, "check-and-set") {
			return true
		}
	}
	return false
}

// jsonInt returns an integer field of a response's data.
func jsonInt(s *api.Secret, key string) (int64, bool) {
	if s == nil {
		return 0, false
	}
	return numberInt(s.Data[key])
}

func numberInt(v any) (int64, bool) {
	switch n := v.(type) {
	case json.Number:
		i, err := n.Int64()
		return i, err == nil
	case float64:
		return int64(n), true
	case int64:
		return n, true
	case int:
		return int64(n), true
	}
	return 0, false
}

// decodeData converts a response's data into out through JSON.
func decodeData(data map[string]any, out any) error {
	raw, err := json.Marshal(data)
	if err != nil {
		return err
	}
	return json.Unmarshal(raw, out)
}
