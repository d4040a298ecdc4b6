package server

import (
	"context"
	"encoding/json"
	"errors"
	"strings"

	"github.com/mark3labs/mcp-go/mcp"
	mcpserver "github.com/mark3labs/mcp-go/server"

	"github.com/connectors-gateway/connectors/internal/rawjson"
	"github.com/connectors-gateway/connectors/tenants"
	"github.com/connectors-gateway/connectors/vault"
)

// Fail closed: when what decides a request (the tenant's settings, its
// credential for the integration) cannot be read, the request is refused
// with the store's error, never served as if nothing were turned off or
// nothing were linked. A settings record or credential served from memory
// during an outage is fine; a default in its place is not.

// What could not be read.
const (
	whatSettings   = "settings"
	whatCredential = "credential"
)

// unavailableError is a request refused because the tenant's settings or
// a credential could not be read or opened. Its message, which reaches
// the agent, starts with the stable name of the README and the seed
// (VaultError, VaultEncryptionError) and holds neither the store's own
// message nor a path; the cause is logged and kept for errors.As.
type unavailableError struct {
	what        string // whatSettings or whatCredential
	integration string // for a credential
	err         error
}

func (e *unavailableError) Error() string {
	if e.encryption() {
		return "VaultEncryptionError: the stored " + e.integration + " credential of this tenant could not be decrypted; link the integration again or ask an operator to restore it"
	}
	if e.what == whatSettings {
		return "VaultError: this tenant's integration settings could not be read; retry later"
	}
	return "VaultError: the " + e.integration + " credential of this tenant could not be read; retry later"
}

func (e *unavailableError) Unwrap() error { return e.err }

func (e *unavailableError) encryption() bool {
	_, ok := errors.AsType[*vault.VaultEncryptionError](e.err)
	return ok
}

// storeFailure reports whether err is a failure to read the store rather
// than an answer (a credential, or none): the request must fail closed.
// A cancelled request is not one.
func storeFailure(err error) bool {
	if err == nil || vault.IsNotFound(err) || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	if _, ok := errors.AsType[*unavailableError](err); ok {
		return true
	}
	_, vaultErr := errors.AsType[*vault.VaultError](err)
	_, encErr := errors.AsType[*vault.VaultEncryptionError](err)
	return vaultErr || encErr
}

// unanswered reports whether a read of the store gave no answer (a
// credential, or none): a typed store failure, or anything else that is
// not the request ending (a record that does not parse, ...). What the
// store cannot answer is refused, not guessed.
func unanswered(ctx context.Context, err error) bool {
	return err != nil && !vault.IsNotFound(err) && ctx.Err() == nil
}

// credentialUnavailable wraps a store failure reading integration's
// credential for the agent. An untyped one becomes a *vault.VaultError,
// so that every lane maps it alike.
func credentialUnavailable(integration string, err error) error {
	if _, ok := errors.AsType[*unavailableError](err); ok {
		return err
	}
	if !storeFailure(err) {
		err = &vault.VaultError{Err: err}
	}
	return &unavailableError{what: whatCredential, integration: integration, err: err}
}

// guard adds to a view's hooks what every view does before and after
// mcp-go serves a request: refuse what the store cannot answer
// (preflight), and answer in the request's era (initializeEraResult).
func (v *view) guard(hooks *mcpserver.Hooks) {
	hooks.AddOnRequestInitialization(v.preflight)
	hooks.AddOnSuccess(initializeEraResult)
}

// preflight is the view's mcp-go OnRequestInitialization hook: before a
// method that lists or uses the tenant's integrations is served, the
// tenant's settings and the credentials the method depends on must be
// readable. mcp-go's tool and prompt filters cannot fail (a filter that
// cannot decide would have to list everything or nothing, and "nothing"
// reads as "nothing connected"), and a hook's error is the only way to
// answer such a request with an error: mcp-go sends it as -32600 with the
// error's message, which names VaultError or VaultEncryptionError.
//
// It costs a decoding of the request's method and name (not of its
// arguments' values) on the usual path, and reads of credentials that the
// tool filter and the call then read again where no request memo holds
// them (stdio: the store's cache answers, each read is audited); the
// direct path does not come here unless it declined the call. A call must
// be checked here too: a tenant whose credential cannot be read discovers
// no catalogue, and mcp-go would answer "tool not found".
func (v *view) preflight(ctx context.Context, _ any, message any) error {
	id, ok := tenants.FromContext(ctx)
	if !ok {
		return nil // refused later, as before
	}
	raw, ok := message.(json.RawMessage)
	if !ok {
		return nil
	}
	req, ok := readRequest(raw)
	if !ok {
		return nil // mcp-go answers what it cannot parse
	}
	var integrations []string
	switch req.Method {
	case mcp.MethodToolsList, mcp.MethodPromptsList:
		if v.only != "" {
			integrations = []string{v.only}
		} else {
			integrations = v.g.reg.Names()
		}
	case mcp.MethodToolsCall:
		integrations = []string{v.only}
		if v.only == "" {
			integ, ok := v.g.isConnectTool(req.Params.Name)
			if !ok {
				integ, _, _ = strings.Cut(req.Params.Name, "_")
			}
			if _, known := v.g.reg.Get(integ); !known {
				return nil // not a tool of any integration: mcp-go says so
			}
			integrations = []string{integ}
		}
	case mcp.MethodPromptsGet, mcp.MethodResourcesList, mcp.MethodResourcesTemplatesList,
		mcp.MethodResourcesRead, mcp.MethodCompletionComplete, mcp.MethodResourcesSubscribe:
		if v.only == "" {
			return nil // the aggregate serves none of them
		}
		integrations = []string{v.only}
	default:
		return nil
	}
	settings, err := v.g.settings(ctx, id.Tenant)
	if err != nil {
		return err
	}
	for _, integ := range integrations {
		if !settings.Enabled(integ) {
			continue
		}
		if _, _, err := v.g.storeGet(ctx, id.Tenant, integ); unanswered(ctx, err) {
			v.g.log.ErrorContext(ctx, "credential_unreadable", "tenantId", id.Tenant, "integration", integ, "method", string(req.Method), "error", err)
			return credentialUnavailable(integ, err)
		}
	}
	return nil
}

// request is what preflight reads of a request: its method and, for
// tools/call, the tool's name.
type request struct {
	Method mcp.MCPMethod `json:"method"`
	Params struct {
		Name string `json:"name"`
	} `json:"params"`
}

// readRequest reads a request's method and name as encoding/json (and so
// mcp-go) reads them, by a member walk when every key on the way is
// written plainly (keys matched without regard to case, the last of a
// name winning, as encoding/json does), else by encoding/json. raw is
// valid JSON: mcp-go parsed it before the hook runs.
func readRequest(raw json.RawMessage) (request, bool) {
	var req request
	plain := true
	var method, params []byte
	if !rawjson.Members(raw, func(k, v []byte) bool {
		switch {
		case !rawjson.PlainKey(k):
			plain = false
		case strings.EqualFold(string(k), "method"):
			method = v
		case strings.EqualFold(string(k), "params"):
			params = v
		}
		return plain
	}) || !plain || method == nil || !rawjson.Plain(method) {
		return req, json.Unmarshal(raw, &req) == nil
	}
	req.Method = mcp.MCPMethod(method[1 : len(method)-1])
	if req.Method != mcp.MethodToolsCall || len(params) == 0 || params[0] != '{' {
		return req, true
	}
	var name []byte
	if !rawjson.Members(params, func(k, v []byte) bool {
		switch {
		case !rawjson.PlainKey(k):
			plain = false
		case strings.EqualFold(string(k), "name"):
			name = v
		}
		return plain
	}) || !plain || name != nil && !rawjson.Plain(name) {
		return req, json.Unmarshal(raw, &req) == nil
	}
	if name != nil {
		req.Params.Name = string(name[1 : len(name)-1])
	}
	return req, true
}
