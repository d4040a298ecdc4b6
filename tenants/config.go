package tenants

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"
)

// Config is a tenant config file (the seed's "Option B"): the tenants and,
// for each, the integrations it has credentials for, given as literal
// values or as references to the credential store.
//
//	{"tenants": [{"id": "tenant-001", "name": "Acme Corporation",
//	  "integrations": [{"name": "notion", "credentials": {
//	    "accessToken": "${VAULT:secret/data/tenant-001/notion:access_token}",
//	    "tokenType": "bearer"}}]}]}
type Config struct {
	Path    string // the file it was read from
	Tenants []TenantConfig
}

// TenantConfig is one tenant of a [Config].
type TenantConfig struct {
	ID           string
	Name         string
	Integrations []IntegrationConfig
}

// IntegrationConfig is one tenant's credentials for one integration.
type IntegrationConfig struct {
	Name        string
	Credentials CredentialValues
}

// CredentialValues are the credential fields of the file. An empty Value
// was not given.
type CredentialValues struct {
	AccessToken, RefreshToken, ExpiresAt, TokenType Value
}

// fields returns the values with the record fields they name.
func (c *CredentialValues) fields() []struct {
	json, record string
	v            *Value
} {
	return []struct {
		json, record string
		v            *Value
	}{
		{"accessToken", "access_token", &c.AccessToken},
		{"refreshToken", "refresh_token", &c.RefreshToken},
		{"expiresAt", "expires_at", &c.ExpiresAt},
		{"tokenType", "token_type", &c.TokenType},
	}
}

// HasReferences reports whether any value is a store reference: then the
// store holds the credential, and the file's literal values are not written.
func (c CredentialValues) HasReferences() bool {
	for _, f := range c.fields() {
		if f.v.Ref != nil {
			return true
		}
	}
	return false
}

// Value is a literal value or a reference to a field of a credential
// record, ${VAULT:{mount}/data/{tenant}/{integration}:{field}}.
type Value struct {
	Literal string
	Ref     *Reference // nil: Literal
}

// Reference names one field of a credential record. It always names the
// record of the tenant and integration it appears under.
type Reference struct {
	Tenant, Integration, Field string
}

// ConfigError reports a mistake in a tenant config file, or a reference
// that does not resolve, naming where it is. Empty parts are unknown.
type ConfigError struct {
	File, Tenant, Integration, Field string
	Err                              error
}

func (e *ConfigError) Error() string {
	var b strings.Builder
	b.WriteString("tenant config " + e.File)
	if e.Tenant != "" {
		b.WriteString(": tenant " + e.Tenant)
	}
	if e.Integration != "" {
		b.WriteString(": integration " + e.Integration)
	}
	if e.Field != "" {
		b.WriteString(": field " + e.Field)
	}
	return b.String() + ": " + e.Err.Error()
}

func (e *ConfigError) Unwrap() error { return e.Err }

// ConfigOptions says what [LoadConfig] accepts. A nil *ConfigOptions is the
// zero value.
type ConfigOptions struct {
	// KVMount is the KV v2 mount references must name. Empty: "secret".
	KVMount string
	// CheckIntegration returns an error for an integration name the gateway
	// does not know (cmd checks the registry). Nil: any name without '/',
	// '.', ':', '%' or '}' is accepted.
	CheckIntegration func(name string) error
}

// The file's JSON shape; unknown fields are rejected at every level.
type (
	configFile struct {
		Tenants []json.RawMessage `json:"tenants"`
	}
	tenantFile struct {
		ID           string            `json:"id"`
		Name         string            `json:"name"`
		Integrations []json.RawMessage `json:"integrations"`
	}
	integrationFile struct {
		Name        string          `json:"name"`
		Credentials json.RawMessage `json:"credentials"`
	}
	credentialsFile struct {
		AccessToken  *string `json:"accessToken"`
		RefreshToken *string `json:"refreshToken"`
		ExpiresAt    *string `json:"expiresAt"`
		TokenType    *string `json:"tokenType"`
	}
)

// LoadConfig reads and validates the tenant config file at path. Every
// error is a *ConfigError naming the file and, where known, the tenant,
// integration and field.
func LoadConfig(path string, opts *ConfigOptions) (*Config, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, &ConfigError{File: path, Err: err}
	}
	return ParseConfig(path, raw, opts)
}

// ParseConfig is [LoadConfig] on the file's contents; path names it in errors.
func ParseConfig(path string, raw []byte, opts *ConfigOptions) (*Config, error) {
	var o ConfigOptions
	if opts != nil {
		o = *opts
	}
	if o.KVMount == "" {
		o.KVMount = "secret"
	}
	if o.CheckIntegration == nil {
		o.CheckIntegration = func(name string) error {
			if strings.ContainsAny(name, "/.:%}") {
				return errors.New("invalid integration name")
			}
			return nil
		}
	}
	fail := func(tenant, integration, field string, err error) error {
		return &ConfigError{File: path, Tenant: tenant, Integration: integration, Field: field, Err: err}
	}

	var f configFile
	if err := decodeStrict(raw, &f); err != nil {
		return nil, fail("", "", "", err)
	}
	if f.Tenants == nil {
		return nil, fail("", "", "", errors.New(`no "tenants" list`))
	}
	cfg := &Config{Path: path}
	seen := map[string]bool{}
	for i, rawTenant := range f.Tenants {
		where := fmt.Sprintf("#%d", i+1)
		var tf tenantFile
		if err := decodeStrict(rawTenant, &tf); err != nil {
			return nil, fail(where, "", "", err)
		}
		if tf.ID != "" {
			where = tf.ID
		}
		if err := ValidateID(tf.ID); err != nil {
			return nil, fail(fmt.Sprintf("%q", tf.ID), "", "id", err)
		}
		if seen[tf.ID] {
			return nil, fail(where, "", "id", errors.New("listed twice"))
		}
		seen[tf.ID] = true
		tc := TenantConfig{ID: tf.ID, Name: tf.Name}
		seenInt := map[string]bool{}
		for j, rawInt := range tf.Integrations {
			var inf integrationFile
			if err := decodeStrict(rawInt, &inf); err != nil {
				return nil, fail(where, fmt.Sprintf("#%d", j+1), "", err)
			}
			if inf.Name == "" {
				return nil, fail(where, fmt.Sprintf("#%d", j+1), "name", errors.New("missing"))
			}
			if err := o.CheckIntegration(inf.Name); err != nil {
				return nil, fail(where, fmt.Sprintf("%q", inf.Name), "name", err)
			}
			if seenInt[inf.Name] {
				return nil, fail(where, inf.Name, "name", errors.New("listed twice"))
			}
			seenInt[inf.Name] = true
			ic, err := parseCredentials(o.KVMount, tf.ID, inf)
			if err != nil {
				var ce *ConfigError
				if errors.As(err, &ce) {
					ce.File = path
					return nil, ce
				}
				return nil, fail(where, inf.Name, "credentials", err)
			}
			tc.Integrations = append(tc.Integrations, ic)
		}
		cfg.Tenants = append(cfg.Tenants, tc)
	}
	return cfg, nil
}

// decodeStrict decodes one JSON value into v, rejecting unknown fields and
// trailing data.
func decodeStrict(raw []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("malformed JSON: %w", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return errors.New("malformed JSON: data after the top-level value")
	}
	return nil
}

func parseCredentials(mount, tenant string, inf integrationFile) (IntegrationConfig, error) {
	fail := func(field string, err error) error {
		return &ConfigError{Tenant: tenant, Integration: inf.Name, Field: field, Err: err}
	}
	if len(inf.Credentials) == 0 || string(inf.Credentials) == "null" {
		return IntegrationConfig{}, fail("credentials", errors.New("missing"))
	}
	var cf credentialsFile
	if err := decodeStrict(inf.Credentials, &cf); err != nil {
		return IntegrationConfig{}, fail("credentials", err)
	}
	ic := IntegrationConfig{Name: inf.Name}
	given := map[string]*string{
		"accessToken": cf.AccessToken, "refreshToken": cf.RefreshToken,
		"expiresAt": cf.ExpiresAt, "tokenType": cf.TokenType,
	}
	for _, f := range ic.Credentials.fields() {
		s := given[f.json]
		if s == nil {
			continue
		}
		v, err := parseValue(mount, tenant, inf.Name, f.record, *s)
		if err != nil {
			return IntegrationConfig{}, fail(f.json, err)
		}
		*f.v = v
	}
	c := ic.Credentials
	if c.AccessToken.Ref == nil && c.AccessToken.Literal == "" {
		return IntegrationConfig{}, fail("accessToken", errors.New("missing: give the token or a ${VAULT:...} reference"))
	}
	if c.HasReferences() {
		// The store holds the record: a literal token or expiry beside
		// references would be silently ignored. tokenType may stay literal,
		// as in the seed's example.
		for _, f := range c.fields()[:3] {
			if f.v.Ref == nil && f.v.Literal != "" {
				return IntegrationConfig{}, fail(f.json, errors.New("a literal value beside references: give the record's fields as references, or none"))
			}
		}
	}
	if e := c.ExpiresAt; e.Ref == nil && e.Literal != "" {
		if _, err := time.Parse(time.RFC3339, e.Literal); err != nil {
			return IntegrationConfig{}, fail("expiresAt", errors.New("not an RFC 3339 time such as 2025-01-02T15:04:05Z"))
		}
	}
	return ic, nil
}

// parseValue parses a literal or a ${VAULT:...} reference, which must name
// field of the tenant's own record for integration in mount.
func parseValue(mount, tenant, integration, field, s string) (Value, error) {
	if !strings.HasPrefix(s, "${") {
		return Value{Literal: s}, nil
	}
	inner, okPrefix := strings.CutPrefix(s, "${VAULT:")
	inner, okSuffix := strings.CutSuffix(inner, "}")
	if !okPrefix || !okSuffix || inner == "" {
		return Value{}, errors.New("malformed reference: want ${VAULT:" + mount + "/data/{tenant}/{integration}:{field}}")
	}
	i := strings.LastIndexByte(inner, ':')
	if i < 0 {
		return Value{}, errors.New("malformed reference: no :{field} after the path")
	}
	path, refField := inner[:i], inner[i+1:]
	want := mount + "/data/" + tenant + "/" + integration
	if path != want {
		// Never name the other path back: the error reaches logs only, but a
		// reference outside the tenant is refused before anything is read.
		return Value{}, fmt.Errorf("reference must name the tenant's own record %s, not another path", want)
	}
	if refField != field {
		return Value{}, fmt.Errorf("reference must name the record's field %s, not %q", field, refField)
	}
	return Value{Ref: &Reference{Tenant: tenant, Integration: integration, Field: field}}, nil
}

// Resolver reads one field of a stored credential record: access_token,
// refresh_token, token_type or expires_at (RFC 3339). A field the record
// does not have is an error.
type Resolver interface {
	Resolve(ctx context.Context, tenant, integration, field string) (string, error)
}

// LiteralCredential is a credential given in the file in clear.
type LiteralCredential struct {
	AccessToken, RefreshToken, TokenType string
	ExpiresAt                            time.Time // zero: never expires
}

// CredentialSink is what [Config.Sync] needs of a credential store.
type CredentialSink interface {
	Resolver
	// Store stores a literal credential unless an identical one is stored,
	// and reports whether it wrote.
	Store(ctx context.Context, tenant, integration string, cred LiteralCredential) (bool, error)
}

// Sync makes the store agree with the file: a literal credential is stored
// (unless an identical one is), a reference is resolved to check it names a
// field the store holds. It stops at the first failure, with a
// *ConfigError naming tenant, integration and field. It returns how many
// credentials it wrote.
func (c *Config) Sync(ctx context.Context, sink CredentialSink) (int, error) {
	written := 0
	for _, t := range c.Tenants {
		for _, in := range t.Integrations {
			fail := func(field string, err error) error {
				return &ConfigError{File: c.Path, Tenant: t.ID, Integration: in.Name, Field: field, Err: err}
			}
			creds := in.Credentials
			if creds.HasReferences() {
				for _, f := range creds.fields() {
					if f.v.Ref == nil {
						continue
					}
					if _, err := sink.Resolve(ctx, f.v.Ref.Tenant, f.v.Ref.Integration, f.v.Ref.Field); err != nil {
						return written, fail(f.json, fmt.Errorf("reference does not resolve: %w", err))
					}
				}
				continue
			}
			lit := LiteralCredential{
				AccessToken:  creds.AccessToken.Literal,
				RefreshToken: creds.RefreshToken.Literal,
				TokenType:    creds.TokenType.Literal,
			}
			if creds.ExpiresAt.Literal != "" {
				lit.ExpiresAt, _ = time.Parse(time.RFC3339, creds.ExpiresAt.Literal) // checked by ParseConfig
			}
			wrote, err := sink.Store(ctx, t.ID, in.Name, lit)
			if err != nil {
				return written, fail("credentials", fmt.Errorf("storing: %w", err))
			}
			if wrote {
				written++
			}
		}
	}
	return written, nil
}
