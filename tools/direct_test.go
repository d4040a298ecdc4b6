package tools

import (
	"log/slog"
	"strings"
	"testing"
)

// TestReadEvents: the response is found among notifications and other
// events, also when the stream ends right after its last data line.
func TestReadEvents(t *testing.T) {
	c := &Conn{logger: slog.New(slog.DiscardHandler)}
	for name, stream := range map[string]string{
		"blank line after":  "event: message\ndata: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/message\",\"params\":{}}\n\nid: 2\ndata: {\"jsonrpc\":\"2.0\",\"id\":\"gw-1\",\"result\":{\"content\":[]}}\n\n",
		"ends on data line": "data: {\"jsonrpc\":\"2.0\",\"id\":\"gw-1\",\n" + "data: \"result\":{\"content\":[]}}",
	} {
		res, err := c.readEvents(strings.NewReader(stream), "gw-1")
		if err != nil || string(res) != `{"content":[]}` {
			t.Errorf("%s: %s, %v", name, res, err)
		}
	}
	if _, err := c.readEvents(strings.NewReader("data: {\"jsonrpc\":\"2.0\",\"id\":\"gw-9\",\"result\":{}}\n\n"), "gw-1"); err == nil {
		t.Error("a response to another request was taken")
	}
	if _, err := c.readEvents(strings.NewReader(": keep-alive\n\n"), "gw-1"); err == nil {
		t.Error("a stream without a response gave no error")
	}
}
