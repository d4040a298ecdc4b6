package testenv

import (
	"bytes"
	"net"
	"sync"
	"testing"
	"time"
)

// Fault is what a [FaultProxy] does to the traffic between its clients and
// its target.
type Fault int

const (
	// Forward passes everything.
	Forward Fault = iota
	// Refuse closes the listener and resets every open connection: new
	// connections are refused (ECONNREFUSED), as when the server is down.
	Refuse
	// Blackhole accepts connections and drops what flows either way, as a
	// network that loses packets: nothing is ever answered.
	Blackhole
	// Swallow passes what clients send but drops the answers: requests
	// reach the target and take effect, their answers are lost.
	Swallow
)

// FaultProxy forwards TCP connections on 127.0.0.1 to a target and can
// refuse them, blackhole them or swallow the answers, then forward again
// on the same address.
type FaultProxy struct {
	addr   string
	target string

	mu    sync.Mutex
	fault Fault                 // guarded by mu
	ln    net.Listener          // nil while refusing; guarded by mu
	conns map[net.Conn]struct{} // guarded by mu
	done  bool                  // guarded by mu
	arm   []byte                // SwallowFrom's marker; guarded by mu
}

// NewFaultProxy starts a forwarding proxy to target (host:port) until the
// end of the test.
func NewFaultProxy(tb testing.TB, target string) *FaultProxy {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	p := &FaultProxy{addr: ln.Addr().String(), target: target, ln: ln, conns: map[net.Conn]struct{}{}}
	go p.serve(ln)
	tb.Cleanup(func() {
		p.mu.Lock()
		p.done = true
		p.mu.Unlock()
		p.Set(Refuse)
	})
	return p
}

// URL is the proxy's address as an http:// URL.
func (p *FaultProxy) URL() string { return "http://" + p.addr }

// Set changes what the proxy does, for open connections too.
func (p *FaultProxy) Set(f Fault) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.fault, p.arm = f, nil
	if f == Refuse {
		if p.ln != nil {
			p.ln.Close()
			p.ln = nil
		}
		for c := range p.conns {
			if tc, ok := c.(*net.TCPConn); ok {
				_ = tc.SetLinger(0) // a reset, not an orderly close
			}
			c.Close()
		}
		clear(p.conns)
		return
	}
	if p.ln == nil && !p.done {
		var ln net.Listener
		var err error
		for range 50 { // the port was ours a moment ago; it is free again at once on Linux
			if ln, err = net.Listen("tcp", p.addr); err == nil {
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
		if err != nil {
			panic("testenv: listening again on " + p.addr + ": " + err.Error())
		}
		p.ln = ln
		go p.serve(ln)
	}
}

// SwallowFrom forwards until a client sends marker (for example a request
// line such as "PUT /v1/secret/data/t/i"), then swallows from that request
// on: it reaches the target, its answer and every later one are lost.
func (p *FaultProxy) SwallowFrom(marker string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.fault, p.arm = Forward, []byte(marker)
}

// sent is what a client sent, seen before it is forwarded.
func (p *FaultProxy) sent(b []byte) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.arm != nil && bytes.Contains(b, p.arm) {
		p.fault, p.arm = Swallow, nil
	}
}

func (p *FaultProxy) current() Fault {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.fault
}

func (p *FaultProxy) serve(ln net.Listener) {
	for {
		in, err := ln.Accept()
		if err != nil {
			return
		}
		out, err := net.Dial("tcp", p.target)
		if err != nil {
			in.Close()
			continue
		}
		p.mu.Lock()
		if p.ln != ln {
			p.mu.Unlock()
			in.Close()
			out.Close()
			continue
		}
		p.conns[in], p.conns[out] = struct{}{}, struct{}{}
		p.mu.Unlock()
		go p.pump(out, in, p.sent, func(f Fault) bool { return f == Forward || f == Swallow })
		go p.pump(in, out, nil, func(f Fault) bool { return f == Forward })
	}
}

// pump copies from src to dst what pass lets through at the moment it is
// read; the rest is dropped.
func (p *FaultProxy) pump(dst, src net.Conn, seen func([]byte), pass func(Fault) bool) {
	defer func() {
		dst.Close()
		src.Close()
		p.mu.Lock()
		delete(p.conns, dst)
		delete(p.conns, src)
		p.mu.Unlock()
	}()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 && seen != nil {
			seen(buf[:n])
		}
		if n > 0 && pass(p.current()) {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}
