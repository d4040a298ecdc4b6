package testenv

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/chromedp/chromedp"
)

// AxeTags are the axe-core rule tags Axe runs: WCAG 2.0, 2.1 and 2.2 at
// levels A and AA, and Deque's best practices (never the experimental or
// deprecated rules). In axe-core 4.14 that is axe's default set of rules
// plus target-size (WCAG 2.2 AA 2.5.8: targets of at least 24 by 24
// pixels), which axe leaves off by default; the AAA rules stay off.
var AxeTags = []string{"wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa", "best-practice"}

// AxeScript returns the path of axe-core's browser bundle, which
// testdata/npm/package.json pins and `make test-deps` installs. The error
// says to run `make test-deps` when it is missing.
func AxeScript() (string, error) {
	path := filepath.Join(NPMDir(), "node_modules", "axe-core", "axe.min.js")
	if _, err := os.Stat(path); err != nil {
		return "", fmt.Errorf("axe-core is missing: run `make test-deps` (make test does this): %w", err)
	}
	return path, nil
}

// AxeViolation is one rule axe-core found broken, with the elements that
// break it.
type AxeViolation struct {
	ID      string    `json:"id"`     // the rule, such as "image-alt"
	Impact  string    `json:"impact"` // "minor", "moderate", "serious" or "critical"
	Help    string    `json:"help"`
	HelpURL string    `json:"helpUrl"`
	Nodes   []AxeNode `json:"nodes"`
}

// AxeNode is one element that breaks a rule.
type AxeNode struct {
	// Target is the element's CSS selector, one per frame or shadow root
	// on the way to it (those in a shadow root joined by " >>> ").
	Target []string `json:"target"`
	// HTML is the element's markup on one line (runs of white space made
	// one space), cut to 200 characters.
	HTML string `json:"html"`
}

// axeRun runs axe on the document and keeps only what AxeViolation holds,
// so that little crosses the protocol.
const axeRun = `axe.run(document, {runOnly: {type: "tag", values: %s}, resultTypes: ["violations"]}).then(r => r.violations.map(v => ({
	id: v.id, impact: v.impact || "", help: v.help, helpUrl: v.helpUrl,
	nodes: v.nodes.map(n => ({target: n.target.map(t => Array.isArray(t) ? t.join(" >>> ") : String(t)), html: n.html})),
})))`

// Axe runs axe-core (AxeTags) on the page of the chromedp context ctx,
// once it has loaded, and returns the violations it finds, none when the
// page passes. ctx bounds the run.
//
// axe-core is put in the page with the DevTools protocol
// (Runtime.evaluate), which a page's Content-Security-Policy does not
// govern: it runs on pages served with default-src 'none' (so no script
// of the page's own may run) with no need for Page.setBypassCSP, as
// TestAxe shows. The page's own scripts can see window.axe afterwards.
func Axe(ctx context.Context) ([]AxeViolation, error) {
	path, err := AxeScript()
	if err != nil {
		return nil, err
	}
	src, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading axe-core: %w", err)
	}
	tags, _ := json.Marshal(AxeTags)
	// void 0: the bundle's own value is not wanted back.
	if err := chromedp.Do(ctx, chromedp.Evaluate[chromedp.Void](string(src)+"\n;void 0")); err != nil {
		return nil, fmt.Errorf("putting axe-core in the page: %w", err)
	}
	vs, err := chromedp.Run(ctx, chromedp.Evaluate[[]AxeViolation](fmt.Sprintf(axeRun, tags), chromedp.EvalAwaitPromise))
	if err != nil {
		return nil, fmt.Errorf("running axe-core: %w", err)
	}
	for i := range vs {
		for j := range vs[i].Nodes {
			vs[i].Nodes[j].HTML = cut(strings.Join(strings.Fields(vs[i].Nodes[j].HTML), " "), 200)
		}
	}
	return vs, nil
}

// cut returns s, or its first n characters and an ellipsis.
func cut(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n]) + "…"
}

// Serious returns the violations of vs whose impact is serious or
// critical: those a page of the gateway must not have.
func Serious(vs []AxeViolation) []AxeViolation {
	var out []AxeViolation
	for _, v := range vs {
		if v.Impact == "serious" || v.Impact == "critical" {
			out = append(out, v)
		}
	}
	return out
}

// String returns v for a test's failure: the rule, its impact, what it
// asks and where to read more, then each element on a line of its own.
func (v AxeViolation) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s (%s): %s <%s>", v.ID, v.Impact, v.Help, v.HelpURL)
	for _, n := range v.Nodes {
		fmt.Fprintf(&b, "\n\t%s: %s", strings.Join(n.Target, ", "), n.HTML)
	}
	return b.String()
}

// FormatAxe returns vs for a test's failure, one violation after another,
// or "no violations".
func FormatAxe(vs []AxeViolation) string {
	if len(vs) == 0 {
		return "no violations"
	}
	s := make([]string, len(vs))
	for i, v := range vs {
		s[i] = v.String()
	}
	return strings.Join(s, "\n")
}
