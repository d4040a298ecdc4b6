package transport

import (
	"context"
	"encoding/json"
	"errors"
	"mime"
	"net/http"
	"strings"

	"github.com/connectors-gateway/connectors/internal/httpwire"
	"github.com/connectors-gateway/connectors/server"
	"github.com/connectors-gateway/connectors/tenants"
	"github.com/connectors-gateway/connectors/vault"
)

// Invoker runs a tool for the tenant in ctx, as tools/call does;
// server.Gateway is one. integration and tool are the upstream's names.
type Invoker interface {
	Invoke(ctx context.Context, integration, tool string, args map[string]any) (result json.RawMessage, isError bool, err error)
}

// invokeRequest is the body of POST /api/v1/tools/invoke (the seed's
// Option A step 6).
type invokeRequest struct {
	ToolID      string         `json:"toolId"`      // integration.tool
	Integration string         `json:"integration"` // optional; must match toolId
	TenantID    string         `json:"tenantId"`    // optional; the caller's own unless admin
	Parameters  map[string]any `json:"parameters"`
}

// invokeRoute serves POST /api/v1/tools/invoke.
type invokeRoute struct{ *guards }

// handleInvoke handles the "POST /api/v1/tools/invoke" route: a tool call
// over plain HTTP, taking the same path as an MCP tools/call.
func (h invokeRoute) handleInvoke(w http.ResponseWriter, r *http.Request) {
	// A JSON body only: a form or text/plain body is what a page on
	// another site can send without a preflight.
	if media, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || media != "application/json" {
		httpwire.WriteError(w, r, http.StatusUnsupportedMediaType, "UnsupportedMediaType", "the body must be JSON, sent with Content-Type: application/json")
		return
	}
	var req invokeRequest
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		h.fail(w, r, badBody(err, jsonFieldError(err)))
		return
	}
	integration, tool, ok := strings.Cut(req.ToolID, ".")
	if !ok || integration == "" || tool == "" {
		httpwire.WriteError(w, r, http.StatusBadRequest, "ValidationError", `toolId: must be "integration.tool", e.g. "notion.API-post-search"`)
		return
	}
	if req.Integration != "" && req.Integration != integration {
		httpwire.WriteError(w, r, http.StatusBadRequest, "ValidationError", "integration: does not match the integration of toolId")
		return
	}
	tenant, ok := h.tenantFor(w, r, req.TenantID)
	if !ok {
		return
	}
	caller, _ := tenants.FromContext(r.Context())
	ctx := tenants.NewContext(r.Context(), tenants.Identity{Tenant: tenant, Subject: caller.Subject, Admin: caller.Admin})
	res, isError, err := h.opts.Invoke.Invoke(ctx, integration, tool, req.Parameters)
	if err != nil {
		h.failCall(w, r, tenant, integration, err)
		return
	}
	httpwire.WriteJSON(w, http.StatusOK, map[string]any{
		"success":     !isError,
		"toolId":      req.ToolID,
		"integration": integration,
		"tenantId":    tenant,
		"result":      res,
	})
}

// jsonFieldError describes a JSON decoding error without echoing values.
func jsonFieldError(err error) string {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		return te.Field + ": must be " + te.Type.String()
	}
	if msg := err.Error(); strings.HasPrefix(msg, "json: unknown field ") {
		return strings.TrimPrefix(msg, "json: ") + ": not part of the request"
	}
	return "the body must be one JSON object"
}

// failCall answers a failed call of a tool of integration for tenant:
// every error not the gateway's or the store's is the upstream's.
func (h invokeRoute) failCall(w http.ResponseWriter, r *http.Request, tenant, integration string, err error) {
	if errors.Is(err, server.ErrNotLinked) {
		err = &vault.CredentialNotFoundError{Tenant: tenant, Integration: integration}
	}
	e := errorFor(&upstreamError{err})
	if e.status == http.StatusBadGateway {
		h.log.WarnContext(r.Context(), "invoke_failed", "integration", integration, "error", err, "requestId", RequestID(r.Context()))
	}
	h.answer(w, r, err, e)
}
