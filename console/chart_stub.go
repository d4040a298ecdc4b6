package console

import "html/template"

// Chart and the functions below stand in for chart.go until it lands.
type Chart struct {
	Title  string
	Labels []string
	Series []Series
	Unit   string
}

type Series struct {
	Name   string
	Values []float64
}

func BarChart(c Chart) template.HTML  { return template.HTML("<svg role=\"img\"></svg>") }
func LineChart(c Chart) template.HTML { return template.HTML("<svg role=\"img\"></svg>") }
