package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/connectors-gateway/connectors/limits"
	"github.com/connectors-gateway/connectors/tenants"
)

// limitFlags are the flags of "remote limits set", by the JSON field
// each sets.
var limitFlags = []struct{ flag, field string }{
	{"calls-per-minute", "callsPerMinute"},
	{"burst", "burst"},
	{"concurrent-calls", "concurrentCalls"},
	{"daily-calls", "dailyCalls"},
	{"monthly-calls", "monthlyCalls"},
	{"stdio-processes", "stdioProcesses"},
}

// remoteLimits runs "connectors remote limits get|set --tenant T": a
// tenant's limits in force (GET /admin/tenants/{tenantId}/limits), or its
// override replaced (PUT), from flags or, with none, the JSON body on
// stdin.
func (m *Main) remoteLimits(ctx context.Context, args []string) error {
	if len(args) == 0 || (args[0] != "get" && args[0] != "set") {
		return usageError{"remote limits: want get or set"}
	}
	verb, args := args[0], args[1:]
	fs := m.flags("remote limits " + verb)
	asJSON := fs.Bool("json", false, "print the API's JSON instead of a table")
	tenant := fs.String("tenant", "", "tenant ID (required)")
	values := map[string]*int64{}
	if verb == "set" {
		for _, f := range limitFlags {
			values[f.field] = fs.Int64(f.flag, -1, "the tenant's "+f.field+" (0: no limit); unset: the default")
		}
	}
	if err := parse(fs, args); err != nil {
		return err
	}
	if err := tenants.ValidateID(*tenant); err != nil {
		return usageError{fmt.Sprintf("--tenant: %v", err)}
	}
	c, err := m.apiClient()
	if err != nil {
		return err
	}
	path := "/admin/tenants/" + *tenant + "/limits"
	var out limitsAnswer
	var raw []byte
	if verb == "get" {
		raw, err = c.do(ctx, http.MethodGet, path, nil, &out)
	} else {
		var body []byte
		if body, err = m.limitsBody(values); err == nil {
			raw, err = c.do(ctx, http.MethodPut, path, body, &out)
		}
	}
	if err != nil || *asJSON {
		return m.printJSON(raw, err)
	}
	return m.printLimits(out)
}

// limitsBody is the override of the flags given, or stdin's with none.
func (m *Main) limitsBody(values map[string]*int64) ([]byte, error) {
	given := map[string]int64{}
	for field, v := range values {
		if *v >= 0 {
			given[field] = *v
		}
	}
	if len(given) > 0 {
		return json.Marshal(given)
	}
	return io.ReadAll(io.LimitReader(m.Stdin, 1<<20))
}

// limitsAnswer is the answer of the limits routes.
type limitsAnswer struct {
	TenantID string `json:"tenantId"`
	limits.Effective
}

// printLimits prints a tenant's limits in force, the tenant's and each
// integration's, "-" for no limit.
func (m *Main) printLimits(out limitsAnswer) error {
	tw := tabwriter.NewWriter(m.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SCOPE\tCALLS/MIN\tBURST\tCONCURRENT\tDAILY\tMONTHLY\tSTDIO")
	row := func(scope string, l limits.Limits) {
		cells := []string{scope}
		for _, v := range []int64{l.CallsPerMinute, l.Burst, l.ConcurrentCalls, l.DailyCalls, l.MonthlyCalls, l.StdioProcesses} {
			cell := "-"
			if v > 0 {
				cell = strconv.FormatInt(v, 10)
			}
			cells = append(cells, cell)
		}
		fmt.Fprintln(tw, strings.Join(cells, "\t"))
	}
	row(out.TenantID, out.Limits)
	names := make([]string, 0, len(out.Integrations))
	for name := range out.Integrations {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		row(out.TenantID+"/"+name, out.Integrations[name])
	}
	return tw.Flush()
}
