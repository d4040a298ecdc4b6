//go:build !unix

package tools

import "net"

// Without a way to peek at an idle connection, h1 is not used.
const h1Probes = false

func open(net.Conn) bool { return false }
