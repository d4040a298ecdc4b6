package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/connectors-gateway/connectors/cluster"
	"github.com/connectors-gateway/connectors/tenants"
	"github.com/connectors-gateway/connectors/vault"
	"github.com/connectors-gateway/connectors/vault/embedded"
)

// credentialInput is the body of "credential put": the same field names as
// the seed's POST /tenants/{tenantId}/integrations/{integration}/credentials.
type credentialInput struct {
	AccessToken  string            `json:"accessToken"`
	RefreshToken string            `json:"refreshToken,omitempty"`
	TokenType    string            `json:"tokenType,omitempty"`
	ExpiresIn    int64             `json:"expiresIn,omitempty"` // seconds; 0 = never
	Scopes       []string          `json:"scopes,omitempty"`
	Extra        map[string]string `json:"extra,omitempty"`
}

// credential runs the "credential" operator commands. Secrets come in on
// stdin, never in argv (which other users of the machine can read).
func (m *Main) credential(ctx context.Context, cfg Config, args []string) error {
	if len(args) == 0 {
		return usageError{"credential: want put, get, delete or list"}
	}
	verb, args := args[0], args[1:]
	fs := m.flags("credential " + verb)
	tenant := fs.String("tenant", "", "tenant ID (required)")
	integration := fs.String("integration", "", "integration name")
	if err := parse(fs, args); err != nil {
		return err
	}
	if err := tenants.ValidateID(*tenant); err != nil {
		return usageError{fmt.Sprintf("--tenant: %v", err)}
	}
	if verb != "list" && *integration == "" {
		return usageError{"--integration is required"}
	}
	// Read and check the input before touching the store.
	var cred vault.Credential
	var body []byte // cred as the HTTP API takes it
	if verb == "put" {
		var err error
		if cred, body, err = m.readCredential(); err != nil {
			return err
		}
	}
	switch verb {
	case "put", "get", "delete", "list":
	default:
		return usageError{fmt.Sprintf("credential: unknown verb %q", verb)}
	}
	st, err := m.openStore(cfg, m.quietLogger())
	if errors.Is(err, embedded.ErrLocked) {
		return m.viaGateway(cfg, err).credential(ctx, verb, *tenant, *integration, body)
	}
	if err != nil {
		return err
	}
	switch verb {
	case "put":
		if _, err := st.Put(ctx, *tenant, *integration, cred, vault.AnyVersion); err != nil {
			return err
		}
		m.printStored(*tenant, *integration, cred.ExpiresAt)
		m.announce(cfg, cluster.Change{Kind: cluster.KindCredential, Tenant: *tenant, Integration: *integration})
	case "get":
		cred, v, err := st.Get(ctx, *tenant, *integration)
		if err != nil {
			return err
		}
		out := map[string]any{
			"tenantId": *tenant, "integration": *integration, "version": v,
			"accessToken": mask(cred.AccessToken), "hasRefreshToken": cred.RefreshToken != "",
			"tokenType": cred.TokenType, "scopes": cred.Scopes, "extra": cred.Extra,
			"createdAt": cred.CreatedAt, "updatedAt": cred.UpdatedAt, "expiresAt": nil,
		}
		if !cred.ExpiresAt.IsZero() {
			out["expiresAt"] = cred.ExpiresAt
		}
		enc := json.NewEncoder(m.Stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(out)
	case "delete":
		if err := st.Delete(ctx, *tenant, *integration); err != nil {
			return err
		}
		fmt.Fprintf(m.Stdout, "deleted %s/%s\n", *tenant, *integration)
		m.announce(cfg, cluster.Change{Kind: cluster.KindCredential, Tenant: *tenant, Integration: *integration})
	case "list":
		names, err := st.Integrations(ctx, *tenant)
		if err != nil {
			return err
		}
		slices.Sort(names)
		for _, n := range names {
			fmt.Fprintln(m.Stdout, n)
		}
	}
	return nil
}

// printStored prints what "credential put" stored.
func (m *Main) printStored(tenant, integration string, expires time.Time) {
	when := "never"
	if !expires.IsZero() {
		when = expires.UTC().Format(time.RFC3339)
	}
	fmt.Fprintf(m.Stdout, "stored %s/%s (expires %s)\n", tenant, integration, when)
}

// readCredential reads a credential as JSON from stdin; body is it as the
// HTTP API takes it (for the gateway on the admin socket).
func (m *Main) readCredential() (_ vault.Credential, body []byte, _ error) {
	var in credentialInput
	dec := json.NewDecoder(io.LimitReader(m.Stdin, 1<<20))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&in); err != nil {
		return vault.Credential{}, nil, fmt.Errorf("reading credential JSON from stdin: %w", err)
	}
	if in.AccessToken == "" {
		return vault.Credential{}, nil, fmt.Errorf("reading credential JSON from stdin: accessToken is required")
	}
	if in.ExpiresIn < 0 {
		return vault.Credential{}, nil, fmt.Errorf("reading credential JSON from stdin: expiresIn must be 0 (never) or positive")
	}
	cred := vault.Credential{
		AccessToken: in.AccessToken, RefreshToken: in.RefreshToken,
		TokenType: in.TokenType, Scopes: in.Scopes, Extra: in.Extra,
	}
	if cred.TokenType == "" {
		cred.TokenType = "bearer"
	}
	if in.ExpiresIn > 0 {
		cred.ExpiresAt = time.Now().UTC().Add(time.Duration(in.ExpiresIn) * time.Second).Truncate(time.Second)
	}
	body, err := json.Marshal(in)
	return cred, body, err
}

// mask shows enough of a token to recognise it, never enough to use it.
func mask(s string) string {
	if len(s) <= 8 {
		return strings.Repeat("*", len(s))
	}
	return s[:4] + "…" + strings.Repeat("*", 4)
}

// key runs "key rotate": a new key version for a tenant, with every
// credential of the tenant re-sealed under it; with --retire-old, older
// versions then stop decrypting (Vault's min_decryption_version).
func (m *Main) key(ctx context.Context, cfg Config, args []string) error {
	retire := len(args) > 0 && slices.Contains(args, "--retire-old")
	args = slices.DeleteFunc(slices.Clone(args), func(a string) bool { return a == "--retire-old" })
	tenant, st, err := m.tenantVerb(cfg, "key", "rotate", args)
	if errors.Is(err, embedded.ErrLocked) {
		return m.viaGateway(cfg, err).rotateKey(ctx, tenant, retire)
	}
	if err != nil {
		return err
	}
	err = st.RotateTenantKey(ctx, tenant)
	m.announce(cfg, cluster.Change{Kind: cluster.KindKeyRotated, Tenant: tenant}) // some records may be rewrapped
	if err != nil {
		return err
	}
	fmt.Fprintf(m.Stdout, "rotated the data key of %s\n", tenant)
	if retire {
		if err := st.RetireOldKeyVersions(ctx, tenant); err != nil {
			return err
		}
		fmt.Fprintf(m.Stdout, "retired the older key versions of %s\n", tenant)
	}
	return nil
}

// tenantVerb parses "<command> <verb> --tenant T" and opens the store.
func (m *Main) tenantVerb(cfg Config, command, verb string, args []string) (string, vault.Backend, error) {
	if len(args) == 0 || args[0] != verb {
		return "", nil, usageError{fmt.Sprintf("%s: want %s", command, verb)}
	}
	fs := m.flags(command + " " + verb)
	tenant := fs.String("tenant", "", "tenant ID (required)")
	if err := parse(fs, args[1:]); err != nil {
		return "", nil, err
	}
	if err := tenants.ValidateID(*tenant); err != nil {
		return "", nil, usageError{fmt.Sprintf("--tenant: %v", err)}
	}
	st, err := m.openStore(cfg, m.quietLogger())
	return *tenant, st, err
}

// tenant runs "tenant offboard": every credential of the tenant deleted,
// its encryption key destroyed (crypto-shredding: a copy of its ciphertext
// made before can no longer be read), and its API keys revoked
// (offboardTenant, which POST /admin/tenants/{tenantId}/offboard runs too).
func (m *Main) tenant(ctx context.Context, cfg Config, args []string) error {
	tenant, st, err := m.tenantVerb(cfg, "tenant", "offboard", args)
	if errors.Is(err, embedded.ErrLocked) {
		return m.viaGateway(cfg, err).offboard(ctx, tenant)
	}
	if err != nil {
		return err
	}
	res, _, err := offboardTenant(ctx, st, tenants.NewAPIKeys(st), m.audit, tenant)
	m.announce(cfg, cluster.Change{Kind: cluster.KindOffboarded, Tenant: tenant}) // some keys or records may be gone
	if err != nil {
		return err
	}
	fmt.Fprintf(m.Stdout, "offboarded %s: credentials deleted, key destroyed, %d API keys revoked\n", tenant, res.APIKeysRevoked)
	return nil
}
