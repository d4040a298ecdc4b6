package transport

import (
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/connectors-gateway/connectors/internal/httpwire"
	"github.com/connectors-gateway/connectors/oauth"
	"github.com/connectors-gateway/connectors/tenants"
	"github.com/connectors-gateway/connectors/vault"
)

// Admin health pages: DefaultHealthPage tenants each, MaxHealthPage at most.
const (
	DefaultHealthPage = 100
	MaxHealthPage     = 1000
)

// adminRoutes serve the admins' routes: the tenants' health, key
// rotation (adminkey.go), off-boarding (adminoffboard.go), the tenants'
// limits (adminlimits.go), the metrics
// and the usage figures (metrics.go), and beside them a tenant's own daily
// usage (usagedaily.go).
type adminRoutes struct{ *guards }

func (h adminRoutes) register(mux *http.ServeMux) {
	if h.opts.Credentials != nil {
		mux.Handle("GET /admin/tenants/health", h.api(h.handleTenantsHealth))
		mux.Handle("POST /admin/tenants/{tenantId}/rotate-key", h.api(h.handleRotateKey))
		mux.Handle("POST /admin/tenants/{tenantId}/offboard", h.api(h.handleOffboard))
		if c := h.opts.Credentials; c.Settings != nil && c.Limits != nil {
			mux.Handle("GET /admin/tenants/{tenantId}/limits", h.api(h.handleGetLimits))
			mux.Handle("PUT /admin/tenants/{tenantId}/limits", h.api(h.handlePutLimits))
		}
	}
	if h.opts.Metrics != nil {
		mux.Handle("GET /metrics", h.api(h.handleMetrics))
	}
	if h.opts.Usage != nil {
		mux.Handle("GET /admin/usage", h.api(h.handleUsageTop))
		mux.Handle("GET /admin/tenants/{tenantId}/usage", h.api(h.handleUsage))
	}
	if h.opts.Usage != nil || h.opts.UsageDaily != nil {
		mux.Handle("GET /tenants/{tenantId}/usage/daily", h.api(h.handleUsageDaily))
	}
}

// healthPage reads the admin health route's ?limit, ?after and ?q; msg
// says what is wrong with them, if anything.
func healthPage(q url.Values) (limit int, after, search, msg string) {
	limit = DefaultHealthPage
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > MaxHealthPage {
			return 0, "", "", "limit: must be a whole number from 1 to 1000"
		}
		limit = n
	}
	after = q.Get("after")
	if after != "" && tenants.ValidateID(after) != nil {
		return 0, "", "", "after: not a tenant ID"
	}
	search = q.Get("q")
	if len(search) > 64 || strings.ContainsFunc(search, func(c rune) bool { return !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') }) {
		return 0, "", "", "q: must be a part of a tenant ID (a-z, 0-9, '-' and '_', at most 64)"
	}
	return limit, after, search, ""
}

// tenantHealth is one tenant in the admin health route.
type tenantHealth struct {
	TenantID     string            `json:"tenantId"`
	Integrations map[string]string `json:"integrations"`
}

// handleTenantsHealth handles the "GET /admin/tenants/health" route (admins
// only): every tenant's integrations, "healthy" or the state that is not.
// It pages through tenants in ID order: ?limit=N (default 100, at most
// 1000) and ?after=TENANT (the previous page's nextAfter); ?q=PART keeps
// the tenants whose ID contains PART. totalTenants counts every tenant
// (that matches); the other figures count the page's.
func (h adminRoutes) handleTenantsHealth(w http.ResponseWriter, r *http.Request) {
	if !h.requireAdmin(w, r) {
		return
	}
	limit, after, search, msg := healthPage(r.URL.Query())
	if msg != "" {
		httpwire.WriteError(w, r, http.StatusBadRequest, "ValidationError", msg)
		return
	}
	c := h.opts.Credentials
	all, err := c.Store.Tenants(r.Context())
	if err != nil {
		h.fail(w, r, err)
		return
	}
	if search != "" {
		all = slices.DeleteFunc(slices.Clone(all), func(t string) bool { return !strings.Contains(t, search) })
	}
	start, _ := slices.BinarySearch(all, after)
	if after != "" && start < len(all) && all[start] == after {
		start++
	}
	page := all[start:min(start+limit, len(all))]
	out := struct {
		TotalTenants      int            `json:"totalTenants"`
		TotalIntegrations int            `json:"totalIntegrations"`
		Healthy           int            `json:"healthy"`
		Unhealthy         int            `json:"unhealthy"`
		Details           []tenantHealth `json:"details"`
		NextAfter         string         `json:"nextAfter,omitempty"`
	}{TotalTenants: len(all), Details: []tenantHealth{}}
	for _, tenant := range page {
		held, err := c.Store.Integrations(r.Context(), tenant)
		if err != nil {
			h.fail(w, r, err)
			return
		}
		th := tenantHealth{TenantID: tenant, Integrations: map[string]string{}}
		for _, name := range held {
			if _, ok := c.Registry.Integration(name); !ok {
				continue
			}
			cred, _, err := c.Store.Get(r.Context(), tenant, name)
			if vault.IsNotFound(err) {
				continue
			}
			state := "unreadable"
			if err == nil {
				state = c.health(tenant, name, &cred).State
			}
			out.TotalIntegrations++
			switch state {
			case oauth.HealthActive, oauth.HealthExpiring:
				th.Integrations[name] = "healthy"
				out.Healthy++
			default:
				th.Integrations[name] = state
				out.Unhealthy++
			}
		}
		out.Details = append(out.Details, th)
	}
	if start+limit < len(all) && len(page) > 0 {
		out.NextAfter = page[len(page)-1]
	}
	httpwire.WriteJSON(w, http.StatusOK, out)
}
