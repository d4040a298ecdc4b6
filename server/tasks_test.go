package server

import (
	"crypto/rand"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"

	"github.com/connectors-gateway/connectors/tenants"
)

// TestTaskIDs: a gateway task ID stands for the upstream's taskId in the
// CreateTaskResult, and opens only for the tenant and integration it was
// made for; altered, it opens for no one.
func TestTaskIDs(t *testing.T) {
	key := make([]byte, tenants.BrowserSessionKeySize)
	_, _ = rand.Read(key)
	sealer, err := tenants.NewBrowserSessions(key, nil)
	if err != nil {
		t.Fatal(err)
	}
	g := &Gateway{sealer: sealer, log: slog.New(slog.DiscardHandler)}
	const upstream = "0123456789abcdef0123456789abcdef"
	res, err := g.namedTask("tenant-a", "conformance", json.RawMessage(
		`{"resultType":"task","taskId":"`+upstream+`","status":"working","ttlMs":60000}`))
	if err != nil {
		t.Fatal(err)
	}
	var created struct{ TaskID, Status string }
	if json.Unmarshal(res, &created) != nil || created.Status != "working" || created.TaskID == "" || strings.Contains(string(res), upstream) {
		t.Fatalf("CreateTaskResult through the gateway: %s", res)
	}
	id := created.TaskID
	altered := alteredID(id)
	if got, ok := g.openTask("tenant-a", "conformance", id); !ok || got != upstream {
		t.Errorf("the tenant's own task ID opened to %q, %v", got, ok)
	}
	for _, c := range []struct{ tenant, integration, id string }{
		{"tenant-b", "conformance", id},
		{"tenant-a", "other", id},
		{"tenant-a", "conformance", upstream},
		{"tenant-a", "conformance", altered},
	} {
		if got, ok := g.openTask(c.tenant, c.integration, c.id); ok {
			t.Errorf("tenant-a's task ID (%.12s…) opened for %s/%s: %q", c.id, c.tenant, c.integration, got)
		}
	}
	if plain, err := g.namedTask("tenant-a", "conformance", json.RawMessage(`{"resultType":"complete","content":[]}`)); err != nil || string(plain) != `{"resultType":"complete","content":[]}` {
		t.Errorf("a result that is no task: %s, %v", plain, err)
	}
}

// TestWithTasksExtension: the extension joins the discover answer's
// capabilities, beside any other extension.
func TestWithTasksExtension(t *testing.T) {
	out, ok := withTasksExtension([]byte(`{"jsonrpc":"2.0","id":1,"result":{"capabilities":{"tools":{},"extensions":{"x":{}}}}}`), json.RawMessage(`{}`))
	var msg struct {
		Result struct {
			Capabilities struct {
				Tools      json.RawMessage
				Extensions map[string]json.RawMessage
			}
		}
	}
	if !ok || json.Unmarshal(out, &msg) != nil || msg.Result.Capabilities.Tools == nil ||
		msg.Result.Capabilities.Extensions["x"] == nil || string(msg.Result.Capabilities.Extensions["io.modelcontextprotocol/tasks"]) != `{}` {
		t.Errorf("%s, %v", out, ok)
	}
}

// alteredID is id with one character in its middle changed.
func alteredID(id string) string {
	m := len(id) / 2
	c := byte('A')
	if id[m] == c {
		c = 'B'
	}
	return id[:m] + string(c) + id[m+1:]
}
