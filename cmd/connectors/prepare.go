package main

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/connectors-gateway/connectors/tools"
)

// prepare readies the integrations' stdio servers ahead of their first
// call ("connectors integrations prepare [NAME ...]"; all of them without
// a name): a package a preset runs through npx is installed into npx's
// cache at its pinned version, so the first tools/list does not wait for
// a download. One line each; a failure names the integration and what
// npx said, and fails the command once every one was tried.
func (m *Main) prepare(ctx context.Context, cfg Config, args []string) error {
	fs := m.flags("integrations prepare")
	fs.StringVar(&cfg.IntegrationsFile, "config", cfg.IntegrationsFile, "integrations config `file`")
	if err := fs.Parse(args); err != nil {
		return usageError{err.Error()}
	}
	reg, err := registry(cfg)
	if err != nil {
		return err
	}
	names := fs.Args()
	for _, n := range names {
		if _, ok := reg.Get(n); !ok {
			return usageError{fmt.Sprintf("integrations prepare: no integration %q (have %s)", n, strings.Join(reg.Names(), ", "))}
		}
	}
	var failed []string
	for _, in := range reg.All() {
		if len(names) > 0 && !slices.Contains(names, in.Name) {
			continue
		}
		cmd := tools.PrepareCommand(ctx, in.Upstream)
		if cmd == nil {
			fmt.Fprintf(m.Stdout, "%-16s nothing to prepare (%s)\n", in.Name, upstreamKind(in.Upstream))
			continue
		}
		spec, _ := tools.NPXPackage(in.Upstream)
		start := time.Now()
		if out, err := cmd.CombinedOutput(); err != nil {
			fmt.Fprintf(m.Stdout, "%-16s FAILED to prepare %s: %v: %s\n", in.Name, spec, err, lastLine(out))
			failed = append(failed, in.Name)
			continue
		}
		fmt.Fprintf(m.Stdout, "%-16s prepared %s (%.1f s)\n", in.Name, spec, time.Since(start).Seconds())
	}
	if len(failed) > 0 {
		return errors.New("could not prepare " + strings.Join(failed, ", "))
	}
	return nil
}

func upstreamKind(up tools.Upstream) string {
	if up.URL != "" {
		return "an HTTP upstream"
	}
	return "runs " + up.Command
}

// lastLine is the last non-empty line of out, which says why a command
// failed.
func lastLine(out []byte) string {
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	return strings.TrimSpace(lines[len(lines)-1])
}
