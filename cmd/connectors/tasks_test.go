package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"
)

// The tasks extension (SEP-2663) through /mcp/{integration}: a task is its
// tenant's alone.

// taskMeta is the _meta of a 2026-07-28 request of an agent that declares
// the tasks extension.
const taskMeta = `"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28",` +
	`"io.modelcontextprotocol/clientCapabilities":{"extensions":{"io.modelcontextprotocol/tasks":{}}}}`

// upstreamExchange is one request to the fixture and its answer.
type upstreamExchange struct {
	Method, Name, Authorization, Token string
	Request, Response                  string
}

type exchanges struct {
	mu  sync.Mutex
	all []upstreamExchange
}

// of returns the exchanges of the methods given, in order.
func (e *exchanges) of(methods ...string) []upstreamExchange {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []upstreamExchange
	for _, x := range e.all {
		for _, m := range methods {
			if x.Method == m {
				out = append(out, x)
			}
		}
	}
	return out
}

// recordedConformance starts the conformance fixture behind a proxy that
// records every exchange, and returns the proxy's MCP URL.
func recordedConformance(t *testing.T) (string, *exchanges) {
	t.Helper()
	fixture, _ := url.Parse(startConformanceFixture(t))
	log := &exchanges{}
	proxy := &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) { r.SetURL(&url.URL{Scheme: "http", Host: fixture.Host}) },
		ModifyResponse: func(resp *http.Response) error {
			r := resp.Request
			answer, _ := io.ReadAll(resp.Body)
			resp.Body = io.NopCloser(bytes.NewReader(answer))
			var request []byte
			if r.GetBody != nil {
				if b, err := r.GetBody(); err == nil {
					request, _ = io.ReadAll(b)
				}
			}
			log.mu.Lock()
			log.all = append(log.all, upstreamExchange{
				Method: r.Header.Get("Mcp-Method"), Name: r.Header.Get("Mcp-Name"),
				Authorization: r.Header.Get("Authorization"), Token: r.Header.Get("X-Upstream-Token"),
				Request: string(request), Response: string(answer),
			})
			log.mu.Unlock()
			return nil
		},
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		r.Body = io.NopCloser(bytes.NewReader(body))
		r.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv.URL + "/mcp", log
}

// taskRequest sends a tasks/* request of taskID as tenant, with its
// routing headers, and returns the status and the JSON-RPC message.
func taskRequest(g *gateway, tenant, method, taskID string) (int, rpcAnswer) {
	g.t.Helper()
	body := fmt.Sprintf(`{"jsonrpc":"2.0","id":7,"method":%q,"params":{%s,"taskId":%q}}`, method, taskMeta, taskID)
	status, raw := g.post(tenant, "/mcp/conformance", taskID, body, map[string]string{"Mcp-Method": method})
	return status, decodeAnswer(g.t, raw)
}

type rpcAnswer struct {
	Raw    string `json:"-"` // as answered
	Result map[string]json.RawMessage
	Error  *struct {
		Code    int
		Message string
	}
}

func decodeAnswer(t testing.TB, raw string) rpcAnswer {
	t.Helper()
	var a rpcAnswer
	if err := json.Unmarshal([]byte(raw), &a); err != nil {
		t.Fatalf("not a JSON-RPC answer: %v: %s", err, raw)
	}
	a.Raw = raw
	return a
}

func str(raw json.RawMessage) string {
	var s string
	_ = json.Unmarshal(raw, &s)
	return s
}

// TestTasksAreTheTenants: tenant-a's task, created through the gateway,
// is known to the agent by a gateway task ID only; tenant-b can neither
// read nor cancel it, by that ID or by the upstream's (guessed), and
// nothing reaches the upstream for those attempts, which are answered as
// an unknown task is; tenant-a reads its task's result. The upstream
// hears the tenant's credential, never the agent's.
func TestTasksAreTheTenants(t *testing.T) {
	upstream, log := recordedConformance(t)
	g := fixtureGateway(t, upstream, "")

	call := fmt.Sprintf(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{%s,"name":"slow_compute","arguments":{"seconds":1,"label":"tenant-a's"}}}`, taskMeta)
	status, raw := g.post("tenant-a", "/mcp/conformance", "slow_compute", call, nil)
	created := decodeAnswer(t, raw)
	if status != http.StatusOK || created.Result == nil || str(created.Result["resultType"]) != "task" {
		t.Fatalf("tools/call of slow_compute: %d %s", status, raw)
	}
	id := str(created.Result["taskId"])
	calls := log.of("tools/call")
	if len(calls) == 0 {
		t.Fatal("the upstream saw no tools/call")
	}
	var upstreamCreated struct{ Result struct{ TaskID string } }
	_ = json.Unmarshal([]byte(calls[len(calls)-1].Response), &upstreamCreated)
	upstreamID := upstreamCreated.Result.TaskID
	if upstreamID == "" || id == "" || id == upstreamID || strings.Contains(raw, upstreamID) {
		t.Fatalf("the agent's taskId %q, the upstream's %q: the gateway's must stand for the upstream's", id, upstreamID)
	}

	before := len(log.of("tasks/get", "tasks/cancel", "tasks/update"))
	for _, attempt := range []struct{ tenant, method, taskID string }{
		{"tenant-b", "tasks/get", id},
		{"tenant-b", "tasks/cancel", id},
		{"tenant-b", "tasks/get", upstreamID},
		{"tenant-b", "tasks/cancel", upstreamID},
		{"tenant-a", "tasks/cancel", upstreamID}, // the upstream's ID is no gateway task ID
		{"tenant-a", "tasks/get", altered(id)},
	} {
		status, a := taskRequest(g, attempt.tenant, attempt.method, attempt.taskID)
		want := fmt.Sprintf("unknown taskId %q", attempt.taskID)
		if status != http.StatusBadRequest || a.Error == nil || a.Error.Code != -32602 || a.Error.Message != want {
			t.Errorf("%s %s of tenant-a's task (%.12s…): %d %s; want 400, -32602 %q", attempt.tenant, attempt.method, attempt.taskID, status, a.Raw, want)
		}
	}
	if after := log.of("tasks/get", "tasks/cancel", "tasks/update"); len(after) != before {
		t.Errorf("the upstream was asked for another tenant's task: %+v", after[before:])
	}

	result := awaitTask(t, g, "tenant-a", id)
	if !strings.Contains(string(result["result"]), `Computed \"tenant-a's\"`) {
		t.Errorf("tenant-a's task result: %s", result["result"])
	}
	for _, x := range log.of("tasks/get") {
		if x.Name != upstreamID || !strings.Contains(x.Request, `"taskId":"`+upstreamID+`"`) {
			t.Errorf("upstream tasks/get not of the upstream's task: Mcp-Name %q, %s", x.Name, x.Request)
		}
		if x.Authorization != "" || x.Token != "conformance-token-tenant-a" {
			t.Errorf("upstream tasks/get with Authorization %q, token %q: want the tenant's credential only", x.Authorization, x.Token)
		}
	}
}

// altered is id with the character in its middle changed (to another of
// base64url's).
func altered(id string) string {
	m, c := len(id)/2, "A"
	if id[m] == 'A' {
		c = "B"
	}
	return id[:m] + c + id[m+1:]
}

// awaitTask polls tasks/get of id as tenant until the task has ended, and
// returns its DetailedTask, which must name it by id and be completed.
func awaitTask(t *testing.T, g *gateway, tenant, id string) map[string]json.RawMessage {
	t.Helper()
	for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		status, a := taskRequest(g, tenant, "tasks/get", id)
		if status != http.StatusOK || a.Result == nil {
			t.Fatalf("%s tasks/get of its task: %d %s", tenant, status, a.Raw)
		}
		if got := str(a.Result["taskId"]); got != id {
			t.Fatalf("tasks/get names the task %q; want the gateway's %q", got, id)
		}
		switch s := str(a.Result["status"]); s {
		case "working":
			continue
		case "completed":
			return a.Result
		default:
			t.Fatalf("%s's task ended %s: %s", tenant, s, a.Raw)
		}
	}
	t.Fatalf("%s's task did not complete", tenant)
	return nil
}
