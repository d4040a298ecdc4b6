package server

import (
	"context"
	"encoding/json"
	"net/http"

	"github.com/mark3labs/mcp-go/mcp"

	"github.com/connectors-gateway/connectors/internal/httpwire"
)

// ParamTools names the tools whose arguments also travel in Mcp-Param
// headers: ParamTool returns the tool name of the view (an integration's,
// or "" for the aggregate) as the caller's tenant's catalogue lists it,
// and false for any other.
type ParamTools interface {
	ParamTool(ctx context.Context, view, name string) (mcp.Tool, bool)
}

// ParamTool implements ParamTools: the tool name of the tenant's catalogue
// in view, if its arguments are bound to headers.
func (g *Gateway) ParamTool(ctx context.Context, view, name string) (mcp.Tool, bool) {
	v := g.aggregate
	if view != "" {
		if v = g.single[view]; v == nil {
			return mcp.Tool{}, false
		}
	}
	integ, ok := v.integrationOf(name)
	if !ok {
		return mcp.Tool{}, false
	}
	t, ok := v.tenantTool(ctx, integ, name)
	if !ok || t.params == nil {
		return mcp.Tool{}, false
	}
	return *t.params, true
}

// refuseParamHeaders answers a 2026-07-28 tools/call whose Mcp-Param
// headers do not carry what its arguments hold (a header missing, another
// value, Base64 that does not decode) with HTTP 400 and -32020
// (HeaderMismatch), as the transport specification wants; it reports
// whether it did. The tool is the tenant's own, as its catalogue lists it.
func (h *Handler) refuseParamHeaders(w http.ResponseWriter, r *http.Request, m message) bool {
	if h.opts.ParamTools == nil || !mcp.IsModernProtocol(r.Header.Get(mcp.HeaderProtocolVersion)) {
		return false
	}
	var call struct {
		Name string `json:"name"`
	}
	if json.Unmarshal(m.Params, &call) != nil || call.Name == "" {
		return false // mcp-go refuses it
	}
	tool, ok := h.opts.ParamTools.ParamTool(r.Context(), r.PathValue("integration"), call.Name)
	if !ok {
		return false
	}
	err := mcp.ValidateParamHeadersLookup(func(name string) (string, bool) {
		v := r.Header.Values(name)
		if len(v) == 0 {
			return "", false
		}
		return v[0], true
	}, &tool, m.Params)
	if err == nil {
		return false
	}
	httpwire.WriteJSONRPCError(w, http.StatusBadRequest, m.ID, mcp.HEADER_MISMATCH, err.Error())
	return true
}
