package console

import (
	"html/template"
	"strings"
	"time"
)

// pageNames are the console's pages, each a template of its own beside
// the layout.
var pageNames = []string{"error", "signin", "dashboard", "connect", "health", "usage", "keys", "admin", "admintenant", "offboard"}

// funcs are the templates' helpers.
var funcs = template.FuncMap{
	"day":   func(t any) string { return format(t, time.DateOnly) },
	"stamp": func(t any) string { return format(t, "2006-01-02 15:04 MST") },
	"join":  strings.Join,
}

// format writes a time (or a *time.Time; nil or zero: "—") in UTC.
func format(v any, layout string) string {
	var t time.Time
	switch v := v.(type) {
	case time.Time:
		t = v
	case *time.Time:
		if v != nil {
			t = *v
		}
	}
	if t.IsZero() {
		return "—"
	}
	return t.UTC().Format(layout)
}

// parsePages parses every page with the layout; a page that does not
// parse is a bug of the build, found by any test.
func parsePages() map[string]*template.Template {
	pages := make(map[string]*template.Template, len(pageNames))
	for _, name := range pageNames {
		pages[name] = template.Must(template.New(name).Funcs(funcs).ParseFS(files, "templates/layout.html", "templates/"+name+".html"))
	}
	return pages
}
