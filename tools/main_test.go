package tools

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/connectors-gateway/connectors/internal/testenv"
	"github.com/mark3labs/mcp-go/mcp"
)

func TestMain(m *testing.M) {
	code := m.Run()
	if fixture.dir != "" {
		os.RemoveAll(fixture.dir)
	}
	// Every upstream process a test started must be gone.
	if kids := waitNoChildren(3 * time.Second); len(kids) > 0 {
		fmt.Fprintf(os.Stderr, "child processes left running: %v\n", kids)
		code = 1
	}
	os.Exit(code)
}

// children returns the pids whose parent is this process.
func children() []string {
	stats, _ := filepath.Glob("/proc/[0-9]*/stat")
	me := strconv.Itoa(os.Getpid())
	var kids []string
	for _, s := range stats {
		b, err := os.ReadFile(s)
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...: comm may hold spaces, so cut at ')'.
		i := bytes.LastIndexByte(b, ')')
		fields := strings.Fields(string(b[i+1:]))
		if len(fields) > 1 && fields[1] == me && fields[0] != "Z" {
			kids = append(kids, strings.Fields(string(b))[0])
		}
	}
	return kids
}

func waitNoChildren(d time.Duration) []string {
	deadline := time.Now().Add(d)
	for {
		kids := children()
		if len(kids) == 0 || time.Now().After(deadline) {
			return kids
		}
		time.Sleep(50 * time.Millisecond)
	}
}

var fixture struct {
	once sync.Once
	dir  string
	bin  string
	err  error
}

// upstreamEnvBin builds testdata/upstream-env once per test binary.
func upstreamEnvBin(t testing.TB) string {
	t.Helper()
	fixture.once.Do(func() {
		fixture.dir, fixture.err = os.MkdirTemp("", "tools-test-")
		if fixture.err != nil {
			return
		}
		fixture.bin = filepath.Join(fixture.dir, "upstream-env")
		cmd := exec.Command("go", "build", "-o", fixture.bin, "./testdata/upstream-env")
		cmd.Dir = testenv.Root()
		if out, err := cmd.CombinedOutput(); err != nil {
			fixture.err = fmt.Errorf("go build ./testdata/upstream-env: %v\n%s", err, out)
		}
	})
	if fixture.err != nil {
		t.Fatal(fixture.err)
	}
	return fixture.bin
}

// envIntegration runs the upstream-env fixture with env templates.
func envIntegration(t testing.TB, env map[string]string) Integration {
	return Integration{Name: "envprobe", Category: "test", Upstream: Upstream{Command: upstreamEnvBin(t), Env: env}}
}

// everythingStdio runs @modelcontextprotocol/server-everything over stdio.
func everythingStdio(t testing.TB) Integration {
	argv := testenv.NodeTool(t, "mcp-server-everything", "stdio")
	return Integration{Name: "everything", Category: "test", Upstream: Upstream{Command: argv[0], Args: argv[1:]}}
}

// everythingHTTP starts server-everything's streamable-HTTP mode on a free
// port (it reads PORT) and returns its integration.
func everythingHTTP(t testing.TB) Integration {
	t.Helper()
	port := freePort(t)
	argv := testenv.NodeTool(t, "mcp-server-everything", "streamableHttp")
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = append(os.Environ(), "PORT="+strconv.Itoa(port))
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	var out lockedBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		_ = cmd.Wait()
	})
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	deadline := time.Now().Add(20 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("server-everything streamableHttp did not listen on %s: %v\n%s", addr, err, out.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	return Integration{Name: "everything", Category: "test", Upstream: Upstream{URL: "http://" + addr + "/mcp"}}
}

func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// newTestPool returns a pool closed at the end of the test, logging into
// logs when it is not nil.
func newTestPool(t testing.TB, opts *PoolOptions, logs io.Writer) *Pool {
	t.Helper()
	if opts == nil {
		opts = &PoolOptions{}
	}
	if logs != nil {
		opts.Logger = slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	p := NewPool(opts)
	t.Cleanup(p.Close)
	return p
}

// recorder is a Relay that keeps what it gets.
type recorder struct {
	mu       sync.Mutex
	progress []mcp.ProgressNotificationParams
	logs     []string
}

func (r *recorder) Progress(p mcp.ProgressNotificationParams) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.progress = append(r.progress, p)
}

func (r *recorder) Log(level mcp.LoggingLevel, logger string, data any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.logs = append(r.logs, fmt.Sprintf("%s %s %v", level, logger, data))
}

func (r *recorder) got() ([]mcp.ProgressNotificationParams, []string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]mcp.ProgressNotificationParams(nil), r.progress...), append([]string(nil), r.logs...)
}

func callReq(tool string, args map[string]any, progressToken mcp.ProgressToken) mcp.CallToolRequest {
	var req mcp.CallToolRequest
	req.Params.Name = tool
	req.Params.Arguments = args
	if progressToken != nil {
		req.Params.Meta = &mcp.Meta{ProgressToken: progressToken}
	}
	return req
}

// text returns the text content of a result.
func text(t testing.TB, res *mcp.CallToolResult) string {
	t.Helper()
	var parts []string
	for _, c := range res.Content {
		if tc, ok := mcp.AsTextContent(c); ok {
			parts = append(parts, tc.Text)
		}
	}
	return strings.Join(parts, "\n")
}

func mustConn(t testing.TB, p *Pool, tenant string, in Integration, vars map[string]string) *Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := p.Conn(ctx, tenant, in, vars)
	if err != nil {
		t.Fatalf("Conn(%s, %s): %v", tenant, in.Name, err)
	}
	return c
}

func processAlive(pid int) bool {
	return syscall.Kill(pid, 0) == nil
}
