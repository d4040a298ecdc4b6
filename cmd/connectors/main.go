// Command connectors is the Connectors Gateway: an aggregating MCP server
// that injects each tenant's credentials into the upstream MCP servers it
// fronts. Run "connectors help" for its subcommands.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	m := NewMain()
	err := m.Run(ctx, os.Args[1:])
	stop()
	if cerr := m.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "connectors:", err)
		os.Exit(exitCode(err))
	}
}
