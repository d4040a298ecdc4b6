package transport

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"testing"

	"github.com/connectors-gateway/connectors/oauth"
	"github.com/connectors-gateway/connectors/server"
	"github.com/connectors-gateway/connectors/tenants"
	"github.com/connectors-gateway/connectors/vault"
)

// TestErrorFor: every error the routes answer, and its one answer
// (wrapped or not, and whichever route answers it).
func TestErrorFor(t *testing.T) {
	for _, tc := range []struct {
		err    error
		status int
		name   string
		msg    string
	}{
		{&http.MaxBytesError{Limit: 1}, 413, "PayloadTooLarge", "request body too large"},
		{&FieldError{Field: "accessToken", Msg: "is required"}, 400, "ValidationError", "accessToken: is required"},
		{&tenants.KeyNameError{Reason: "must be at most 64 characters"}, 400, "ValidationError", "name: must be at most 64 characters"},
		{tenants.ErrKeyNotFound, 404, "APIKeyNotFound", "no API key by that ID"},
		{tenants.ErrAdminKey, 403, "Forbidden", "admin: only an admin may create or revoke an admin key"},
		{server.ErrUnknownIntegration, 404, "IntegrationNotFound", "no integration by that name"},
		{server.ErrDisabled, 403, "IntegrationDisabled", "this integration is turned off for the tenant"},
		{server.ErrUnknownTool, 404, "ToolNotFound", "the integration has no tool by that name"},
		{&vault.CredentialNotFoundError{Tenant: "tenant-a", Integration: "notion"}, 404, "CredentialNotFoundError", "Credentials not found for tenant-a/notion"},
		{&vault.ConflictError{}, 409, "Conflict", "the credential changed concurrently: retry"},
		{&vault.VaultEncryptionError{Err: errors.New("bad key")}, 503, "VaultEncryptionError", "Failed to decrypt data"},
		{&vault.VaultError{Err: errors.New("refused")}, 503, "VaultError", "Failed to connect to Vault"},
		{context.DeadlineExceeded, 503, "VaultError", "the credential store did not answer in time"},
		{context.Canceled, 503, "VaultError", "the credential store did not answer in time"},
		{errors.New("boom"), 503, "VaultError", "the credential store failed"},
		{&upstreamError{context.DeadlineExceeded}, 504, "UpstreamTimeout", "the tool did not answer in time"},
		{&upstreamError{errors.New("boom")}, 502, "UpstreamError", "the integration could not run the tool"},
		{&upstreamError{&vault.VaultError{Err: errors.New("refused")}}, 503, "VaultError", "Failed to connect to Vault"},
		{&upstreamError{server.ErrUnknownTool}, 404, "ToolNotFound", "the integration has no tool by that name"},
		{oauth.ErrRedirectURI, 400, "InvalidRedirectUri", "redirect_uri must be exactly one of the gateway's allowed redirect URIs"},
		{oauth.ErrStateExpired, 400, "StateExpired", "this link request has expired: start again"},
		{oauth.ErrStateUsed, 400, "StateAlreadyUsed", "this link request was already completed"},
		{oauth.ErrStateTenant, 403, "StateTenantMismatch", "this link request was started for another tenant than the one signed in"},
		{oauth.ErrStateBrowser, 403, "StateBrowserMismatch", "this link request was confirmed in another browser: nothing was linked"},
		{oauth.ErrStateInvalid, 400, "InvalidState", "the state parameter is missing or not valid"},
		{oauth.ErrLinkUsed, 400, "StateAlreadyUsed", "this link request was already confirmed: ask for a new link"},
		{oauth.ErrLinkExpired, 400, "StateExpired", "this link request has expired: ask for a new link"},
		{oauth.ErrLinkInvalid, 400, "InvalidState", "this link is not valid"},
	} {
		for _, err := range []error{tc.err, fmt.Errorf("wrapped: %w", tc.err)} {
			e := errorFor(err)
			if e.status != tc.status || e.name != tc.name || e.message != tc.msg {
				t.Errorf("errorFor(%v) = %d %s %q, want %d %s %q", err, e.status, e.name, e.message, tc.status, tc.name, tc.msg)
			}
		}
	}
	if e := errorFor(&vault.VaultError{}); e.retryAfter != "5" || !e.logged {
		t.Errorf("a store that did not answer: Retry-After %q, logged %v; want 5, logged", e.retryAfter, e.logged)
	}
	if e := errorFor(oauth.ErrStateUsed); !e.flow {
		t.Error("a link request's error is not marked as the flow's")
	}
}

// TestAuthFailureFor: each way authentication fails, its status, error
// name and challenge.
func TestAuthFailureFor(t *testing.T) {
	const resource = "https://gateway.example.com/mcp"
	const metadata = `resource_metadata="https://gateway.example.com/.well-known/oauth-protected-resource/mcp"`
	scopes := []string{"mcp"}
	for _, tc := range []struct {
		name       string
		err        error
		resource   string
		status     int
		errName    string
		challenge  string
		retryAfter string
	}{
		{"no credentials", ErrNoCredentials, resource, 401, "Unauthorized",
			`Bearer realm="connectors", scope="mcp", ` + metadata, ""},
		{"no credentials, no metadata", ErrNoCredentials, "", 401, "Unauthorized",
			`Bearer realm="connectors", scope="mcp"`, ""},
		{"bad key", tenants.ErrInvalidAPIKey, resource, 401, "Unauthorized",
			`Bearer realm="connectors", error="invalid_token", scope="mcp", ` + metadata, ""},
		{"both headers", ErrAmbiguousCredentials, "", 401, "Unauthorized",
			`Bearer realm="connectors", error="invalid_token", scope="mcp"`, ""},
		{"scope missing", &tenants.InsufficientScopeError{Required: []string{"mcp", "admin"}}, resource, 403, "InsufficientScope",
			`Bearer realm="connectors", error="insufficient_scope", scope="mcp admin", ` + metadata, ""},
		{"CSRF", fmt.Errorf("%w: no token", ErrCSRF), resource, 403, "CSRFCheckFailed", "", ""},
		{"store down", &vault.VaultError{Err: errors.New("refused")}, resource, 503, "VaultError", "", "5"},
	} {
		f := authFailureFor(tc.err, tc.resource, scopes)
		if f.status != tc.status || f.name != tc.errName || f.challenge != tc.challenge || f.retryAfter != tc.retryAfter {
			t.Errorf("%s: %d %s challenge %q Retry-After %q; want %d %s %q %q",
				tc.name, f.status, f.name, f.challenge, f.retryAfter, tc.status, tc.errName, tc.challenge, tc.retryAfter)
		}
	}
}
