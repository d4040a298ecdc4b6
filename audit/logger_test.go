package audit_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"

	"github.com/connectors-gateway/connectors/audit"
	"github.com/connectors-gateway/connectors/tenants"
)

// decode parses every line of b as one JSON object.
func decode(t *testing.T, b []byte) []map[string]any {
	t.Helper()
	var out []map[string]any
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("line %q is not one JSON object: %v", sc.Text(), err)
		}
		out = append(out, m)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// checkTime checks each record's time is RFC 3339 and close to now, then
// drops it so the rest can be compared exactly.
func checkTime(t *testing.T, recs []map[string]any) {
	t.Helper()
	for _, m := range recs {
		s, _ := m["time"].(string)
		ts, err := time.Parse(time.RFC3339, s)
		if err != nil {
			t.Errorf("time %q: %v", s, err)
		} else if d := time.Since(ts); d < -time.Minute || d > time.Minute {
			t.Errorf("time %q is %v from now", s, d)
		}
		delete(m, "time")
	}
}

func TestRecordShape(t *testing.T) {
	user := tenants.NewContext(context.Background(), tenants.Identity{Tenant: "tenant-123", Subject: "oidc|alice"})
	tests := []struct {
		name string
		ctx  context.Context
		rec  audit.Record
		want map[string]any
	}{{
		name: "seed example",
		ctx:  audit.WithRequestID(user, "req-1"),
		rec: audit.Record{TenantID: "tenant-123", Integration: "notion", Operation: audit.OpGet,
			Duration: 45 * time.Millisecond, Success: true},
		want: map[string]any{
			"level": "INFO", "msg": "tenant_credential_access",
			"tenantId": "tenant-123", "integration": "notion", "operation": "get",
			"duration": 45.0, "success": true, "subject": "oidc|alice", "requestId": "req-1",
		},
	}, {
		name: "failure carries the error, no request ID: none in context",
		ctx:  user,
		rec: audit.Record{TenantID: "tenant-123", Integration: "github", Operation: audit.OpPut,
			Duration: 1500 * time.Microsecond, Err: errors.New("Failed to connect to Vault")},
		want: map[string]any{
			"level": "WARN", "msg": "tenant_credential_access",
			"tenantId": "tenant-123", "integration": "github", "operation": "put",
			"duration": 1.5, "success": false, "subject": "oidc|alice",
			"error": "Failed to connect to Vault",
		},
	}, {
		name: "an error overrides Success",
		ctx:  context.Background(),
		rec: audit.Record{TenantID: "t", Integration: "slack", Operation: audit.OpDelete,
			Success: true, Err: errors.New("boom")},
		want: map[string]any{
			"level": "WARN", "msg": "tenant_credential_access",
			"tenantId": "t", "integration": "slack", "operation": "delete",
			"duration": 0.0, "success": false, "subject": "system", "error": "boom",
		},
	}, {
		name: "no identity: the background refresher is system",
		ctx:  context.Background(),
		rec: audit.Record{TenantID: "tenant-9", Integration: "notion", Operation: audit.OpRefresh,
			Duration: 312 * time.Microsecond, Success: true},
		want: map[string]any{
			"level": "INFO", "msg": "tenant_credential_access",
			"tenantId": "tenant-9", "integration": "notion", "operation": "refresh",
			"duration": 0.312, "success": true, "subject": "system",
		},
	}, {
		name: "explicit subject wins; denied cross-tenant attempt",
		ctx:  audit.WithRequestID(user, "req-2"),
		rec: audit.Record{TenantID: "tenant-other", Integration: "notion", Operation: audit.OpAccessDenied,
			Subject: "apikey:ci", Err: errors.New("forbidden")},
		want: map[string]any{
			"level": "WARN", "msg": "tenant_credential_access",
			"tenantId": "tenant-other", "integration": "notion", "operation": "access_denied",
			"duration": 0.0, "success": false, "subject": "apikey:ci", "requestId": "req-2",
			"error": "forbidden",
		},
	}, {
		name: "refused attempt: the caller's tenant and the reason",
		ctx:  audit.WithRequestID(tenants.NewContext(context.Background(), tenants.Identity{Tenant: "tenant-a", Subject: "apikey:a1"}), "req-3"),
		rec: audit.Record{TenantID: "tenant-b", Operation: audit.OpAccessDenied, CallerTenant: "tenant-a",
			Reason: "cross_tenant", Err: errors.New("GET /tenants/{tenantId}/integrations refused: cross tenant")},
		want: map[string]any{
			"level": "WARN", "msg": "tenant_credential_access",
			"tenantId": "tenant-b", "integration": "", "operation": "access_denied",
			"duration": 0.0, "success": false, "subject": "apikey:a1", "requestId": "req-3",
			"callerTenantId": "tenant-a", "reason": "cross_tenant",
			"error": "GET /tenants/{tenantId}/integrations refused: cross tenant",
		},
	}, {
		name: "an API key created: its ID, never the key",
		ctx:  audit.WithRequestID(tenants.NewContext(context.Background(), tenants.Identity{Tenant: "tenant-a", Subject: "apikey:a1"}), "req-4"),
		rec:  audit.Record{TenantID: "tenant-a", Operation: audit.OpAPIKeyCreate, APIKeyID: "0123456789abcdef", Success: true},
		want: map[string]any{
			"level": "INFO", "msg": "tenant_credential_access",
			"tenantId": "tenant-a", "integration": "", "operation": "apikey_create",
			"duration": 0.0, "success": true, "subject": "apikey:a1", "requestId": "req-4",
			"apiKeyId": "0123456789abcdef",
		},
	}, {
		name: "tenant-wide operation",
		ctx:  tenants.NewContext(context.Background(), tenants.Identity{Tenant: "tenant-1", Admin: true}),
		rec:  audit.Record{TenantID: "tenant-1", Operation: audit.OpOffboard, Duration: 2 * time.Second, Success: true},
		want: map[string]any{
			"level": "INFO", "msg": "tenant_credential_access",
			"tenantId": "tenant-1", "integration": "", "operation": "offboard",
			"duration": 2000.0, "success": true, "subject": "unknown",
		},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			audit.New(&buf).Record(tt.ctx, tt.rec)
			recs := decode(t, buf.Bytes())
			if len(recs) != 1 {
				t.Fatalf("got %d records, want 1:\n%s", len(recs), buf.Bytes())
			}
			checkTime(t, recs)
			if diff := cmp.Diff(tt.want, recs[0]); diff != "" {
				t.Errorf("record (-want +got):\n%s", diff)
			}
		})
	}
}

func TestTime(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var buf bytes.Buffer
		l := audit.New(&buf)
		ctx := audit.WithRequestID(context.Background(), "r")

		done := l.Time(ctx, audit.OpGet, "tenant-123", "notion")
		time.Sleep(45 * time.Millisecond)
		done(nil)

		done = l.Time(ctx, audit.OpRotate, "tenant-123", "")
		time.Sleep(2 * time.Millisecond)
		done(errors.New("transit key missing"))

		got := decode(t, buf.Bytes())
		for _, m := range got {
			delete(m, "time") // the bubble's clock starts in 2000
		}
		want := []map[string]any{{
			"level": "INFO", "msg": "tenant_credential_access", "tenantId": "tenant-123",
			"integration": "notion", "operation": "get", "duration": 45.0, "success": true,
			"subject": "system", "requestId": "r",
		}, {
			"level": "WARN", "msg": "tenant_credential_access", "tenantId": "tenant-123",
			"integration": "", "operation": "rotate", "duration": 2.0, "success": false,
			"subject": "system", "requestId": "r", "error": "transit key missing",
		}}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("records (-want +got):\n%s", diff)
		}
	})
}

func TestErrorClipped(t *testing.T) {
	tests := []struct {
		name, err, want string
	}{
		{"newlines cannot forge a second record",
			"bad\n{\"msg\":\"tenant_credential_access\",\"success\":true}",
			`bad {"msg":"tenant_credential_access","success":true}`},
		{"control runs collapse to one space", "a\r\n\t\x00\x1b[31mb\x7f", "a [31mb"},
		{"bidi overrides go", "file\u202egpj.exe", "file gpj.exe"},
		{"C1 controls go", "x\u0085y\u009bz", "x y z"},
		{"leading and trailing controls trimmed", "\n\tmsg\n", "msg"},
		{"exactly 200 kept", strings.Repeat("é", 200), strings.Repeat("é", 200)},
		{"201 clipped", strings.Repeat("é", 201), strings.Repeat("é", 199) + "…"},
		{"very long clipped", strings.Repeat("x", 1<<20), strings.Repeat("x", 199) + "…"},
		{"invalid UTF-8 replaced", "a\xffb", "a\ufffdb"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			audit.New(&buf).Record(context.Background(), audit.Record{Operation: "get", Err: errors.New(tt.err)})
			if n := bytes.Count(buf.Bytes(), []byte("\n")); n != 1 {
				t.Fatalf("%d lines, want 1: %q", n, buf.Bytes())
			}
			recs := decode(t, buf.Bytes())
			got, _ := recs[0]["error"].(string)
			if got != tt.want {
				t.Errorf("error = %q, want %q", got, tt.want)
			}
			if n := utf8.RuneCountInString(got); n > 200 {
				t.Errorf("error has %d characters, want at most 200", n)
			}
		})
	}
}

func TestNilLogger(t *testing.T) {
	var l *audit.Logger
	ctx := context.Background()
	l.Record(ctx, audit.Record{TenantID: "t", Operation: audit.OpGet})
	l.Time(ctx, audit.OpGet, "t", "notion")(nil)
	l.Time(ctx, audit.OpGet, "t", "notion")(errors.New("x"))
	if err := l.Close(); err != nil {
		t.Errorf("Close on nil Logger: %v", err)
	}
}

func TestOpenFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.log")
	ctx := context.Background()

	l, err := audit.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	l.Record(ctx, audit.Record{TenantID: "tenant-1", Integration: "notion", Operation: audit.OpPut, Success: true})
	// Synced records are readable before Close.
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(decode(t, b)); n != 1 {
		t.Errorf("before Close: %d records, want 1", n)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := fi.Mode().Perm(); got != 0o600 {
		t.Errorf("mode = %v, want 0600", got)
	}

	// Reopening appends.
	l, err = audit.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	l.Record(ctx, audit.Record{TenantID: "tenant-1", Integration: "notion", Operation: audit.OpGet, Success: true})
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	// Records after Close are dropped, not written to a reused descriptor.
	l.Record(ctx, audit.Record{TenantID: "tenant-1", Operation: audit.OpDelete})
	if err := l.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}

	b, err = os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	recs := decode(t, b)
	var ops []string
	for _, m := range recs {
		ops = append(ops, m["operation"].(string))
	}
	if diff := cmp.Diff([]string{"put", "get"}, ops); diff != "" {
		t.Errorf("operations in file (-want +got):\n%s", diff)
	}
}

func TestOpenRefusesDirectory(t *testing.T) {
	if l, err := audit.Open(t.TempDir()); err == nil {
		l.Close()
		t.Fatal("Open(directory) succeeded")
	}
}

func TestOpenMissingDirectory(t *testing.T) {
	if l, err := audit.Open(filepath.Join(t.TempDir(), "no", "such", "audit.log")); err == nil {
		l.Close()
		t.Fatal("Open in a missing directory succeeded")
	}
}

func TestOpenStandardStreams(t *testing.T) {
	for _, dest := range []string{"", "stdout", "stderr"} {
		l, err := audit.Open(dest)
		if err != nil {
			t.Fatalf("Open(%q): %v", dest, err)
		}
		if err := l.Close(); err != nil {
			t.Errorf("Close(%q): %v", dest, err)
		}
	}
	// Closing the Logger left the process's streams open.
	for _, f := range []*os.File{os.Stdout, os.Stderr} {
		if _, err := f.Stat(); err != nil {
			t.Errorf("%s closed: %v", f.Name(), err)
		}
	}
}

// callWriter records each Write call separately.
type callWriter struct {
	mu    sync.Mutex
	calls [][]byte
}

func (w *callWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.calls = append(w.calls, bytes.Clone(p))
	return len(p), nil
}

func TestConcurrentWriters(t *testing.T) {
	const writers, each = 16, 50
	path := filepath.Join(t.TempDir(), "audit.log")
	file, err := audit.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	var calls callWriter
	mem := audit.New(&calls)

	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			ctx := audit.WithRequestID(context.Background(), fmt.Sprint("req-", w))
			for i := range each {
				r := audit.Record{
					TenantID: fmt.Sprintf("tenant-%d", w), Integration: "notion", Operation: audit.OpGet,
					Success: i%2 == 0, Err: errors.New(strings.Repeat("e", i)), // lines of varied length
				}
				if i%2 == 0 {
					r.Err = nil
				}
				file.Record(ctx, r)
				mem.Record(ctx, r)
			}
		})
	}
	wg.Wait()
	if err := file.Close(); err != nil {
		t.Fatal(err)
	}

	if len(calls.calls) != writers*each {
		t.Errorf("%d Write calls, want one per record (%d)", len(calls.calls), writers*each)
	}
	for _, c := range calls.calls {
		if bytes.Count(c, []byte("\n")) != 1 || c[len(c)-1] != '\n' {
			t.Fatalf("Write call is not exactly one line: %q", c)
		}
	}

	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	recs := decode(t, b)
	if len(recs) != writers*each {
		t.Fatalf("file holds %d records, want %d", len(recs), writers*each)
	}
	perTenant := map[string]int{}
	for _, m := range recs {
		tenant := m["tenantId"].(string)
		if want := "req-" + strings.TrimPrefix(tenant, "tenant-"); m["requestId"] != want {
			t.Fatalf("record mixes writers: %v", m)
		}
		perTenant[tenant]++
	}
	for tenant, n := range perTenant {
		if n != each {
			t.Errorf("%s: %d records, want %d", tenant, n, each)
		}
	}
}

// errWriter fails every write.
type errWriter struct{}

func (errWriter) Write([]byte) (int, error) { return 0, errors.New("disk full") }

func TestCloseReportsWriteError(t *testing.T) {
	l := audit.New(errWriter{})
	l.Record(context.Background(), audit.Record{Operation: audit.OpGet})
	err := l.Close()
	if err == nil || !strings.Contains(err.Error(), "disk full") {
		t.Errorf("Close = %v, want the write error", err)
	}
}

func TestRequestID(t *testing.T) {
	ctx := context.Background()
	if got := audit.RequestID(ctx); got != "" {
		t.Errorf("RequestID(empty) = %q", got)
	}
	ctx = audit.WithRequestID(ctx, "abc")
	if got := audit.RequestID(ctx); got != "abc" {
		t.Errorf("RequestID = %q, want abc", got)
	}
}

// TestKeyOrder pins the order of keys, so a line reads the same every time.
func TestKeyOrder(t *testing.T) {
	var buf bytes.Buffer
	ctx := audit.WithRequestID(context.Background(), "r")
	audit.New(&buf).Record(ctx, audit.Record{TenantID: "t", Integration: "notion", Operation: audit.OpGet, Err: errors.New("x")})
	want := []string{"time", "level", "msg", "tenantId", "integration", "operation", "duration", "success", "subject", "requestId", "error"}
	if diff := cmp.Diff(want, keys(t, buf.Bytes())); diff != "" {
		t.Errorf("keys (-want +got):\n%s", diff)
	}
}

// keys returns the top-level keys of one JSON line, in order.
func keys(t *testing.T, line []byte) []string {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(line))
	var out []string
	if _, err := dec.Token(); err != nil { // {
		t.Fatal(err)
	}
	for dec.More() {
		k, err := dec.Token()
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, k.(string))
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

// TestRecordLineIsSlogs: the hand-encoded line is the one log/slog's JSON
// handler writes for the same record (the time aside), odd characters
// included.
func TestRecordLineIsSlogs(t *testing.T) {
	var got bytes.Buffer
	l := audit.New(&got)
	ctx := audit.WithRequestID(context.Background(), `req<1>&"x"`)
	l.Record(ctx, audit.Record{TenantID: "tenant-ü", Integration: "no\ttion", Operation: audit.OpGet, Duration: 1234567 * time.Nanosecond,
		Err: errors.New("boom \"quoted\" <b>"), Subject: "apikey:\\ci"})
	var want bytes.Buffer
	h := slog.NewJSONHandler(&want, nil)
	rec := slog.NewRecord(time.Now(), slog.LevelWarn, audit.Message, 0)
	rec.AddAttrs(slog.String("tenantId", "tenant-ü"), slog.String("integration", "no\ttion"), slog.String("operation", audit.OpGet),
		slog.Float64("duration", 1.234), slog.Bool("success", false), slog.String("subject", "apikey:\\ci"),
		slog.String("requestId", `req<1>&"x"`), slog.String("error", "boom \"quoted\" <b>"))
	_ = h.Handle(ctx, rec)
	strip := func(line string) string { // drop the time member
		i := strings.Index(line, `"level"`)
		return line[i:]
	}
	if strip(got.String()) != strip(want.String()) {
		t.Errorf("line:\n%s\nslog's:\n%s", got.String(), want.String())
	}
	if !regexp.MustCompile(`^\{"time":"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z",`).MatchString(got.String()) {
		t.Errorf("time: %s", got.String())
	}
}
