// Package calendar answers working-day questions on the official calendar of
// the People's Republic of China: whether a date is a working day and why,
// and the earliest permitted send date of a non-emergency filing (the 10th
// working day after the filing date, the filing date itself never counting;
// PRC Civil Code art. 201).
//
// The calendar is data, not rules: each year is the State Council's holiday
// schedule (days off, and the weekend days that become working days, 调休),
// read from the files embedded in package calendars or supplied by an
// operator at run time. A date in a year with no loaded schedule is an error
// (*MissingYearError), never a guess. Working days are decided by
// github.com/rickar/cal/v2's BusinessCalendar.
//
// Every time.Time argument is interpreted as its calendar date in
// Asia/Shanghai, whatever its location; every returned time.Time is midnight
// in Asia/Shanghai.
package calendar

import (
	"fmt"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rickar/cal/v2"
)

// Shanghai is China Standard Time: UTC+8, no daylight saving since 1991.
var Shanghai = time.FixedZone("Asia/Shanghai", 8*60*60)

// EarliestWorkingDays is how many working days in advance a non-emergency
// filing must reach the regulator.
const EarliestWorkingDays = 10

// Reason says why a day is, or is not, a working day.
type Reason string

// The reasons a Day can carry.
const (
	ReasonWorkday       Reason = "workday"        // Monday to Friday, no holiday
	ReasonWeekend       Reason = "weekend"        // Saturday or Sunday, no make-up working day
	ReasonHoliday       Reason = "holiday"        // a day off in the State Council's schedule
	ReasonMakeUpWorkday Reason = "makeup_workday" // a weekend day worked in exchange for a holiday (调休上班)
)

// Day is one calendar date and its working-day status.
type Day struct {
	Date      time.Time // midnight in Shanghai
	Working   bool
	Reason    Reason
	Holiday   string // Chinese name of the holiday (the one compensated, for a make-up working day); empty otherwise
	HolidayEN string // English name, when the calendar file gives one
}

// String is the one-line human form, e.g.
//
//	2026-02-13 Fri working workday
//	2026-02-14 Sat working make-up working day (春节, Spring Festival)
//	2026-02-16 Mon off     holiday (春节, Spring Festival)
//	2026-03-07 Sat off     weekend
func (d Day) String() string {
	status := "off    "
	if d.Working {
		status = "working"
	}
	var why string
	switch d.Reason {
	case ReasonWorkday:
		why = "workday"
	case ReasonWeekend:
		why = "weekend"
	case ReasonHoliday:
		why = "holiday"
	case ReasonMakeUpWorkday:
		why = "make-up working day"
	default:
		why = string(d.Reason)
	}
	if d.Holiday != "" {
		if d.HolidayEN != "" {
			why += " (" + d.Holiday + ", " + d.HolidayEN + ")"
		} else {
			why += " (" + d.Holiday + ")"
		}
	}
	return d.Date.In(Shanghai).Format("2006-01-02 Mon") + " " + status + " " + why
}

// MissingYearError reports a date in a year for which no working-day
// calendar is loaded.
type MissingYearError struct{ Year int }

func (e *MissingYearError) Error() string {
	return fmt.Sprintf("no working-day calendar loaded for year %d", e.Year)
}

// MissingYear returns the year that has no calendar.
func (e *MissingYearError) MissingYear() int { return e.Year }

// Calendar is a set of loaded years. It is safe for concurrent use: readers
// see one consistent set of years per call, and Add swaps in a new set
// atomically while they run.
type Calendar struct {
	mu  sync.Mutex               // serialises Add; readers never take it
	cur atomic.Pointer[snapshot] // never nil after New
}

// snapshot is one immutable set of loaded years. Every query works on the
// snapshot it loaded at its start, so a year added meanwhile cannot change
// the answer halfway through a walk over working days.
type snapshot struct {
	bc     *cal.BusinessCalendar
	files  map[int]Year      // the checked files, deep copies
	makeup map[dayKey]string // make-up working day -> holiday it compensates
	en     map[dayKey]string // make-up working day -> English name of that holiday, if known
	sorted []int
	// added remembers addWorkingDays by (date, n): every emergency asks
	// for the same post-hoc due date all day, inside the store's single
	// writer, and rickar/cal walks its holiday list for each day counted.
	// A snapshot never changes, so neither do its answers.
	added sync.Map // addedKey -> time.Time
}

type addedKey struct {
	day dayKey
	n   int
}

type dayKey struct {
	y int
	m time.Month
	d int
}

func keyOf(t time.Time) dayKey {
	y, m, d := t.Date()
	return dayKey{y, m, d}
}

// New builds a calendar from the given years. A later Year with the same
// number replaces an earlier one entirely. Each Year must pass Check (the
// error is a *CheckError).
func New(years ...Year) (*Calendar, error) {
	chosen := make(map[int]Year)
	for _, y := range years {
		chosen[y.Year] = y
	}
	s, err := build(chosen)
	if err != nil {
		return nil, err
	}
	c := &Calendar{}
	c.cur.Store(s)
	return c, nil
}

// Add loads y, replacing a loaded year of the same number, for every query
// that starts after it returns; queries already running finish on the
// calendar they started with. y must pass Check (the error is then a
// *CheckError) and agree with the adjoining loaded years on the dates they
// share. On error the calendar is unchanged.
func (c *Calendar) Add(y Year) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	next, err := c.with(y)
	if err != nil {
		return err
	}
	c.cur.Store(next)
	return nil
}

// with returns the snapshot of c's years with y added or replaced.
func (c *Calendar) with(y Year) (*snapshot, error) {
	old := c.cur.Load()
	chosen := make(map[int]Year, len(old.files)+1)
	for n, f := range old.files {
		chosen[n] = f
	}
	chosen[y.Year] = y
	return build(chosen)
}

// File returns a copy of the loaded file of year n.
func (c *Calendar) File(n int) (Year, bool) {
	y, ok := c.cur.Load().files[n]
	if !ok {
		return Year{}, false
	}
	return y.clone(), true
}

// clone deep-copies y, so that neither the caller nor the calendar can
// change the other's copy.
func (y Year) clone() Year {
	out := y
	if y.Source != nil {
		src := *y.Source
		out.Source = &src
	}
	out.Sources = append([]string(nil), y.Sources...)
	out.Holidays = append([]Holiday(nil), y.Holidays...)
	out.Workdays = append([]MakeUpDay(nil), y.Workdays...)
	return out
}

// build checks the chosen years and makes their snapshot. A date that two
// files both schedule (New Year's Day of one year falling in the last days
// of the one before) must be scheduled the same way by both.
func build(chosen map[int]Year) (*snapshot, error) {
	s := &snapshot{
		bc:     cal.NewBusinessCalendar(),
		files:  make(map[int]Year, len(chosen)),
		makeup: make(map[dayKey]string),
		en:     make(map[dayKey]string),
	}
	for n := range chosen {
		s.sorted = append(s.sorted, n)
	}
	sort.Ints(s.sorted)
	type claim struct {
		year    int
		makeup  bool
		holiday string
	}
	claims := make(map[dayKey]claim)
	take := func(year int, d time.Time, makeup bool, holiday string) (bool, error) {
		k := keyOf(d)
		prev, ok := claims[k]
		if !ok {
			claims[k] = claim{year, makeup, holiday}
			return true, nil
		}
		if prev.makeup != makeup || prev.holiday != holiday {
			what := func(c claim) string {
				if c.makeup {
					return "a make-up working day for " + c.holiday
				}
				return "a day off of " + c.holiday
			}
			return false, fmt.Errorf("calendar: %s is %s in the %d calendar but %s in the %d calendar",
				d.Format(dateLayout), what(prev), prev.year, what(claim{year, makeup, holiday}), year)
		}
		return false, nil
	}
	for _, n := range s.sorted {
		y := chosen[n]
		p, vs := check(y)
		if len(vs) > 0 {
			return nil, fmt.Errorf("calendar: %w", &CheckError{Year: y.Year, Violations: vs})
		}
		s.files[n] = y.clone()
		for _, h := range p.holidays {
			for d := h.from; !d.After(h.to); d = d.AddDate(0, 0, 1) {
				fresh, err := take(n, d, false, h.name)
				if err != nil {
					return nil, err
				}
				if !fresh {
					continue
				}
				s.bc.AddHoliday(&cal.Holiday{
					Name:        h.name,
					Description: h.nameEN,
					Type:        cal.ObservancePublic,
					StartYear:   d.Year(),
					EndYear:     d.Year(),
					Month:       d.Month(),
					Day:         d.Day(),
					Func:        calcShanghai,
				})
			}
		}
		for _, m := range p.makeup {
			fresh, err := take(n, m.date, true, m.forName)
			if err != nil {
				return nil, err
			}
			if !fresh {
				continue
			}
			k := keyOf(m.date)
			s.makeup[k] = m.forName
			if en, ok := p.nameEN[m.forName]; ok {
				s.en[k] = en
			}
		}
	}
	// Saturdays and Sundays are days off unless they are make-up working
	// days; the holidays added above are then removed by IsWorkday itself.
	// The closure only reads s.makeup, which never changes after build.
	s.bc.WorkdayFunc = func(date time.Time) bool {
		switch date.Weekday() {
		case time.Saturday, time.Sunday:
			_, ok := s.makeup[keyOf(date)]
			return ok
		}
		return true
	}
	// s.bc.Cacheable stays false: the cache is a map written by IsHoliday,
	// which would make concurrent reads a data race.
	return s, nil
}

// calcShanghai is cal.CalcDayOfMonth in Shanghai rather than cal.DefaultLoc
// (the process's local zone).
func calcShanghai(h *cal.Holiday, year int) time.Time {
	return time.Date(year, h.Month, h.Day, 0, 0, 0, 0, Shanghai)
}

// Years returns the loaded years in ascending order.
func (c *Calendar) Years() []int {
	return append([]int(nil), c.cur.Load().sorted...)
}

// date returns t's calendar date in Shanghai at midnight, or a
// *MissingYearError if its year is not loaded.
func (c *snapshot) date(t time.Time) (time.Time, error) {
	y, m, d := t.In(Shanghai).Date()
	if _, ok := c.files[y]; !ok {
		return time.Time{}, &MissingYearError{Year: y}
	}
	return time.Date(y, m, d, 0, 0, 0, 0, Shanghai), nil
}

// nextDay returns the day after d (midnight Shanghai), or a
// *MissingYearError if that day's year is not loaded.
func (c *snapshot) nextDay(d time.Time) (time.Time, error) {
	return c.date(d.AddDate(0, 0, 1))
}

// Day reports d's date and its working-day status.
func (c *Calendar) Day(d time.Time) (Day, error) {
	s := c.cur.Load()
	date, err := s.date(d)
	if err != nil {
		return Day{}, err
	}
	return s.day(date), nil
}

// day classifies a date already normalised by c.date.
func (c *snapshot) day(date time.Time) Day {
	out := Day{Date: date, Working: c.bc.IsWorkday(date)}
	k := keyOf(date)
	if name, ok := c.makeup[k]; ok {
		out.Reason = ReasonMakeUpWorkday
		out.Holiday = name
		out.HolidayEN = c.en[k]
		return out
	}
	if _, observed, h := c.bc.IsHoliday(date); observed && h != nil {
		out.Reason = ReasonHoliday
		out.Holiday = h.Name
		out.HolidayEN = h.Description
		return out
	}
	switch date.Weekday() {
	case time.Saturday, time.Sunday:
		out.Reason = ReasonWeekend
	default:
		out.Reason = ReasonWorkday
	}
	return out
}

// IsWorkingDay reports whether d's date is a working day.
func (c *Calendar) IsWorkingDay(d time.Time) (bool, error) {
	return c.cur.Load().isWorkingDay(d)
}

func (c *snapshot) isWorkingDay(d time.Time) (bool, error) {
	date, err := c.date(d)
	if err != nil {
		return false, err
	}
	return c.bc.IsWorkday(date), nil
}

// AddWorkingDays returns the n-th working day strictly after d's date; d's
// date itself never counts, working day or not. n must be at least 1.
func (c *Calendar) AddWorkingDays(d time.Time, n int) (time.Time, error) {
	return c.cur.Load().addWorkingDays(d, n)
}

func (c *snapshot) addWorkingDays(d time.Time, n int) (time.Time, error) {
	if n < 1 {
		return time.Time{}, fmt.Errorf("calendar: working-day count must be at least 1, got %d", n)
	}
	date, err := c.date(d)
	if err != nil {
		return time.Time{}, err
	}
	key := addedKey{keyOf(date), n}
	if v, ok := c.added.Load(key); ok {
		return v.(time.Time), nil
	}
	for left := n; left > 0; {
		if date, err = c.nextDay(date); err != nil {
			return time.Time{}, err // not remembered: a year loaded later answers it
		}
		if c.bc.IsWorkday(date) {
			left--
		}
	}
	c.added.Store(key, date)
	return date, nil
}

// EarliestSendDate returns the earliest permitted send date of a
// non-emergency filing made on filed's date: the EarliestWorkingDays-th
// working day after it. Sending on that date or later is allowed.
func (c *Calendar) EarliestSendDate(filed time.Time) (time.Time, error) {
	return c.cur.Load().addWorkingDays(filed, EarliestWorkingDays)
}

// WorkingDaysBetween counts the working days in (from, to]: from's date
// excluded, to's date included. It is 0 if to's date is not after from's.
func (c *Calendar) WorkingDaysBetween(from, to time.Time) (int, error) {
	return c.cur.Load().workingDaysBetween(from, to)
}

func (c *snapshot) workingDaysBetween(from, to time.Time) (int, error) {
	f, err := c.date(from)
	if err != nil {
		return 0, err
	}
	t, err := c.date(to)
	if err != nil {
		return 0, err
	}
	n := 0
	d := f
	for d.Before(t) {
		if d, err = c.nextDay(d); err != nil {
			return 0, err
		}
		if c.bc.IsWorkday(d) {
			n++
		}
	}
	return n, nil
}

// Days returns every date from from's date to to's date, both included. It
// is an error if to's date is before from's.
func (c *Calendar) Days(from, to time.Time) ([]Day, error) {
	return c.cur.Load().days(from, to)
}

func (c *snapshot) days(from, to time.Time) ([]Day, error) {
	f, err := c.date(from)
	if err != nil {
		return nil, err
	}
	t, err := c.date(to)
	if err != nil {
		return nil, err
	}
	if t.Before(f) {
		return nil, fmt.Errorf("calendar: range end %s is before its start %s",
			t.Format(dateLayout), f.Format(dateLayout))
	}
	var out []Day
	d := f
	for {
		out = append(out, c.day(d))
		if !d.Before(t) {
			return out, nil
		}
		if d, err = c.nextDay(d); err != nil {
			return nil, err
		}
	}
}
