package console

import (
	"html/template"
	"math"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"time"
)

// maxDays is the longest period of the daily usage the gateway keeps.
const maxDays = 30

// dailyUsage is GET /tenants/{tenantId}/usage/daily.
type dailyUsage struct {
	From string     `json:"from"`
	To   string     `json:"to"`
	Days []usageDay `json:"days"`
}

// usageDay is one integration's figures of one day.
type usageDay struct {
	Date        string `json:"date"`
	Integration string `json:"integration"`
	Calls       int64  `json:"calls"`
	Errors      int64  `json:"errors"`
	LatencyMs   struct {
		Mean float64 `json:"mean"`
		P95  float64 `json:"p95"`
	} `json:"latencyMs"`
	Refreshes       int64 `json:"refreshes"`
	RefreshFailures int64 `json:"refreshFailures"`
}

func (c *Console) dailyUsage(r *http.Request, tenant string, days int) (dailyUsage, error) {
	var u dailyUsage
	q := url.Values{"days": {strconv.Itoa(days)}}
	_, err := call{method: http.MethodGet, path: tenantPath(tenant, "usage", "daily"), query: q}.into(r.Context(), c.handler(), r, &u)
	return u, err
}

// usageData is the usage page: its charts and the table of the figures
// they draw (the charts' text alternative).
type usageData struct {
	Days                        int
	Periods                     []int
	Calls, Errors, Latency, Ref template.HTML
	Rows                        []usageDay
}

// usage is GET /console/usage?days=N: calls per day per integration,
// errors, latency and the refresh success rate, drawn on the server.
func (c *Console) usage(w http.ResponseWriter, r *http.Request, s *session) {
	days := maxDays
	if v, err := strconv.Atoi(r.URL.Query().Get("days")); err == nil && slices.Contains([]int{7, 14, 30}, v) {
		days = v
	}
	u, err := c.dailyUsage(r, s.Tenant, days)
	if err != nil {
		c.fail(w, r, s, err)
		return
	}
	d := usageData{Days: days, Periods: []int{7, 14, 30}, Rows: u.Days}
	d.Calls, d.Errors, d.Latency, d.Ref = usageCharts(u, days)
	c.render(w, r, http.StatusOK, "usage", page{Title: "Usage", Nav: "usage", Session: s, Data: d})
}

// usageCharts draws u's figures over its period: calls and errors per
// day by integration, mean latency and the refresh success rate per day.
func usageCharts(u dailyUsage, days int) (calls, errs, latency, refresh template.HTML) {
	dates := period(u.To, days)
	index := map[string]int{}
	for i, d := range dates {
		index[d] = i
	}
	var names []string
	for _, d := range u.Days {
		if !slices.Contains(names, d.Integration) {
			names = append(names, d.Integration)
		}
	}
	slices.Sort(names)
	// A day without a figure is 0 calls or errors, but no latency at all
	// (the line breaks there).
	series := func(v func(usageDay) float64, none float64) []Series {
		out := make([]Series, len(names))
		for i, n := range names {
			out[i] = Series{Name: n, Values: make([]float64, len(dates))}
			for j := range out[i].Values {
				out[i].Values[j] = none
			}
		}
		for _, d := range u.Days {
			if at, ok := index[d.Date]; ok {
				out[slices.Index(names, d.Integration)].Values[at] = v(d)
			}
		}
		return out
	}
	rate := Series{Name: "refresh success", Values: make([]float64, len(dates))}
	tried := make([]float64, len(dates))
	for _, d := range u.Days {
		if at, ok := index[d.Date]; ok {
			tried[at] += float64(d.Refreshes)
			rate.Values[at] += float64(d.Refreshes - d.RefreshFailures)
		}
	}
	for i := range rate.Values {
		if tried[i] > 0 {
			rate.Values[i] = 100 * rate.Values[i] / tried[i]
		} else {
			rate.Values[i] = math.NaN() // no refresh that day
		}
	}
	calls = BarChart(Chart{Title: "Calls per day", Labels: dates, Series: series(func(d usageDay) float64 { return float64(d.Calls) }, 0), Unit: "calls"})
	errs = BarChart(Chart{Title: "Errors per day", Labels: dates, Series: series(func(d usageDay) float64 { return float64(d.Errors) }, 0), Unit: "errors"})
	latency = LineChart(Chart{Title: "Mean latency", Labels: dates, Series: series(func(d usageDay) float64 {
		if d.Calls == 0 {
			return math.NaN()
		}
		return d.LatencyMs.Mean
	}, math.NaN()), Unit: "ms"})
	refresh = LineChart(Chart{Title: "Refresh success rate", Labels: dates, Series: []Series{rate}, Unit: "%"})
	return calls, errs, latency, refresh
}

// period is the days dates (YYYY-MM-DD) that end with to (today, UTC, when
// to is not a date).
func period(to string, days int) []string {
	end, err := time.Parse(time.DateOnly, to)
	if err != nil {
		end = time.Now().UTC()
	}
	out := make([]string, days)
	for i := range days {
		out[i] = end.AddDate(0, 0, i-days+1).Format(time.DateOnly)
	}
	return out
}
