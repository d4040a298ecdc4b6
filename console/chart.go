package console

import (
	"bytes"
	"fmt"
	"hash/fnv"
	"html/template"
	"math"
	"strconv"
	"strings"
)

// Charts drawn on the server, as inline SVG, for the Usage page: calls per
// day (BarChart, stacked by integration) and latency or rates over days
// (LineChart). The markup is made by html/template, so every title, label,
// name and unit is escaped; it has no script and no style attribute (the
// page's CSP allows neither): colours are SVG presentation attributes. Each
// chart is an image to assistive technology (role="img", labelled by its
// <title> and a <desc> that says what the figures are), and each bar and
// point carries its own <title> with its value.

// Chart is one chart's figures: a value of each series for each label of
// the x axis (Values shorter than Labels: the rest are missing).
type Chart struct {
	Title  string
	Labels []string // the x axis, e.g. dates
	Series []Series
	Unit   string // of the values, e.g. "calls", "ms", "%"
}

// Series is one named row of figures, e.g. an integration's calls per day.
type Series struct {
	Name   string
	Values []float64
}

// The chart's frame, in SVG user units.
const (
	chartWidth   = 640
	plotTop      = 48
	plotHeight   = 220
	plotLeft     = 64
	plotRight    = chartWidth - 16
	legendTop    = plotTop + plotHeight + 44
	legendRow    = 20
	charWidth    = 7 // an estimate of a character's width at the labels' size
	maxValue     = 1e300
	targetTicks  = 5
	lineDashNone = ""
)

// palette is the Okabe–Ito palette, distinguishable with the common
// colour-vision deficiencies; past it a series takes a lighter shade (bars)
// or a dash pattern (lines) of the same colours.
var palette = [...]string{"#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#000000", "#F0E442"}

var (
	shades = [...]string{"1", "0.6", "0.35"}
	dashes = [...]string{lineDashNone, "6 3", "2 3"}
)

// BarChart draws c as bars stacked by series, one stack per label.
func BarChart(c Chart) template.HTML { return render(c, false) }

// LineChart draws c as one line per series across the labels, a point
// for each value; a missing (or not finite) value breaks the line.
func LineChart(c Chart) template.HTML { return render(c, true) }

// chartView is what the template draws: every coordinate computed.
type chartView struct {
	ID, Title, Desc, Unit, Empty string
	Width, Height                int
	Left, Right, Top, Base       string
	Middle                       string
	Ticks                        []tickView
	XLabels                      []textView
	Bars                         []markView
	Lines                        []lineView
	Dots                         []markView
	Legend                       []legendView
}

type tickView struct{ Y, LabelY, Text string }

type textView struct{ X, Y, Text string }

type markView struct{ X, Y, W, H, Fill, Opacity, Tip string }

type lineView struct{ Points, Stroke, Dash string }

type legendView struct{ X, Y, TX, TY, Fill, Opacity, Dash, Name string }

var chartTemplate = template.Must(template.New("chart").Parse(
	`<svg xmlns="http://www.w3.org/2000/svg" class="chart" role="img" viewBox="0 0 {{.Width}} {{.Height}}" width="{{.Width}}" height="{{.Height}}" aria-labelledby="{{.ID}}-title {{.ID}}-desc" font-family="sans-serif" font-size="12">` +
		`<title id="{{.ID}}-title">{{.Title}}</title><desc id="{{.ID}}-desc">{{.Desc}}</desc>` +
		`<text class="chart-title" x="{{.Left}}" y="20" font-size="15" font-weight="bold" fill="#1a1a1a">{{.Title}}</text>` +
		`{{if .Empty}}<text class="empty" x="{{.Middle}}" y="100" text-anchor="middle" fill="#555555">{{.Empty}}</text>` +
		`{{else}}<text class="unit" x="{{.Left}}" y="40" fill="#555555">{{.Unit}}</text>` +
		`<g class="grid">{{range .Ticks}}<line x1="{{$.Left}}" x2="{{$.Right}}" y1="{{.Y}}" y2="{{.Y}}" stroke="#dddddd"/>` +
		`<text class="tick" x="{{$.Left}}" dx="-6" y="{{.LabelY}}" text-anchor="end" fill="#333333">{{.Text}}</text>{{end}}</g>` +
		`<g class="x-axis"><line x1="{{.Left}}" x2="{{.Right}}" y1="{{.Base}}" y2="{{.Base}}" stroke="#333333"/>` +
		`{{range .XLabels}}<text class="x-label" x="{{.X}}" y="{{.Y}}" text-anchor="middle" fill="#333333">{{.Text}}</text>{{end}}</g>` +
		`<g class="marks">{{range .Bars}}<rect class="bar" x="{{.X}}" y="{{.Y}}" width="{{.W}}" height="{{.H}}" fill="{{.Fill}}" fill-opacity="{{.Opacity}}"><title>{{.Tip}}</title></rect>{{end}}` +
		`{{range .Lines}}<polyline class="line" points="{{.Points}}" fill="none" stroke="{{.Stroke}}" stroke-width="2"{{if .Dash}} stroke-dasharray="{{.Dash}}"{{end}}/>{{end}}` +
		`{{range .Dots}}<circle class="point" cx="{{.X}}" cy="{{.Y}}" r="3" fill="{{.Fill}}"><title>{{.Tip}}</title></circle>{{end}}</g>` +
		`<g class="legend">{{range .Legend}}<rect x="{{.X}}" y="{{.Y}}" width="12" height="12" fill="{{.Fill}}" fill-opacity="{{.Opacity}}"/>` +
		`{{if .Dash}}<line x1="{{.X}}" x2="{{.TX}}" y1="{{.TY}}" y2="{{.TY}}" stroke="#ffffff" stroke-width="2" stroke-dasharray="{{.Dash}}"/>{{end}}` +
		`<text x="{{.TX}}" dx="4" y="{{.TY}}" dy="4" fill="#1a1a1a">{{.Name}}</text>{{end}}</g>{{end}}</svg>`))

// render draws c as bars or lines.
func render(c Chart, lines bool) template.HTML {
	v := chartView{ID: chartID(c, lines), Title: c.Title, Unit: c.Unit, Width: chartWidth,
		Left: num(plotLeft), Right: num(plotRight), Top: num(plotTop), Base: num(plotTop + plotHeight),
		Middle: num(chartWidth / 2)}
	values := clean(c, lines)
	top := 0.0
	for i := range c.Labels {
		top = max(top, extent(values, i, lines))
	}
	if len(c.Labels) == 0 || len(c.Series) == 0 || !hasData(values, lines) {
		v.Height = plotTop + 120
		v.Empty = "No data for this period"
		v.Desc = "No data for this period."
		return execute(v)
	}
	step, top := niceScale(top)
	if step < 1 && whole(values) {
		step, top = 1, math.Ceil(top) // counts: no tick between two whole numbers
	}
	for i := 0.0; i*step <= top+step/2; i++ {
		t := i * step
		y := plotTop + plotHeight - t/top*plotHeight
		v.Ticks = append(v.Ticks, tickView{Y: num(y), LabelY: num(y + 4), Text: formatTick(t, step, top)})
	}
	slot := float64(plotRight-plotLeft) / float64(len(c.Labels))
	v.XLabels = xLabels(c.Labels, slot)
	if lines {
		v.Lines, v.Dots = lineMarks(c, values, slot, top)
	} else {
		v.Bars = barMarks(c, values, slot, top)
	}
	v.Legend, v.Height = legend(c.Series, lines)
	v.Desc = describe(c, values, lines)
	return execute(v)
}

func execute(v chartView) template.HTML {
	var b bytes.Buffer
	if err := chartTemplate.Execute(&b, v); err != nil {
		// The template is fixed and its data plain strings: this does not
		// happen; a chart that cannot be drawn says so, escaped.
		return template.HTML("<p>" + template.HTMLEscapeString(err.Error()) + "</p>")
	}
	return template.HTML(b.String()) // made by html/template: escaped
}

// clean is c's values per series and label, missing ones NaN; a bar's
// value that is not finite or is negative counts as 0, and no value
// exceeds maxValue.
func clean(c Chart, lines bool) [][]float64 {
	out := make([][]float64, len(c.Series))
	for s, series := range c.Series {
		out[s] = make([]float64, len(c.Labels))
		for i := range c.Labels {
			x := math.NaN()
			if i < len(series.Values) {
				x = series.Values[i]
			}
			switch {
			case math.IsNaN(x) || math.IsInf(x, 0):
				x = math.NaN()
			case x > maxValue:
				x = maxValue
			case x < -maxValue:
				x = -maxValue
			}
			if !lines && !(x > 0) {
				x = 0
			}
			out[s][i] = x
		}
	}
	return out
}

// extent is the height label i needs: its stack (bars) or its largest
// value (lines), at least 0.
func extent(values [][]float64, i int, lines bool) float64 {
	total := 0.0
	for _, row := range values {
		switch x := row[i]; {
		case math.IsNaN(x):
		case lines:
			total = max(total, x)
		default:
			total = min(total+x, maxValue)
		}
	}
	return total
}

// hasData: bars need a value above 0, lines any value.
func hasData(values [][]float64, lines bool) bool {
	for _, row := range values {
		for _, x := range row {
			if lines && !math.IsNaN(x) || x > 0 {
				return true
			}
		}
	}
	return false
}

// whole reports whether every value is a whole number.
func whole(values [][]float64) bool {
	for _, row := range values {
		for _, x := range row {
			if !math.IsNaN(x) && x != math.Trunc(x) {
				return false
			}
		}
	}
	return true
}

// niceScale returns the step between ticks, 1, 2 or 5 times a power of
// ten, and the axis' top, the first multiple of step at or above top (a
// top of 0: 1).
func niceScale(top float64) (step, axis float64) {
	if !(top > 0) {
		top = 1
	}
	raw := top / targetTicks
	mag := math.Pow(10, math.Floor(math.Log10(raw)))
	switch f := raw / mag; {
	case f <= 1:
		step = mag
	case f <= 2:
		step = 2 * mag
	case f <= 5:
		step = 5 * mag
	default:
		step = 10 * mag
	}
	axis = math.Ceil(top/step-1e-9) * step
	return step, max(axis, step)
}

// siPrefixes shorten large tick labels.
var siPrefixes = []struct {
	div    float64
	suffix string
}{{1e12, "T"}, {1e9, "G"}, {1e6, "M"}, {1e3, "k"}}

// formatTick writes tick t of a scale of step up to top: as many
// decimals as step needs, large values with the SI prefix of top, huge
// ones in exponent form.
func formatTick(t, step, top float64) string {
	if t == 0 {
		return "0"
	}
	if top >= 1e15 {
		return strconv.FormatFloat(t, 'g', 3, 64)
	}
	for _, p := range siPrefixes {
		if top >= p.div {
			return trimZeros(strconv.FormatFloat(t/p.div, 'f', decimals(step/p.div), 64)) + p.suffix
		}
	}
	return trimZeros(strconv.FormatFloat(t, 'f', decimals(step), 64))
}

// trimZeros drops the zeros that end a decimal fraction, and its point.
func trimZeros(s string) string {
	if !strings.Contains(s, ".") {
		return s
	}
	return strings.TrimSuffix(strings.TrimRight(s, "0"), ".")
}

func decimals(step float64) int { return max(0, int(-math.Floor(math.Log10(step)+1e-9))) }

// formatValue writes a value for people: up to three significant digits
// past the point, SI prefixes past a thousand.
func formatValue(x float64, unit string) string {
	s := strconv.FormatFloat(x, 'f', -1, 64)
	switch a := math.Abs(x); {
	case a >= 1e15:
		s = strconv.FormatFloat(x, 'g', 3, 64)
	case a >= 1e3:
		for _, p := range siPrefixes {
			if a >= p.div {
				s = strconv.FormatFloat(x/p.div, 'f', -1, 64)
				if len(s) > 5 {
					s = strconv.FormatFloat(x/p.div, 'f', 1, 64)
				}
				s += p.suffix
				break
			}
		}
	default:
		s = strconv.FormatFloat(math.Round(x*100)/100, 'f', -1, 64)
	}
	if unit == "" {
		return s
	}
	if unit == "%" {
		return s + "%"
	}
	return s + " " + unit
}

// xLabels are the labels under the axis: every one when they fit, else
// every k-th (the first and then every k-th).
func xLabels(labels []string, slot float64) []textView {
	longest := 1
	for _, l := range labels {
		longest = max(longest, len([]rune(l)))
	}
	every := max(1, int(math.Ceil(float64(longest*charWidth+8)/slot)))
	var out []textView
	for i := 0; i < len(labels); i += every {
		out = append(out, textView{X: num(plotLeft + (float64(i)+0.5)*slot), Y: num(plotTop + plotHeight + 18), Text: labels[i]})
	}
	return out
}

// barMarks are the stacked bars: per label, each series' value from the
// top of the one below, heights proportional to the values.
func barMarks(c Chart, values [][]float64, slot, top float64) []markView {
	width := slot * 0.7
	var out []markView
	for i, label := range c.Labels {
		base := float64(plotTop + plotHeight)
		for s, row := range values {
			if row[i] <= 0 {
				continue
			}
			h := row[i] / top * plotHeight
			base -= h
			out = append(out, markView{
				X: num(plotLeft + float64(i)*slot + (slot-width)/2), Y: num(base), W: num(width), H: num(h),
				Fill: palette[s%len(palette)], Opacity: shades[s/len(palette)%len(shades)],
				Tip: c.Series[s].Name + ", " + label + ": " + formatValue(row[i], c.Unit),
			})
		}
	}
	return out
}

// lineMarks are each series' line (broken where a value is missing) and
// a point per value.
func lineMarks(c Chart, values [][]float64, slot, top float64) ([]lineView, []markView) {
	var lines []lineView
	var dots []markView
	for s, row := range values {
		colour, dash := palette[s%len(palette)], dashes[s/len(palette)%len(dashes)]
		var pts []string
		flush := func() {
			if len(pts) > 1 {
				lines = append(lines, lineView{Points: strings.Join(pts, " "), Stroke: colour, Dash: dash})
			}
			pts = nil
		}
		for i, x := range row {
			if math.IsNaN(x) {
				flush()
				continue
			}
			px, py := plotLeft+(float64(i)+0.5)*slot, plotTop+plotHeight-max(0, x)/top*plotHeight
			pts = append(pts, num(px)+","+num(py))
			dots = append(dots, markView{X: num(px), Y: num(py), Fill: colour,
				Tip: c.Series[s].Name + ", " + c.Labels[i] + ": " + formatValue(x, c.Unit)})
		}
		flush()
	}
	return lines, dots
}

// legend lays the series' names out in rows under the axis, and returns
// the chart's height with them.
func legend(series []Series, lines bool) ([]legendView, int) {
	var out []legendView
	x, y := float64(plotLeft), float64(legendTop)
	for s, sr := range series {
		w := 12 + 4 + float64(len([]rune(sr.Name))*charWidth) + 16
		if x > plotLeft && x+w > plotRight {
			x, y = plotLeft, y+legendRow
		}
		item := legendView{X: num(x), Y: num(y - 10), TX: num(x + 12), TY: num(y - 4),
			Fill: palette[s%len(palette)], Opacity: shades[s/len(palette)%len(shades)], Name: sr.Name}
		if lines {
			item.Opacity, item.Dash = "1", dashes[s/len(palette)%len(dashes)]
		}
		out = append(out, item)
		x += w
	}
	return out, int(y) + 12
}

// describe summarises the figures for the <desc>: the span, and per
// series its total (bars) or range (lines) and its highest value.
func describe(c Chart, values [][]float64, lines bool) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s, %s", c.Title, c.Labels[0])
	if n := len(c.Labels); n > 1 {
		fmt.Fprintf(&b, " to %s (%d points)", c.Labels[n-1], n)
	}
	b.WriteString(". ")
	for s, row := range values {
		total, best, at, seen := 0.0, math.Inf(-1), "", 0
		low := math.Inf(1)
		for i, x := range row {
			if math.IsNaN(x) {
				continue
			}
			seen++
			total += x
			low = min(low, x)
			if x > best {
				best, at = x, c.Labels[i]
			}
		}
		switch {
		case seen == 0:
			fmt.Fprintf(&b, "%s: no data. ", c.Series[s].Name)
		case lines:
			fmt.Fprintf(&b, "%s: from %s to %s, highest on %s. ", c.Series[s].Name, formatValue(low, c.Unit), formatValue(best, c.Unit), at)
		case total == 0:
			fmt.Fprintf(&b, "%s: none. ", c.Series[s].Name)
		default:
			fmt.Fprintf(&b, "%s: %s in all, most on %s (%s). ", c.Series[s].Name, formatValue(total, c.Unit), at, formatValue(best, c.Unit))
		}
	}
	return strings.TrimSpace(b.String())
}

// chartID names a chart's title and description for aria-labelledby: the
// same figures, the same ID.
func chartID(c Chart, lines bool) string {
	h := fnv.New64a()
	fmt.Fprintf(h, "%t\x00%s\x00%s\x00%q", lines, c.Title, c.Unit, c.Labels)
	for _, s := range c.Series {
		fmt.Fprintf(h, "\x00%s\x00%v", s.Name, s.Values)
	}
	return fmt.Sprintf("chart-%016x", h.Sum64())
}

// num writes a coordinate to a tenth of a unit.
func num(x float64) string { return strconv.FormatFloat(math.Round(x*10)/10, 'f', -1, 64) }
