package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/client/transport"
	"github.com/mark3labs/mcp-go/mcp"

	"github.com/connectors-gateway/connectors/internal/testenv"
)

// These tests drive a tools/call end to end: a real MCP client, the gateway
// served by Main, and real upstreams (server-everything over stdio and
// streamable HTTP, the upstream-env fixture over stdio).

func TestMain(m *testing.M) { os.Exit(testenv.RunMain(m)) }

// upstreamEnvBin builds testdata/upstream-env once per test binary.
func upstreamEnvBin(t *testing.T) string {
	t.Helper()
	return testenv.Build(t, "./testdata/upstream-env")
}

// envIntegration is an integration served by upstream-env over stdio. Its
// process carries CGW_TEST_MARKER=marker, so a test can find (and kill) it,
// and the tenant's token in PROBE_TOKEN.
func envIntegration(t *testing.T, name, marker, timeout string) map[string]any {
	in := map[string]any{
		"name": name, "category": "testing",
		"upstream": map[string]any{
			"command": upstreamEnvBin(t),
			"env":     map[string]string{"PROBE_TOKEN": "{{access_token}}", "CGW_TEST_MARKER": marker},
		},
	}
	if timeout != "" {
		in["timeout"] = timeout
	}
	return in
}

// everythingHTTP starts server-everything in streamable-HTTP mode on a free
// port and returns an integration named name for it.
func everythingHTTP(t *testing.T, name string) map[string]any {
	t.Helper()
	return map[string]any{
		"name": name, "category": "testing",
		"upstream": map[string]any{
			"url":     testenv.EverythingHTTP(t),
			"headers": map[string]string{"Authorization": "Bearer {{access_token}}"},
		},
	}
}

// era is one way an agent speaks to /mcp.
type era struct {
	name    string
	opts    []client.ClientOption
	version string // the protocol version it must end up on
}

var eras = []era{
	{"2026-07-28", nil, mcp.ProtocolVersion20260728},
	{"legacy", []client.ClientOption{client.WithLegacyProtocolOnly()}, mcp.LATEST_LEGACY_PROTOCOL_VERSION},
}

// notes collects an agent's notifications of one method.
type notes struct {
	mu  sync.Mutex
	got []map[string]any
}

func collect(c *client.Client, method string) *notes {
	n := &notes{}
	c.OnNotification(func(m mcp.JSONRPCNotification) {
		if m.Method != method {
			return
		}
		b, _ := json.Marshal(m.Params)
		var p map[string]any
		_ = json.Unmarshal(b, &p)
		n.mu.Lock()
		n.got = append(n.got, p)
		n.mu.Unlock()
	})
	return n
}

func (n *notes) list() []map[string]any {
	n.mu.Lock()
	defer n.mu.Unlock()
	return slices.Clone(n.got)
}

// waitFor polls n until ok holds of what arrived, or d passes.
func (n *notes) waitFor(d time.Duration, ok func([]map[string]any) bool) []map[string]any {
	deadline := time.Now().Add(d)
	for {
		got := n.list()
		if ok(got) || time.Now().After(deadline) {
			return got
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func call(ctx context.Context, c *client.Client, name string, args map[string]any) (*mcp.CallToolResult, error) {
	req := mcp.CallToolRequest{Params: mcp.CallToolParams{Name: name}}
	if args != nil { // a nil map would go out as "arguments": null
		req.Params.Arguments = args
	}
	return c.CallTool(ctx, req)
}

// mustCall calls a tool that must succeed and returns its text.
func mustCall(t *testing.T, c *client.Client, name string, args map[string]any) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	res, err := call(ctx, c, name, args)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	if res.IsError {
		t.Fatalf("%s: isError: %s", name, toolText(t, res))
	}
	return toolText(t, res)
}

// recorder is an http.RoundTripper that notes, for every request the client
// sends, its JSON-RPC method, and whether it or its response carried a
// session ID.
type recorder struct {
	mu       sync.Mutex
	methods  []string
	sent     []string // Mcp-Session-Id the requests carried
	returned []string // Mcp-Session-Id the responses carried
}

func (r *recorder) RoundTrip(req *http.Request) (*http.Response, error) {
	var msg struct {
		Method string `json:"method"`
	}
	if req.Body != nil {
		b, _ := io.ReadAll(req.Body)
		req.Body.Close()
		req.Body = io.NopCloser(bytes.NewReader(b))
		_ = json.Unmarshal(b, &msg)
	}
	resp, err := http.DefaultTransport.RoundTrip(req)
	r.mu.Lock()
	defer r.mu.Unlock()
	r.methods = append(r.methods, req.Method+" "+msg.Method)
	if s := req.Header.Get("Mcp-Session-Id"); s != "" {
		r.sent = append(r.sent, s)
	}
	if err == nil {
		if s := resp.Header.Get("Mcp-Session-Id"); s != "" {
			r.returned = append(r.returned, s)
		}
	}
	return resp, err
}

// TestProtocolEras: one /mcp endpoint serves an agent on the stateless
// 2026-07-28 protocol (server/discover, no session) and one on the
// initialize era (a session), and both list and call tools.
func TestProtocolEras(t *testing.T) {
	g := newGateway(t)
	g.serve()
	for _, e := range eras {
		t.Run(e.name, func(t *testing.T) {
			rec := &recorder{}
			c := g.dial("tenant-a", []transport.StreamableHTTPCOption{
				transport.WithHTTPBasicClient(&http.Client{Transport: rec}),
			}, e.opts...)
			if got := c.ProtocolVersion(); got != e.version {
				t.Errorf("negotiated protocol %q, want %q", got, e.version)
			}
			ctx := context.Background()
			list, err := c.ListTools(ctx, mcp.ListToolsRequest{})
			if err != nil {
				t.Fatalf("tools/list: %v", err)
			}
			var names []string
			for _, tool := range list.Tools {
				names = append(names, tool.Name)
			}
			for _, want := range []string{"everything_echo", "notion_API-get-self"} {
				if !slices.Contains(names, want) {
					t.Errorf("tools/list lacks %s: %v", want, names)
				}
			}
			if got := mustCall(t, c, "everything_echo", map[string]any{"message": "era " + e.name}); !strings.Contains(got, "era "+e.name) {
				t.Errorf("everything_echo = %q", got)
			}
			if got := mustCall(t, c, "notion_API-get-self", nil); !strings.Contains(got, "Acme Bot") {
				t.Errorf("notion_API-get-self = %q, want tenant-a's bot", got)
			}

			rec.mu.Lock()
			defer rec.mu.Unlock()
			switch e.version {
			case mcp.ProtocolVersion20260728:
				if !slices.Contains(rec.methods, "POST server/discover") || slices.Contains(rec.methods, "POST initialize") {
					t.Errorf("stateless agent sent %v, want server/discover and no initialize", rec.methods)
				}
				if len(rec.returned) > 0 || len(rec.sent) > 0 {
					t.Errorf("stateless era used sessions: returned %v, sent %v", rec.returned, rec.sent)
				}
			default:
				if !slices.Contains(rec.methods, "POST initialize") {
					t.Errorf("legacy agent sent %v, want initialize", rec.methods)
				}
				if len(rec.returned) == 0 || len(rec.sent) == 0 {
					t.Errorf("initialize era without a session: returned %v, sent %v", rec.returned, rec.sent)
				}
			}
		})
	}
	g.assertNoSecretsIn()
}

// TestProgressRelay: an agent's tools/call with a progress token gets the
// upstream's notifications/progress with its own token, over stdio and
// HTTP upstreams, in both eras, and never another call's.
func TestProgressRelay(t *testing.T) {
	g := newGatewayWith(t, everythingHTTP(t, "everyhttp"))
	g.serve()

	type run struct {
		name  string
		c     *client.Client
		n     *notes
		tool  string
		token mcp.ProgressToken
	}
	var runs []run
	for _, e := range eras {
		c := g.dial("tenant-a", nil, e.opts...)
		n := collect(c, string(mcp.MethodNotificationProgress))
		// One client per era and upstream, so that each sees only its own
		// call's notifications; the calls run at once on the tenant's
		// shared upstream connections.
		c2 := g.dial("tenant-a", nil, e.opts...)
		n2 := collect(c2, string(mcp.MethodNotificationProgress))
		runs = append(runs,
			run{e.name + "/stdio", c, n, "everything_trigger-long-running-operation", "agent-" + e.name + "-stdio"},
			run{e.name + "/http", c2, n2, "everyhttp_trigger-long-running-operation", 4242 + len(runs)},
		)
	}
	const steps = 4
	var wg sync.WaitGroup
	for _, r := range runs {
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			req := mcp.CallToolRequest{Params: mcp.CallToolParams{
				Name:      r.tool,
				Arguments: map[string]any{"duration": 1, "steps": steps},
				Meta:      &mcp.Meta{ProgressToken: r.token},
			}}
			res, err := r.c.CallTool(ctx, req)
			if err != nil || res.IsError {
				t.Errorf("%s: %v %v", r.name, err, res)
				return
			}
			got := r.n.waitFor(3*time.Second, func(got []map[string]any) bool { return len(got) >= steps })
			var progress []string
			for _, p := range got {
				if fmt.Sprint(p["progressToken"]) != fmt.Sprint(r.token) {
					t.Errorf("%s: progress with token %v, want only the agent's own %v", r.name, p["progressToken"], r.token)
				}
				if fmt.Sprint(p["total"]) != strconv.Itoa(steps) {
					t.Errorf("%s: progress total %v, want %d", r.name, p["total"], steps)
				}
				progress = append(progress, fmt.Sprint(p["progress"]))
			}
			if want := []string{"1", "2", "3", "4"}; !slices.Equal(progress, want) {
				t.Errorf("%s: progress %v, want %v", r.name, progress, want)
			}
		})
	}
	wg.Wait()
	g.assertNoSecretsIn()
}

// TestLogRelay: log messages an upstream sends during a call reach the
// agent that made it, at the level the agent asked for, and not below it.
func TestLogRelay(t *testing.T) {
	g := newGatewayWith(t, envIntegration(t, "probe", "log", ""))
	g.serve()
	ctx := context.Background()

	tests := []struct {
		name  string
		opts  []client.ClientOption
		level mcp.LoggingLevel // "" sets none
		want  bool
	}{
		{"legacy/debug", eras[1].opts, mcp.LoggingLevelDebug, true},
		{"legacy/info", eras[1].opts, mcp.LoggingLevelInfo, true},
		{"legacy/error", eras[1].opts, mcp.LoggingLevelError, false},
		{"2026-07-28/info", eras[0].opts, mcp.LoggingLevelInfo, true},
		{"2026-07-28/error", eras[0].opts, mcp.LoggingLevelError, false},
		{"2026-07-28/unset", eras[0].opts, "", false}, // the spec: MUST NOT send
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := g.dial("tenant-a", nil, tt.opts...)
			n := collect(c, string(mcp.MethodNotificationMessage))
			if tt.level != "" {
				if err := c.SetLevel(ctx, mcp.SetLevelRequest{Params: mcp.SetLevelParams{Level: tt.level}}); err != nil {
					t.Fatalf("logging/setLevel: %v", err)
				}
			}
			msg := "hello from upstream " + tt.name
			mustCall(t, c, "probe_log", map[string]any{"message": msg})
			wait := 2 * time.Second
			if !tt.want {
				wait = 500 * time.Millisecond
			}
			got := n.waitFor(wait, func(got []map[string]any) bool { return len(got) > 0 })
			var seen bool
			for _, p := range got {
				if p["data"] == msg {
					seen = true
					if p["level"] != "info" || p["logger"] != "upstream-env" {
						t.Errorf("log relayed as %v, want level info, logger upstream-env", p)
					}
				}
			}
			if seen != tt.want {
				t.Errorf("upstream log reached the agent: %v, want %v (got %v)", seen, tt.want, got)
			}
		})
	}
	g.assertNoSecretsIn()
}

// waitCancelled polls the probe's "cancelled" tool until it lists id.
func waitCancelled(t *testing.T, c *client.Client, tool, id string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		got := mustCall(t, c, tool, nil)
		if slices.Contains(strings.Split(got, ","), id) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the upstream never saw block %q cancelled (cancelled: %q)", id, got)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// blockThenCancel starts probe_block as id, cancels the agent's context
// while it runs, and checks that the call ended promptly.
func blockThenCancel(t *testing.T, c *client.Client, tool, id string) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	start := time.Now()
	go func() {
		_, err := call(ctx, c, tool, map[string]any{"id": id})
		done <- err
	}()
	time.Sleep(500 * time.Millisecond) // the call is at the upstream by now
	cancel()
	select {
	case err := <-done:
		if err == nil {
			t.Errorf("cancelled call returned no error")
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("cancelled call still running after %s", time.Since(start))
	}
}

// TestCancellation: an agent that gives up on a call (its context ends)
// makes the gateway cancel the upstream call, in both eras over HTTP and
// over stdio, and the gateway keeps serving.
func TestCancellation(t *testing.T) {
	g := newGatewayWith(t, envIntegration(t, "probe", "cancel", ""))
	g.serve()
	for _, e := range eras {
		t.Run(e.name, func(t *testing.T) {
			c := g.dial("tenant-a", nil, e.opts...)
			mustCall(t, c, "probe_cancelled", nil) // the upstream is up
			id := "http-" + e.name
			blockThenCancel(t, c, "probe_block", id)
			waitCancelled(t, c, "probe_cancelled", id)
			if got := mustCall(t, c, "everything_echo", map[string]any{"message": "still here"}); !strings.Contains(got, "still here") {
				t.Errorf("after a cancellation, echo = %q", got)
			}
		})
	}
	g.assertNoSecretsIn()
}

// TestCancellationOverStdio: the same through "connectors stdio", the
// built binary, driven by mcp-go's stdio client (which sends
// notifications/cancelled).
func TestCancellationOverStdio(t *testing.T) {
	g := newGatewayWith(t, envIntegration(t, "probe", "cancel-stdio", ""))
	bin := buildGateway(t)
	var stderr lockedBuffer
	tr := transport.NewStdioWithOptions(bin, []string{
		"CONNECTORS_DATA_DIR=" + g.env["CONNECTORS_DATA_DIR"],
		"CONNECTORS_CONFIG=" + g.env["CONNECTORS_CONFIG"],
		"PATH=" + os.Getenv("PATH"), "HOME=" + g.env["HOME"],
	}, []string{"stdio", "--tenant", "tenant-a"}, transport.WithCommandStderrWriter(&stderr))
	c := client.NewClient(tr)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := c.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	if _, err := c.Initialize(ctx, mcp.InitializeRequest{Params: mcp.InitializeParams{
		ClientInfo: mcp.Implementation{Name: "connectors-test", Version: "1"},
	}}); err != nil {
		t.Fatalf("initialize over stdio: %v\n%s", err, stderr.String())
	}
	mustCall(t, c, "probe_cancelled", nil)
	blockThenCancel(t, c, "probe_block", "stdio")
	waitCancelled(t, c, "probe_cancelled", "stdio")
	for _, s := range g.secrets() {
		if strings.Contains(stderr.String(), s) {
			t.Errorf("a secret (%.12s…) appears in the stdio gateway's stderr", s)
		}
	}
}

// TestTimeout: an integration's timeout ends a call that runs past it with
// a tool error that says so, tells the upstream to stop, and leaves the
// gateway and the integration serving.
func TestTimeout(t *testing.T) {
	g := newGatewayWith(t, envIntegration(t, "slow", "timeout", "1s"))
	g.serve()
	for _, e := range eras {
		t.Run(e.name, func(t *testing.T) {
			c := g.dial("tenant-a", nil, e.opts...)
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			start := time.Now()
			id := "timeout-" + e.name
			res, err := call(ctx, c, "slow_block", map[string]any{"id": id})
			took := time.Since(start)
			if err != nil {
				t.Fatalf("slow_block: %v, want a tool error result", err)
			}
			text := toolText(t, res)
			if !res.IsError || !strings.Contains(text, "1s") ||
				!strings.Contains(text, "did not answer") && !strings.Contains(strings.ToLower(text), "timeout") {
				t.Errorf("slow_block = %q (isError %v), want an error naming the 1s timeout", text, res.IsError)
			}
			if took > 10*time.Second {
				t.Errorf("the 1s timeout took %s", took)
			}
			g.assertNoSecretsIn(text)
			waitCancelled(t, c, "slow_cancelled", id)
			if got := mustCall(t, c, "everything_echo", map[string]any{"message": "after timeout"}); !strings.Contains(got, "after timeout") {
				t.Errorf("after a timeout, echo = %q", got)
			}
		})
	}
}

// markedProcess returns the pid of the live process whose environment
// holds CGW_TEST_MARKER=marker, or 0.
func markedProcess(marker string) int {
	environs, _ := filepath.Glob("/proc/[0-9]*/environ")
	want := []byte("CGW_TEST_MARKER=" + marker + "\x00")
	for _, p := range environs {
		b, err := os.ReadFile(p)
		if err != nil || !bytes.Contains(b, want) {
			continue
		}
		pid, _ := strconv.Atoi(filepath.Base(filepath.Dir(p)))
		if stat, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat")); err == nil {
			if f := strings.Fields(string(stat[bytes.LastIndexByte(stat, ')')+1:])); len(f) > 0 && f[0] == "Z" {
				continue
			}
		}
		return pid
	}
	return 0
}

func waitMarkedProcess(t *testing.T, marker string, not int) int {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if pid := markedProcess(marker); pid != 0 && pid != not {
			return pid
		}
		if time.Now().After(deadline) {
			t.Fatalf("no upstream process with marker %s", marker)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestUpstreamCrash: an upstream process killed in the middle of a call
// ends the call with a tool error that says the upstream exited, and the
// next call gets a new process; so does a call after an idle upstream died.
func TestUpstreamCrash(t *testing.T) {
	marker := "crash-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	g := newGatewayWith(t, envIntegration(t, "crashy", marker, ""))
	g.serve()
	c := g.client("tenant-a")
	mustCall(t, c, "crashy_cancelled", nil)
	pid := waitMarkedProcess(t, marker, 0)

	done := make(chan struct{})
	var res *mcp.CallToolResult
	var err error
	go func() {
		defer close(done)
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		res, err = call(ctx, c, "crashy_block", map[string]any{"id": "crash"})
	}()
	time.Sleep(500 * time.Millisecond)
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("the call was still running 10s after its upstream died")
	}
	if err != nil {
		t.Fatalf("crashy_block: %v, want a tool error result", err)
	}
	text := toolText(t, res)
	if !res.IsError || !strings.Contains(text, "exited") {
		t.Errorf("crashy_block = %q (isError %v), want an error saying the upstream exited", text, res.IsError)
	}
	g.assertNoSecretsIn(text)

	// The next call starts a new upstream.
	mustCall(t, c, "crashy_cancelled", nil)
	pid2 := waitMarkedProcess(t, marker, pid)

	// An upstream that dies while idle is replaced on the next call too.
	if err := syscall.Kill(pid2, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond)
	mustCall(t, c, "crashy_cancelled", nil)
	waitMarkedProcess(t, marker, pid2)
	g.assertNoSecretsIn()
}

// TestUnknownTools: calls of tools that don't exist are JSON-RPC errors
// (invalid params), not crashes or transport failures, and the gateway
// serves on.
func TestUnknownTools(t *testing.T) {
	g := newGateway(t)
	g.serve()
	long := strings.Repeat("x", 10<<10)
	names := []string{
		"nosuch",
		"nosuch_tool",
		"everything_nosuch",
		"everything_",
		"_echo",
		"notion",
		"github_get_me", // a preset the tenant has no credential for
		long,
		"everything_" + long,
		"everything_echo\x00",
		"everything_echo/../echo",
	}
	for _, e := range eras {
		t.Run(e.name, func(t *testing.T) {
			c := g.dial("tenant-a", nil, e.opts...)
			for _, name := range names {
				ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
				res, err := call(ctx, c, name, map[string]any{"message": "hi"})
				cancel()
				if !errors.Is(err, mcp.ErrInvalidParams) && !errors.Is(err, mcp.ErrMethodNotFound) {
					t.Errorf("call %.40q: (%v, %v), want a JSON-RPC invalid-params error", name, res, err)
				}
				if err != nil {
					g.assertNoSecretsIn(err.Error())
				}
			}
			if got := mustCall(t, c, "everything_echo", map[string]any{"message": "alive"}); !strings.Contains(got, "alive") {
				t.Errorf("after unknown tools, echo = %q", got)
			}
		})
	}
	g.assertNoSecretsIn()
}
