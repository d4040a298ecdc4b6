package tools

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync/atomic"
	"testing"
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
