package bench

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/connectors-gateway/connectors/internal/testenv"
)

// process is a child process the benchmarks measure or use.
type process struct {
	cmd *exec.Cmd
}

// start runs bin with args and env until b ends, and returns the first
// JSON line of its stream (stdout or stderr) that has a key "addr" or
// whose msg is "gateway_listening".
func start(b testing.TB, bin string, env []string, args ...string) (*process, string) {
	b.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Env = env
	stdout, _ := cmd.StdoutPipe()
	stderr, _ := cmd.StderrPipe()
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
		}
	})
	addr := make(chan string, 2)
	var found atomic.Bool
	scan := func(r io.Reader) {
		sc := bufio.NewScanner(r)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for !found.Load() && sc.Scan() {
			var line struct{ Addr, Msg string }
			if json.Unmarshal(sc.Bytes(), &line) == nil && line.Addr != "" && (line.Msg == "" || line.Msg == "gateway_listening") {
				found.Store(true)
				addr <- line.Addr
			}
		}
		// Drained to the end, unread: a full pipe would stall the child.
		_, _ = io.Copy(io.Discard, r)
	}
	go scan(stdout)
	go scan(stderr)
	select {
	case a := <-addr:
		return &process{cmd: cmd}, a
	case <-time.After(60 * time.Second):
		b.Fatalf("%s did not start", bin)
		return nil, ""
	}
}

// buildTagged builds the main package pkg with the build tags given, for
// a row that compares a variant of a binary with the binary itself.
func buildTagged(b testing.TB, pkg, tags string) string {
	b.Helper()
	bin := filepath.Join(b.TempDir(), filepath.Base(pkg)+"-"+tags)
	cmd := exec.Command("go", "build", "-tags", tags, "-o", bin, pkg)
	cmd.Dir = testenv.Root()
	if out, err := cmd.CombinedOutput(); err != nil {
		b.Fatalf("go build -tags %s %s: %v\n%s", tags, pkg, err, out)
	}
	return bin
}

// cpu returns the CPU time the process has used (user + system).
func (p *process) cpu() time.Duration {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p.cmd.Process.Pid))
	if err != nil {
		return 0
	}
	// Fields after the command name (which may hold spaces) in parentheses.
	f := strings.Fields(string(raw[strings.LastIndexByte(string(raw), ')')+2:]))
	utime, _ := strconv.ParseInt(f[11], 10, 64)
	stime, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(utime+stime) * (time.Second / 100) // USER_HZ
}

// memory returns the process's resident set size now and at its peak.
func (p *process) memory() (rss, peak int64) {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.cmd.Process.Pid))
	if err != nil {
		return 0, 0
	}
	for line := range strings.Lines(string(raw)) {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		kb, _ := strconv.ParseInt(f[1], 10, 64)
		switch f[0] {
		case "VmRSS:":
			rss = kb << 10
		case "VmHWM:":
			peak = kb << 10
		}
	}
	return rss, peak
}

// gateway is a "connectors serve" process with a tenant's API key.
type gateway struct {
	*process
	url string // http://127.0.0.1:PORT
	bin string
	env []string
	key string // tenant "bench"'s API key
}

// cli runs a connectors subcommand with the gateway's environment.
func (g *gateway) cli(b testing.TB, stdin string, args ...string) string {
	b.Helper()
	cmd := exec.Command(g.bin, args...)
	cmd.Env = g.env
	cmd.Stdin = strings.NewReader(stdin)
	out, err := cmd.Output()
	if err != nil {
		b.Fatalf("connectors %s: %v", strings.Join(args, " "), err)
	}
	return strings.TrimSpace(string(out))
}

// auditSink sends the gateways' audit trail (a record per credential
// read: one per call) to /dev/null: each record is still encoded and
// written, as to the file or log collector it goes to in production, but
// not read on the load generator's CPU, as it would be from a pipe.
const auditSink = "CONNECTORS_AUDIT_LOG=/dev/null"

// sessionRoom lifts the bounds on sessions: the load generator is one
// identity that opens a session per client of every cell (64 at a time,
// cell after cell), where the defaults bound one identity at 100.
var sessionRoom = []string{
	"CONNECTORS_MAX_SESSIONS=1000000",
	"CONNECTORS_MAX_SESSIONS_PER_TENANT=1000000",
	"CONNECTORS_MAX_SESSIONS_PER_IDENTITY=1000000",
}

// newGateway prepares a data dir and config with two integrations backed
// by the echo upstream (echo-http over streamable HTTP, echo-stdio as a
// process per tenant), stores tenant "bench"'s credentials, and starts
// serving. extra is more environment (VAULT_ADDR, ...).
func newGateway(b testing.TB, bin, echoBin, echoURL string, extra ...string) *gateway {
	b.Helper()
	dir := b.TempDir()
	cfg := map[string]any{"integrations": []any{
		map[string]any{"name": "echo-http", "category": "bench",
			"upstream": map[string]any{"url": echoURL, "headers": map[string]string{"Authorization": "Bearer {{access_token}}"}}},
		map[string]any{"name": "echo-stdio", "category": "bench",
			"upstream": map[string]any{"command": echoBin, "env": map[string]string{"ECHO_TOKEN": "{{access_token}}"}}},
	}}
	raw, _ := json.Marshal(cfg)
	cfgPath := filepath.Join(dir, "integrations.json")
	if err := os.WriteFile(cfgPath, raw, 0o600); err != nil {
		b.Fatal(err)
	}
	g := &gateway{bin: bin, env: append([]string{
		"PATH=" + os.Getenv("PATH"), "HOME=" + dir,
		"CONNECTORS_DATA_DIR=" + filepath.Join(dir, "data"),
		"CONNECTORS_CONFIG=" + cfgPath,
		auditSink,
	}, append(append(gatewayEnv(), sessionRoom...), extra...)...)}
	for _, in := range []string{"echo-http", "echo-stdio"} {
		g.cli(b, `{"accessToken": "bench-token-`+in+`"}`, "credential", "put", "--tenant", "bench", "--integration", in)
	}
	g.key = g.cli(b, "", "apikey", "create", "--tenant", "bench")
	var addr string
	g.process, addr = start(b, bin, g.env, "serve", "--addr", "127.0.0.1:0")
	g.url = "http://" + addr
	waitReady(b, g.url)
	return g
}

// waitReady waits for GET /readyz to answer 200 and returns how long it took.
func waitReady(b testing.TB, base string) time.Duration {
	b.Helper()
	begin := time.Now()
	for time.Since(begin) < 60*time.Second {
		resp, err := http.Get(base + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return time.Since(begin)
			}
		}
		time.Sleep(5 * time.Millisecond)
	}
	b.Fatalf("%s never became ready", base)
	return 0
}

// gatewayEnv is the -bench.env environment.
func gatewayEnv() []string {
	var env []string
	for _, kv := range strings.Split(*flagEnv, ",") {
		if kv = strings.TrimSpace(kv); kv != "" {
			env = append(env, kv)
		}
	}
	return env
}
