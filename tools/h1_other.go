//go:build !unix || noh1

package tools

import "net"

// Without a way to peek at an idle connection, h1 is not used; nor in a
// binary built with -tags noh1 (the bench's "no h1" rows).
const h1Probes = false

func open(net.Conn) bool { return false }
