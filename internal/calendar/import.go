package calendar

import (
	"fmt"
	"strings"
	"time"
)

// DayChange is one date whose working-day status a new year's file changes.
type DayChange struct {
	Date time.Time // midnight in Shanghai
	// Before is the date as the current calendar has it. When its year is
	// not loaded (BeforeLoaded false) it is the plain rule instead: Monday
	// to Friday working, Saturday and Sunday off.
	Before       Day
	BeforeLoaded bool
	After        Day
}

// String is one line of the dry-run table, e.g.
//
//	2027-02-05 Fri  workday -> holiday (春节, Spring Festival)
//	2026-12-31 Thu  workday -> holiday (元旦, New Year's Day)
func (c DayChange) String() string {
	before := describe(c.Before)
	if !c.BeforeLoaded {
		before += " (no calendar)"
	}
	return c.Date.In(Shanghai).Format("2006-01-02 Mon") + "  " + before + " -> " + describe(c.After)
}

// describe is a Day's reason and holiday, without its date.
func describe(d Day) string {
	s := strings.TrimSpace(d.String()[len("2006-01-02 Mon "):])
	s = strings.TrimPrefix(s, "working ")
	s = strings.TrimPrefix(s, "off ")
	return strings.TrimSpace(s)
}

// Import reads a notice (ParseNotice), checks it, and reports how loading
// it into current would change each date: the dry run that an operator
// sees before confirming. It changes nothing; load the result with
// (*Calendar).Add or write it with EncodeYear. current may be nil (nothing
// loaded). Errors are a *NoticeError, a *CheckError, or a conflict with an
// adjoining loaded year on a date they share.
func Import(text string, current *Calendar) (*Year, []DayChange, error) {
	y, err := ParseNotice(text)
	if err != nil {
		return nil, nil, err
	}
	changes, err := Changes(*y, current)
	if err != nil {
		return nil, nil, err
	}
	return y, changes, nil
}

// Changes reports how loading y into current (which may be nil) would
// change each date, in date order.
func Changes(y Year, current *Calendar) ([]DayChange, error) {
	var before *snapshot
	var after *snapshot
	var err error
	if current != nil {
		before = current.cur.Load()
		after, err = current.with(y)
	} else {
		after, err = build(map[int]Year{y.Year: y})
	}
	if err != nil {
		return nil, err
	}
	first := time.Date(y.Year, time.January, 1, 0, 0, 0, 0, Shanghai).AddDate(0, 0, -adjoiningDays)
	last := time.Date(y.Year, time.December, 31, 0, 0, 0, 0, Shanghai).AddDate(0, 0, adjoiningDays)
	var out []DayChange
	for d := first; !d.After(last); d = d.AddDate(0, 0, 1) {
		if _, err := after.date(d); err != nil {
			continue // a neighbouring year that is not loaded: the calendar cannot answer for it either way
		}
		ch := DayChange{Date: d, After: after.day(d)}
		if before != nil {
			if _, err := before.date(d); err == nil {
				ch.Before, ch.BeforeLoaded = before.day(d), true
			}
		}
		if !ch.BeforeLoaded {
			ch.Before = plainDay(d)
		}
		if ch.Before.Working != ch.After.Working || ch.Before.Reason != ch.After.Reason || ch.Before.Holiday != ch.After.Holiday {
			out = append(out, ch)
		}
	}
	return out, nil
}

// plainDay is d under no calendar: Monday to Friday working.
func plainDay(d time.Time) Day {
	if wd := d.Weekday(); wd == time.Saturday || wd == time.Sunday {
		return Day{Date: d, Reason: ReasonWeekend}
	}
	return Day{Date: d, Working: true, Reason: ReasonWorkday}
}

// FormatChanges renders changes as the dry-run table: a line a date, and a
// last line counting them.
func FormatChanges(changes []DayChange) string {
	var b strings.Builder
	for _, c := range changes {
		b.WriteString(c.String())
		b.WriteByte('\n')
	}
	switch len(changes) {
	case 0:
		b.WriteString("no day changes\n")
	case 1:
		b.WriteString("1 day changes\n")
	default:
		fmt.Fprintf(&b, "%d days change\n", len(changes))
	}
	return b.String()
}
