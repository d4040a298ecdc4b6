package console

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"html/template"
	"math"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// node is an element of a chart's SVG, as encoding/xml reads it.
type node struct {
	XMLName xml.Name
	Attrs   []xml.Attr `xml:",any,attr"`
	Text    string     `xml:",chardata"`
	Nodes   []node     `xml:",any"`
}

func (n node) attr(name string) string {
	for _, a := range n.Attrs {
		if a.Name.Local == name {
			return a.Value
		}
	}
	return ""
}

func (n node) num(t *testing.T, name string) float64 {
	t.Helper()
	x, err := strconv.ParseFloat(n.attr(name), 64)
	if err != nil {
		t.Fatalf("<%s %s=%q>: %v", n.XMLName.Local, name, n.attr(name), err)
	}
	return x
}

// all returns the elements under n (n included) named name with class
// class ("" for any), in document order.
func (n node) all(name, class string) []node {
	var out []node
	if n.XMLName.Local == name && (class == "" || n.attr("class") == class) {
		out = append(out, n)
	}
	for _, c := range n.Nodes {
		out = append(out, c.all(name, class)...)
	}
	return out
}

// group returns the <g> of class class.
func (n node) group(t *testing.T, class string) node {
	t.Helper()
	g := n.all("g", class)
	if len(g) != 1 {
		t.Fatalf("%d groups of class %s", len(g), class)
	}
	return g[0]
}

// parse reads a chart as XML: it must be well-formed SVG.
func parse(t *testing.T, svg template.HTML) node {
	t.Helper()
	var root node
	if err := xml.Unmarshal([]byte(svg), &root); err != nil {
		t.Fatalf("the chart is not well-formed XML: %v\n%s", err, svg)
	}
	if root.XMLName.Local != "svg" || root.XMLName.Space != "http://www.w3.org/2000/svg" {
		t.Fatalf("root element %v, want svg in the SVG namespace", root.XMLName)
	}
	return root
}

func texts(nodes []node) []string {
	out := make([]string, len(nodes))
	for i, n := range nodes {
		out[i] = n.Text
	}
	return out
}

func dates(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("2026-11-%02d", i+1)
	}
	return out
}

// TestBarChartHeights: each bar's height is its value times one scale,
// the stacks stand on the axis, each series on the one below, and a zero
// draws no bar.
func TestBarChartHeights(t *testing.T) {
	c := Chart{Title: "Calls per day", Unit: "calls", Labels: dates(3), Series: []Series{
		{Name: "notion", Values: []float64{3, 5, 12}},
		{Name: "github", Values: []float64{1, 0, 4}},
	}}
	root := parse(t, BarChart(c))
	bars := root.all("rect", "bar")
	want := []float64{3, 1, 5, 12, 4} // by label, then series; github's 0 draws nothing
	if len(bars) != len(want) {
		t.Fatalf("%d bars, want %d", len(bars), len(want))
	}
	scale := bars[0].num(t, "height") / want[0]
	base := float64(plotTop + plotHeight)
	var below float64 // the top of the bar below in this stack
	for i, b := range bars {
		h, y := b.num(t, "height"), b.num(t, "y")
		if math.Abs(h-want[i]*scale) > 0.15 {
			t.Errorf("bar %d (%s): height %v for %v, want %v (the scale of the first)", i, b.Nodes[0].Text, h, want[i], want[i]*scale)
		}
		if i == 0 || b.attr("x") != bars[i-1].attr("x") {
			below = base
		}
		if math.Abs(y+h-below) > 0.15 {
			t.Errorf("bar %d: from %v to %v, want it on %v", i, y, y+h, below)
		}
		below = y
	}
	// The axis' top is a tick at or above the highest stack (16).
	if top := plotHeight / scale; top < 16 || top > 20 {
		t.Errorf("the axis reaches %v, want a round value from 16 to 20", top)
	}
	if tip := bars[3].Nodes[0].Text; tip != "notion, 2026-11-03: 12 calls" {
		t.Errorf("the tallest bar's title %q", tip)
	}
}

// TestChartAccessible: an image to assistive technology, labelled by its
// title and a description that gives the figures; a legend naming every
// series, in order, as text.
func TestChartAccessible(t *testing.T) {
	c := Chart{Title: "Calls per day", Unit: "calls", Labels: dates(2), Series: []Series{
		{Name: "notion", Values: []float64{3, 12}}, {Name: "github", Values: []float64{0, 0}}, {Name: "slack", Values: []float64{1}},
	}}
	for name, svg := range map[string]template.HTML{"bar": BarChart(c), "line": LineChart(c)} {
		root := parse(t, svg)
		if root.attr("role") != "img" {
			t.Errorf("%s: role %q", name, root.attr("role"))
		}
		ids := strings.Fields(root.attr("aria-labelledby"))
		if len(ids) != 2 {
			t.Fatalf("%s: aria-labelledby %q", name, root.attr("aria-labelledby"))
		}
		title, desc := root.all("title", ""), root.all("desc", "")
		if title[0].attr("id") != ids[0] || title[0].Text != c.Title || len(desc) != 1 || desc[0].attr("id") != ids[1] {
			t.Errorf("%s: labelled by %v, title %+v, desc %+v", name, ids, title[0], desc)
		}
		d := desc[0].Text
		for _, part := range []string{"2026-11-01 to 2026-11-02", "notion", "github", "slack", "12 calls"} {
			if !strings.Contains(d, part) {
				t.Errorf("%s: the description %q does not say %q", name, d, part)
			}
		}
		if got := texts(root.group(t, "legend").all("text", "")); !slices.Equal(got, []string{"notion", "github", "slack"}) {
			t.Errorf("%s: legend %v", name, got)
		}
		if got := texts(root.all("text", "x-label")); !slices.Equal(got, c.Labels) {
			t.Errorf("%s: x labels %v", name, got)
		}
		if u := root.all("text", "unit"); len(u) != 1 || u[0].Text != "calls" {
			t.Errorf("%s: unit %v", name, u)
		}
	}
	if d := parse(t, BarChart(c)).all("desc", "")[0].Text; !strings.Contains(d, "notion: 15 calls in all, most on 2026-11-02 (12 calls)") || !strings.Contains(d, "github: none") {
		t.Errorf("bar description %q", d)
	}
}

// TestChartEscaping: every title, label, name and unit comes out as text,
// escaped, whatever it holds; the chart has no script, no event handler
// and no style attribute (the page's CSP allows none), and stays as it is
// in an html/template page.
func TestChartEscaping(t *testing.T) {
	hostile := `<script>alert("x")</script>`
	c := Chart{Title: `Calls & <b>bold</b>`, Unit: `<u>`, Labels: []string{`"><img src=x onerror=alert(1)>`, "2026-11-02"},
		Series: []Series{{Name: hostile, Values: []float64{1, 2}}, {Name: "a'b", Values: []float64{2, 1}}}}
	for name, svg := range map[string]template.HTML{"bar": BarChart(c), "line": LineChart(c)} {
		raw := string(svg)
		// "onerror=" is there, as escaped text: the walk below finds no
		// such attribute.
		for _, bad := range []string{"<script", "<img", "<b>", "<u>", "style="} {
			if strings.Contains(raw, bad) {
				t.Errorf("%s: %q in the markup:\n%s", name, bad, raw)
			}
		}
		root := parse(t, svg)
		if got := texts(root.group(t, "legend").all("text", "")); !slices.Equal(got, []string{hostile, "a'b"}) {
			t.Errorf("%s: legend %q, want the names as written", name, got)
		}
		if got := root.all("text", "x-label"); got[0].Text != c.Labels[0] {
			t.Errorf("%s: x label %q", name, got[0].Text)
		}
		if got := root.all("title", "")[0].Text; got != c.Title {
			t.Errorf("%s: title %q", name, got)
		}
		var walk func(node)
		walk = func(n node) {
			if n.XMLName.Local == "script" || n.XMLName.Local == "style" || n.XMLName.Local == "foreignObject" {
				t.Errorf("%s: a <%s> element", name, n.XMLName.Local)
			}
			for _, a := range n.Attrs {
				if a.Name.Local == "style" || strings.HasPrefix(strings.ToLower(a.Name.Local), "on") || strings.Contains(a.Name.Local, "href") {
					t.Errorf("%s: attribute %s=%q on <%s>", name, a.Name.Local, a.Value, n.XMLName.Local)
				}
			}
			for _, c := range n.Nodes {
				walk(c)
			}
		}
		walk(root)
		page := template.Must(template.New("page").Parse(`<figure>{{.}}</figure>`))
		var b bytes.Buffer
		if err := page.Execute(&b, svg); err != nil || b.String() != "<figure>"+raw+"</figure>" {
			t.Errorf("%s: in a page: %v\n%s", name, err, b.String())
		}
	}
}

// TestChartEmpty: no labels, no series, or bars of nothing but zeros
// draw a message and no marks; a line of zeros is data.
func TestChartEmpty(t *testing.T) {
	for name, svg := range map[string]template.HTML{
		"nothing":         BarChart(Chart{Title: "Calls per day"}),
		"no series":       BarChart(Chart{Title: "Calls per day", Labels: dates(30)}),
		"zeros":           BarChart(Chart{Title: "Calls per day", Labels: dates(3), Series: []Series{{Name: "notion", Values: []float64{0, 0, 0}}}}),
		"no values":       LineChart(Chart{Title: "Latency", Labels: dates(3), Series: []Series{{Name: "notion"}}}),
		"not finite":      LineChart(Chart{Title: "Latency", Labels: dates(2), Series: []Series{{Name: "notion", Values: []float64{math.NaN(), math.Inf(1)}}}}),
		"no labels, line": LineChart(Chart{Title: "Latency", Series: []Series{{Name: "notion", Values: []float64{3}}}}),
	} {
		root := parse(t, svg)
		empty := root.all("text", "empty")
		if len(empty) != 1 || empty[0].Text != "No data for this period" {
			t.Errorf("%s: empty state %v", name, empty)
		}
		if n := len(root.all("rect", "bar")) + len(root.all("circle", "point")) + len(root.all("polyline", "")); n != 0 {
			t.Errorf("%s: %d marks", name, n)
		}
		if root.attr("role") != "img" || !strings.Contains(root.all("desc", "")[0].Text, "No data") {
			t.Errorf("%s: not described as empty", name)
		}
	}
	zeros := parse(t, LineChart(Chart{Title: "Errors", Unit: "%", Labels: dates(3), Series: []Series{{Name: "notion", Values: []float64{0, 0, 0}}}}))
	if len(zeros.all("circle", "point")) != 3 || len(zeros.all("text", "empty")) != 0 {
		t.Error("a line of zeros drawn as no data")
	}
}

// TestChartOneDayAndThirty: one label draws one stack and one point per
// series (no line); thirty draw thirty stacks within the plot, with as
// many of the labels as fit (the first among them).
func TestChartOneDayAndThirty(t *testing.T) {
	one := Chart{Title: "Calls", Labels: dates(1), Series: []Series{{Name: "notion", Values: []float64{4}}, {Name: "github", Values: []float64{2}}}}
	root := parse(t, BarChart(one))
	if bars := root.all("rect", "bar"); len(bars) != 2 || len(root.all("text", "x-label")) != 1 {
		t.Errorf("one day: %d bars, %d labels", len(bars), len(root.all("text", "x-label")))
	}
	line := parse(t, LineChart(one))
	if len(line.all("circle", "point")) != 2 || len(line.all("polyline", "")) != 0 {
		t.Errorf("one day as lines: %d points, %d lines", len(line.all("circle", "point")), len(line.all("polyline", "")))
	}

	values := make([]float64, 30)
	for i := range values {
		values[i] = float64(i + 1)
	}
	month := Chart{Title: "Calls", Labels: dates(30), Series: []Series{{Name: "notion", Values: values}}}
	root = parse(t, BarChart(month))
	bars := root.all("rect", "bar")
	if len(bars) != 30 {
		t.Fatalf("%d bars for 30 days", len(bars))
	}
	for _, b := range bars {
		if x, w := b.num(t, "x"), b.num(t, "width"); x < plotLeft || x+w > plotRight || w < 5 {
			t.Errorf("a bar from %v to %v, outside the plot (%d to %d) or too thin", x, x+w, plotLeft, plotRight)
		}
	}
	labels := root.all("text", "x-label")
	if len(labels) < 4 || len(labels) > 10 || labels[0].Text != "2026-11-01" {
		t.Errorf("%d x labels for 30 days (first %q), want 4 to 10 that do not overlap", len(labels), labels[0].Text)
	}
	for i := 1; i < len(labels); i++ {
		if gap := labels[i].num(t, "x") - labels[i-1].num(t, "x"); gap < float64(len("2026-11-01")*charWidth) {
			t.Errorf("x labels %v apart: they overlap", gap)
		}
	}
	if lines := parse(t, LineChart(month)); len(lines.all("polyline", "")) != 1 || len(lines.all("circle", "point")) != 30 {
		t.Error("30 days as a line: want one line of 30 points")
	}
}

// TestChartTicks: the axis' ticks are multiples of 1, 2 or 5 times a
// power of ten, from 0 to a top at or above the highest value, for small,
// large and huge values; nothing drawn is NaN or infinite.
func TestChartTicks(t *testing.T) {
	for _, top := range []float64{0.003, 0.7, 1, 7, 12, 99, 1234, 56_789, 3.7e6, 3.7e12, 4.2e17, 1e300, math.MaxFloat64} {
		c := Chart{Title: "Calls", Labels: dates(2), Series: []Series{{Name: "a", Values: []float64{top / 3, top}}, {Name: "b", Values: []float64{-5, math.Inf(1)}}}}
		svg := LineChart(c)
		for _, bad := range []string{"NaN", "Inf"} {
			if strings.Contains(string(svg), bad) {
				t.Errorf("top %g: %s in the chart", top, bad)
			}
		}
		ticks := parse(t, LineChart(Chart{Title: "Calls", Labels: dates(2), Series: c.Series[:1]})).all("text", "tick")
		if len(ticks) < 3 || len(ticks) > 11 {
			t.Errorf("top %g: %d ticks %v", top, len(ticks), texts(ticks))
			continue
		}
		got := make([]float64, len(ticks))
		for i, tk := range ticks {
			got[i] = tickValue(t, tk.Text)
		}
		step := got[1]
		mantissa := step / math.Pow(10, math.Floor(math.Log10(step)))
		if !slices.ContainsFunc([]float64{1, 2, 5}, func(m float64) bool { return math.Abs(m-mantissa) < 1e-6 }) {
			t.Errorf("top %g: step %g (ticks %v) is not 1, 2 or 5 times a power of ten", top, step, texts(ticks))
		}
		for i, v := range got {
			if math.Abs(v-float64(i)*step) > step*1e-6 {
				t.Errorf("top %g: tick %d is %g, want %g (ticks %v)", top, i, v, float64(i)*step, texts(ticks))
			}
		}
		if last := got[len(got)-1]; last < min(top, maxValue)*(1-1e-9) {
			t.Errorf("top %g: the last tick %g is below it (%v)", top, last, texts(ticks))
		}
	}
}

// tickValue reads a tick's label back: SI prefixes and exponents.
func tickValue(t *testing.T, s string) float64 {
	t.Helper()
	mult := 1.0
	for _, p := range siPrefixes {
		if rest, ok := strings.CutSuffix(s, p.suffix); ok {
			s, mult = rest, p.div
		}
	}
	x, err := strconv.ParseFloat(s, 64)
	if err != nil {
		t.Fatalf("tick %q: %v", s, err)
	}
	return x * mult
}

// TestChartWholeTicks: counts below 5 tick at whole numbers, fractions
// at fractions.
func TestChartWholeTicks(t *testing.T) {
	for _, c := range []struct {
		values []float64
		want   []string
	}{
		{[]float64{1, 0}, []string{"0", "1"}},
		{[]float64{3, 2}, []string{"0", "1", "2", "3"}},
		{[]float64{0.5, 1}, []string{"0", "0.2", "0.4", "0.6", "0.8", "1"}},
	} {
		root := parse(t, BarChart(Chart{Title: "Errors", Labels: dates(2), Series: []Series{{Name: "notion", Values: c.values}}}))
		if got := texts(root.all("text", "tick")); !slices.Equal(got, c.want) {
			t.Errorf("ticks of %v: %v, want %v", c.values, got, c.want)
		}
	}
}

func TestNiceScale(t *testing.T) {
	for _, c := range []struct{ top, step, axis float64 }{
		{0, 0.2, 1}, {1, 0.2, 1}, {7, 2, 8}, {12, 5, 15}, {99, 20, 100}, {100, 20, 100}, {1234, 500, 1500}, {3.7e12, 1e12, 4e12},
	} {
		if step, axis := niceScale(c.top); math.Abs(step-c.step) > c.step*1e-9 || math.Abs(axis-c.axis) > c.axis*1e-9 {
			t.Errorf("niceScale(%g) = %g, %g; want %g, %g", c.top, step, axis, c.step, c.axis)
		}
	}
	if got := formatTick(1.5e12, 5e11, 1.5e12); got != "1.5T" {
		t.Errorf("1.5e12 on a scale of 5e11: %q", got)
	}
}

// TestLineChartGaps: a missing value breaks the line; every value has its
// point, at a height proportional to it.
func TestLineChartGaps(t *testing.T) {
	c := Chart{Title: "Latency", Unit: "ms", Labels: dates(5), Series: []Series{{Name: "notion", Values: []float64{10, 20, math.NaN(), 40}}}}
	root := parse(t, LineChart(c))
	if lines := root.all("polyline", ""); len(lines) != 1 || len(strings.Fields(lines[0].attr("points"))) != 2 {
		t.Errorf("lines %v: want one of two points (the third value missing, the fourth alone, the fifth absent)", lines)
	}
	points := root.all("circle", "point")
	if len(points) != 3 {
		t.Fatalf("%d points, want 3", len(points))
	}
	base := float64(plotTop + plotHeight)
	scale := (base - points[0].num(t, "cy")) / 10
	for i, v := range []float64{10, 20, 40} {
		if h := base - points[i].num(t, "cy"); math.Abs(h-v*scale) > 0.15 {
			t.Errorf("point %d at height %v for %v, want %v", i, h, v, v*scale)
		}
	}
	if tip := points[2].Nodes[0].Text; tip != "notion, 2026-11-04: 40 ms" {
		t.Errorf("point title %q", tip)
	}
}

// TestChartColours: eight series take eight different colours; past
// them a series differs from the one of its colour by its shade (bars) or
// its dash pattern (lines).
func TestChartColours(t *testing.T) {
	var series []Series
	for i := range 10 {
		series = append(series, Series{Name: fmt.Sprintf("in-%d", i), Values: []float64{1}})
	}
	c := Chart{Title: "Calls", Labels: dates(1), Series: series}
	legend := parse(t, BarChart(c)).group(t, "legend").all("rect", "")
	seen := map[string]bool{}
	for _, r := range legend[:8] {
		seen[r.attr("fill")] = true
	}
	if len(seen) != 8 {
		t.Errorf("the first eight series in %d colours", len(seen))
	}
	if legend[8].attr("fill") == legend[0].attr("fill") && legend[8].attr("fill-opacity") == legend[0].attr("fill-opacity") {
		t.Error("the ninth bar series looks like the first")
	}
	lines := parse(t, LineChart(Chart{Title: "x", Labels: dates(2), Series: []Series{
		{Name: "a", Values: []float64{1, 2}}, {Name: "b", Values: []float64{1, 2}}, {Name: "c", Values: []float64{1, 2}}, {Name: "d", Values: []float64{1, 2}},
		{Name: "e", Values: []float64{1, 2}}, {Name: "f", Values: []float64{1, 2}}, {Name: "g", Values: []float64{1, 2}}, {Name: "h", Values: []float64{1, 2}},
		{Name: "i", Values: []float64{1, 2}},
	}})).all("polyline", "")
	if lines[8].attr("stroke") == lines[0].attr("stroke") && lines[8].attr("stroke-dasharray") == lines[0].attr("stroke-dasharray") {
		t.Error("the ninth line looks like the first")
	}
}
