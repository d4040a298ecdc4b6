package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"path"
	"sort"
	"strings"

	"helm.sh/helm/v4/pkg/chart/common"
	"helm.sh/helm/v4/pkg/chart/common/util"
	"helm.sh/helm/v4/pkg/chart/loader"
	chart "helm.sh/helm/v4/pkg/chart/v2"
	"helm.sh/helm/v4/pkg/chart/v2/lint"
	"helm.sh/helm/v4/pkg/chart/v2/lint/support"
	chartutil "helm.sh/helm/v4/pkg/chart/v2/util"
	"helm.sh/helm/v4/pkg/cli/values"
	"helm.sh/helm/v4/pkg/engine"
	"helm.sh/helm/v4/pkg/getter"
	"sigs.k8s.io/yaml"
)

// mergeValues merges values files and --set values as helm does (files
// first, in order, then each --set).
func mergeValues(files, sets []string) (map[string]any, error) {
	opts := values.Options{ValueFiles: files, Values: sets}
	return opts.MergeValues(getter.Providers{})
}

// lintChart runs Helm's linter (Chart.yaml, values and their schema, every
// template rendered and parsed as Kubernetes YAML) and prints its messages.
func lintChart(w io.Writer, chartDir string, vals map[string]any, namespace string, kv *common.KubeVersion, strict bool) error {
	result := lint.RunAll(chartDir, vals, namespace, lint.WithKubeVersion(kv))
	failed := 0
	for _, m := range result.Messages {
		fmt.Fprintln(w, m.Error())
		if m.Severity == support.ErrorSev || (strict && m.Severity == support.WarningSev) {
			failed++
		}
	}
	if failed > 0 {
		return fmt.Errorf("lint: %s: %d of the messages above fail the chart", chartDir, failed)
	}
	fmt.Fprintf(w, "lint: %s: no errors (%d message(s))\n", chartDir, len(result.Messages))
	return nil
}

// rendered is what template prints.
type rendered struct {
	Objects []renderedObject `json:"objects"`
	Notes   string           `json:"notes"`
}

// renderedObject is one Kubernetes object and the template it came from.
type renderedObject struct {
	Source string         `json:"source"`
	Object map[string]any `json:"object"`
}

// renderChart renders the chart as `helm template` does on the client:
// values coalesced and checked against values.schema.json, release as an
// install, default capabilities, no cluster (lookup finds nothing).
func renderChart(w io.Writer, chartDir string, vals map[string]any, name, namespace string, kv *common.KubeVersion) error {
	ch, err := loader.Load(chartDir)
	if err != nil {
		return fmt.Errorf("loading chart: %w", err)
	}
	if c, ok := ch.(*chart.Chart); ok && c.Metadata.KubeVersion != "" && !chartutil.IsCompatibleRange(c.Metadata.KubeVersion, kv.String()) {
		return fmt.Errorf("the chart requires Kubernetes %s, not %s", c.Metadata.KubeVersion, kv)
	}
	caps := common.DefaultCapabilities.Copy()
	caps.KubeVersion = *kv
	opts := common.ReleaseOptions{Name: name, Namespace: namespace, Revision: 1, IsInstall: true}
	top, err := util.ToRenderValues(ch, vals, opts, caps)
	if err != nil {
		return fmt.Errorf("values: %w", err)
	}
	files, err := engine.Render(ch, top)
	if err != nil {
		return fmt.Errorf("rendering: %w", err)
	}
	out := rendered{Objects: []renderedObject{}}
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		switch base := path.Base(n); {
		case base == "NOTES.txt":
			out.Notes = files[n]
			continue
		case strings.HasPrefix(base, "_") || !strings.HasSuffix(base, ".yaml"):
			continue
		}
		objs, err := splitManifests(files[n])
		if err != nil {
			return fmt.Errorf("%s: %w", n, err)
		}
		for _, o := range objs {
			out.Objects = append(out.Objects, renderedObject{Source: n, Object: o})
		}
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(out)
}

// splitManifests parses a rendered template's YAML documents, skipping
// empty ones; each must be a Kubernetes object (apiVersion and kind).
func splitManifests(s string) ([]map[string]any, error) {
	var objs []map[string]any
	for i, doc := range strings.Split("\n"+s, "\n---") {
		if len(bytes.TrimSpace([]byte(stripComments(doc)))) == 0 {
			continue
		}
		var o map[string]any
		if err := yaml.Unmarshal([]byte(doc), &o); err != nil {
			return nil, fmt.Errorf("document %d: %w", i, err)
		}
		if o == nil {
			continue
		}
		if o["apiVersion"] == nil || o["kind"] == nil {
			return nil, fmt.Errorf("document %d: no apiVersion or kind", i)
		}
		objs = append(objs, o)
	}
	if objs == nil {
		return nil, nil
	}
	return objs, nil
}

// stripComments drops YAML comment lines, so a document holding only
// Helm's "# Source:" line or comments counts as empty.
func stripComments(doc string) string {
	var b strings.Builder
	for _, line := range strings.Split(doc, "\n") {
		if t := strings.TrimSpace(line); t != "" && !strings.HasPrefix(t, "#") {
			b.WriteString(line)
			b.WriteByte('\n')
		}
	}
	return b.String()
}
