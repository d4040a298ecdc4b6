package audit

import (
	"context"
	"log/slog"
	"strings"
	"time"
	"unicode"

	"github.com/connectors-gateway/connectors/tenants"
)

// Message is the slog message of every audit record, the seed document's
// event name.
const Message = "tenant_credential_access"

// SubjectSystem is the subject of a record made outside any request (the
// background refresher, start-up migrations).
const SubjectSystem = "system"

// maxErrorRunes caps the error text of a record.
const maxErrorRunes = 200

// Record is one audited operation.
type Record struct {
	TenantID    string
	Integration string // empty for tenant-wide operations (offboard)
	Operation   string // one of the Op constants
	Duration    time.Duration
	Success     bool // forced to false when Err is set
	// Err is why the operation failed. Only its message is recorded,
	// clipped to 200 characters with control characters replaced by spaces.
	// Callers must not put secrets in errors (this codebase never does).
	Err error
	// Subject is who acted: an OIDC subject, "apikey:<id>", "stdio".
	// Empty: the subject of the identity in the context, else "system".
	Subject string
}

// Record writes r as one JSON line. It never fails: a write error is kept
// and reported by Close.
func (l *Logger) Record(ctx context.Context, r Record) {
	if l == nil {
		return
	}
	success := r.Success && r.Err == nil
	level := slog.LevelInfo
	if !success {
		level = slog.LevelWarn
	}
	rec := slog.NewRecord(time.Now(), level, Message, 0)
	rec.AddAttrs(
		slog.String("tenantId", r.TenantID),
		slog.String("integration", r.Integration),
		slog.String("operation", r.Operation),
		slog.Float64("duration", milliseconds(r.Duration)),
		slog.Bool("success", success),
		slog.String("subject", subject(ctx, r.Subject)),
	)
	if id := RequestID(ctx); id != "" {
		rec.AddAttrs(slog.String("requestId", id))
	}
	if r.Err != nil {
		rec.AddAttrs(slog.String("error", errorText(r.Err)))
	}
	// The handler formats the whole line, then makes one Write to the sink.
	_ = l.h.Handle(ctx, rec)
}

// milliseconds renders d as the seed's duration: milliseconds, to the
// microsecond (45, 0.312).
func milliseconds(d time.Duration) float64 {
	return float64(d.Microseconds()) / 1000
}

func subject(ctx context.Context, explicit string) string {
	if explicit != "" {
		return explicit
	}
	id, ok := tenants.FromContext(ctx)
	switch {
	case !ok:
		return SubjectSystem
	case id.Subject == "":
		return "unknown"
	default:
		return id.Subject
	}
}

// errorText reduces err to one short line: control characters (and the
// bidirectional overrides that can disguise a log line) become one space,
// and the text is clipped to maxErrorRunes, ending in "…" when clipped.
func errorText(err error) string {
	out := make([]rune, 0, maxErrorRunes+1)
	blank := false
	for _, r := range err.Error() { // invalid UTF-8 arrives as U+FFFD
		if unicode.IsControl(r) || isBidiControl(r) {
			if blank {
				continue
			}
			r, blank = ' ', true
		} else {
			blank = false
		}
		out = append(out, r)
		if len(out) > maxErrorRunes {
			out = append(out[:maxErrorRunes-1], '…')
			break
		}
	}
	return strings.TrimSpace(string(out))
}

func isBidiControl(r rune) bool {
	return r == '\u061c' || r == '\u200e' || r == '\u200f' ||
		(r >= '\u202a' && r <= '\u202e') || (r >= '\u2066' && r <= '\u2069')
}
