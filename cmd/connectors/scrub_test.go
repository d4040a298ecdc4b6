package main

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/connectors-gateway/connectors/internal/testenv"
)

// The tests of this file point upstream-hostile at the gateway: an
// upstream that puts the credential it was given into every field of every
// answer, in every spelling. Nothing of it may reach the agent or the logs.

// hostileClientSecret is the OAuth client secret of the hostile
// integrations: no upstream is given it, the fixture leaks it anyway.
const hostileClientSecret = "hostile-client-secret-7e1d0c4b"

// hostileHTTP starts upstream-hostile over streamable HTTP and returns its
// MCP endpoint.
func hostileHTTP(t *testing.T) string {
	t.Helper()
	return "http://" + startHTTPFixture(t, "upstream-hostile", "--also", hostileClientSecret) + "/mcp"
}

// hostileIntegrations are upstream-hostile over stdio (negotiating
// 2026-07-28), over streamable HTTP, and over stdio pinned to 2025-11-25.
func hostileIntegrations(t *testing.T) []map[string]any {
	bin := testenv.Build(t, "./testdata/upstream-hostile")
	env := map[string]string{"HOSTILE_TOKEN": "{{access_token}}", "HOSTILE_REFRESH": "{{refresh_token}}"}
	return []map[string]any{
		{"name": "hostile", "category": "testing", "upstream": map[string]any{
			"command": bin, "args": []string{"--also", hostileClientSecret}, "env": env}},
		{"name": "hostileweb", "category": "testing", "upstream": map[string]any{
			"url":     hostileHTTP(t),
			"headers": map[string]string{"Authorization": "Bearer {{access_token}}", "X-Refresh": "{{refresh_token}}"}}},
		{"name": "hostileold", "category": "testing", "protocol": "2025-11-25", "upstream": map[string]any{
			"command": bin, "args": []string{"--also", hostileClientSecret}, "env": env}},
	}
}

// hostileRefresh is the planted refresh token of tenant for integration.
func hostileRefresh(tenant, integration string) string {
	return "xref_" + tenant + "_" + integration + "_refresh_9b8a7c"
}

// hostileGateway serves the hostile integrations; env chooses the store.
func hostileGateway(t *testing.T, env map[string]string) *gateway {
	if env == nil {
		env = map[string]string{}
	}
	for _, p := range []string{"HOSTILE", "HOSTILEWEB", "HOSTILEOLD"} {
		env[p+"_CLIENT_SECRET"] = hostileClientSecret
	}
	ins := hostileIntegrations(t)
	g := newGatewayWithCredentials(t, env, ins...)
	for _, in := range ins {
		name := in["name"].(string)
		for _, tenant := range []string{"tenant-a", "tenant-b"} {
			g.mustRun(fmt.Sprintf(`{"accessToken": %q, "refreshToken": %q}`, extraToken(tenant, name), hostileRefresh(tenant, name)),
				"credential", "put", "--tenant", tenant, "--integration", name)
		}
	}
	g.serve()
	return g
}

// exchange posts body to path as tenant and returns everything the
// gateway answered: status line, headers and body (every event of a
// stream), read for at most wait.
func (g *gateway) exchange(tenant, path string, header map[string]string, body string, wait time.Duration) string {
	g.t.Helper()
	req, _ := http.NewRequest("POST", "http://"+g.addr+path, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+g.keys[tenant])
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := (&http.Client{Timeout: wait}).Do(req)
	if err != nil {
		g.t.Fatalf("POST %s %s: %v", path, body, err)
	}
	defer resp.Body.Close()
	var b strings.Builder
	fmt.Fprintf(&b, "%d\n", resp.StatusCode)
	_ = resp.Header.Write(&b)
	raw, _ := io.ReadAll(resp.Body) // what came before the timeout, if one ended it
	b.Write(raw)
	return b.String()
}

// hostileRequest is one request to the gateway: a JSON-RPC method, its
// params, and the Mcp-Name header of 2026-07-28.
type hostileRequest struct {
	method, name, params string
	// upstream: the answer must show that the upstream's leaks went
	// through the gateway (a [redacted] mark).
	upstream bool
	single   bool // only on /mcp/{integration}
	wait     time.Duration
}

// hostileRequests are the requests to make of integration in, as named at
// path (prefix: "" on /mcp/{in}, "{in}_" on /mcp).
func hostileRequests(in, prefix string) []hostileRequest {
	tool := func(name, extra string) string {
		return fmt.Sprintf(`"name":%q,"arguments":{"text":"x"}%s`, prefix+name, extra)
	}
	progress := `,"_meta":{"progressToken":"p-1","io.modelcontextprotocol/logLevel":"debug"}`
	reqs := []hostileRequest{
		{method: "tools/list", params: ``, upstream: true},
		{method: "tools/call", name: prefix + "leak", params: tool("leak", ""), upstream: true},
		{method: "tools/call", name: prefix + "leak", params: tool("leak", progress), upstream: true},
		{method: "tools/call", name: prefix + "fail", params: tool("fail", ""), upstream: true},
		{method: "tools/call", name: prefix + "boom", params: tool("boom", ""), upstream: true},
		{method: "prompts/list", params: ``, upstream: true, single: true},
		{method: "prompts/get", name: "leaky", params: `"name":"leaky","arguments":{"what":"x"}`, upstream: true, single: true},
		{method: "resources/list", params: ``, upstream: true, single: true},
		{method: "resources/templates/list", params: ``, upstream: true, single: true},
		{method: "resources/read", name: "x://tmpl/1/@@PCT@@", params: `"uri":"x://tmpl/1/@@PCT@@"`, upstream: true, single: true},
		{method: "completion/complete", params: `"ref":{"type":"ref/prompt","name":"leaky"},"argument":{"name":"what","value":"x"}`, upstream: true, single: true},
	}
	// Asking the agent: a 2025-11-25 agent is asked in a request of its
	// own, which the test never answers: what came within the wait is
	// what is checked.
	if in == "hostileold" {
		reqs = append(reqs, hostileRequest{method: "tools/call", name: prefix + "ask_old", params: tool("ask_old", ""), wait: 3 * time.Second})
	} else {
		reqs = append(reqs, hostileRequest{method: "tools/call", name: prefix + "ask", params: tool("ask", ""), wait: 3 * time.Second})
	}
	return reqs
}

// TestNoSecretInAnyAnswer: an upstream that echoes its credential (access
// and refresh token, and the integration's client secret) in every field
// of every answer, in every spelling, on every method and notification,
// over stdio and HTTP, 2026-07-28 and 2025-11-25: no byte of any secret
// reaches an agent of either era, on /mcp or /mcp/{integration}, on the
// direct path or the usual one, or through POST /api/v1/tools/invoke, and
// none reaches the gateway's logs. On both stores.
func TestNoSecretInAnyAnswer(t *testing.T) {
	for _, st := range []struct {
		name string
		env  func(t *testing.T) map[string]string
	}{
		{"embedded", func(*testing.T) map[string]string { return nil }},
		{"vault", func(t *testing.T) map[string]string {
			addr, _, token := gatewayVault(t)
			return map[string]string{"VAULT_ADDR": addr, "VAULT_TOKEN": token}
		}},
	} {
		t.Run(st.name, func(t *testing.T) {
			g := hostileGateway(t, st.env(t))
			secrets := []string{hostileClientSecret}
			for _, in := range []string{"hostile", "hostileweb", "hostileold"} {
				secrets = append(secrets, extraToken("tenant-a", in), hostileRefresh("tenant-a", in))
			}
			var answers []string
			check := func(what, answer string, upstream bool) {
				t.Helper()
				answers = append(answers, answer)
				for _, form := range leaks(answer, secrets) {
					t.Errorf("%s: the answer holds a secret (%s):\n%.3000s", what, form, answer)
				}
				if upstream && !strings.Contains(answer, "[redacted]") && !strings.Contains(answer, "W3JlZGFjdGVkXQ==") {
					t.Errorf("%s: the upstream's answer did not come through (no [redacted] in it):\n%.2000s", what, answer)
				}
			}
			for _, in := range []string{"hostile", "hostileweb", "hostileold"} {
				for _, path := range []string{"/mcp", "/mcp/" + in} {
					prefix := in + "_"
					if path != "/mcp" {
						prefix = ""
					}
					// 2026-07-28: every request stands alone.
					for i, r := range hostileRequests(in, prefix) {
						if r.single && path == "/mcp" {
							continue
						}
						what := fmt.Sprintf("2026-07-28 %s %s %s", path, r.method, r.name)
						meta := `"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{"elicitation":{},"sampling":{}}}`
						params := r.params
						if strings.Contains(params, `"_meta":{`) {
							params = strings.Replace(params, `"_meta":{`, meta[:len(meta)-1]+",", 1)
						} else if params != "" {
							params = meta + "," + params
						} else {
							params = meta
						}
						body := fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"method":%q,"params":{%s}}`, i+1, r.method, params)
						header := map[string]string{"Mcp-Protocol-Version": "2026-07-28", "Mcp-Method": r.method}
						if r.name != "" {
							header["Mcp-Name"] = r.name
						}
						wait := r.wait
						if wait == 0 {
							wait = 30 * time.Second
						}
						check(what, g.exchange("tenant-a", path, header, body, wait), r.upstream)
					}
					// 2025-11-25: on a session, once as it is (the direct
					// path takes its plain calls) and once asking for log
					// messages (the usual path, relaying them).
					for _, logging := range []bool{false, true} {
						session := g.oldSession("tenant-a", path, `{"elicitation":{},"sampling":{}}`)
						header := map[string]string{"Mcp-Session-Id": session, "Mcp-Protocol-Version": "2025-11-25"}
						if logging {
							check("setLevel", g.exchange("tenant-a", path, header, `{"jsonrpc":"2.0","id":0,"method":"logging/setLevel","params":{"level":"debug"}}`, 10*time.Second), false)
						}
						for i, r := range hostileRequests(in, prefix) {
							if r.single && path == "/mcp" {
								continue
							}
							params := strings.Replace(r.params, `,"io.modelcontextprotocol/logLevel":"debug"`, "", 1)
							body := fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"method":%q,"params":{%s}}`, i+1, r.method, params)
							wait := r.wait
							if wait == 0 {
								wait = 30 * time.Second
							}
							check(fmt.Sprintf("2025-11-25 (logging %v) %s %s %s", logging, path, r.method, r.name),
								g.exchange("tenant-a", path, header, body, wait), r.upstream)
						}
					}
				}
				if in != "hostileweb" {
					// A process that writes the secrets to stderr as it
					// dies: the gateway logs its stderr.
					check("crash "+in, g.exchange("tenant-a", "/mcp/"+in, map[string]string{"Mcp-Protocol-Version": "2026-07-28", "Mcp-Method": "tools/call", "Mcp-Name": "crash"},
						`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{}},"name":"crash"}}`, 30*time.Second), false)
					for deadline := time.Now().Add(5 * time.Second); !strings.Contains(g.stderr.String(), "crashing:") && time.Now().Before(deadline); {
						time.Sleep(50 * time.Millisecond)
					}
					if !strings.Contains(g.stderr.String(), "crashing:") {
						t.Errorf("the gateway did not log the stderr of %s's crashed process", in)
					}
				}
				for _, tool := range []string{"leak", "fail", "boom"} {
					status, _, raw := g.api("tenant-a", "POST", "/api/v1/tools/invoke", fmt.Sprintf(`{"toolId": "%s.%s", "parameters": {"text": "x"}}`, in, tool))
					check(fmt.Sprintf("POST /api/v1/tools/invoke %s.%s (%d)", in, tool, status), raw, true)
				}
			}
			all := strings.Join(answers, "\n")
			for _, want := range []string{`"image"`, `"audio"`, `"resource_link"`, `"blob"`, `"structuredContent"`, "notifications/progress", "notifications/message", "elicitation/create", "inputRequests"} {
				if !strings.Contains(all, want) {
					t.Errorf("no answer carried %s: the test did not see that field", want)
				}
			}
			for _, form := range leaks(g.stderr.String(), secrets) {
				t.Errorf("the gateway's logs hold a secret (%s)", form)
			}
		})
	}
}

// leaks returns how text holds any of secrets: plainly, in any string of
// a JSON document in it (escapes undone), percent-decoded up to three
// times, or base64-decoded (either alphabet, padded or not, line breaks
// dropped) at any offset. It is the test's own reader, independent of
// the gateway's.
func leaks(text string, secrets []string) []string {
	type found struct{ how, s string }
	var texts []found
	add := func(how, s string) { texts = append(texts, found{how, s}) }
	add("plain", text)
	// JSON documents: the body, or each line (SSE data, JSON lines).
	var docs []string
	for _, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(strings.TrimPrefix(line, "data:"))
		if json.Valid([]byte(line)) {
			docs = append(docs, line)
		}
	}
	var walk func(v any)
	walk = func(v any) {
		switch v := v.(type) {
		case string:
			add("in a JSON string", v)
		case json.Number:
			add("in a JSON number", v.String())
		case []any:
			for _, e := range v {
				walk(e)
			}
		case map[string]any:
			for k, e := range v {
				add("in a JSON key", k)
				walk(e)
			}
		}
	}
	for _, d := range docs {
		dec := json.NewDecoder(strings.NewReader(d))
		dec.UseNumber()
		var v any
		if dec.Decode(&v) == nil {
			walk(v)
		}
	}
	for _, f := range texts {
		cur := f.s
		for level := 1; level <= 3 && strings.Contains(cur, "%"); level++ {
			cur = percentDecoded(cur)
			add(fmt.Sprintf("percent-encoded (%d) %s", level, f.how), cur)
		}
	}
	for _, f := range texts {
		for _, run := range base64Runs(f.s) {
			// Every residue of the start: the quartets of the encoding
			// that holds a secret line up with one of them.
			for off := 0; off < 4 && off < len(run); off++ {
				part := run[off:]
				if len(part)%4 == 1 {
					part = part[:len(part)-1]
				}
				for _, enc := range []*base64.Encoding{base64.RawStdEncoding, base64.RawURLEncoding} {
					if b, err := enc.DecodeString(part); err == nil {
						add("base64 "+f.how, string(b))
					}
				}
			}
		}
	}
	var out []string
	for _, f := range texts {
		for _, s := range secrets {
			if strings.Contains(f.s, s) {
				out = append(out, fmt.Sprintf("%.10s… %s", s, f.how))
			}
		}
	}
	return out
}

// base64Runs returns the runs of base64 characters of s at least 12 long,
// line breaks dropped, padding ending a run.
func base64Runs(s string) []string {
	isB64 := func(c byte) bool {
		return 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || strings.IndexByte("+/-_", c) >= 0
	}
	var out []string
	for i := 0; i < len(s); {
		if !isB64(s[i]) {
			i++
			continue
		}
		var b strings.Builder
		j := i
		for ; j < len(s) && (isB64(s[j]) || s[j] == '\r' || s[j] == '\n'); j++ {
			if s[j] != '\r' && s[j] != '\n' {
				b.WriteByte(s[j])
			}
		}
		if b.Len() >= 12 {
			out = append(out, b.String())
		}
		i = j
	}
	return out
}

func percentDecoded(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '%' && i+2 < len(s) {
			var c byte
			if _, err := fmt.Sscanf(s[i+1:i+3], "%02x", &c); err == nil {
				b.WriteByte(c)
				i += 2
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}
