package console

import (
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"
)

// A tenant's rate limits and quotas, on the admin's page of the tenant:
// the limits in force (GET /admin/tenants/{tenantId}/limits) and a form
// that replaces the tenant's own (PUT), its integrations' kept as they
// are.

// limitFields are the tenant's limits the form sets, in the API's names,
// with their labels.
var limitFields = []struct{ Field, Label string }{
	{"callsPerMinute", "Calls per minute"},
	{"burst", "Burst"},
	{"concurrentCalls", "Calls at once"},
	{"dailyCalls", "Calls a day (UTC)"},
	{"monthlyCalls", "Calls a month (UTC)"},
	{"stdioProcesses", "Stdio processes at once"},
}

// limitsInForce is the answer of GET /admin/tenants/{tenantId}/limits, by
// field.
type limitsInForce struct {
	Tenant       map[string]int64
	Integrations map[string]map[string]int64
}

// limitRow is one field of the tenant's limits, as the page shows it.
type limitRow struct {
	Field, Label string
	Value        int64 // in force; 0: no limit
}

// IntegrationNames are the integrations with limits of their own, sorted.
func (l limitsInForce) IntegrationNames() []string {
	return slices.Sorted(maps.Keys(l.Integrations))
}

// Rows are the tenant's limits in force, in the form's order.
func (l limitsInForce) Rows() []limitRow {
	rows := make([]limitRow, 0, len(limitFields))
	for _, f := range limitFields {
		rows = append(rows, limitRow{Field: f.Field, Label: f.Label, Value: l.Tenant[f.Field]})
	}
	return rows
}

// tenantLimits reads tenant's limits in force.
func (c *Console) tenantLimits(r *http.Request, tenant string) (limitsInForce, error) {
	var raw map[string]any
	if _, err := (call{method: http.MethodGet, path: "/admin" + tenantPath(tenant, "limits")}).into(r.Context(), c.handler(), r, &raw); err != nil {
		return limitsInForce{}, err
	}
	l := limitsInForce{Tenant: numbers(raw), Integrations: map[string]map[string]int64{}}
	if ins, ok := raw["integrations"].(map[string]any); ok {
		for name, v := range ins {
			if m, ok := v.(map[string]any); ok {
				l.Integrations[name] = numbers(m)
			}
		}
	}
	return l, nil
}

// numbers are the fields of m that are numbers.
func numbers(m map[string]any) map[string]int64 {
	out := map[string]int64{}
	for k, v := range m {
		if f, ok := v.(float64); ok {
			out[k] = int64(f)
		}
	}
	return out
}

// adminLimits is POST /console/admin/tenants/{tenantId}/limits: the
// tenant's own limits replaced with the fields filled in (an empty one
// keeps the default), its integrations' limits as they were. A field
// that is not a whole number is refused here, naming it; the API checks
// the rest.
func (c *Console) adminLimits(w http.ResponseWriter, r *http.Request, s *session) {
	if !c.requireAdmin(w, r, s) {
		return
	}
	tenant := r.PathValue("tenantId")
	body := map[string]any{}
	for _, f := range limitFields {
		v := strings.TrimSpace(r.PostFormValue(f.Field))
		if v == "" {
			continue
		}
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			c.fail(w, r, s, &apiError{Status: http.StatusBadRequest, Name: "ValidationError", Message: f.Field + ": must be a whole number (0: no limit), or empty for the default"})
			return
		}
		body[f.Field] = n
	}
	current, err := c.tenantLimits(r, tenant)
	if err != nil {
		c.fail(w, r, s, err)
		return
	}
	if len(current.Integrations) > 0 {
		body["integrations"] = current.Integrations
	}
	if _, err := (call{method: http.MethodPut, path: "/admin" + tenantPath(tenant, "limits"), body: body, csrf: s.CSRF}).into(r.Context(), c.handler(), r, nil); err != nil {
		c.fail(w, r, s, err)
		return
	}
	back(w, r, "/console/admin/tenants/"+pathEscape(tenant), "limits")
}
