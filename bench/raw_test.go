package bench

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"strconv"
	"sync"
	"testing"
)

// The raw clients are the least a load generator can do per call: a
// 2026-07-28 tools/call written as mcp-go's client writes it (the same
// headers, the same body but for the ID), its answer read whole and
// checked. mcp-go's clients cost the load generator 150–300 µs of CPU per
// call, on the same two cores as the gateway; with these the rows measure
// the hops more than the client.

// callBody is a tools/call of tool with the echo arguments, as mcp-go's
// 2026-07-28 client writes it.
func callBody(id int64, tool string) []byte {
	b := []byte(`{"jsonrpc":"2.0","id":`)
	b = strconv.AppendInt(b, id, 10)
	b = append(b, `,"method":"tools/call","params":{"_meta":{"io.modelcontextprotocol/clientCapabilities":{},"io.modelcontextprotocol/clientInfo":{"name":"bench","version":"1"},"io.modelcontextprotocol/protocolVersion":"2026-07-28"},"arguments":{"text":"hello"},"name":`...)
	b = strconv.AppendQuote(b, tool)
	return append(b, "}}"...)
}

// checkAnswer reports whether raw is a JSON-RPC answer to id that echoes.
func checkAnswer(raw []byte, id int64) error {
	var answer struct {
		ID     int64 `json:"id"`
		Result *struct {
			Content []struct{ Text string } `json:"content"`
			IsError bool                    `json:"isError"`
		} `json:"result"`
	}
	if err := json.Unmarshal(raw, &answer); err != nil || answer.ID != id || answer.Result == nil ||
		answer.Result.IsError || len(answer.Result.Content) != 1 || answer.Result.Content[0].Text != "hello" {
		return fmt.Errorf("unexpected answer to %d: %.300s", id, raw)
	}
	return nil
}

// rawHTTP posts each call on one kept-alive connection of its own.
type rawHTTP struct {
	url    string
	header http.Header
	hc     *http.Client
	id     int64
}

// dialRaw is dial with a raw client.
func dialRaw(_ testing.TB, url, key string) caller {
	h := http.Header{
		"Accept":               {"application/json, text/event-stream"},
		"Content-Type":         {"application/json"},
		"Mcp-Method":           {"tools/call"},
		"Mcp-Protocol-Version": {"2026-07-28"},
	}
	if key != "" {
		h.Set("Authorization", "Bearer "+key)
	}
	return &rawHTTP{url: url, header: h, hc: &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 1}}}
}

func (c *rawHTTP) call(tool string) error {
	c.id++
	req, err := http.NewRequest("POST", c.url, bytes.NewReader(callBody(c.id, tool)))
	if err != nil {
		return err
	}
	req.Header = c.header.Clone()
	req.Header.Set("Mcp-Name", tool)
	resp, err := c.hc.Do(req)
	if err != nil {
		return err
	}
	raw, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("status %d: %.300s", resp.StatusCode, raw)
	}
	return checkAnswer(raw, c.id)
}

func (c *rawHTTP) Close() error {
	c.hc.CloseIdleConnections()
	return nil
}

// rawStdio is one stdio upstream process shared by its callers, as the
// gateway shares a tenant's: newline-delimited calls in, answers matched
// to their callers by ID.
type rawStdio struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	wmu   sync.Mutex // one write at a time

	mu      sync.Mutex
	next    int64
	waiting map[int64]chan []byte
	err     error // set when the process's output ends
	closing sync.Once
}

// dialRawStdio starts bin as a stdio MCP server for n raw callers.
func dialRawStdio(b testing.TB, bin string, n int) []caller {
	b.Helper()
	cmd := exec.Command(bin)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		b.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	p := &rawStdio{cmd: cmd, stdin: stdin, waiting: map[int64]chan []byte{}}
	b.Cleanup(func() { _ = p.close() })
	go p.read(stdout)
	cs := make([]caller, n)
	for i := range cs {
		cs[i] = &rawStdioCaller{p: p, answer: make(chan []byte, 1)}
	}
	return cs
}

func (p *rawStdio) read(stdout io.Reader) {
	r := bufio.NewReaderSize(stdout, 64<<10)
	for {
		line, err := r.ReadBytes('\n')
		if err != nil {
			p.mu.Lock()
			p.err = errors.New("the upstream's output ended")
			for id, ch := range p.waiting {
				close(ch)
				delete(p.waiting, id)
			}
			p.mu.Unlock()
			return
		}
		var head struct {
			ID *int64 `json:"id"`
		}
		if json.Unmarshal(line, &head) != nil || head.ID == nil {
			continue // a notification, or not for us
		}
		p.mu.Lock()
		ch := p.waiting[*head.ID]
		delete(p.waiting, *head.ID)
		p.mu.Unlock()
		if ch != nil {
			ch <- line
		}
	}
}

func (p *rawStdio) close() error {
	p.closing.Do(func() {
		_ = p.stdin.Close()
		_ = p.cmd.Process.Kill()
		_ = p.cmd.Wait()
	})
	return nil
}

// rawStdioCaller is one caller on a shared rawStdio.
type rawStdioCaller struct {
	p      *rawStdio
	answer chan []byte
}

func (c *rawStdioCaller) call(tool string) error {
	p := c.p
	p.mu.Lock()
	if p.err != nil {
		p.mu.Unlock()
		return p.err
	}
	p.next++
	id := p.next
	p.waiting[id] = c.answer
	p.mu.Unlock()
	body := append(callBody(id, tool), '\n')
	p.wmu.Lock()
	_, err := p.stdin.Write(body)
	p.wmu.Unlock()
	if err != nil {
		return err
	}
	line, ok := <-c.answer
	if !ok {
		return errors.New("the upstream's output ended")
	}
	return checkAnswer(line, id)
}

// Close leaves the process to the benchmark's cleanup: it is shared.
func (c *rawStdioCaller) Close() error { return nil }
