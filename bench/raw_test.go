package bench

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os/exec"
	"strconv"
	"sync"
	"testing"
)

// The raw clients are the least a load generator can do per call: a
// 2026-07-28 tools/call written as mcp-go's client writes it (the same
// headers, the same body but for the ID), its answer read whole and
// checked, on the calling goroutine over HTTP/1.1 (as the gateway's own
// leg to an HTTP upstream) and matched by ID over stdio (as its leg to a
// stdio upstream). mcp-go's clients cost the load generator 150–300 µs of CPU per
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

// rawHTTP posts each call on a kept-alive connection of its own, written
// and read on the calling goroutine (as the gateway's own leg to an HTTP
// upstream does, tools/h1.go): net/http's client would hand each request
// to a writer goroutine and each answer back from a reader goroutine, two
// more wake-ups per call on the hops' cores.
type rawHTTP struct {
	addr, path string
	header     []byte // the request's header lines but Mcp-Name and Content-Length
	conn       net.Conn
	br         *bufio.Reader
	buf        []byte
	id         int64
}

// dialRaw is dial with a raw client.
func dialRaw(b testing.TB, rawURL, key string) caller {
	b.Helper()
	u, err := url.Parse(rawURL)
	if err != nil || u.Scheme != "http" {
		b.Fatalf("raw client: %q is not a plain-http URL", rawURL)
	}
	h := "Host: " + u.Host + "\r\n" +
		"Accept: application/json, text/event-stream\r\n" +
		"Content-Type: application/json\r\n" +
		"Mcp-Method: tools/call\r\n" +
		"Mcp-Protocol-Version: 2026-07-28\r\n"
	if key != "" {
		h += "Authorization: Bearer " + key + "\r\n"
	}
	return &rawHTTP{addr: u.Host, path: u.RequestURI(), header: []byte(h)}
}

func (c *rawHTTP) call(tool string) error {
	c.id++
	body := callBody(c.id, tool)
	c.buf = append(c.buf[:0], "POST "...)
	c.buf = append(c.buf, c.path...)
	c.buf = append(c.buf, " HTTP/1.1\r\n"...)
	c.buf = append(c.buf, c.header...)
	c.buf = append(c.buf, "Mcp-Name: "...)
	c.buf = append(c.buf, tool...)
	c.buf = append(c.buf, "\r\nContent-Length: "...)
	c.buf = strconv.AppendInt(c.buf, int64(len(body)), 10)
	c.buf = append(c.buf, "\r\n\r\n"...)
	c.buf = append(c.buf, body...)
	raw, status, err := c.roundTrip()
	if err != nil {
		return err
	}
	if status != http.StatusOK {
		return fmt.Errorf("status %d: %.300s", status, raw)
	}
	return checkAnswer(raw, c.id)
}

// roundTrip sends c.buf and reads the answer, on a new connection if the
// kept-alive one was closed by the server between two calls.
func (c *rawHTTP) roundTrip() ([]byte, int, error) {
	fresh := c.conn == nil
	if fresh {
		conn, err := net.Dial("tcp", c.addr)
		if err != nil {
			return nil, 0, err
		}
		c.conn, c.br = conn, bufio.NewReader(conn)
	}
	raw, status, keep, err := c.exchange()
	if err != nil || !keep {
		_ = c.conn.Close()
		c.conn = nil
	}
	if err != nil && !fresh {
		return c.roundTrip()
	}
	return raw, status, err
}

// exchange writes the request and reads its answer; keep reports whether
// the connection serves another.
func (c *rawHTTP) exchange() (raw []byte, status int, keep bool, err error) {
	if _, err := c.conn.Write(c.buf); err != nil {
		return nil, 0, false, err
	}
	resp, err := http.ReadResponse(c.br, nil)
	if err != nil {
		return nil, 0, false, err
	}
	raw, err = io.ReadAll(resp.Body)
	resp.Body.Close()
	return raw, resp.StatusCode, !resp.Close, err
}

func (c *rawHTTP) Close() error {
	if c.conn != nil {
		return c.conn.Close()
	}
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
