package server_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"sync"
	"time"

	"github.com/sourcegraph/jsonrpc2"
)

// The peer is the agent's side of a transcript: a raw JSON-RPC 2.0
// connection (github.com/sourcegraph/jsonrpc2) that sends each line of the
// transcript's client section as it is written, byte for byte, and records
// every frame the gateway sends, as it arrives.
//
// A line that is a request jsonrpc2 can send (a string or non-negative
// integer ID) goes through the jsonrpc2.Conn, which waits for the answer
// with that ID; notifications and responses go through it too. Any other
// line (not JSON, a batch, an ID of another type) is a raw frame, written
// on the wire directly; the gateway's answer to it is recorded all the
// same. The jsonrpc2.Conn reads every frame it can decode (and hands the
// gateway's own requests to a handler that leaves them unanswered); the
// wire records the others and skips them.

// settleTimeout bounds the wait for one answer.
const settleTimeout = 10 * time.Second

// A wire carries frames between the peer and the gateway: stdio lines or
// HTTP exchanges. It is the jsonrpc2.ObjectStream of the peer's Conn.
type wire interface {
	jsonrpc2.ObjectStream
	// verbatim makes the next WriteObject write frame instead of the
	// object's own encoding.
	verbatim(frame []byte)
	// sendRaw writes frame as it is and waits for its answer, if any.
	sendRaw(frame []byte) error
	// settle returns once done is closed (the answer to a call arrived)
	// or, where the wire knows it, once no answer is to come.
	settle(done <-chan struct{}) error
	// recorded returns what the gateway sent, in order.
	recorded() []string
}

// peer sends a transcript's client lines on a wire.
type peer struct {
	w    wire
	conn *jsonrpc2.Conn
}

func newPeer(ctx context.Context, w wire) *peer {
	quiet := jsonrpc2.SetLogger(log.New(io.Discard, "", 0)) // it logs the answers it cannot pair
	return &peer{w: w, conn: jsonrpc2.NewConn(ctx, w, unanswered{}, quiet)}
}

// unanswered is the peer's handler of the gateway's own requests (sampling,
// elicitation, ping): the transcript records them, and answers them, if
// at all, in lines of its own.
type unanswered struct{}

func (unanswered) Handle(context.Context, *jsonrpc2.Conn, *jsonrpc2.Request) {}

// send sends one client line and waits for what it waits for: a call its
// answer, a raw frame the wire's answer to it, a notification or a
// response nothing.
func (p *peer) send(ctx context.Context, line []byte) error {
	kind, id := classify(line)
	if kind == frameRaw {
		return p.w.sendRaw(line)
	}
	if kind == frameResponse {
		var resp jsonrpc2.Response
		if err := json.Unmarshal(line, &resp); err != nil {
			return err
		}
		p.w.verbatim(line)
		return p.conn.SendResponse(ctx, &resp)
	}
	var req jsonrpc2.Request
	if err := json.Unmarshal(line, &req); err != nil {
		return err
	}
	p.w.verbatim(line)
	if kind == frameNotification {
		return p.conn.Notify(ctx, req.Method, req.Params)
	}
	call, err := p.conn.DispatchCall(ctx, req.Method, req.Params, jsonrpc2.PickID(id))
	if err != nil {
		return err
	}
	done := make(chan struct{})
	go func() {
		_ = call.Wait(ctx, nil) // an error answer is an answer
		close(done)
	}()
	return p.w.settle(done)
}

func (p *peer) close() { _ = p.conn.Close() }

// The kinds of client line.
const (
	frameRaw = iota
	frameCall
	frameNotification
	frameResponse
)

// classify tells what a client line is for jsonrpc2, and the ID of a call
// or response.
func classify(line []byte) (kind int, id jsonrpc2.ID) {
	var m struct {
		ID     json.RawMessage `json:"id"`
		Method *string         `json:"method"`
		Result json.RawMessage `json:"result"`
		Error  json.RawMessage `json:"error"`
	}
	if len(line) == 0 || line[0] != '{' || json.Unmarshal(line, &m) != nil {
		return frameRaw, id
	}
	if m.Method != nil && m.ID == nil {
		return frameNotification, id
	}
	// jsonrpc2 IDs are strings or unsigned integers; anything else (null,
	// a negative or fractional number, an object) is sent raw.
	if err := json.Unmarshal(m.ID, &id.Num); err != nil {
		if err := json.Unmarshal(m.ID, &id.Str); err != nil {
			return frameRaw, id
		}
		id.IsString = true
	} else if string(m.ID) == "null" {
		return frameRaw, id
	}
	switch {
	case m.Method != nil && m.Result == nil && m.Error == nil:
		return frameCall, id
	case m.Method == nil && (m.Result != nil) != (m.Error != nil):
		return frameResponse, id
	}
	return frameRaw, id
}

// frames is what both wires share: the frames received, in order, with
// notes of the wire's own (HTTP statuses), and the queue of frames the
// jsonrpc2.Conn has yet to read.
type frames struct {
	mu      sync.Mutex
	log     []string // frames and notes, in order
	queue   [][]byte // frames not read yet
	waiting bool     // ReadObject waits on an empty queue
	closed  bool
	arrived chan struct{} // signalled on every frame received
	next    []byte        // the next frame to write verbatim
}

func newFrames() *frames { return &frames{arrived: make(chan struct{}, 1)} }

// receive records a frame and queues it for ReadObject.
func (f *frames) receive(frame []byte) {
	frame = bytes.TrimSpace(frame)
	if len(frame) == 0 {
		return
	}
	f.mu.Lock()
	f.log = append(f.log, string(frame))
	f.queue = append(f.queue, frame)
	f.mu.Unlock()
	select {
	case f.arrived <- struct{}{}:
	default:
	}
}

// note records a line of the wire's own.
func (f *frames) note(format string, args ...any) {
	f.mu.Lock()
	f.log = append(f.log, "# "+fmt.Sprintf(format, args...))
	f.mu.Unlock()
}

func (f *frames) recorded() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.log...)
}

// count returns how many frames (and notes) have been recorded.
func (f *frames) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.log)
}

// ReadObject hands the next frame jsonrpc2 can decode to v; the frames it
// cannot (a batch's answer, an ID it has no type for) are recorded only.
func (f *frames) ReadObject(v any) error {
	for {
		f.mu.Lock()
		for len(f.queue) == 0 && !f.closed {
			f.waiting = true
			f.mu.Unlock()
			<-f.arrived
			f.mu.Lock()
		}
		f.waiting = false
		if len(f.queue) == 0 {
			f.mu.Unlock()
			return io.EOF
		}
		frame := f.queue[0]
		f.queue = f.queue[1:]
		f.mu.Unlock()
		if json.Unmarshal(frame, v) == nil {
			return nil
		}
	}
}

// idle reports whether every frame received has been read.
func (f *frames) idle() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.waiting && len(f.queue) == 0
}

// shut ends ReadObject's wait: io.EOF once the queue is empty.
func (f *frames) shut() {
	f.mu.Lock()
	f.closed = true
	f.mu.Unlock()
	select {
	case f.arrived <- struct{}{}:
	default:
	}
}

func (f *frames) verbatim(frame []byte) {
	f.mu.Lock()
	f.next = frame
	f.mu.Unlock()
}

// encode returns the frame to write for obj: the verbatim one, if set.
func (f *frames) encode(obj any) ([]byte, error) {
	f.mu.Lock()
	next := f.next
	f.next = nil
	f.mu.Unlock()
	if next != nil {
		return next, nil
	}
	return json.Marshal(obj)
}

// stdioWire is a wire over the gateway's stdio: one JSON object per line.
type stdioWire struct {
	*frames
	in      io.WriteCloser // the gateway's stdin
	readErr chan error
}

func newStdioWire(in io.WriteCloser, out io.Reader) *stdioWire {
	w := &stdioWire{frames: newFrames(), in: in, readErr: make(chan error, 1)}
	go func() {
		r := bufio.NewReader(out)
		for {
			line, err := r.ReadBytes('\n')
			w.receive(line)
			if err != nil {
				w.shut()
				w.readErr <- err
				return
			}
		}
	}()
	return w
}

func (w *stdioWire) WriteObject(obj any) error {
	frame, err := w.encode(obj)
	if err != nil {
		return err
	}
	_, err = w.in.Write(append(frame, '\n'))
	return err
}

// sendRaw writes a raw frame and waits for the one answer the gateway
// gives every frame it cannot serve.
func (w *stdioWire) sendRaw(frame []byte) error {
	before := w.count()
	if _, err := w.in.Write(append(frame, '\n')); err != nil {
		return err
	}
	for deadline := time.Now().Add(settleTimeout); w.count() == before; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			return fmt.Errorf("no answer to the raw frame %s within %v", frame, settleTimeout)
		}
	}
	return nil
}

// settle waits for the answer: over stdio it may come at any time.
func (w *stdioWire) settle(done <-chan struct{}) error {
	select {
	case <-done:
		return nil
	case <-time.After(settleTimeout):
		return fmt.Errorf("no answer within %v", settleTimeout)
	}
}

// Close closes the gateway's stdin, which ends its serving; the frames it
// writes until then are still recorded.
func (w *stdioWire) Close() error {
	err := w.in.Close()
	select {
	case rerr := <-w.readErr:
		if !errors.Is(rerr, io.EOF) && !errors.Is(rerr, io.ErrClosedPipe) {
			err = errors.Join(err, rerr)
		}
	case <-time.After(settleTimeout):
		err = errors.Join(err, errors.New("the gateway did not end its stdio"))
	}
	return err
}
