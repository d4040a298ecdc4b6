package tools

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/connectors-gateway/connectors/internal/testenv"
	"github.com/mark3labs/mcp-go/mcp"
)

func TestMain(m *testing.M) { os.Exit(testenv.RunMain(m)) }

// upstreamEnvBin builds testdata/upstream-env once per test binary.
func upstreamEnvBin(t testing.TB) string {
	t.Helper()
	return testenv.Build(t, "./testdata/upstream-env")
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
	url := testenv.EverythingHTTP(t)
	return Integration{Name: "everything", Category: "test", Upstream: Upstream{URL: url}}
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
