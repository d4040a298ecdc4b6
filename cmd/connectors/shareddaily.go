package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/connectors-gateway/connectors/metrics"
)

// Daily usage, shared: the flush that adds a tenant's totals to its record
// "usage" (shared.go) adds its daily figures (metrics.DayFigures) to one
// record per UTC day, "usage-daily/day-NN", NN the day's number (days since
// 1970-01-01) modulo metrics.DaysKept: a tenant has at most DaysKept of
// them, each reused DaysKept days later. A record holds its date and every
// integration's figures of that day (at most 64 integrations of a few
// hundred bytes: far below vault.MaxRecordSize); one naming an earlier date
// is read as none and replaced, figures older than the record's date are
// dropped (they are past the days kept). The daily route reads the records
// of the days asked for (one read each) and adds this replica's unflushed
// figures, so a call on another replica shows within one flush interval.

// usageDailyRecordPrefix begins the name of a daily usage record.
const usageDailyRecordPrefix = "usage-daily/day-"

// dailyRecord is the record of one UTC day's figures of a tenant.
type dailyRecord struct {
	Date    string               `json:"date"`
	Figures []metrics.DayFigures `json:"figures"`
}

// usageDelta is what one flush adds for one tenant: its totals (nil when
// only daily figures are left to flush) and its daily figures.
type usageDelta struct {
	tenant string
	total  *metrics.TenantUsage
	days   []metrics.DayFigures
}

// usageDeltas pairs each tenant's unflushed totals with its unflushed
// daily figures: those whose totals flushed but whose days did not are
// flushed again, alone.
func usageDeltas(totals []metrics.TenantUsage, daily []metrics.TenantDays) []usageDelta {
	out := make([]usageDelta, 0, max(len(totals), len(daily)))
	at := make(map[string]int, len(totals))
	for i := range totals {
		at[totals[i].TenantID] = len(out)
		out = append(out, usageDelta{tenant: totals[i].TenantID, total: &totals[i]})
	}
	for _, d := range daily {
		if i, ok := at[d.TenantID]; ok {
			out[i].days = d.Days
			continue
		}
		out = append(out, usageDelta{tenant: d.TenantID, days: d.Days})
	}
	return out
}

// dailyRecordName is the name of the record of date's figures.
func dailyRecordName(date string) (string, error) {
	d, err := time.Parse(time.DateOnly, date)
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("%s%02d", usageDailyRecordPrefix, d.Unix()/86400%metrics.DaysKept), nil
}

// flushDays adds days, a tenant's unflushed daily figures, to its daily
// records, a day at a time; what it could not add stays unflushed.
func (s *sharedUsage) flushDays(ctx context.Context, tenant string, days []metrics.DayFigures) error {
	var errs []error
	for start := 0; start < len(days); {
		end := start + 1
		for end < len(days) && days[end].Date == days[start].Date {
			end++
		}
		errs = append(errs, s.flushDay(ctx, tenant, days[start].Date, days[start:end]))
		start = end
	}
	return errors.Join(errs...)
}

// flushDay adds figs, a tenant's figures of date, to the day's record with
// check-and-set, re-reading on conflict.
func (s *sharedUsage) flushDay(parent context.Context, tenant, date string, figs []metrics.DayFigures) error {
	name, err := dailyRecordName(date)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(parent, sharedTimeout)
	defer cancel()
	err = s.checkAndSet(ctx, tenant, name, func() ([]byte, int64, error) {
		stored, held, version, err := s.readDay(ctx, tenant, name)
		if err != nil || held > date {
			// Past a failure, or the record has moved on to a later day:
			// then figs are older than the days kept, and dropped.
			return nil, 0, err
		}
		if held != date {
			stored = nil
		}
		rec, err := json.Marshal(dailyRecord{Date: date, Figures: metrics.SumDays(stored, figs)})
		return rec, version, err
	})
	if err != nil {
		return err
	}
	s.usage.FlushedDaily(tenant, figs)
	return nil
}

// readDay returns the record name's figures, the date they are of and the
// record's version; a record that does not parse is logged and read as
// none (the next flush of its day replaces it).
func (s *sharedUsage) readDay(ctx context.Context, tenant, name string) ([]metrics.DayFigures, string, int64, error) {
	rec, version, err := s.store.GetTenantRecord(ctx, tenant, name)
	if err != nil || rec == nil {
		return nil, "", version, err
	}
	d, err := parseDaily(rec)
	if err != nil {
		s.log.Warn("shared_record_malformed", "tenantId", tenant, "record", name, "error", err)
		return nil, "", version, nil
	}
	return d.Figures, d.Date, version, nil
}

// parseDaily reads a daily usage record: a date, and figures of that date
// that pass metrics.DayFigures.Check, one per integration.
func parseDaily(rec []byte) (dailyRecord, error) {
	var d dailyRecord
	if err := json.Unmarshal(rec, &d); err != nil {
		return d, err
	}
	if _, err := time.Parse(time.DateOnly, d.Date); err != nil {
		return d, fmt.Errorf("date %q: not YYYY-MM-DD", d.Date)
	}
	seen := make(map[string]bool, len(d.Figures))
	for _, f := range d.Figures {
		if f.Date != d.Date || seen[f.Integration] {
			return d, fmt.Errorf("figures of %s %s in the record of %s", f.Date, f.Integration, d.Date)
		}
		seen[f.Integration] = true
		if err := f.Check(); err != nil {
			return d, err
		}
	}
	return d, nil
}

// Daily is the daily usage route's view: the tenant's stored figures of
// the last days days (UTC, today included), plus this replica's
// unflushed ones.
func (s *sharedUsage) Daily(ctx context.Context, tenant string, days int) (metrics.DailyUsage, error) {
	ctx, cancel := context.WithTimeout(ctx, sharedTimeout)
	defer cancel()
	now := time.Now().UTC()
	days = min(max(days, 1), metrics.DaysKept)
	var stored []metrics.DayFigures
	for i := range days {
		date := now.AddDate(0, 0, -i).Format(time.DateOnly)
		name, err := dailyRecordName(date)
		if err != nil {
			return metrics.DailyUsage{}, err
		}
		figs, held, _, err := s.readDay(ctx, tenant, name)
		if err != nil {
			return metrics.DailyUsage{}, err
		}
		if held == date {
			stored = append(stored, figs...)
		}
	}
	return metrics.NewDailyUsage(tenant, now, days, stored, s.usage.Days(tenant)), nil
}
