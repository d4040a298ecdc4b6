// Package limits owns the per-tenant rate limits and quotas of tool
// calls: calls per minute with a burst (token buckets of
// golang.org/x/time/rate), calls in flight at once, and daily and monthly
// call quotas, each for a tenant as a whole and for one of its
// integrations.
//
// # Overview
//
// A [Limiter] holds the defaults every tenant has and the state of each
// tenant (and tenant and integration) that has called lately, in sharded
// maps: admitting a call takes no lock shared by all tenants and
// allocates nothing. A tenant's own limits, an [Override], are kept with
// its settings (by the caller: this package stores nothing) and given to
// [Limiter.Admit] with each call; a field it sets replaces the default.
// Idle state is dropped by [Limiter.Reap], which the caller runs now and
// then.
//
// # Usage
//
//	lim := limits.New(limits.Options{Defaults: limits.Limits{CallsPerMinute: 600}})
//	t, refused := lim.Admit(tenant, integration, override)
//	if refused != nil {
//		// answer refused.Error(); retry after refused.RetryAfter
//	}
//	defer t.Release()
package limits

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
)

// The limits' names, as refusals, metrics and the audit trail name them.
const (
	LimitCallsPerMinute  = "calls_per_minute"
	LimitConcurrentCalls = "concurrent_calls"
	LimitDailyCalls      = "daily_calls"
	LimitMonthlyCalls    = "monthly_calls"
	// LimitUpstream is an upstream's own rate limit: it answered HTTP 429
	// with Retry-After, and the tenant's calls of it wait that long here.
	LimitUpstream = "upstream_rate_limit"
	// LimitSaturated is the gateway's own capacity (Fair), not a tenant's:
	// its calls in flight at once, shared among tenants in turn.
	LimitSaturated = "gateway_saturated"
	// LimitStdioProcesses is a tenant's stdio upstream processes running
	// at once on a replica, every one busy (an idle one is closed to make
	// room instead).
	LimitStdioProcesses = "stdio_processes"
)

// Limits are the limits of a tenant, or of one integration of a tenant.
// Zero in a field means no limit.
type Limits struct {
	// CallsPerMinute is the sustained rate of calls; Burst how many may
	// come at once after a quiet spell (zero: CallsPerMinute).
	CallsPerMinute int64 `json:"callsPerMinute"`
	Burst          int64 `json:"burst"`
	// ConcurrentCalls bounds the calls in flight at once.
	ConcurrentCalls int64 `json:"concurrentCalls"`
	// DailyCalls and MonthlyCalls are quotas of calls per UTC day and
	// per UTC calendar month.
	DailyCalls   int64 `json:"dailyCalls"`
	MonthlyCalls int64 `json:"monthlyCalls"`
	// StdioProcesses bounds the stdio upstream processes a tenant has
	// running at once on a replica (a tenant's only: an integration has
	// one process at most).
	StdioProcesses int64 `json:"stdioProcesses,omitempty"`
}

// Max is the most each field may be: past it a value is a mistake (or an
// attack on the gateway's arithmetic), never a real limit.
var Max = Limits{
	CallsPerMinute:  1_000_000,
	Burst:           1_000_000,
	ConcurrentCalls: 100_000,
	DailyCalls:      1_000_000_000,
	MonthlyCalls:    100_000_000_000,
	StdioProcesses:  10_000,
}

// any reports whether l limits anything (a burst alone does not).
func (l Limits) any() bool {
	return l.CallsPerMinute|l.ConcurrentCalls|l.DailyCalls|l.MonthlyCalls != 0
}

// burst is the bucket's size.
func (l Limits) burst() int {
	if l.Burst > 0 {
		return int(l.Burst)
	}
	return int(l.CallsPerMinute)
}

// check refuses a field outside 0 to Max, naming it after prefix.
func (l Limits) check(prefix string) error {
	for _, f := range []struct {
		name     string
		v, limit int64
	}{
		{"callsPerMinute", l.CallsPerMinute, Max.CallsPerMinute},
		{"burst", l.Burst, Max.Burst},
		{"concurrentCalls", l.ConcurrentCalls, Max.ConcurrentCalls},
		{"dailyCalls", l.DailyCalls, Max.DailyCalls},
		{"monthlyCalls", l.MonthlyCalls, Max.MonthlyCalls},
		{"stdioProcesses", l.StdioProcesses, Max.StdioProcesses},
	} {
		if f.v < 0 || f.v > f.limit {
			return &FieldError{Field: prefix + f.name, Msg: fmt.Sprintf("must be a whole number from 0 (no limit) to %d", f.limit)}
		}
	}
	return nil
}

// Override is a tenant's own limits. A field set replaces the default of
// every tenant (zero: no limit for this tenant); one not set keeps it.
// Integrations are limits of the tenant's calls of one integration, on
// top of the tenant's; they have no defaults.
type Override struct {
	CallsPerMinute  *int64            `json:"callsPerMinute,omitempty"`
	Burst           *int64            `json:"burst,omitempty"`
	ConcurrentCalls *int64            `json:"concurrentCalls,omitempty"`
	DailyCalls      *int64            `json:"dailyCalls,omitempty"`
	MonthlyCalls    *int64            `json:"monthlyCalls,omitempty"`
	StdioProcesses  *int64            `json:"stdioProcesses,omitempty"`
	Integrations    map[string]Limits `json:"integrations,omitempty"`
}

// Apply returns defaults with o's fields in place of theirs; a nil o
// leaves them.
func (o *Override) Apply(defaults Limits) Limits {
	if o == nil {
		return defaults
	}
	l := defaults
	// Field by field, not through a table: this runs on every call, and
	// a table of pointers into l would put l on the heap.
	if o.CallsPerMinute != nil {
		l.CallsPerMinute = *o.CallsPerMinute
	}
	if o.Burst != nil {
		l.Burst = *o.Burst
	}
	if o.ConcurrentCalls != nil {
		l.ConcurrentCalls = *o.ConcurrentCalls
	}
	if o.DailyCalls != nil {
		l.DailyCalls = *o.DailyCalls
	}
	if o.MonthlyCalls != nil {
		l.MonthlyCalls = *o.MonthlyCalls
	}
	if o.StdioProcesses != nil {
		l.StdioProcesses = *o.StdioProcesses
	}
	return l
}

// Integration returns o's limits of integration (none: zero).
func (o *Override) Integration(integration string) Limits {
	if o == nil {
		return Limits{}
	}
	return o.Integrations[integration]
}

// Effective are the limits in force for a tenant: the defaults with its
// override applied, and its integrations' own.
type Effective struct {
	Limits
	Integrations map[string]Limits `json:"integrations"`
}

// EffectiveOf returns the limits in force with defaults and o.
func EffectiveOf(defaults Limits, o *Override) Effective {
	e := Effective{Limits: o.Apply(defaults), Integrations: map[string]Limits{}}
	if o != nil {
		for name, l := range o.Integrations {
			e.Integrations[name] = l
		}
	}
	return e
}

// Marshal returns the stored form of o.
func (o *Override) Marshal() []byte {
	b, _ := json.Marshal(o) // numbers and a map of them: cannot fail
	return b
}

// ParseOverride reads a stored override; nil or empty is none (nil).
func ParseOverride(rec []byte) (*Override, error) {
	if len(rec) == 0 || string(rec) == "null" {
		return nil, nil
	}
	var o Override
	if err := json.Unmarshal(rec, &o); err != nil {
		return nil, fmt.Errorf("tenant limits: %w", err)
	}
	return &o, nil
}

// FieldError is an override refused, naming the field at fault (empty:
// the body as a whole).
type FieldError struct {
	Field string
	Msg   string
}

func (e *FieldError) Error() string {
	if e.Field == "" {
		return e.Msg
	}
	return e.Field + ": " + e.Msg
}

// DecodeOverride reads an override sent by an admin, as
//
//	{"callsPerMinute": 600, "burst": 60, "concurrentCalls": 8,
//	 "dailyCalls": 50000, "monthlyCalls": 1000000, "stdioProcesses": 4,
//	 "integrations": {"notion": {"callsPerMinute": 120}}}
//
// known reports whether an integration is registered. Anything else (a
// field not of the shape, a value that is not a whole number from 0 to
// its Max, an unknown integration, more than one JSON value) is a
// *FieldError naming the field; none repeats a value.
func DecodeOverride(raw []byte, known func(integration string) bool) (*Override, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || raw[0] != '{' {
		return nil, &FieldError{Msg: "the body must be a JSON object"}
	}
	// Each integration's limits are decoded on their own, so that an
	// error names the integration (encoding/json's paths leave out map
	// keys).
	var body struct {
		Override
		Integrations map[string]json.RawMessage `json:"integrations"`
	}
	if err := decodeStrict(raw, &body); err != nil {
		return nil, decodeError(err, "")
	}
	o := body.Override
	if err := o.Apply(Limits{}).check(""); err != nil {
		return nil, err
	}
	for _, name := range slices.Sorted(maps.Keys(body.Integrations)) { // the same error for the same body
		entry := body.Integrations[name]
		if !known(name) {
			if !plainName(name) {
				return nil, &FieldError{Field: "integrations", Msg: "names an integration that is not registered"}
			}
			return nil, &FieldError{Field: "integrations." + name, Msg: "is not a registered integration"}
		}
		var l Limits
		if string(entry) != "null" {
			if err := decodeStrict(entry, &l); err != nil {
				return nil, decodeError(err, "integrations."+name+".")
			}
		}
		if err := l.check("integrations." + name + "."); err != nil {
			return nil, err
		}
		if l.StdioProcesses != 0 {
			return nil, &FieldError{Field: "integrations." + name + ".stdioProcesses", Msg: "is the tenant's alone (an integration runs one process at most): set stdioProcesses beside integrations"}
		}
		if o.Integrations == nil {
			o.Integrations = map[string]Limits{}
		}
		o.Integrations[name] = l
	}
	return &o, nil
}

// decodeStrict decodes raw, one JSON object of v's fields only, into v.
func decodeStrict(raw []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if _, err := dec.Token(); err != io.EOF {
		return errors.New("more than one JSON value")
	}
	return nil
}

// decodeError is the *FieldError of a decoding error, without its value;
// prefix comes before the field's name.
func decodeError(err error, prefix string) error {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) && te.Field != "" {
		field := strings.TrimPrefix(te.Field, "Override.")
		switch {
		case !plainPath(field):
			return &FieldError{Msg: "the body must be one JSON object of limits"}
		case prefix == "" && field == "integrations":
			return &FieldError{Field: field, Msg: "must be an object: integration names and their limits"}
		}
		return &FieldError{Field: prefix + field, Msg: "must be a whole number from 0 (no limit) to its maximum"}
	}
	if msg := err.Error(); strings.HasPrefix(msg, "json: unknown field ") {
		name := strings.Trim(strings.TrimPrefix(msg, "json: unknown field "), `"`)
		if !plainName(name) {
			return &FieldError{Msg: "the body has a field that is not part of the request"}
		}
		return &FieldError{Field: prefix + name, Msg: "is not part of the request (fields: callsPerMinute, burst, concurrentCalls, dailyCalls, monthlyCalls, stdioProcesses, integrations)"}
	}
	if prefix != "" {
		return &FieldError{Field: strings.TrimSuffix(prefix, "."), Msg: "must be an object of limits"}
	}
	return &FieldError{Msg: "the body must be one JSON object"}
}

// plainName reports whether s is short and of letters, digits and '-'
// only: safe to repeat in an answer.
func plainName(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

// plainPath is plainName for a dotted path of them.
func plainPath(s string) bool {
	for part := range strings.SplitSeq(s, ".") {
		if !plainName(part) {
			return false
		}
	}
	return true
}
