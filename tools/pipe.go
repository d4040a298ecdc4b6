package tools

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mark3labs/mcp-go/client/transport"

	"github.com/connectors-gateway/connectors/internal/rawjson"
)

// pipe is a stdio upstream's stdin and stdout as its session's transport
// (mcp-go's, through NewIO) sees them, with a lane of the direct calls' own:
// a direct call writes its request line itself, and its response line is
// handed to it as bytes, on the way, by the transport's reader goroutine,
// which never sees it. Everything else passes through untouched.
type pipe struct {
	w   io.WriteCloser // the child's stdin
	wmu sync.Mutex     // one line at a time: the transport writes each in one Write
	// stuck, if set, is called when a write has not completed within
	// writeTimeout: the child does not read its stdin (the pipe's buffer
	// is full), and every write after it would wait behind it for ever.
	stuck        func()
	writeTimeout time.Duration
	watchdog     *time.Timer // stuck's timer, armed for each write; guarded by wmu

	r       *bufio.Reader  // the child's stdout; read only by the transport's reader
	pending []byte         // the part of a line the reader has not taken yet
	rerr    error          // why stdout ended, once it did
	heard   *atomic.Uint64 // counts the lines read, if set

	mu      sync.Mutex
	waiting map[string]chan []byte // direct calls by request ID; guarded by mu
	closed  bool                   // stdout ended; guarded by mu
}

func newPipe(stdout io.Reader, stdin io.WriteCloser) *pipe {
	return &pipe{w: stdin, r: bufio.NewReaderSize(stdout, 64<<10), waiting: map[string]chan []byte{}}
}

// Write writes one line to the child's stdin.
func (p *pipe) Write(b []byte) (int, error) {
	p.wmu.Lock()
	defer p.wmu.Unlock()
	if p.stuck == nil {
		return p.w.Write(b)
	}
	if p.watchdog == nil {
		p.watchdog = time.AfterFunc(p.writeTimeout, p.stuck)
	} else {
		p.watchdog.Reset(p.writeTimeout)
	}
	n, err := p.w.Write(b)
	p.watchdog.Stop()
	return n, err
}

// Close closes the child's stdin.
func (p *pipe) Close() error { return p.w.Close() }

// Read gives the transport's reader what the child writes, less the direct
// calls' responses.
func (p *pipe) Read(b []byte) (int, error) {
	for len(p.pending) == 0 {
		if p.rerr != nil {
			return 0, p.rerr
		}
		line, err := p.line()
		if len(line) > 0 && p.heard != nil {
			p.heard.Add(1)
		}
		if err != nil {
			p.rerr = err
			p.fail()
		}
		if len(line) > 0 && !p.deliver(line) {
			p.pending = line // valid until the next read of p.r
		}
	}
	n := copy(b, p.pending)
	p.pending = p.pending[n:]
	return n, nil
}

// line reads one line, '\n' included, of any length (as mcp-go's reader
// does).
func (p *pipe) line() ([]byte, error) {
	line, err := p.r.ReadSlice('\n')
	if err != bufio.ErrBufferFull {
		return line, err
	}
	long := bytes.Clone(line)
	for err == bufio.ErrBufferFull {
		line, err = p.r.ReadSlice('\n')
		long = append(long, line...)
	}
	return long, err
}

// deliver hands line to the direct call it answers, if any.
func (p *pipe) deliver(line []byte) bool {
	// Our IDs as written, or perhaps with escapes (which responseID undoes).
	if !bytes.Contains(line, []byte(`"gw-`)) && !bytes.Contains(line, []byte(`\u`)) {
		return false
	}
	p.mu.Lock()
	none := len(p.waiting) == 0
	p.mu.Unlock()
	if none {
		return false
	}
	line = bytes.TrimRight(line, "\r\n")
	id, ok := responseID(line)
	if !ok {
		return false
	}
	p.mu.Lock()
	ch, ok := p.waiting[id]
	delete(p.waiting, id)
	p.mu.Unlock()
	if ok {
		ch <- bytes.Clone(line)
	}
	return ok
}

// responseID returns the ID of the response line, as mcp-go's reader
// reads it (encoding/json: keys without regard to case, the last of
// repeated ones, escapes undone); ok is false for anything but a response
// with a string ID.
func responseID(line []byte) (id string, ok bool) {
	if !json.Valid(line) {
		return "", false
	}
	var rawID []byte
	method, plain := false, true
	if !rawjson.Members(line, func(k, v []byte) bool {
		if !rawjson.PlainKey(k) {
			plain = false
			return false
		}
		switch {
		case bytes.EqualFold(k, []byte("id")):
			rawID = v
		case bytes.EqualFold(k, []byte("method")) && string(v) != "null":
			// (null leaves encoding/json's string as it was.)
			method = string(v) != `""`
		}
		return true
	}) {
		if plain {
			return "", false // not an object
		}
		var probe struct {
			ID     json.RawMessage `json:"id"`
			Method string          `json:"method"`
		}
		if json.Unmarshal(line, &probe) != nil {
			return "", false
		}
		rawID, method = probe.ID, probe.Method != ""
	}
	if method || len(rawID) == 0 || rawID[0] != '"' {
		return "", false
	}
	if rawjson.Plain(rawID) {
		return string(rawID[1 : len(rawID)-1]), true
	}
	return id, json.Unmarshal(rawID, &id) == nil
}

// fail ends the direct calls waiting: stdout ended.
func (p *pipe) fail() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.closed = true
	for id, ch := range p.waiting {
		close(ch)
		delete(p.waiting, id)
	}
}

// call writes the request line frame, whose ID is id, and returns the
// response line. Its errors are those of mcp-go's stdio transport.
func (p *pipe) call(ctx context.Context, id string, frame []byte) ([]byte, error) {
	ch := make(chan []byte, 1)
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil, transport.ErrTransportClosed
	}
	p.waiting[id] = ch
	p.mu.Unlock()
	forget := func() {
		p.mu.Lock()
		delete(p.waiting, id)
		p.mu.Unlock()
	}
	if _, err := p.Write(frame); err != nil {
		forget()
		return nil, fmt.Errorf("failed to write request: %w", err)
	}
	select {
	case line, ok := <-ch:
		if !ok {
			return nil, transport.ErrTransportClosed
		}
		return line, nil
	case <-ctx.Done():
		forget()
		return nil, ctx.Err()
	}
}
