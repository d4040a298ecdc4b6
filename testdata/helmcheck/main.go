// Command helmcheck lints and renders the gateway's Helm chart
// (deploy/helm/connectors) with Helm's own Go packages, for the deploy
// package's tests; it also loads a Compose file with the Compose
// specification's reference loader.
//
// It is its own module so the product's go.mod never carries Helm,
// Kubernetes or Compose. It renders as `helm template` does on the client
// (no cluster: lookup finds nothing; Helm's default API versions at the
// Kubernetes version given), with the chart's values.schema.json and its
// kubeVersion constraint enforced.
//
// # Usage
//
//	helmcheck lint CHART [-set k=v ...] [-f values.yaml ...] [-strict] [-kube-version 1.30.0]
//	helmcheck template CHART [-set k=v ...] [-f values.yaml ...] [-name R] [-namespace NS] [-kube-version V]
//	helmcheck compose FILE [-profile P ...] [-env-file F]
//
// lint prints every message and exits 1 on an error (or, with -strict, a
// warning). template prints one JSON document on stdout,
//
//	{"objects":[{"source":"connectors/templates/x.yaml","object":{...}}],"notes":"..."}
//
// and exits 1, the reason on stderr, when the values or the templates are
// refused. compose prints the loaded project as JSON (services, profiles,
// ports, environment after interpolation) or the reason it was refused.
package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"

	"helm.sh/helm/v4/pkg/chart/common"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "helmcheck:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	if len(args) < 2 {
		return errors.New("usage: helmcheck lint|template CHART [flags] | helmcheck compose FILE [flags]")
	}
	cmd, target, rest := args[0], args[1], args[2:]
	switch cmd {
	case "lint", "template":
		return runChart(cmd, target, rest)
	case "compose":
		return runCompose(target, rest)
	}
	return fmt.Errorf("unknown command %q: lint, template or compose", cmd)
}

// listFlag collects a repeated flag.
type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(v string) error { *l = append(*l, v); return nil }

// runChart parses the chart commands' flags and runs one of them.
func runChart(cmd, chartDir string, args []string) error {
	fs := flag.NewFlagSet(cmd, flag.ContinueOnError)
	var sets, files listFlag
	fs.Var(&sets, "set", "a value `key=value` (Helm's --set syntax), repeated")
	fs.Var(&files, "f", "a values `file`, repeated")
	name := fs.String("name", "connectors", "release `name`")
	namespace := fs.String("namespace", "default", "release `namespace`")
	strict := fs.Bool("strict", false, "lint: fail on warnings too")
	kubeVersion := fs.String("kube-version", "1.30.0", "the Kubernetes `version` rendered for (Capabilities.KubeVersion)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	vals, err := mergeValues(files, sets)
	if err != nil {
		return err
	}
	kv, err := common.ParseKubeVersion(*kubeVersion)
	if err != nil {
		return fmt.Errorf("-kube-version: %w", err)
	}
	if cmd == "lint" {
		return lintChart(os.Stdout, chartDir, vals, *namespace, kv, *strict)
	}
	return renderChart(os.Stdout, chartDir, vals, *name, *namespace, kv)
}
