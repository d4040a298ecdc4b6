package tools

import (
	"errors"
	"log/slog"
	"strings"
	"testing"
)

// TestRPCAnswer: the tasks lane returns an upstream's result scrubbed, its
// JSON-RPC error as it was sent (code, message, data) but scrubbed, and
// refuses an answer to another request or without a result.
func TestRPCAnswer(t *testing.T) {
	c := &Conn{integration: "x", logger: slog.New(slog.DiscardHandler), scrubber: NewScrubber("s3cret-token-value")}
	res, err := c.rpcAnswer([]byte(`{"jsonrpc":"2.0","id":"gw-1","result":{"taskId":"t1","note":"s3cret-token-value"}}`), "gw-1")
	if err != nil || strings.Contains(string(res), "s3cret") || !strings.Contains(string(res), `"taskId":"t1"`) {
		t.Errorf("result: %s, %v", res, err)
	}
	_, err = c.rpcAnswer([]byte(`{"jsonrpc":"2.0","id":"gw-2","error":{"code":-32021,"message":"missing s3cret-token-value","data":{"requiredCapabilities":{}}}}`), "gw-2")
	rpc, ok := errors.AsType[*RPCError](err)
	if !ok || rpc.Code != -32021 || !strings.Contains(string(rpc.Object), `"data":{"requiredCapabilities":{}}`) || strings.Contains(string(rpc.Object), "s3cret") {
		t.Errorf("error: %v, %+v", err, rpc)
	}
	for name, raw := range map[string]string{
		"another request": `{"jsonrpc":"2.0","id":"gw-9","result":{}}`,
		"no result":       `{"jsonrpc":"2.0","id":"gw-3"}`,
		"error sans code": `{"jsonrpc":"2.0","id":"gw-3","error":{"message":"x"}}`,
		"not JSON":        `{"jsonrpc":`,
	} {
		if _, err := c.rpcAnswer([]byte(raw), "gw-3"); err == nil || errors.As(err, new(*RPCError)) {
			t.Errorf("%s: %v; want a failure of the upstream's", name, err)
		}
	}
}
