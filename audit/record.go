package audit

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"strconv"
	"strings"
	"sync"
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
	// CallerTenant is the tenant of who acted, when it is not TenantID's
	// to assume: set on refused attempts (OpAccessDenied), where TenantID
	// is the tenant the attempt was on. Empty: not recorded.
	CallerTenant string
	// Reason is why an attempt was refused, a stable snake_case word
	// (cross_tenant, admin_only, ...). Empty: not recorded.
	Reason string
	// APIKeyID is the ID of the API key operated on (OpAPIKeyCreate,
	// OpAPIKeyRevoke), never the key. Empty: not recorded.
	APIKeyID string
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
	// The line is the one slog's JSON handler writes (with the time in
	// UTC to the millisecond), encoded here: this runs on every
	// credential read, and slog spent more on it than the store did.
	bp := linePool.Get().(*[]byte)
	b := (*bp)[:0]
	b = append(b, `{"time":"`...)
	b = time.Now().UTC().AppendFormat(b, "2006-01-02T15:04:05.000Z07:00")
	b = append(b, `","level":"`...)
	b = append(b, level.String()...)
	b = append(b, `","msg":"`+Message+`","tenantId":`...)
	b = appendString(b, r.TenantID)
	b = append(b, `,"integration":`...)
	b = appendString(b, r.Integration)
	b = append(b, `,"operation":`...)
	b = appendString(b, r.Operation)
	b = append(b, `,"duration":`...)
	b = strconv.AppendFloat(b, milliseconds(r.Duration), 'f', -1, 64)
	b = append(b, `,"success":`...)
	b = strconv.AppendBool(b, success)
	b = append(b, `,"subject":`...)
	b = appendString(b, subject(ctx, r.Subject))
	if r.CallerTenant != "" {
		b = append(b, `,"callerTenantId":`...)
		b = appendString(b, r.CallerTenant)
	}
	if r.Reason != "" {
		b = append(b, `,"reason":`...)
		b = appendString(b, r.Reason)
	}
	if r.APIKeyID != "" {
		b = append(b, `,"apiKeyId":`...)
		b = appendString(b, r.APIKeyID)
	}
	if id := RequestID(ctx); id != "" {
		b = append(b, `,"requestId":`...)
		b = appendString(b, id)
	}
	if r.Err != nil {
		b = append(b, `,"error":`...)
		b = appendString(b, errorText(r.Err))
	}
	l.out.put(b) // one Write per record; errors surface in Close
	*bp = b
	linePool.Put(bp)
}

var linePool = sync.Pool{New: func() any { b := make([]byte, 0, 512); return &b }}

// appendString appends s as a JSON string, as slog does: as is when it
// needs no escape (the common case: IDs and names), else as encoding/json
// writes it without HTML escaping.
func appendString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f || c == '"' || c == '\\' {
			var buf bytes.Buffer
			enc := json.NewEncoder(&buf)
			enc.SetEscapeHTML(false)
			_ = enc.Encode(s)
			return append(b, bytes.TrimSuffix(buf.Bytes(), []byte("\n"))...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
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
