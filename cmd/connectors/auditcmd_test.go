package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestAuditTrailVerify: the gateway's file trail is chained and signed
// (with a key it makes in the data dir, mode 0600), across a restart;
// "connectors audit verify" finds it intact, with the data dir's key or
// with the public key "audit key" prints, and finds a changed record,
// naming its line; a bad CONNECTORS_AUDIT_FSYNC stops the start.
func TestAuditTrailVerify(t *testing.T) {
	trail := filepath.Join(t.TempDir(), "audit.log")
	g := newGatewayWithEnv(t, map[string]string{"CONNECTORS_AUDIT_LOG": trail, "CONNECTORS_AUDIT_FSYNC": "5ms"})
	for range 2 { // two runs of serve, each with credential reads
		_, stop := g.start()
		if status, _, raw := g.api("tenant-a", "GET", "/tenants/tenant-a/integrations", ""); status != 200 {
			t.Fatalf("integrations: %d %s", status, raw)
		}
		stop()
	}
	keyFile := filepath.Join(g.env["CONNECTORS_DATA_DIR"], AuditKeyFile)
	if fi, err := os.Stat(keyFile); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("the signing key: %v %v", fi, err)
	}
	out, err := g.run("", "audit", "verify", trail)
	if err != nil || !strings.Contains(out, ": intact: ") || !strings.Contains(out, "signed checkpoints") || strings.Contains(out, "after the last one") {
		t.Fatalf("verify: %v\n%s", err, out)
	}
	pub := strings.Fields(g.mustRun("", "audit", "key"))[0]

	// Elsewhere, with only the public key.
	elsewhere := newGatewayWithEnv(t, nil)
	if out, err := elsewhere.run("", "audit", "verify", "--public-key", pub, trail); err != nil || !strings.Contains(out, ": intact: ") {
		t.Errorf("verify with the public key: %v\n%s", err, out)
	}
	if out, err := elsewhere.run("", "audit", "verify", trail); err == nil || !strings.Contains(out, "which was not given") {
		t.Errorf("verify without the key: %v\n%s", err, out)
	}

	b, _ := os.ReadFile(trail)
	lines := bytes.SplitAfter(b, []byte("\n"))
	i := 1
	for !bytes.Contains(lines[i], []byte(`"success":true`)) {
		i++
	}
	lines[i] = bytes.Replace(lines[i], []byte(`"success":true`), []byte(`"success":false`), 1)
	tampered := filepath.Join(t.TempDir(), "tampered.log")
	if err := os.WriteFile(tampered, bytes.Join(lines, nil), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := g.run("", "audit", "verify", tampered); err == nil || !strings.Contains(out, "NOT INTACT") || !strings.Contains(out, fmt.Sprintf("line %d: does not follow line %d", i+2, i+1)) {
		t.Errorf("verify of a changed record: %v\n%s", err, out)
	}

	g.env["CONNECTORS_AUDIT_FSYNC"] = "sometimes"
	if _, err := g.run("", "serve", "--addr", "127.0.0.1:0"); err == nil || !strings.Contains(err.Error(), "CONNECTORS_AUDIT_FSYNC") {
		t.Errorf("serve with CONNECTORS_AUDIT_FSYNC=sometimes: %v", err)
	}
}
