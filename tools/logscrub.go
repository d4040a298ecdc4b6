package tools

import (
	"context"
	"fmt"
	"log/slog"
)

// maxLoggedValue bounds each attribute a connection's client logs: mcp-go
// logs an upstream's whole error body.
const maxLoggedValue = 2 << 10

// scrubbedHandler is the slog handler of what mcp-go's client logs for one
// connection (an upstream's error answers, its methods): every message
// and attribute has the connection's secrets cut out and is bounded in
// length, as everything else of the upstream's is before it goes further.
type scrubbedHandler struct {
	next slog.Handler
	s    *Scrubber
}

// scrubbedLogger returns log with s's secrets cut out of all it records.
func scrubbedLogger(log *slog.Logger, s *Scrubber) *slog.Logger {
	if s.Empty() {
		return log
	}
	return slog.New(scrubbedHandler{log.Handler(), s})
}

func (h scrubbedHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return h.next.Enabled(ctx, l)
}

func (h scrubbedHandler) Handle(ctx context.Context, r slog.Record) error {
	out := slog.NewRecord(r.Time, r.Level, h.clean(r.Message), r.PC)
	r.Attrs(func(a slog.Attr) bool {
		out.AddAttrs(h.attr(a))
		return true
	})
	return h.next.Handle(ctx, out)
}

func (h scrubbedHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	clean := make([]slog.Attr, len(attrs))
	for i, a := range attrs {
		clean[i] = h.attr(a)
	}
	return scrubbedHandler{h.next.WithAttrs(clean), h.s}
}

func (h scrubbedHandler) WithGroup(name string) slog.Handler {
	return scrubbedHandler{h.next.WithGroup(name), h.s}
}

func (h scrubbedHandler) attr(a slog.Attr) slog.Attr {
	v := a.Value.Resolve()
	switch v.Kind() {
	case slog.KindGroup:
		group := v.Group()
		clean := make([]any, len(group))
		for i, g := range group {
			clean[i] = h.attr(g)
		}
		return slog.Group(a.Key, clean...)
	case slog.KindString:
		return slog.String(a.Key, h.clean(v.String()))
	case slog.KindAny:
		return slog.String(a.Key, h.clean(fmt.Sprint(v.Any())))
	}
	return slog.Attr{Key: a.Key, Value: v}
}

func (h scrubbedHandler) clean(s string) string {
	s = h.s.String(s)
	if len(s) > maxLoggedValue {
		s = s[:maxLoggedValue] + "…"
	}
	return s
}
