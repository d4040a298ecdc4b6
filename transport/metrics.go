package transport

import (
	"net/http"
	"strconv"

	"github.com/connectors-gateway/connectors/internal/httpwire"
)

// handleMetrics handles the "GET /metrics" route (admins only): the
// Prometheus metrics. Scrape it with an admin API key as the bearer token.
func (h adminRoutes) handleMetrics(w http.ResponseWriter, r *http.Request) {
	if !h.requireAdmin(w, r) {
		return
	}
	h.opts.Metrics.Handler().ServeHTTP(w, r)
}

// handleUsage handles the "GET /admin/tenants/{tenantId}/usage" route
// (admins only): one tenant's figures (the seed's per-tenant metrics:
// calls, credential accesses, refresh success rate, active integrations)
// since this replica started, or, with UsageTotals, the figures all
// replicas share, since they started.
func (h adminRoutes) handleUsage(w http.ResponseWriter, r *http.Request) {
	if !h.requireAdmin(w, r) {
		return
	}
	tenant, ok := h.tenantFor(w, r, r.PathValue("tenantId"))
	if !ok {
		return
	}
	u, ok := h.opts.Usage.Tenant(tenant)
	if h.opts.UsageTotals != nil {
		var err error
		if u, ok, err = h.opts.UsageTotals(r.Context(), tenant); err != nil {
			h.fail(w, r, err)
			return
		}
	}
	if !ok && h.opts.UsageTotals != nil {
		httpwire.WriteError(w, r, http.StatusNotFound, "NoUsage", "no use by this tenant recorded")
		return
	}
	if !ok {
		httpwire.WriteError(w, r, http.StatusNotFound, "NoUsage", "no use by this tenant seen by this replica")
		return
	}
	httpwire.WriteJSON(w, http.StatusOK, u)
}

// handleUsageTop handles the "GET /admin/usage" route (admins only): the
// busiest tenants, ?top=N (default 20, at most 1000), of those this
// replica counted for (by their shared figures as of its last flush, with
// UsageTotals, plus what it has not flushed).
func (h adminRoutes) handleUsageTop(w http.ResponseWriter, r *http.Request) {
	if !h.requireAdmin(w, r) {
		return
	}
	n := 20
	if v := r.URL.Query().Get("top"); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil || n < 1 || n > 1000 {
			httpwire.WriteError(w, r, http.StatusBadRequest, "ValidationError", "top: must be a whole number from 1 to 1000")
			return
		}
	}
	httpwire.WriteJSON(w, http.StatusOK, map[string]any{"tenants": h.opts.Usage.Top(n)})
}
