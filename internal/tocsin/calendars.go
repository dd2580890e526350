package tocsin

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// AuditCalendarLoaded is the audit action of a calendar year loaded at run
// time; its target is CalendarTarget(year).
const AuditCalendarLoaded = "calendar_loaded"

// CalendarTarget is the audit target of a calendar year.
func CalendarTarget(year int) string { return fmt.Sprintf("calendar-%d", year) }

// WarnFrom is the day of the year from which a missing next year is
// warned about: the State Council publishes its notice in November, and
// from mid-December ordinary filings reach into the next year.
const WarnFrom = time.November

// CalendarGap is trouble ahead: next year's calendar is missing, and from
// FirstRefused on, ordinary filings (whose earliest send date falls in
// that year) are refused.
type CalendarGap struct {
	Year         int
	FirstRefused time.Time // a date in Shanghai
}

// Message says it in English, for logs and readiness.
func (g CalendarGap) Message() string {
	return fmt.Sprintf("the %d calendar is not loaded: ordinary filings from %s will be refused until it is",
		g.Year, g.FirstRefused.Format(DateLayout))
}

// DaysLeft is how many days remain before the first refused filing date.
func (g CalendarGap) DaysLeft(now time.Time) int {
	return int(g.FirstRefused.Sub(DateOf(now)).Hours() / 24)
}

// CalendarGap reports, from 1 November while next year's calendar is
// missing, the missing year and the first filing date that will be refused
// for want of it.
func (s *Service) CalendarGap() (CalendarGap, bool) {
	today := DateOf(s.now())
	if today.Month() < WarnFrom {
		return CalendarGap{}, false
	}
	// The 10th working day after any filing lies within a month of it, so
	// the first refused filing date is within the next two months.
	for d := today; d.Before(today.AddDate(0, 2, 0)); d = d.AddDate(0, 0, 1) {
		_, err := s.Calendar.EarliestSendDate(d)
		var missing interface{ MissingYear() int }
		if errors.As(err, &missing) {
			return CalendarGap{Year: missing.MissingYear(), FirstRefused: d}, true
		}
		if err != nil {
			return CalendarGap{}, false
		}
	}
	return CalendarGap{}, false
}

// AuthorizeCalendarLoad says whether a may load calendar years: only the
// system operator.
func AuthorizeCalendarLoad(a Actor) error {
	if a.Role != RoleAdmin {
		return Errorf(CodeForbidden, "only the system operator (admin) may load calendars")
	}
	return nil
}

// RecordCalendarLoad audits a calendar year loaded by a, then fills in the
// post-hoc due dates that were pending for want of it.
func (s *Service) RecordCalendarLoad(ctx context.Context, a Actor, year int, source string) error {
	if err := AuthorizeCalendarLoad(a); err != nil {
		return err
	}
	err := s.Store.Update(ctx, func(tx Tx) error {
		return tx.Audit(AuditEntry{At: s.now(), Action: AuditCalendarLoaded, Org: a.Org, By: a.Subject,
			Source: SourceFrom(ctx), Target: CalendarTarget(year), Note: source})
	})
	if err != nil {
		return fmt.Errorf("audit calendar %d: %w", year, err)
	}
	_, err = s.FillPendingDueDates(ctx)
	return err
}

// CalendarLoads returns, for each year, the last time it was loaded at run
// time (audit entry), if ever.
func (s *Service) CalendarLoads(ctx context.Context, years []int) (map[int]AuditEntry, error) {
	out := map[int]AuditEntry{}
	err := s.Store.View(ctx, func(tx ReadTx) error {
		for _, y := range years {
			entries, err := tx.Timeline(CalendarTarget(y))
			if err != nil {
				return err
			}
			if len(entries) > 0 {
				out[y] = entries[len(entries)-1]
			}
		}
		return nil
	})
	return out, err
}

// FillPendingDueDates computes the post-hoc due dates that were pending
// for want of a calendar year, now that it may be loaded, and returns how
// many it filled.
func (s *Service) FillPendingDueDates(ctx context.Context) (int, error) {
	var ids []string
	emergency := true
	err := s.Store.View(ctx, func(tx ReadTx) error {
		return eachBroadcast(tx, Query{Emergency: &emergency}, func(b *Broadcast) {
			if b.PostHoc != nil && b.PostHoc.DuePending && b.ReleasedAt != nil {
				ids = append(ids, b.ID)
			}
		})
	})
	if err != nil {
		return 0, err
	}
	filled := 0
	for _, id := range ids {
		b, err := s.change(ctx, id, func(tx Tx, b *Broadcast, now time.Time) error {
			p := b.PostHoc
			if p == nil || !p.DuePending || b.ReleasedAt == nil {
				return nil
			}
			due, err := s.Calendar.AddWorkingDays(*b.ReleasedAt, s.postHocDays())
			if err != nil {
				return nil // still missing
			}
			p.DueDate, p.DuePending = due.Format(DateLayout), false
			b.record(now, Actor{}, "post_hoc_due_set", b.Status, "due "+p.DueDate, map[string]any{ParamDue: p.DueDate})
			return nil
		})
		if err != nil {
			return filled, err
		}
		if !b.PostHoc.DuePending {
			filled++
		}
	}
	return filled, nil
}

func (s *Service) postHocDays() int {
	if s.PostHocWorkingDays <= 0 {
		return DefaultPostHocWorkingDays
	}
	return s.PostHocWorkingDays
}
