package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/connectors-gateway/connectors/audit"
	"github.com/connectors-gateway/connectors/internal/fakeoauth"
	"github.com/connectors-gateway/connectors/metrics"
	"github.com/connectors-gateway/connectors/vault"
)

// TestAuditTrailAndMetrics: every credential operation leaves one audit
// record in the seed's shape (who, request ID, no secret) in the
// configured file, and the metrics and per-tenant figures move.
func TestAuditTrailAndMetrics(t *testing.T) {
	fake := fakeoauth.New(t, fakeoauth.GitHub, "gh-client", "gh-client-s3cret")
	auditPath := filepath.Join(t.TempDir(), "audit.log")
	g := newGatewayWithEnv(t, oauthEnv("gh", map[string]string{
		"GH_CLIENT_ID": "gh-client", "GH_CLIENT_SECRET": "gh-client-s3cret",
		"CONNECTORS_AUDIT_LOG": auditPath,
	}), oauthIntegration(t, "gh", fake))
	g.withAdmin()
	expired := g.putExpiring("tenant-a", "gh", fake)
	g.serve()

	// A call (get), an expired token (refresh, put), the credential API
	// (put, delete, rotate) and a refused cross-tenant attempt.
	c := g.client("tenant-a")
	if got := mustCall(t, c, "notion_API-get-self", nil); !strings.Contains(got, "Acme Bot") {
		t.Fatalf("call: %s", got)
	}
	// One call reads the tenant's credential once (not once to decide it
	// may, once to call): one audit record per call.
	gets := func() int {
		b, _ := os.ReadFile(auditPath)
		return strings.Count(string(b), `"tenantId":"tenant-a","integration":"notion","operation":"get"`)
	}
	before := gets()
	mustCall(t, c, "notion_API-get-self", nil)
	if n := gets() - before; n != 1 {
		t.Errorf("one call read the credential %d times, want 1", n)
	}
	fresh := probe(t, c, "gh_env")
	if status, _, raw := g.api("tenant-a", "POST", "/tenants/tenant-a/integrations/github/credentials", `{"accessToken": "ghp_audit_planted_7"}`); status != 201 {
		t.Fatalf("POST: %d %s", status, raw)
	}
	if status, _, raw := g.api("tenant-a", "DELETE", "/tenants/tenant-a/integrations/github/credentials", ""); status != 200 {
		t.Fatalf("DELETE: %d %s", status, raw)
	}
	if status, _, raw := g.api("admin", "POST", "/admin/tenants/tenant-a/rotate-key", ""); status != 200 {
		t.Fatalf("rotate: %d %s", status, raw)
	}
	if status, _, _ := g.api("tenant-b", "GET", "/tenants/tenant-a/integrations", ""); status != 403 {
		t.Fatalf("cross-tenant: %d", status)
	}

	// Metrics (admins only) and usage.
	status, _, metricsText := g.api("admin", "GET", "/metrics", "")
	if status != 200 {
		t.Fatalf("GET /metrics: %d", status)
	}
	for _, want := range []string{
		`connectors_tool_calls_total{integration="notion",outcome="ok"} 2`,
		`connectors_tool_calls_total{integration="gh",outcome="ok"} 1`,
		`connectors_token_refreshes_total{integration="gh",result="success"} 1`,
		`connectors_store_operation_duration_seconds_count{backend="embedded",operation="get"}`,
		`connectors_upstream_request_duration_seconds_count{integration="notion",transport="stdio"} 2`,
		`connectors_http_requests_total{route="POST /tenants/{tenantId}/integrations/{integration}/credentials",status="2xx"} 1`,
		"connectors_active_sessions ",
		"connectors_upstream_processes 2",
		"connectors_token_refresh_queue_length",
	} {
		if !strings.Contains(metricsText, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	if strings.Contains(metricsText, "tenant-a") {
		t.Error("a tenant ID appears in the metrics (unbounded labels)")
	}
	if status, _, _ := g.api("tenant-a", "GET", "/metrics", ""); status != 403 {
		t.Errorf("GET /metrics as a tenant: %d, want 403", status)
	}
	status, usage, raw := g.api("admin", "GET", "/admin/tenants/tenant-a/usage", "")
	if status != 200 || usage["apiCalls"] != float64(3) || usage["refreshes"] != float64(1) || usage["refreshSuccessRate"] != float64(1) {
		t.Errorf("usage of tenant-a: %d %s", status, raw)
	}

	// The audit file: one record per operation, the seed's keys, who and
	// request ID, no secret.
	f, err := os.Open(auditPath)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if info, _ := f.Stat(); info.Mode().Perm() != 0o600 {
		t.Errorf("audit file mode %v, want 0600", info.Mode().Perm())
	}
	ops := map[string][]map[string]any{}
	sc := bufio.NewScanner(f)
	var all strings.Builder
	for sc.Scan() {
		all.WriteString(sc.Text() + "\n")
		var rec map[string]any
		if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
			t.Fatalf("audit line is not JSON: %q", sc.Text())
		}
		if _, ok := rec["seq"].(float64); !ok || len(fmt.Sprint(rec["prev"])) != 64 {
			t.Errorf("audit record %v: not chained (seq, prev)", rec)
		}
		if rec["msg"] == audit.CheckpointMessage {
			continue // audit verify checks them (TestAuditTrailVerify)
		}
		if rec["msg"] != "tenant_credential_access" {
			t.Errorf("audit record %v: msg is not tenant_credential_access", rec)
		}
		for _, k := range []string{"time", "tenantId", "operation", "duration", "success", "subject"} {
			if _, ok := rec[k]; !ok {
				t.Errorf("audit record lacks %s: %v", k, rec)
			}
		}
		op := rec["operation"].(string)
		ops[op] = append(ops[op], rec)
	}
	find := func(op string, match func(map[string]any) bool) map[string]any {
		for _, r := range ops[op] {
			if match(r) {
				return r
			}
		}
		t.Errorf("no %s record matching; got %d %s records", op, len(ops[op]), op)
		return map[string]any{}
	}
	is := func(tenant, integration string) func(map[string]any) bool {
		return func(r map[string]any) bool { return r["tenantId"] == tenant && r["integration"] == integration }
	}
	if r := find("get", is("tenant-a", "notion")); !strings.HasPrefix(fmt.Sprint(r["subject"]), "apikey:") || r["success"] != true {
		t.Errorf("the call's credential read: %v", r)
	}
	if r := find("refresh", is("tenant-a", "gh")); r["subject"] != "system" && !strings.HasPrefix(fmt.Sprint(r["subject"]), "apikey:") {
		t.Errorf("refresh record: %v", r)
	}
	if r := find("put", is("tenant-a", "github")); r["requestId"] == nil || r["requestId"] == "" {
		t.Errorf("the API's write has no request ID: %v", r)
	}
	find("delete", is("tenant-a", "github"))
	find("rotate", func(r map[string]any) bool { return r["tenantId"] == "tenant-a" })
	if r := find("access_denied", func(r map[string]any) bool { return r["tenantId"] == "tenant-a" }); r["success"] != false {
		t.Errorf("denied record: %v", r)
	}
	g.assertNoSecretsIn(all.String())
	for _, secret := range []string{expired, fresh, "ghp_audit_planted_7", "gh-client-s3cret"} {
		if strings.Contains(all.String(), secret) || strings.Contains(g.stderr.String(), secret) {
			t.Errorf("a secret (%.8s…) appears in the audit trail or the log", secret)
		}
	}
}

// TestPprof: the profiler is served on its own listener when asked for,
// never on the gateway's.
func TestPprof(t *testing.T) {
	g := newGatewayWithEnv(t, map[string]string{"CONNECTORS_PPROF_ADDR": "127.0.0.1:0"})
	g.serve()
	var addr string
	for line := range strings.Lines(g.stderr.String()) {
		var rec struct{ Msg, Addr string }
		if json.Unmarshal([]byte(line), &rec) == nil && rec.Msg == "pprof_listening" {
			addr = rec.Addr
		}
	}
	if addr == "" {
		t.Fatalf("no pprof_listening in the log:\n%s", g.stderr)
	}
	resp, err := http.Get("http://" + addr + "/debug/pprof/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("pprof index: %s", resp.Status)
	}
	if status, _, _ := g.api("tenant-a", "GET", "/debug/pprof/", ""); status != http.StatusNotFound {
		t.Errorf("pprof through the gateway's own address: %d, want 404", status)
	}
}

// TestOperatorSubject: an operator command is recorded as cli:$USER, and
// as cli:unknown where the environment names no user.
func TestOperatorSubject(t *testing.T) {
	g := newGatewayWithEnv(t, map[string]string{"CONNECTORS_AUDIT_LOG": "stderr"}) // its commands run without USER
	if !strings.Contains(g.stderr.String(), `"operation":"put","duration":`) || !strings.Contains(g.stderr.String(), `"subject":"cli:unknown"`) {
		t.Errorf("audit records of operator commands without USER:\n%.2000s", g.stderr)
	}
	g.env["USER"] = "ops-alice"
	g.mustRun(`{"accessToken": "unused-again"}`, "credential", "put", "--tenant", "tenant-a", "--integration", "everything")
	if !strings.Contains(g.stderr.String(), `"subject":"cli:ops-alice"`) {
		t.Errorf("no record with subject cli:ops-alice:\n%.2000s", g.stderr)
	}
}

// TestStoreOperationNames: the store names its operations itself
// (vault.Op); the audit trail and the metrics take those names as they
// are, so they must be theirs.
func TestStoreOperationNames(t *testing.T) {
	for op, want := range map[vault.Op][2]string{
		vault.OpGet:      {audit.OpGet, metrics.StoreGet},
		vault.OpPut:      {audit.OpPut, metrics.StorePut},
		vault.OpDelete:   {audit.OpDelete, metrics.StoreDelete},
		vault.OpRotate:   {audit.OpRotate, metrics.StoreRotate},
		vault.OpOffboard: {audit.OpOffboard, metrics.StoreOffboard},
	} {
		if string(op) != want[0] || string(op) != want[1] {
			t.Errorf("vault.Op %q: audit names it %q, the metrics %q", op, want[0], want[1])
		}
	}
}
