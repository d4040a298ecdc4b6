package tools

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestToolsListingBounded: an upstream whose tools/list pages on for ever
// fails the listing within the bounds, instead of the gateway following it
// until the call's timeout with every page in memory.
func TestToolsListingBounded(t *testing.T) {
	t.Parallel()
	u := newGoUpstream(t, false)
	var pages atomic.Int64
	endless := func(w http.ResponseWriter, r *http.Request) bool {
		body, _ := io.ReadAll(r.Body)
		r.Body = io.NopCloser(bytes.NewReader(body))
		var msg struct {
			ID     json.RawMessage `json:"id"`
			Method string          `json:"method"`
		}
		if json.Unmarshal(body, &msg) != nil || msg.Method != "tools/list" {
			return false
		}
		n := pages.Add(1)
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"jsonrpc":"2.0","id":%s,"result":{"tools":[{"name":"t%d","inputSchema":{"type":"object"}}],"nextCursor":"c%d"}}`, msg.ID, n, n)
		return true
	}
	u.failWith.Store(&endless)
	p := newTestPool(t, nil, nil)
	c := mustConn(t, p, "tenant-a", u.integration(nil), nil)
	_, err := c.Tools(context.Background())
	if !errors.Is(err, ErrCatalogueTooLarge) {
		t.Fatalf("listing an endless catalogue: %v, want ErrCatalogueTooLarge", err)
	}
	if n := pages.Load(); n > maxListPages {
		t.Errorf("%d pages asked for, want at most %d", n, maxListPages)
	}
}

// TestClientLogsScrubbed: what mcp-go's client logs of an upstream (here
// the error body of its listening stream, which it logs whole and retries
// every second) has the connection's secrets cut out.
func TestClientLogsScrubbed(t *testing.T) {
	t.Parallel()
	const token = "tok-listening-secret-7788"
	u := newGoUpstream(t, true)
	echo := func(w http.ResponseWriter, r *http.Request) bool {
		if r.Method != http.MethodGet {
			return false
		}
		http.Error(w, `{"echo":"`+r.Header.Get("Authorization")+`"}`, http.StatusUnauthorized)
		return true
	}
	u.failWith.Store(&echo)
	var logs lockedLog
	p := newTestPool(t, nil, &logs)
	in := u.integration(map[string]string{"Authorization": "Bearer {{access_token}}"})
	in.Protocol = "2025-11-25" // the client keeps a listening GET stream open
	mustConn(t, p, "tenant-a", in, map[string]string{"access_token": token})
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(logs.String(), "echo") && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	got := logs.String()
	if !strings.Contains(got, "echo") {
		t.Fatalf("mcp-go logged nothing of the listening stream's error:\n%s", got)
	}
	if strings.Contains(got, token) {
		t.Errorf("the upstream's token reached the log:\n%s", got)
	}
}

// lockedLog is a log buffer written from several goroutines.
type lockedLog struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
