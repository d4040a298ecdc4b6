package transport

import (
	"fmt"
	"net/http"
	"strconv"

	"github.com/connectors-gateway/connectors/internal/httpwire"
	"github.com/connectors-gateway/connectors/metrics"
)

// handleUsageDaily handles the "GET /tenants/{tenantId}/usage/daily"
// route: the tenant's figures per UTC day and integration (calls, errors,
// latency mean and p95, refreshes, refresh failures) of the last ?days=N
// days, today included (1 to metrics.DaysKept, default all kept); only the
// days with figures, by date, then integration. A tenant reads its own, an
// admin any (tenantFor). With UsageDaily the figures are those every
// replica shares; without, this replica's.
func (h adminRoutes) handleUsageDaily(w http.ResponseWriter, r *http.Request) {
	tenant, ok := h.tenantFor(w, r, r.PathValue("tenantId"))
	if !ok {
		return
	}
	days, err := daysParam(r)
	if err != nil {
		httpwire.WriteError(w, r, http.StatusBadRequest, "ValidationError", err.Error())
		return
	}
	if h.opts.UsageDaily == nil {
		httpwire.WriteJSON(w, http.StatusOK, h.opts.Usage.Daily(tenant, days))
		return
	}
	d, err := h.opts.UsageDaily(r.Context(), tenant, days)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	httpwire.WriteJSON(w, http.StatusOK, d)
}

// daysParam reads ?days=N: once at most, a whole number from 1 to
// metrics.DaysKept written plainly (no sign, no leading zero); absent, all
// the days kept.
func daysParam(r *http.Request) (int, error) {
	values, ok := r.URL.Query()["days"]
	if !ok {
		return metrics.DaysKept, nil
	}
	bad := fmt.Errorf("days: must be a whole number from 1 to %d", metrics.DaysKept)
	if len(values) != 1 {
		return 0, bad
	}
	n, err := strconv.Atoi(values[0])
	if err != nil || n < 1 || n > metrics.DaysKept || strconv.Itoa(n) != values[0] {
		return 0, bad
	}
	return n, nil
}
