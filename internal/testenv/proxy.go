package testenv

import (
	"io"
	"net"
	"sync"
	"testing"
)

// SwitchProxy forwards TCP connections to a target until it is cut: then
// every open connection is closed and new ones are refused at once, as
// when a server (Vault, a provider) goes down; Cut(false) brings it back.
type SwitchProxy struct {
	ln     net.Listener
	target string

	mu    sync.Mutex
	cut   bool                  // guarded by mu
	conns map[net.Conn]struct{} // guarded by mu
}

// NewSwitchProxy starts a proxy to target (host:port) on 127.0.0.1 until
// the end of the test.
func NewSwitchProxy(tb testing.TB, target string) *SwitchProxy {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	p := &SwitchProxy{ln: ln, target: target, conns: map[net.Conn]struct{}{}}
	tb.Cleanup(func() { ln.Close(); p.Cut(true) })
	go p.serve()
	return p
}

// URL is the proxy's address as an http:// URL.
func (p *SwitchProxy) URL() string { return "http://" + p.ln.Addr().String() }

func (p *SwitchProxy) serve() {
	for {
		in, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		if p.cut {
			p.mu.Unlock()
			in.Close()
			continue
		}
		out, err := net.Dial("tcp", p.target)
		if err != nil {
			p.mu.Unlock()
			in.Close()
			continue
		}
		p.conns[in], p.conns[out] = struct{}{}, struct{}{}
		p.mu.Unlock()
		go func() { _, _ = io.Copy(out, in); out.Close() }()
		go func() { _, _ = io.Copy(in, out); in.Close() }()
	}
}

// Cut cuts (true) or restores (false) the connection to the target.
func (p *SwitchProxy) Cut(cut bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cut = cut
	if cut {
		for c := range p.conns {
			c.Close()
		}
		clear(p.conns)
	}
}
