package console

import (
	"net/http"
	"net/url"
	"slices"
	"strings"
)

// adminRoutes are the admins' pages. Each refuses a session that is not an
// admin's before it calls anything (requireAdmin), and the API's admin
// routes refuse it again.
func (c *Console) adminRoutes() {
	c.mux.HandleFunc("GET /console/admin", c.signedIn(c.adminTenants))
	c.mux.HandleFunc("GET /console/admin/tenants/{tenantId}", c.signedIn(c.adminTenant))
	c.mux.HandleFunc("POST /console/admin/tenants/{tenantId}/integrations/{integration}", c.signedIn(c.adminIntegration))
	c.mux.HandleFunc("POST /console/admin/tenants/{tenantId}/limits", c.signedIn(c.adminLimits))
	c.mux.HandleFunc("POST /console/admin/tenants/{tenantId}/rotate-key", c.signedIn(c.adminRotate))
	c.mux.HandleFunc("GET /console/admin/tenants/{tenantId}/offboard", c.signedIn(c.adminOffboardPage))
	c.mux.HandleFunc("POST /console/admin/tenants/{tenantId}/offboard", c.signedIn(c.adminOffboard))
}

// tenantRow is one tenant of GET /admin/tenants/health.
type tenantRow struct {
	TenantID     string            `json:"tenantId"`
	Integrations map[string]string `json:"integrations"`
}

// Unhealthy are the row's integrations that are not healthy, sorted.
func (t tenantRow) Unhealthy() []string {
	var out []string
	for name, state := range t.Integrations {
		if state != "healthy" {
			out = append(out, name+": "+state)
		}
	}
	slices.Sort(out)
	return out
}

// adminTenantsData is the admin's list of tenants.
type adminTenantsData struct {
	Query                            string
	Rows                             []tenantRow
	Total, Healthy, Unhealthy, Shown int
	Next                             string // the next page's link, if any
}

// adminTenants is GET /console/admin: every tenant, a page at a time,
// searchable by ID, the unhealthy ones of the page first.
func (c *Console) adminTenants(w http.ResponseWriter, r *http.Request, s *session) {
	in := r.URL.Query()
	q := url.Values{"limit": {"50"}}
	for _, k := range []string{"after", "q"} {
		if v := in.Get(k); v != "" {
			q.Set(k, v)
		}
	}
	var out struct {
		TotalTenants int         `json:"totalTenants"`
		Healthy      int         `json:"healthy"`
		Unhealthy    int         `json:"unhealthy"`
		Details      []tenantRow `json:"details"`
		NextAfter    string      `json:"nextAfter"`
	}
	if _, err := (call{method: http.MethodGet, path: "/admin/tenants/health", query: q}).into(r.Context(), c.handler(), r, &out); err != nil {
		c.fail(w, r, s, err)
		return
	}
	slices.SortStableFunc(out.Details, func(a, b tenantRow) int { return len(b.Unhealthy()) - len(a.Unhealthy()) })
	d := adminTenantsData{Query: in.Get("q"), Rows: out.Details, Total: out.TotalTenants,
		Healthy: out.Healthy, Unhealthy: out.Unhealthy, Shown: len(out.Details)}
	if out.NextAfter != "" {
		next := url.Values{"after": {out.NextAfter}}
		if d.Query != "" {
			next.Set("q", d.Query)
		}
		d.Next = "/console/admin?" + next.Encode()
	}
	c.render(w, r, http.StatusOK, "admin", page{Title: "Tenants", Nav: "admin", Session: s, Flash: flash(r), Data: d})
}

// adminTenantData is one tenant as an admin sees it.
type adminTenantData struct {
	Tenant       string
	Integrations []integration
	Limits       limitsInForce // limits.go
}

// adminTenant is GET /console/admin/tenants/{tenantId}.
func (c *Console) adminTenant(w http.ResponseWriter, r *http.Request, s *session) {
	if !c.requireAdmin(w, r, s) {
		return
	}
	tenant := r.PathValue("tenantId")
	ins, err := c.integrations(r, tenant)
	var lim limitsInForce
	if err == nil {
		lim, err = c.tenantLimits(r, tenant)
	}
	if err != nil {
		c.fail(w, r, s, err)
		return
	}
	c.render(w, r, http.StatusOK, "admintenant", page{Title: "Tenant " + tenant, Nav: "admin", Session: s, Flash: flash(r),
		Data: adminTenantData{Tenant: tenant, Integrations: ins, Limits: lim}})
}

// requireAdmin answers 403 for a session that is not an admin's: the
// API would too, but its tenant routes let a tenant read itself, and an
// admin page of the tenant's own ID must not be the way around that.
func (c *Console) requireAdmin(w http.ResponseWriter, r *http.Request, s *session) bool {
	if s.Admin {
		return true
	}
	c.render(w, r, http.StatusForbidden, "error", page{Title: "Refused", Session: s, Error: &apiError{
		Status: http.StatusForbidden, Name: "Forbidden", Message: "This page is for the gateway's administrators."}})
	return false
}

// adminIntegration is POST /console/admin/tenants/{tenantId}/integrations/
// {integration}: action=enable, disable, or narrow with tools (names,
// one per line or separated by commas; empty: every tool).
func (c *Console) adminIntegration(w http.ResponseWriter, r *http.Request, s *session) {
	if !c.requireAdmin(w, r, s) {
		return
	}
	tenant := r.PathValue("tenantId")
	path := tenantPath(tenant, "integrations", r.PathValue("integration"))
	cl := call{method: http.MethodPut, path: path, csrf: s.CSRF}
	done := "enabled"
	switch r.PostFormValue("action") {
	case "enable":
		cl.body = map[string]any{"enabled": true}
	case "disable":
		cl.method, done = http.MethodDelete, "disabled"
	case "narrow":
		body := map[string]any{"enabled": true}
		if tools := toolList(r.PostFormValue("tools")); len(tools) > 0 {
			body["tools"] = tools
		}
		cl.body, done = body, "narrowed"
	default:
		c.fail(w, r, s, &apiError{Status: http.StatusBadRequest, Name: "ValidationError", Message: "action: must be enable, disable or narrow"})
		return
	}
	if _, err := cl.into(r.Context(), c.handler(), r, nil); err != nil {
		c.fail(w, r, s, err)
		return
	}
	back(w, r, "/console/admin/tenants/"+pathEscape(tenant), done)
}

// toolList splits a list of tool names on commas and line ends.
func toolList(s string) []string {
	var out []string
	for _, f := range strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == '\n' || r == '\r' }) {
		if f = strings.TrimSpace(f); f != "" && !slices.Contains(out, f) {
			out = append(out, f)
		}
	}
	return out
}

// adminRotate is POST /console/admin/tenants/{tenantId}/rotate-key.
func (c *Console) adminRotate(w http.ResponseWriter, r *http.Request, s *session) {
	if !c.requireAdmin(w, r, s) {
		return
	}
	tenant := r.PathValue("tenantId")
	if _, err := (call{method: http.MethodPost, path: "/admin" + tenantPath(tenant, "rotate-key"), csrf: s.CSRF}).into(r.Context(), c.handler(), r, nil); err != nil {
		c.fail(w, r, s, err)
		return
	}
	back(w, r, "/console/admin/tenants/"+pathEscape(tenant), "rotated")
}

// adminOffboardPage is GET /console/admin/tenants/{tenantId}/offboard: the
// confirmation, which names the tenant and asks for its ID typed again.
func (c *Console) adminOffboardPage(w http.ResponseWriter, r *http.Request, s *session) {
	if !c.requireAdmin(w, r, s) {
		return
	}
	c.render(w, r, http.StatusOK, "offboard", page{Title: "Off-board " + r.PathValue("tenantId"), Nav: "admin", Session: s,
		Data: r.PathValue("tenantId")})
}

// adminOffboard is POST /console/admin/tenants/{tenantId}/offboard: the
// API's off-boarding, given the ID the admin typed as its confirmation
// (the API refuses one that does not name the tenant).
func (c *Console) adminOffboard(w http.ResponseWriter, r *http.Request, s *session) {
	if !c.requireAdmin(w, r, s) {
		return
	}
	tenant := r.PathValue("tenantId")
	body := map[string]any{"confirm": r.PostFormValue("confirm")}
	if _, err := (call{method: http.MethodPost, path: "/admin" + tenantPath(tenant, "offboard"), body: body, csrf: s.CSRF}).into(r.Context(), c.handler(), r, nil); err != nil {
		c.fail(w, r, s, err)
		return
	}
	back(w, r, "/console/admin", "offboarded")
}
