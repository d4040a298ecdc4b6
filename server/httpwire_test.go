package server_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"strings"
	"time"
)

// httpWire is a wire over the gateway's streamable-HTTP endpoint: each
// frame one POST, with the headers an agent sends, and the answer (JSON,
// or the events of a stream) read before the POST returns, so that a
// frame's answers are all recorded, each after a note of the HTTP status,
// before the next frame is sent.
//
// The headers: Authorization with the tenant's API key; after an
// initialize, the session's Mcp-Session-Id and MCP-Protocol-Version (the
// version the gateway chose); without a session, a frame whose _meta
// names a protocol version (2026-07-28) sends it as MCP-Protocol-Version,
// with Mcp-Method and Mcp-Name (the tool's or prompt's name, the
// resource's URI).
type httpWire struct {
	*frames
	url, key string
	client   *http.Client

	session, version string // the session of the last initialize
}

func newHTTPWire(url, key string) *httpWire {
	return &httpWire{frames: newFrames(), url: url, key: key, client: &http.Client{Timeout: settleTimeout}}
}

func (w *httpWire) WriteObject(obj any) error {
	frame, err := w.encode(obj)
	if err != nil {
		return err
	}
	return w.post(frame)
}

func (w *httpWire) sendRaw(frame []byte) error { return w.post(frame) }

// settle returns once done is closed, or once the jsonrpc2.Conn read every
// frame the POST brought and none was the answer (an HTTP refusal).
func (w *httpWire) settle(done <-chan struct{}) error {
	for deadline := time.Now().Add(settleTimeout); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		select {
		case <-done:
			return nil
		default:
			if w.idle() {
				return nil
			}
		}
	}
	return errors.New("the answer was not read")
}

func (w *httpWire) Close() error { w.shut(); return nil }

// frameHead is what the wire reads of a frame for its headers.
type frameHead struct {
	Method string `json:"method"`
	Params struct {
		Name string `json:"name"`
		URI  string `json:"uri"`
		Meta struct {
			ProtocolVersion string `json:"io.modelcontextprotocol/protocolVersion"`
		} `json:"_meta"`
	} `json:"params"`
}

// post sends one frame and records the answer.
func (w *httpWire) post(frame []byte) error {
	req, err := http.NewRequest(http.MethodPost, w.url, bytes.NewReader(frame))
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+w.key)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	var head frameHead
	_ = json.Unmarshal(frame, &head) // a frame that is not JSON has no headers of its own
	switch {
	case w.session != "":
		req.Header.Set("Mcp-Session-Id", w.session)
		req.Header.Set("MCP-Protocol-Version", w.version)
	case head.Params.Meta.ProtocolVersion != "":
		req.Header.Set("MCP-Protocol-Version", head.Params.Meta.ProtocolVersion)
		req.Header.Set("Mcp-Method", head.Method)
		if name := head.Params.Name + head.Params.URI; name != "" {
			req.Header.Set("Mcp-Name", name)
		}
	}
	resp, err := w.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	media, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	note := resp.Status
	if media != "" {
		note += " " + media
	}
	if id := resp.Header.Get("Mcp-Session-Id"); id != "" {
		note += "; Mcp-Session-Id: <session>"
	}
	w.note("%s", note)
	if head.Method == "initialize" {
		w.initialized(resp.Header.Get("Mcp-Session-Id"))
	}
	if media == "text/event-stream" {
		return w.events(resp.Body)
	}
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if media != "application/json" && len(bytes.TrimSpace(body)) > 0 {
		quoted, _ := json.Marshal(string(body)) // not JSON: recorded as a string
		body = quoted
	}
	w.receive(body)
	return nil
}

// initialized takes the session of an initialize's answer; its protocol
// version is read when the answer is.
func (w *httpWire) initialized(session string) {
	w.session = session
	w.version = ""
}

// receive records a frame, and the protocol version of an initialize's
// answer.
func (w *httpWire) receive(frame []byte) {
	if w.session != "" && w.version == "" {
		var answer struct {
			Result struct {
				ProtocolVersion string `json:"protocolVersion"`
			} `json:"result"`
		}
		if json.Unmarshal(frame, &answer) == nil && answer.Result.ProtocolVersion != "" {
			w.version = answer.Result.ProtocolVersion
		}
	}
	w.frames.receive(frame)
}

// events records the data of each event of a stream, until it ends.
func (w *httpWire) events(body io.Reader) error {
	sc := bufio.NewScanner(body)
	sc.Buffer(make([]byte, 0, 64<<10), 4<<20)
	var data []string
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "":
			if len(data) > 0 {
				w.receive([]byte(strings.Join(data, "\n")))
				data = nil
			}
		case strings.HasPrefix(line, "data:"):
			data = append(data, strings.TrimPrefix(strings.TrimPrefix(line, "data:"), " "))
		}
	}
	if len(data) > 0 {
		w.receive([]byte(strings.Join(data, "\n")))
	}
	return sc.Err()
}
