//go:build unix && !noh1

package tools

import (
	"net"
	"syscall"
)

const h1Probes = true

// open reports whether an idle connection is still open: nothing to read
// on it (the upstream has neither closed it nor sent anything unasked).
// One non-blocking peek, so that a call never goes out on a connection
// the upstream closed while it sat idle.
func open(nc net.Conn) bool {
	sc, ok := nc.(syscall.Conn)
	if !ok {
		return false
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	alive := false
	var b [1]byte
	err = raw.Read(func(fd uintptr) bool {
		_, _, err := syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		alive = err == syscall.EAGAIN || err == syscall.EWOULDBLOCK
		return true
	})
	return err == nil && alive
}
