package tools

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// NPXPackage returns the package spec (name@version) that up runs through
// npx: its first argument that is not an option, or the one given with
// --package. ok is false when up does not run npx or names no package.
func NPXPackage(up Upstream) (spec string, ok bool) {
	if up.URL != "" || filepath.Base(up.Command) != "npx" {
		return "", false
	}
	for i := 0; i < len(up.Args); i++ {
		a := up.Args[i]
		switch {
		case strings.HasPrefix(a, "--package="):
			return strings.TrimPrefix(a, "--package="), true
		case (a == "--package" || a == "-p") && i+1 < len(up.Args):
			return up.Args[i+1], true
		case a == "--":
			return "", false
		case strings.HasPrefix(a, "-"):
			continue // -y, --yes, --quiet, ...
		default:
			return a, a != ""
		}
	}
	return "", false
}

// PrepareCommand returns the command that readies up ahead of its first
// start, or nil when there is nothing to ready: for a package run through
// npx, npx installs it into its cache (and runs only "node --version"), so
// that the first call does not wait for a download. It runs with the
// environment a stdio upstream gets (DefaultEnvAllowlist): the same HOME,
// so the same npx cache.
func PrepareCommand(ctx context.Context, up Upstream) *exec.Cmd {
	spec, ok := NPXPackage(up)
	if !ok {
		return nil
	}
	cmd := exec.CommandContext(ctx, up.Command, "--yes", "--package="+spec, "--", "node", "--version")
	cmd.Env = []string{} // never the gateway's whole environment
	for _, k := range DefaultEnvAllowlist {
		if v, ok := os.LookupEnv(k); ok {
			cmd.Env = append(cmd.Env, k+"="+v)
		}
	}
	return cmd
}
