package main

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/connectors-gateway/connectors/tenants"
)

// remote runs "connectors remote ...": the common operator tasks through
// a running gateway's HTTP API (CONNECTORS_GATEWAY_URL, default
// http://127.0.0.1:3000, with the API key in CONNECTORS_API_KEY), so they
// work beside a serving gateway whatever its store.
func (m *Main) remote(ctx context.Context, args []string) error {
	if len(args) == 0 {
		return usageError{"remote: want tenants, integrations, put, delete, rotate, offboard, limits or health"}
	}
	verb, args := args[0], args[1:]
	if verb == "limits" {
		return m.remoteLimits(ctx, args) // remotelimits.go
	}
	fs := m.flags("remote " + verb)
	asJSON := fs.Bool("json", false, "print the API's JSON instead of a table")
	var tenant, integration *string
	switch verb {
	case "integrations", "put", "delete", "rotate", "offboard":
		tenant = fs.String("tenant", "", "tenant ID (required)")
	}
	switch verb {
	case "put", "delete":
		integration = fs.String("integration", "", "integration name (required)")
	}
	if err := parse(fs, args); err != nil {
		return err
	}
	if tenant != nil {
		if err := tenants.ValidateID(*tenant); err != nil {
			return usageError{fmt.Sprintf("--tenant: %v", err)}
		}
	}
	if integration != nil && *integration == "" {
		return usageError{"--integration is required"}
	}
	c, err := m.apiClient()
	if err != nil {
		return err
	}
	switch verb {
	case "tenants", "health":
		return m.remoteHealth(ctx, c, verb, *asJSON)
	case "integrations":
		return m.remoteIntegrations(ctx, c, *tenant, *asJSON)
	case "put":
		body, err := io.ReadAll(io.LimitReader(m.Stdin, 1<<20))
		if err != nil {
			return err
		}
		var out map[string]any
		raw, err := c.do(ctx, http.MethodPost, "/tenants/"+*tenant+"/integrations/"+url.PathEscape(*integration)+"/credentials", body, &out)
		if err != nil || *asJSON {
			return m.printJSON(raw, err)
		}
		fmt.Fprintf(m.Stdout, "stored %s/%s (expires %s)\n", *tenant, *integration, orNever(out["expiresAt"]))
	case "delete":
		var out map[string]any
		raw, err := c.do(ctx, http.MethodDelete, "/tenants/"+*tenant+"/integrations/"+url.PathEscape(*integration)+"/credentials", nil, &out)
		if err != nil || *asJSON {
			return m.printJSON(raw, err)
		}
		fmt.Fprintf(m.Stdout, "revoked %s/%s (at the provider: %v)\n", *tenant, *integration, out["providerRevoked"] == true)
	case "rotate":
		raw, err := c.do(ctx, http.MethodPost, "/admin/tenants/"+*tenant+"/rotate-key", nil, nil)
		if err != nil || *asJSON {
			return m.printJSON(raw, err)
		}
		fmt.Fprintf(m.Stdout, "rotated the encryption key of %s\n", *tenant)
	case "offboard":
		return m.remoteOffboard(ctx, c, *tenant, *asJSON)
	default:
		return usageError{fmt.Sprintf("remote: unknown verb %q", verb)}
	}
	return nil
}

// remoteOffboard off-boards tenant through the gateway (POST
// /admin/tenants/{tenantId}/offboard, the body naming the tenant again).
func (m *Main) remoteOffboard(ctx context.Context, c *apiClient, tenant string, asJSON bool) error {
	body, _ := json.Marshal(map[string]string{"confirm": tenant})
	var out struct{ CredentialsDeleted, APIKeysRevoked int }
	raw, err := c.do(ctx, http.MethodPost, "/admin/tenants/"+tenant+"/offboard", body, &out)
	if err != nil || asJSON {
		return m.printJSON(raw, err)
	}
	fmt.Fprintf(m.Stdout, "offboarded %s: %d credentials deleted, key destroyed, %d API keys revoked\n", tenant, out.CredentialsDeleted, out.APIKeysRevoked)
	return nil
}

// remoteIntegrations prints a tenant's integrations: whether each has a
// credential, its status, whether it is enabled and when it expires.
func (m *Main) remoteIntegrations(ctx context.Context, c *apiClient, tenant string, asJSON bool) error {
	var out struct {
		TenantID     string           `json:"tenantId"`
		Integrations []map[string]any `json:"integrations"`
	}
	raw, err := c.do(ctx, http.MethodGet, "/tenants/"+tenant+"/integrations", nil, &out)
	if err != nil || asJSON {
		return m.printJSON(raw, err)
	}
	tw := tabwriter.NewWriter(m.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "INTEGRATION\tCATEGORY\tCREDENTIALS\tSTATUS\tENABLED\tEXPIRES")
	for _, in := range out.Integrations {
		has := "no"
		if in["hasCredentials"] == true {
			has = "yes"
		}
		expires := "-"
		if s, ok := in["expiresAt"].(string); ok {
			expires = s
		} else if in["hasCredentials"] == true {
			expires = "never"
		}
		enabled := "yes"
		if in["enabled"] == false {
			enabled = "no"
		}
		fmt.Fprintf(tw, "%v\t%v\t%s\t%s\t%s\t%s\n", in["name"], in["category"], has, orDash(in["status"]), enabled, expires)
	}
	return tw.Flush()
}

// remoteHealth prints every tenant's integrations (tenants) or the
// summary with the unhealthy ones (health), paging through the API.
func (m *Main) remoteHealth(ctx context.Context, c *apiClient, verb string, asJSON bool) error {
	type page struct {
		TotalTenants int `json:"totalTenants"`
		Details      []struct {
			TenantID     string            `json:"tenantId"`
			Integrations map[string]string `json:"integrations"`
		} `json:"details"`
		NextAfter string `json:"nextAfter"`
	}
	var all page
	var pages []json.RawMessage
	after := ""
	for {
		var p page
		raw, err := c.do(ctx, http.MethodGet, "/admin/tenants/health?limit=1000&after="+url.QueryEscape(after), nil, &p)
		if err != nil {
			return m.printJSON(raw, err)
		}
		pages = append(pages, raw)
		all.TotalTenants = p.TotalTenants
		all.Details = append(all.Details, p.Details...)
		if p.NextAfter == "" {
			break
		}
		after = p.NextAfter
	}
	if asJSON {
		for _, p := range pages {
			if err := m.printJSON(p, nil); err != nil {
				return err
			}
		}
		return nil
	}
	var table bytes.Buffer // health: printed only when something is unhealthy
	tw := tabwriter.NewWriter(&table, 0, 4, 2, ' ', 0)
	healthy, unhealthy := 0, 0
	if verb == "tenants" {
		fmt.Fprintln(tw, "TENANT\tINTEGRATIONS")
	} else {
		fmt.Fprintln(tw, "TENANT\tINTEGRATION\tSTATUS")
	}
	for _, d := range all.Details {
		names := make([]string, 0, len(d.Integrations))
		for n := range d.Integrations {
			names = append(names, n)
		}
		sort.Strings(names)
		var parts []string
		for _, n := range names {
			state := d.Integrations[n]
			if state == "healthy" {
				healthy++
			} else {
				unhealthy++
				if verb == "health" {
					fmt.Fprintf(tw, "%s\t%s\t%s\n", d.TenantID, n, state)
				}
			}
			parts = append(parts, n+" ("+state+")")
		}
		if verb == "tenants" {
			fmt.Fprintf(tw, "%s\t%s\n", d.TenantID, orDash(strings.Join(parts, ", ")))
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if verb == "tenants" {
		_, err := m.Stdout.Write(table.Bytes())
		return err
	}
	return m.printHealth(table.Bytes(), all.TotalTenants, healthy, unhealthy)
}

// printHealth prints the summary of "remote health": one line when no
// integration is unhealthy, else the table of the unhealthy ones and the
// totals.
func (m *Main) printHealth(table []byte, tenants, healthy, unhealthy int) error {
	var err error
	switch {
	case unhealthy > 0:
		if _, err = m.Stdout.Write(table); err == nil {
			_, err = fmt.Fprintf(m.Stdout, "%d tenants, %d credentials: %d healthy, %d unhealthy\n", tenants, healthy+unhealthy, healthy, unhealthy)
		}
	case healthy == 0:
		_, err = fmt.Fprintf(m.Stdout, "no credentials stored (%d tenants)\n", tenants)
	default:
		_, err = fmt.Fprintf(m.Stdout, "all %d integrations healthy (%d tenants)\n", healthy, tenants)
	}
	return err
}

func orDash(v any) string {
	if s, ok := v.(string); ok && s != "" {
		return s
	}
	return "-"
}

func orNever(v any) string {
	if s, ok := v.(string); ok && s != "" {
		return s
	}
	return "never"
}

// printJSON prints an API answer indented, or returns err.
func (m *Main) printJSON(raw []byte, err error) error {
	if err != nil {
		return err
	}
	var buf bytes.Buffer
	if json.Indent(&buf, raw, "", "  ") != nil {
		buf.Write(raw)
	}
	buf.WriteByte('\n')
	_, werr := m.Stdout.Write(buf.Bytes())
	return werr
}

// apiClient calls a running gateway's HTTP API.
type apiClient struct {
	base, key string
	name      string // what errors call the gateway: base when empty
	http      *http.Client
}

func (m *Main) apiClient() (*apiClient, error) {
	base := strings.TrimSuffix(m.Getenv("CONNECTORS_GATEWAY_URL"), "/")
	if base == "" {
		base = "http://127.0.0.1:3000"
	}
	if u, err := url.Parse(base); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("CONNECTORS_GATEWAY_URL: %q is not an http(s) URL", base)
	}
	key := m.Getenv("CONNECTORS_API_KEY")
	if key == "" {
		return nil, errors.New("CONNECTORS_API_KEY is not set: give an API key (connectors apikey create --tenant ops --admin)")
	}
	return &apiClient{base: base, key: key, http: &http.Client{Timeout: 60 * time.Second}}, nil
}

// do sends a request and decodes a 2xx JSON answer into out; any other
// answer is an error with the API's error name and message.
func (c *apiClient) do(ctx context.Context, method, path string, body []byte, out any) ([]byte, error) {
	var r io.Reader
	if body != nil {
		r = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, r)
	if err != nil {
		return nil, err
	}
	if c.key != "" {
		req.Header.Set("Authorization", "Bearer "+c.key)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("gateway at %s: %w", cmp.Or(c.name, c.base), err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode/100 != 2 {
		var e struct{ Error, Message string }
		if json.Unmarshal(raw, &e) == nil && e.Error != "" {
			return nil, fmt.Errorf("%s %s: %d %s: %s", method, path, resp.StatusCode, e.Error, e.Message)
		}
		return nil, fmt.Errorf("%s %s: %s", method, path, resp.Status)
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			return nil, fmt.Errorf("%s %s: unreadable answer: %w", method, path, err)
		}
	}
	return raw, nil
}
