package calendar_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tocsin-dev/tocsin/internal/calendar"
)

// The expected schedules, typed in from shared/reference/cn-holidays.md (the
// State Council notices), independently of calendars/cn/*.json.
type span struct{ from, to, name string }
type makeUp struct{ date, forName string }

var wantHolidays = map[int][]span{
	2024: {
		{"2024-01-01", "2024-01-01", "元旦"},
		{"2024-02-10", "2024-02-17", "春节"},
		{"2024-04-04", "2024-04-06", "清明节"},
		{"2024-05-01", "2024-05-05", "劳动节"},
		{"2024-06-10", "2024-06-10", "端午节"},
		{"2024-09-15", "2024-09-17", "中秋节"},
		{"2024-10-01", "2024-10-07", "国庆节"},
	},
	2025: {
		{"2025-01-01", "2025-01-01", "元旦"},
		{"2025-01-28", "2025-02-04", "春节"},
		{"2025-04-04", "2025-04-06", "清明节"},
		{"2025-05-01", "2025-05-05", "劳动节"},
		{"2025-05-31", "2025-06-02", "端午节"},
		{"2025-10-01", "2025-10-08", "国庆节、中秋节"},
	},
	2026: {
		{"2026-01-01", "2026-01-03", "元旦"},
		{"2026-02-15", "2026-02-23", "春节"},
		{"2026-04-04", "2026-04-06", "清明节"},
		{"2026-05-01", "2026-05-05", "劳动节"},
		{"2026-06-19", "2026-06-21", "端午节"},
		{"2026-09-25", "2026-09-27", "中秋节"},
		{"2026-10-01", "2026-10-07", "国庆节"},
	},
}

var wantMakeUp = map[int][]makeUp{
	2024: {
		{"2024-02-04", "春节"}, {"2024-02-18", "春节"}, {"2024-04-07", "清明节"},
		{"2024-04-28", "劳动节"}, {"2024-05-11", "劳动节"}, {"2024-09-14", "中秋节"},
		{"2024-09-29", "国庆节"}, {"2024-10-12", "国庆节"},
	},
	2025: {
		{"2025-01-26", "春节"}, {"2025-02-08", "春节"}, {"2025-04-27", "劳动节"},
		{"2025-09-28", "国庆节、中秋节"}, {"2025-10-11", "国庆节、中秋节"},
	},
	2026: {
		{"2026-01-04", "元旦"}, {"2026-02-14", "春节"}, {"2026-02-28", "春节"},
		{"2026-05-09", "劳动节"}, {"2026-09-20", "国庆节"}, {"2026-10-10", "国庆节"},
	},
}

// day parses YYYY-MM-DD as midnight in Shanghai.
func day(t testing.TB, s string) time.Time {
	t.Helper()
	d, err := time.ParseInLocation("2006-01-02", s, calendar.Shanghai)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func load(t testing.TB) *calendar.Calendar {
	t.Helper()
	c, err := calendar.Load("")
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	return c
}

func eachDay(t testing.TB, from, to string, f func(time.Time)) {
	t.Helper()
	for d := day(t, from); !d.After(day(t, to)); d = d.AddDate(0, 0, 1) {
		f(d)
	}
}

func TestEmbeddedYears(t *testing.T) {
	c := load(t)
	if got, want := c.Years(), []int{2024, 2025, 2026}; !reflect.DeepEqual(got, want) {
		t.Fatalf("Years() = %v, want %v", got, want)
	}
}

func TestHolidaysAndMakeUpDays(t *testing.T) {
	c := load(t)
	for year, spans := range wantHolidays {
		for _, s := range spans {
			eachDay(t, s.from, s.to, func(d time.Time) {
				ds := d.Format("2006-01-02")
				t.Run(ds, func(t *testing.T) {
					ok, err := c.IsWorkingDay(d)
					if err != nil || ok {
						t.Errorf("IsWorkingDay(%s) = %v, %v; want false (holiday %s)", ds, ok, err, s.name)
					}
					got, err := c.Day(d)
					if err != nil || got.Working || got.Reason != calendar.ReasonHoliday || got.Holiday != s.name {
						t.Errorf("Day(%s) = %+v, %v; want off, holiday %s", ds, got, err, s.name)
					}
				})
			})
		}
		for _, m := range wantMakeUp[year] {
			d := day(t, m.date)
			t.Run(m.date, func(t *testing.T) {
				if wd := d.Weekday(); wd != time.Saturday && wd != time.Sunday {
					t.Fatalf("test table: %s is a %s", m.date, wd)
				}
				ok, err := c.IsWorkingDay(d)
				if err != nil || !ok {
					t.Errorf("IsWorkingDay(%s) = %v, %v; want true (make-up day for %s)", m.date, ok, err, m.forName)
				}
				got, err := c.Day(d)
				if err != nil || !got.Working || got.Reason != calendar.ReasonMakeUpWorkday || got.Holiday != m.forName {
					t.Errorf("Day(%s) = %+v, %v; want working, make-up day for %s", m.date, got, err, m.forName)
				}
			})
		}
	}
}

// TestEveryDay checks every date of 2024-2026 against the rule "a make-up
// working day, or Monday-Friday and not a day off", computed from the
// hand-typed tables, and the yearly totals.
func TestEveryDay(t *testing.T) {
	c := load(t)
	off := map[string]string{}
	work := map[string]string{}
	for year := range wantHolidays {
		for _, s := range wantHolidays[year] {
			eachDay(t, s.from, s.to, func(d time.Time) { off[d.Format("2006-01-02")] = s.name })
		}
		for _, m := range wantMakeUp[year] {
			work[m.date] = m.forName
		}
	}
	count := map[int]int{}
	eachDay(t, "2024-01-01", "2026-12-31", func(d time.Time) {
		ds := d.Format("2006-01-02")
		weekend := d.Weekday() == time.Saturday || d.Weekday() == time.Sunday
		var want calendar.Day
		want.Date = d
		switch {
		case work[ds] != "":
			want.Working, want.Reason, want.Holiday = true, calendar.ReasonMakeUpWorkday, work[ds]
		case off[ds] != "":
			want.Reason, want.Holiday = calendar.ReasonHoliday, off[ds]
		case weekend:
			want.Reason = calendar.ReasonWeekend
		default:
			want.Working, want.Reason = true, calendar.ReasonWorkday
		}
		got, err := c.Day(d)
		if err != nil {
			t.Fatalf("Day(%s): %v", ds, err)
		}
		got.HolidayEN = ""
		if !got.Date.Equal(want.Date) || got.Working != want.Working || got.Reason != want.Reason || got.Holiday != want.Holiday {
			t.Errorf("Day(%s) = %+v, want %+v", ds, got, want)
		}
		if ok, _ := c.IsWorkingDay(d); ok != want.Working {
			t.Errorf("IsWorkingDay(%s) = %v, want %v", ds, ok, want.Working)
		}
		if want.Working {
			count[d.Year()]++
		}
	})
	// Weekdays minus weekday holidays plus make-up days:
	// 2024: 262 - 19 + 8; 2025: 261 - 18 + 5; 2026: 261 - 19 + 6.
	wantCount := map[int]int{2024: 251, 2025: 248, 2026: 248}
	if !reflect.DeepEqual(count, wantCount) {
		t.Errorf("working days per year = %v, want %v", count, wantCount)
	}
	for year, n := range wantCount {
		// 1 January is a holiday in each of these years, so (1 Jan, 31 Dec]
		// covers every working day of the year.
		got, err := c.WorkingDaysBetween(day(t, fmt.Sprintf("%d-01-01", year)), day(t, fmt.Sprintf("%d-12-31", year)))
		if err != nil || got != n {
			t.Errorf("WorkingDaysBetween over %d = %d, %v; want %d", year, got, err, n)
		}
	}
}

func TestEarliestSendDate(t *testing.T) {
	c := load(t)
	tests := []struct {
		filed, want, why string
	}{
		// Filed Fri 2026-09-18, Mid-Autumn + National Day 2026:
		//  09-19 Sat off        09-20 Sun make-up #1  09-21 Mon #2  09-22 Tue #3
		//  09-23 Wed #4         09-24 Thu #5          09-25..27 中秋节 off
		//  09-28 Mon #6         09-29 Tue #7          09-30 Wed #8
		//  10-01..07 国庆节 off  10-08 Thu #9          10-09 Fri #10
		{"2026-09-18", "2026-10-09", "Mid-Autumn and National Day 2026, make-up Sunday 09-20"},
		// Filed Wed 2026-09-30: 10-01..07 off, 10-08 Thu #1, 10-09 Fri #2,
		// 10-10 Sat make-up #3, 10-12..16 #4-#8, 10-19 Mon #9, 10-20 Tue #10.
		{"2026-09-30", "2026-10-20", "National Day 2026, make-up Saturday 10-10"},
		// Filed Fri 2026-02-13, Spring Festival 2026:
		//  02-14 Sat make-up #1  02-15..23 春节 off  02-24 Tue #2  02-25 Wed #3
		//  02-26 Thu #4          02-27 Fri #5        02-28 Sat make-up #6
		//  03-01 Sun off         03-02 Mon #7        03-03 Tue #8  03-04 Wed #9
		//  03-05 Thu #10
		{"2026-02-13", "2026-03-05", "Spring Festival 2026"},
		// Filed on the make-up Saturday itself: it does not count.
		// 02-24..27 #1-#4, 02-28 Sat #5, 03-02..06 #6-#10.
		{"2026-02-14", "2026-03-06", "filed on a make-up Saturday"},
		{"2026-02-17", "2026-03-06", "filed on a Spring Festival holiday"},
		{"2026-02-28", "2026-03-13", "filed on the make-up Saturday after Spring Festival"},
		// Filed on an ordinary Sunday: 03-02..06 #1-#5, 03-09..13 #6-#10.
		{"2026-03-01", "2026-03-13", "filed on a Sunday"},
		// Filed on make-up Sunday 2026-01-04: it does not count.
		{"2026-01-04", "2026-01-16", "filed on a make-up Sunday"},
		// 04-04..06 清明节 off: 04-07..10 #1-#4, 04-13..17 #5-#9, 04-20 #10.
		{"2026-04-03", "2026-04-20", "Qingming 2026"},
		// 05-01..05 off, 05-06..08 #1-#3, 05-09 Sat #4, 05-11..15 #5-#9, 05-18 #10.
		{"2026-04-30", "2026-05-18", "Labour Day 2026, make-up Saturday 05-09"},
		// Across the year boundary, filed Thu 2025-12-25:
		//  12-26 Fri #1   12-27/28 weekend   12-29 Mon #2  12-30 Tue #3
		//  12-31 Wed #4   2026-01-01..03 元旦 off           01-04 Sun make-up #5
		//  01-05 Mon #6   01-06 Tue #7  01-07 Wed #8  01-08 Thu #9  01-09 Fri #10
		{"2025-12-25", "2026-01-09", "2025 -> 2026, New Year 2026 and make-up Sunday 01-04"},
		{"2025-12-31", "2026-01-15", "filed on New Year's Eve 2025"},
		// Spring Festival 2025, filed Fri 2025-01-24:
		//  01-26 Sun make-up #1, 01-27 Mon #2, 01-28..02-04 off, 02-05..07 #3-#5,
		//  02-08 Sat make-up #6, 02-10..13 #7-#10.
		{"2025-01-24", "2025-02-13", "Spring Festival 2025"},
		{"2025-01-26", "2025-02-14", "filed on make-up Sunday 2025-01-26"},
		{"2025-02-08", "2025-02-21", "filed on make-up Saturday 2025-02-08"},
		// 05-01..05 off: filed Fri 04-25: 04-27 Sun #1, 04-28..30 #2-#4,
		// 05-06..09 #5-#8, 05-12 #9, 05-13 #10.
		{"2025-04-25", "2025-05-13", "Labour Day 2025, make-up Sunday 04-27"},
		// National Day and Mid-Autumn 2025, filed Fri 2025-09-26:
		//  09-28 Sun make-up #1, 09-29 #2, 09-30 #3, 10-01..08 off, 10-09 #4,
		//  10-10 #5, 10-11 Sat make-up #6, 10-13..16 #7-#10.
		{"2025-09-26", "2025-10-16", "National Day 2025"},
		{"2025-10-03", "2025-10-21", "filed on a National Day 2025 holiday"},
		// Spring Festival 2024, filed Thu 2024-02-01:
		//  02-02 Fri #1  02-03 Sat off  02-04 Sun make-up #2  02-05..09 #3-#7
		//  02-10..17 春节 off  02-18 Sun make-up #8  02-19 Mon #9  02-20 Tue #10
		{"2024-02-01", "2024-02-20", "Spring Festival 2024"},
		{"2024-02-18", "2024-03-01", "filed on make-up Sunday 2024-02-18 (leap February)"},
		// Qingming 2024: 04-04..06 off, 04-07 Sun #1, 04-08..12 #2-#6, 04-15..18 #7-#10.
		{"2024-04-03", "2024-04-18", "Qingming 2024, make-up Sunday 04-07"},
		// Labour Day 2024, filed Fri 04-26: 04-28 Sun #1, 04-29/30 #2-#3,
		// 05-06..10 #4-#8, 05-11 Sat #9, 05-13 Mon #10.
		{"2024-04-26", "2024-05-13", "Labour Day 2024, two make-up days"},
		// Mid-Autumn 2024, filed Thu 09-12: 09-13 #1, 09-14 Sat #2,
		// 09-15..17 off, 09-18..20 #3-#5, 09-23..27 #6-#10.
		{"2024-09-12", "2024-09-27", "Mid-Autumn 2024, make-up Saturday 09-14"},
		// National Day 2024, filed Fri 09-27: 09-29 Sun #1, 09-30 #2,
		// 10-01..07 off, 10-08..11 #3-#6, 10-12 Sat #7, 10-14..16 #8-#10.
		{"2024-09-27", "2024-10-16", "National Day 2024"},
		{"2024-10-12", "2024-10-25", "filed on make-up Saturday 2024-10-12"},
	}
	for _, tt := range tests {
		t.Run(tt.filed, func(t *testing.T) {
			got, err := c.EarliestSendDate(day(t, tt.filed))
			if err != nil {
				t.Fatalf("EarliestSendDate(%s): %v", tt.filed, err)
			}
			if !got.Equal(day(t, tt.want)) || got.Location() != calendar.Shanghai {
				t.Errorf("EarliestSendDate(%s) = %s, want %s midnight Shanghai (%s)", tt.filed, got, tt.want, tt.why)
			}
			n, err := c.WorkingDaysBetween(day(t, tt.filed), got)
			if err != nil || n != calendar.EarliestWorkingDays {
				t.Errorf("WorkingDaysBetween(%s, %s) = %d, %v; want %d", tt.filed, tt.want, n, err, calendar.EarliestWorkingDays)
			}
		})
	}
}

// Dates are the calendar date in Shanghai, whatever the time's location.
func TestShanghaiDate(t *testing.T) {
	c := load(t)
	tests := []struct {
		filed time.Time
		want  string
	}{
		// 16:30 UTC on the 13th is 00:30 on Saturday the 14th in Shanghai.
		{time.Date(2026, 2, 13, 16, 30, 0, 0, time.UTC), "2026-03-06"},
		{time.Date(2026, 2, 13, 15, 59, 59, 0, time.UTC), "2026-03-05"},
		{time.Date(2026, 2, 13, 23, 59, 0, 0, calendar.Shanghai), "2026-03-05"},
		{time.Date(2026, 2, 13, 12, 0, 0, 0, time.FixedZone("UTC-10", -10*3600)), "2026-03-06"},
		// 2025-12-30 20:00 UTC is already 2025-12-31 in Shanghai (from the 30th
		// it would be 2026-01-14).
		{time.Date(2025, 12, 30, 20, 0, 0, 0, time.UTC), "2026-01-15"},
	}
	for _, tt := range tests {
		got, err := c.EarliestSendDate(tt.filed)
		if err != nil || !got.Equal(day(t, tt.want)) {
			t.Errorf("EarliestSendDate(%s) = %s, %v; want %s", tt.filed, got, err, tt.want)
		}
		if h, m, s := got.Clock(); h != 0 || m != 0 || s != 0 || got.Location() != calendar.Shanghai {
			t.Errorf("EarliestSendDate(%s) = %s, want midnight in Shanghai", tt.filed, got)
		}
	}
	d, err := c.Day(time.Date(2026, 2, 14, 20, 0, 0, 0, time.UTC)) // 04:00 on the 15th
	if err != nil || d.Reason != calendar.ReasonHoliday || !d.Date.Equal(day(t, "2026-02-15")) {
		t.Errorf("Day(2026-02-14T20:00Z) = %+v, %v; want 2026-02-15 holiday", d, err)
	}
}

func TestAddWorkingDays(t *testing.T) {
	c := load(t)
	for _, n := range []int{0, -1} {
		if _, err := c.AddWorkingDays(day(t, "2026-03-02"), n); err == nil {
			t.Errorf("AddWorkingDays(n=%d) succeeded, want error", n)
		}
	}
	tests := []struct {
		from string
		n    int
		want string
	}{
		{"2026-03-02", 1, "2026-03-03"},
		{"2026-03-06", 1, "2026-03-09"},
		{"2026-02-13", 1, "2026-02-14"},   // make-up Saturday
		{"2026-02-14", 1, "2026-02-24"},   // over the whole Spring Festival
		{"2025-12-31", 1, "2026-01-04"},   // into next year, make-up Sunday
		{"2024-01-01", 251, "2024-12-31"}, // every working day of 2024
		{"2024-12-31", 248, "2025-12-31"}, // every working day of 2025
	}
	for _, tt := range tests {
		got, err := c.AddWorkingDays(day(t, tt.from), tt.n)
		if err != nil || !got.Equal(day(t, tt.want)) {
			t.Errorf("AddWorkingDays(%s, %d) = %s, %v; want %s", tt.from, tt.n, got, err, tt.want)
		}
	}
	// WorkingDaysBetween inverts AddWorkingDays for every start day of 2024-2025.
	eachDay(t, "2024-01-01", "2025-12-31", func(d time.Time) {
		for _, n := range []int{1, 2, 10, 30} {
			end, err := c.AddWorkingDays(d, n)
			if err != nil {
				t.Fatalf("AddWorkingDays(%s, %d): %v", d, n, err)
			}
			if ok, _ := c.IsWorkingDay(end); !ok {
				t.Errorf("AddWorkingDays(%s, %d) = %s, not a working day", d, n, end)
			}
			if got, err := c.WorkingDaysBetween(d, end); err != nil || got != n {
				t.Errorf("WorkingDaysBetween(%s, %s) = %d, %v; want %d", d, end, got, err, n)
			}
		}
	})
}

func TestWorkingDaysBetween(t *testing.T) {
	c := load(t)
	tests := []struct {
		from, to string
		want     int
	}{
		{"2026-03-02", "2026-03-02", 0},
		{"2026-03-05", "2026-03-02", 0},
		{"2026-03-01", "2026-03-02", 1},
		{"2026-03-02", "2026-03-03", 1},
		{"2026-02-14", "2026-02-23", 0}, // make-up Saturday excluded as from, then holidays
		{"2026-02-13", "2026-02-14", 1}, // make-up Saturday included as to
		// Across 2025 -> 2026: 12-26, 12-29, 12-30, 12-31, 01-04, 01-05.
		{"2025-12-25", "2026-01-05", 6},
		{"2025-12-31", "2026-01-03", 0},
		{"2025-12-31", "2026-01-04", 1},
		// Across 2024 -> 2025: 12-30, 12-31, (01-01 off), 01-02, 01-03.
		{"2024-12-27", "2025-01-03", 4},
		// Three whole years: 251 + 248 + 248, minus none (1 Jan 2024 is a holiday).
		{"2024-01-01", "2026-12-31", 251 + 248 + 248},
	}
	for _, tt := range tests {
		got, err := c.WorkingDaysBetween(day(t, tt.from), day(t, tt.to))
		if err != nil || got != tt.want {
			t.Errorf("WorkingDaysBetween(%s, %s) = %d, %v; want %d", tt.from, tt.to, got, err, tt.want)
		}
	}
}

func wantMissing(t *testing.T, what string, err error, year int) {
	t.Helper()
	var m *calendar.MissingYearError
	if !errors.As(err, &m) {
		t.Fatalf("%s: error %v (%T), want *MissingYearError", what, err, err)
	}
	if m.Year != year || m.MissingYear() != year {
		t.Errorf("%s: missing year %d, want %d", what, m.Year, year)
	}
	if want := fmt.Sprintf("no working-day calendar loaded for year %d", year); err.Error() != want {
		t.Errorf("%s: error %q, want %q", what, err, want)
	}
	// Other packages can detect it without importing this one.
	var iface interface{ MissingYear() int }
	if !errors.As(err, &iface) || iface.MissingYear() != year {
		t.Errorf("%s: error does not expose MissingYear() = %d", what, year)
	}
}

func TestMissingYear(t *testing.T) {
	c := load(t)
	d2023 := day(t, "2023-12-29")
	_, err := c.IsWorkingDay(d2023)
	wantMissing(t, "IsWorkingDay(2023-12-29)", err, 2023)
	_, err = c.Day(d2023)
	wantMissing(t, "Day(2023-12-29)", err, 2023)
	_, err = c.EarliestSendDate(d2023)
	wantMissing(t, "EarliestSendDate(2023-12-29)", err, 2023)
	_, err = c.AddWorkingDays(day(t, "2023-12-31"), 1)
	wantMissing(t, "AddWorkingDays(2023-12-31, 1)", err, 2023)
	_, err = c.WorkingDaysBetween(d2023, day(t, "2024-01-05"))
	wantMissing(t, "WorkingDaysBetween(2023-12-29, 2024-01-05)", err, 2023)
	_, err = c.Days(d2023, day(t, "2024-01-05"))
	wantMissing(t, "Days(2023-12-29, 2024-01-05)", err, 2023)
	// 2023-12-31 16:00 UTC is 2024-01-01 in Shanghai: loaded.
	if _, err := c.Day(time.Date(2023, 12, 31, 16, 0, 0, 0, time.UTC)); err != nil {
		t.Errorf("Day(2023-12-31T16:00Z): %v", err)
	}

	// Filed Fri 2026-12-25: 12-28..31 are working days #1-#4, then the walk
	// reaches 2027-01-01, which has no calendar.
	_, err = c.EarliestSendDate(day(t, "2026-12-25"))
	wantMissing(t, "EarliestSendDate(2026-12-25)", err, 2027)
	if got, err := c.AddWorkingDays(day(t, "2026-12-25"), 4); err != nil || !got.Equal(day(t, "2026-12-31")) {
		t.Errorf("AddWorkingDays(2026-12-25, 4) = %s, %v; want 2026-12-31", got, err)
	}
	_, err = c.AddWorkingDays(day(t, "2026-12-25"), 5)
	wantMissing(t, "AddWorkingDays(2026-12-25, 5)", err, 2027)
	_, err = c.WorkingDaysBetween(day(t, "2026-12-25"), day(t, "2027-01-05"))
	wantMissing(t, "WorkingDaysBetween(2026-12-25, 2027-01-05)", err, 2027)
	_, err = c.Days(day(t, "2026-12-30"), day(t, "2027-01-02"))
	wantMissing(t, "Days(2026-12-30, 2027-01-02)", err, 2027)
	_, err = c.AddWorkingDays(day(t, "2024-01-01"), 1<<30)
	wantMissing(t, "AddWorkingDays(2024-01-01, 2^30)", err, 2027)

	// A gap between loaded years is missing too.
	c2, err := calendar.New(yearFromFile(t, 2024), yearFromFile(t, 2026))
	if err != nil {
		t.Fatal(err)
	}
	_, err = c2.AddWorkingDays(day(t, "2024-12-30"), 5)
	wantMissing(t, "AddWorkingDays over a gap", err, 2025)

	empty, err := calendar.New()
	if err != nil {
		t.Fatal(err)
	}
	if len(empty.Years()) != 0 {
		t.Errorf("New().Years() = %v", empty.Years())
	}
	_, err = empty.IsWorkingDay(day(t, "2026-03-02"))
	wantMissing(t, "empty calendar", err, 2026)
}

// yearFromFile reads an embedded year through the public API.
func yearFromFile(t *testing.T, year int) calendar.Year {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("..", "..", "calendars", "cn", fmt.Sprintf("%d.json", year)))
	if err != nil {
		t.Fatal(err)
	}
	y, err := calendar.ParseYear(data)
	if err != nil {
		t.Fatal(err)
	}
	return y
}

// fake2027 is lawful (every statutory day of 2027 is a day off of its
// holiday) but not the real 2027 schedule: only the law's minimum, plus a
// longer New Year with a make-up Saturday.
const fake2027 = `{
  "year": 2027,
  "notice": "test: not the real 2027 schedule",
  "holidays": [
    {"name": "元旦", "name_en": "New Year's Day", "from": "2027-01-01", "to": "2027-01-03"},
    {"name": "春节", "from": "2027-02-05", "to": "2027-02-08"},
    {"name": "清明节", "from": "2027-04-05", "to": "2027-04-05"},
    {"name": "劳动节", "from": "2027-05-01", "to": "2027-05-02"},
    {"name": "端午节", "from": "2027-06-09", "to": "2027-06-09"},
    {"name": "中秋节", "from": "2027-09-15", "to": "2027-09-15"},
    {"name": "国庆节", "from": "2027-10-01", "to": "2027-10-03"}
  ],
  "workdays": [
    {"date": "2027-01-09", "for": "元旦"}
  ]
}`

// lawful2026 lists only the days off the law itself fixes in 2026 (the
// amended 《全国年节及纪念日放假办法》), as JSON array elements.
const lawful2026 = `{"name": "元旦", "from": "2026-01-01", "to": "2026-01-01"},
    {"name": "春节", "from": "2026-02-16", "to": "2026-02-19"},
    {"name": "清明节", "from": "2026-04-05", "to": "2026-04-05"},
    {"name": "劳动节", "from": "2026-05-01", "to": "2026-05-02"},
    {"name": "端午节", "from": "2026-06-19", "to": "2026-06-19"},
    {"name": "中秋节", "from": "2026-09-25", "to": "2026-09-25"},
    {"name": "国庆节", "from": "2026-10-01", "to": "2026-10-03"}`

// An override of 2026 with only the statutory days off and no make-up days.
const override2026 = `{
  "year": 2026,
  "notice": "test override",
  "sources": ["test"],
  "holidays": [` + lawful2026 + `],
  "workdays": []
}`

func writeFiles(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestLoad(t *testing.T) {
	dir := writeFiles(t, map[string]string{
		"2027.json": fake2027,
		"2026.json": override2026,
		"README.md": "operator notes, ignored",
	})
	c, err := calendar.Load(dir)
	if err != nil {
		t.Fatalf("Load(%s): %v", dir, err)
	}
	if got, want := c.Years(), []int{2024, 2025, 2026, 2027}; !reflect.DeepEqual(got, want) {
		t.Errorf("Years() = %v, want %v", got, want)
	}
	// Filed Fri 2026-12-25 with the fake 2027:
	//  12-28 Mon #1  12-29 #2  12-30 #3  12-31 Thu #4  2027-01-01..03 off
	//  01-04 Mon #5  01-05 #6  01-06 #7  01-07 #8  01-08 Fri #9  01-09 Sat make-up #10
	got, err := c.EarliestSendDate(day(t, "2026-12-25"))
	if err != nil || !got.Equal(day(t, "2027-01-09")) {
		t.Errorf("EarliestSendDate(2026-12-25) = %s, %v; want 2027-01-09", got, err)
	}
	checks := []struct {
		date    string
		working bool
		reason  calendar.Reason
	}{
		{"2026-01-01", false, calendar.ReasonHoliday},      // still a holiday in the override
		{"2026-01-02", true, calendar.ReasonWorkday},       // no longer a holiday
		{"2026-01-04", false, calendar.ReasonWeekend},      // no longer a make-up day
		{"2026-02-16", false, calendar.ReasonHoliday},      // New Year's Eve, statutory
		{"2026-02-20", true, calendar.ReasonWorkday},       // Spring Festival shortened to the law's four days
		{"2026-10-05", true, calendar.ReasonWorkday},       // National Day shortened to the law's three days
		{"2025-10-01", false, calendar.ReasonHoliday},      // 2025 untouched
		{"2027-01-01", false, calendar.ReasonHoliday},      // added year
		{"2027-01-09", true, calendar.ReasonMakeUpWorkday}, // added year's make-up Saturday
		{"2027-01-16", false, calendar.ReasonWeekend},      // added year's ordinary Saturday
		{"2027-12-31", true, calendar.ReasonWorkday},       // added year, last day (Friday)
	}
	for _, ch := range checks {
		d, err := c.Day(day(t, ch.date))
		if err != nil || d.Working != ch.working || d.Reason != ch.reason {
			t.Errorf("Day(%s) = %+v, %v; want working=%v reason=%s", ch.date, d, err, ch.working, ch.reason)
		}
	}
	d, _ := c.Day(day(t, "2027-01-09"))
	if d.Holiday != "元旦" || d.HolidayEN != "New Year's Day" {
		t.Errorf("Day(2027-01-09) names %q/%q, want 元旦/New Year's Day", d.Holiday, d.HolidayEN)
	}
	_, err = c.Day(day(t, "2028-01-03"))
	wantMissing(t, "Day(2028-01-03) after Load", err, 2028)

	// An empty dir adds nothing.
	c, err = calendar.Load(t.TempDir())
	if err != nil || !reflect.DeepEqual(c.Years(), []int{2024, 2025, 2026}) {
		t.Errorf("Load(empty dir) = %v, %v", c, err)
	}
}

func TestLoadErrors(t *testing.T) {
	tests := []struct {
		name  string
		files map[string]string
		want  []string // substrings of the error
	}{
		{"bad json", map[string]string{"2027.json": `{"year": 2027,`}, []string{"2027.json", "invalid JSON"}},
		{"invalid year", map[string]string{"2027.json": strings.Replace(fake2027, "2027-01-09", "2027-01-11", 1)},
			[]string{"2027.json", "workdays[0].date", "2027-01-11", "Saturday or Sunday"}},
		{"name mismatch", map[string]string{"2028.json": fake2027}, []string{"2028.json", "2028", "2027"}},
		{"misnamed json", map[string]string{"cn2027.json": fake2027}, []string{"cn2027.json", "YYYY.json"}},
		{"unknown field", map[string]string{"2026.json": strings.Replace(override2026, `"sources"`, `"sourcez"`, 1)},
			[]string{"2026.json", `unknown field "sourcez"`}},
		{"unlawful year", map[string]string{"2027.json": strings.Replace(fake2027, `"from": "2027-02-05"`, `"from": "2027-02-06"`, 1)},
			[]string{"2027.json", "2027-02-05", "春节", "农历除夕", "statutory"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := writeFiles(t, tt.files)
			_, err := calendar.Load(dir)
			if err == nil {
				t.Fatal("Load succeeded, want error")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
	missing := filepath.Join(t.TempDir(), "nope")
	if _, err := calendar.Load(missing); err == nil || !strings.Contains(err.Error(), missing) {
		t.Errorf("Load(%s) = %v, want an error naming the directory", missing, err)
	}
}

func TestNewLaterYearOverrides(t *testing.T) {
	real := yearFromFile(t, 2026)
	var over calendar.Year
	if err := json.Unmarshal([]byte(override2026), &over); err != nil {
		t.Fatal(err)
	}
	c1, err := calendar.New(real, over)
	if err != nil {
		t.Fatal(err)
	}
	if ok, _ := c1.IsWorkingDay(day(t, "2026-02-20")); !ok {
		t.Error("New(real, override): 2026-02-20 should be a working day in the override")
	}
	c2, err := calendar.New(over, real)
	if err != nil {
		t.Fatal(err)
	}
	if ok, _ := c2.IsWorkingDay(day(t, "2026-02-20")); ok {
		t.Error("New(override, real): 2026-02-20 should be a holiday")
	}
	// New checks its input as ParseYear does.
	bad := real
	bad.Workdays = append([]calendar.MakeUpDay{{Date: "2026-03-02", For: "x"}}, bad.Workdays...)
	if _, err := calendar.New(bad); err == nil || !strings.Contains(err.Error(), "2026-03-02") {
		t.Errorf("New(bad) = %v, want error naming 2026-03-02", err)
	}
	// Mutating the input after New does not change the calendar.
	over.Holidays[0].To = "2026-12-31"
	if ok, _ := c1.IsWorkingDay(day(t, "2026-03-02")); !ok {
		t.Error("calendar changed after its input was mutated")
	}
}

func TestParseYearRejects(t *testing.T) {
	base := func(holidays, workdays string) string {
		return `{"year": 2026, "notice": "n", "holidays": [` + holidays + `], "workdays": [` + workdays + `]}`
	}
	ny := `{"name": "元旦", "from": "2026-01-01", "to": "2026-01-03"}`
	tests := []struct {
		name, data string
		want       []string
	}{
		{"empty", ``, []string{"empty"}},
		{"not an object", `[]`, []string{"invalid JSON"}},
		{"syntax", "{\n  \"year\": 2026,\n  \"notice\" \"n\"}", []string{"line 3"}},
		{"unknown field", `{"year": 2026, "notice": "n", "holidays": [` + ny + `], "extra": 1}`, []string{`unknown field "extra"`}},
		{"unknown holiday field", base(`{"name": "元旦", "date": "2026-01-01", "from": "2026-01-01", "to": "2026-01-01"}`, ``), []string{`unknown field "date"`}},
		{"trailing data", base(ny, ``) + ` {}`, []string{"after the JSON object"}},
		{"wrong type", `{"year": "2026"}`, []string{"invalid JSON", "year"}},
		{"missing year", `{"notice": "n", "holidays": [` + ny + `]}`, []string{"year", "missing"}},
		{"year out of range", `{"year": 12026, "notice": "n", "holidays": [` + ny + `]}`, []string{"12026"}},
		{"missing notice", `{"year": 2026, "holidays": [` + ny + `]}`, []string{"notice"}},
		{"blank source", `{"year": 2026, "notice": "n", "sources": [" "], "holidays": [` + ny + `]}`, []string{"sources[0]"}},
		{"no holidays", base(``, ``), []string{"holidays"}},
		{"missing name", base(`{"from": "2026-01-01", "to": "2026-01-01"}`, ``), []string{"holidays[0].name"}},
		{"newline in name", base(`{"name": "元\n旦", "from": "2026-01-01", "to": "2026-01-01"}`, ``), []string{"holidays[0].name", "control"}},
		{"bad from", base(`{"name": "元旦", "from": "2026-1-1", "to": "2026-01-03"}`, ``), []string{"holidays[0] (元旦).from", "2026-1-1"}},
		{"missing to", base(`{"name": "元旦", "from": "2026-01-01"}`, ``), []string{"holidays[0] (元旦).to"}},
		{"impossible date", base(`{"name": "春节", "from": "2026-02-15", "to": "2026-02-30"}`, ``), []string{".to", "2026-02-30"}},
		{"datetime", base(`{"name": "元旦", "from": "2026-01-01T00:00:00Z", "to": "2026-01-01"}`, ``), []string{".from", "2026-01-01T00:00:00Z"}},
		{"from after to", base(`{"name": "元旦", "from": "2026-01-03", "to": "2026-01-01"}`, ``), []string{"holidays[0] (元旦)", "2026-01-03", "after", "2026-01-01"}},
		{"holiday in other year", base(`{"name": "元旦", "from": "2025-06-01", "to": "2026-01-01"}`, ``), []string{".from", "2025-06-01", "not in year 2026"}},
		{"holiday runs far into next year", base(`{"name": "元旦", "from": "2026-12-31", "to": "2027-01-09"}`, ``), []string{".to", "2027-01-09"}},
		{"holiday wholly in adjoining year", base(`{"name": "元旦", "from": "2025-12-30", "to": "2025-12-31"}`, ``), []string{"holidays[0] (元旦)", "no day in year 2026"}},
		{"overlapping holidays", base(ny+`, {"name": "x", "from": "2026-01-03", "to": "2026-01-05"}`, ``), []string{"holidays[1] (x)", "2026-01-03", "holidays[0] (元旦)"}},
		{"make-up on weekday", base(ny, `{"date": "2026-01-05", "for": "元旦"}`), []string{"workdays[0].date", "2026-01-05", "Monday"}},
		{"make-up in other year", base(ny, `{"date": "2027-01-09", "for": "元旦"}`), []string{"workdays[0].date", "2027-01-09"}},
		{"make-up for unknown holiday", base(ny, `{"date": "2026-01-04", "for": "圣诞节"}`), []string{"workdays[0].for", "圣诞节"}},
		{"unknown holiday", base(ny+`, {"name": "圣诞节", "from": "2026-12-25", "to": "2026-12-25"}`, ``), []string{"holidays[1] (圣诞节).name", "not a statutory holiday"}},
		{"before 2014", `{"year": 2013, "notice": "n", "holidays": [{"name": "元旦", "from": "2013-01-01", "to": "2013-01-03"}]}`, []string{"2013", "2014"}},
		{"bad document number", `{"year": 2026, "notice": "n", "source": {"title": "t", "number": "国办发〔2025〕7"}, "holidays": [` + lawful2026 + `]}`, []string{"source.number"}},
		{"bad source date", `{"year": 2026, "notice": "n", "source": {"title": "t", "date": "2024-11-04"}, "holidays": [` + lawful2026 + `]}`, []string{"source.date", "2024-11-04"}},
		{"unknown source field", `{"year": 2026, "notice": "n", "source": {"title": "t", "url": "x"}, "holidays": [` + lawful2026 + `]}`, []string{`unknown field "url"`}},
		{"make-up bad date", base(ny, `{"date": "20260104", "for": "元旦"}`), []string{"workdays[0].date", "20260104"}},
		{"make-up missing for", base(ny, `{"date": "2026-01-04"}`), []string{"workdays[0].for"}},
		{"make-up also holiday", base(ny, `{"date": "2026-01-03", "for": "元旦"}`), []string{"workdays[0].date", "2026-01-03", "holiday", "holidays[0] (元旦)"}},
		{"make-up twice", base(ny, `{"date": "2026-01-04", "for": "元旦"}, {"date": "2026-01-04", "for": "元旦"}`), []string{"workdays[1].date", "2026-01-04", "workdays[0]"}},
		{"unknown make-up field", base(ny, `{"date": "2026-01-04", "for": "元旦", "note": ""}`), []string{`unknown field "note"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := calendar.ParseYear([]byte(tt.data))
			if err == nil {
				t.Fatalf("ParseYear(%s) succeeded, want error", tt.data)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
	// The accepted minimal form: the statutory days off and nothing else.
	y, err := calendar.ParseYear([]byte(base(lawful2026, `{"date": "2026-01-04", "for": "元旦"}`)))
	if err != nil || y.Year != 2026 || len(y.Holidays) != 7 || len(y.Workdays) != 1 {
		t.Errorf("ParseYear(minimal) = %+v, %v", y, err)
	}
	// Dates adjoining the year (New Year's Day 2026 starting on 2025-12-31,
	// with a make-up Saturday before it) are accepted.
	adj := strings.Replace(lawful2026, `"from": "2026-01-01"`, `"from": "2025-12-31"`, 1)
	y, err = calendar.ParseYear([]byte(base(adj, `{"date": "2025-12-27", "for": "元旦"}`)))
	if err != nil || y.Holidays[0].From != "2025-12-31" {
		t.Errorf("ParseYear(adjoining) = %+v, %v", y, err)
	}
	// Every violation is listed, typed, with its rule and date.
	_, err = calendar.ParseYear([]byte(base(ny, `{"date": "2026-01-05", "for": "元旦"}`)))
	var ce *calendar.CheckError
	if !errors.As(err, &ce) || ce.Year != 2026 {
		t.Fatalf("error %v (%T), want *CheckError for 2026", err, err)
	}
	rules := map[calendar.Rule][]string{}
	for _, v := range ce.Violations {
		rules[v.Rule] = append(rules[v.Rule], v.Date)
	}
	if got := rules[calendar.RuleMakeUpWeekend]; !reflect.DeepEqual(got, []string{"2026-01-05"}) {
		t.Errorf("makeup_weekend violations at %v, want [2026-01-05]", got)
	}
	if got := len(rules[calendar.RuleStatutory]); got != 12 {
		t.Errorf("%d statutory violations, want 12 (all but New Year's Day): %v", got, err)
	}
}

func TestDays(t *testing.T) {
	c := load(t)
	days, err := c.Days(day(t, "2026-02-13"), day(t, "2026-02-16"))
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	for _, d := range days {
		lines = append(lines, d.String())
	}
	want := []string{
		"2026-02-13 Fri working workday",
		"2026-02-14 Sat working make-up working day (春节, Spring Festival)",
		"2026-02-15 Sun off     holiday (春节, Spring Festival)",
		"2026-02-16 Mon off     holiday (春节, Spring Festival)",
	}
	if !reflect.DeepEqual(lines, want) {
		t.Errorf("Days(2026-02-13, 2026-02-16) =\n%s\nwant\n%s", strings.Join(lines, "\n"), strings.Join(want, "\n"))
	}
	one, err := c.Days(day(t, "2026-03-07"), day(t, "2026-03-07"))
	if err != nil || len(one) != 1 || one[0].String() != "2026-03-07 Sat off     weekend" {
		t.Errorf("Days(2026-03-07, 2026-03-07) = %v, %v", one, err)
	}
	d, _ := c.Day(day(t, "2025-09-28"))
	if got, want := d.String(), "2025-09-28 Sun working make-up working day (国庆节、中秋节, National Day and Mid-Autumn Festival)"; got != want {
		t.Errorf("Day(2025-09-28).String() = %q, want %q", got, want)
	}
	if _, err := c.Days(day(t, "2026-02-16"), day(t, "2026-02-13")); err == nil {
		t.Error("Days(to before from) succeeded, want error")
	}
	all, err := c.Days(day(t, "2024-01-01"), day(t, "2026-12-31"))
	if err != nil || len(all) != 366+365+365 {
		t.Fatalf("Days(2024-01-01, 2026-12-31) = %d days, %v", len(all), err)
	}
	for _, d := range all {
		if d.Working != (d.Reason == calendar.ReasonWorkday || d.Reason == calendar.ReasonMakeUpWorkday) {
			t.Errorf("%s: Working=%v but Reason=%s", d.Date.Format("2006-01-02"), d.Working, d.Reason)
		}
		if (d.Holiday != "") != (d.Reason == calendar.ReasonHoliday || d.Reason == calendar.ReasonMakeUpWorkday) {
			t.Errorf("%s: Holiday=%q but Reason=%s", d.Date.Format("2006-01-02"), d.Holiday, d.Reason)
		}
		if d.Date.Location() != calendar.Shanghai {
			t.Errorf("%s: location %v", d.Date, d.Date.Location())
		}
	}
}

func TestConcurrentUse(t *testing.T) {
	c := load(t)
	want, err := c.EarliestSendDate(day(t, "2026-09-18"))
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; j < 50; j++ {
				got, err := c.EarliestSendDate(day(t, "2026-09-18"))
				if err != nil || !got.Equal(want) {
					t.Errorf("concurrent EarliestSendDate = %s, %v", got, err)
					return
				}
				if _, err := c.Days(day(t, "2026-01-01"), day(t, "2026-01-31")); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
}

func FuzzParseYear(f *testing.F) {
	for year := 2024; year <= 2026; year++ {
		data, err := os.ReadFile(filepath.Join("..", "..", "calendars", "cn", fmt.Sprintf("%d.json", year)))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte(fake2027))
	f.Add([]byte(override2026))
	f.Add([]byte(`{"year": 2026, "notice": "n", "holidays": [{"name": "a", "from": "2026-02-28", "to": "2026-03-01"}], "workdays": [{"date": "2026-03-07", "for": "a"}]}`))
	f.Add([]byte(`{}`))
	f.Add([]byte(`null`))
	f.Fuzz(func(t *testing.T, data []byte) {
		y, err := calendar.ParseYear(data)
		if err != nil {
			if y.Year != 0 || y.Holidays != nil {
				t.Fatalf("ParseYear returned %+v with error %v", y, err)
			}
			return
		}
		// An accepted year builds a calendar whose days agree with the file.
		c, err := calendar.New(y)
		if err != nil {
			t.Fatalf("New(ParseYear(...)) failed: %v", err)
		}
		if got := c.Years(); len(got) != 1 || got[0] != y.Year {
			t.Fatalf("Years() = %v, want [%d]", got, y.Year)
		}
		for _, h := range y.Holidays {
			from, _ := time.ParseInLocation("2006-01-02", h.From, calendar.Shanghai)
			to, _ := time.ParseInLocation("2006-01-02", h.To, calendar.Shanghai)
			for d := from; !d.After(to); d = d.AddDate(0, 0, 1) {
				got, err := c.Day(d)
				if err != nil || got.Working || got.Reason != calendar.ReasonHoliday {
					t.Fatalf("holiday %s: Day = %+v, %v", d.Format("2006-01-02"), got, err)
				}
			}
		}
		for _, m := range y.Workdays {
			d, _ := time.ParseInLocation("2006-01-02", m.Date, calendar.Shanghai)
			got, err := c.Day(d)
			if err != nil || !got.Working || got.Reason != calendar.ReasonMakeUpWorkday || got.Holiday != m.For {
				t.Fatalf("make-up day %s: Day = %+v, %v", m.Date, got, err)
			}
			if strings.ContainsAny(got.String(), "\n\r") {
				t.Fatalf("Day.String() is not one line: %q", got.String())
			}
		}
		// Re-encoding gives an equivalent, still valid year.
		out, err := json.Marshal(y)
		if err != nil {
			t.Fatal(err)
		}
		y2, err := calendar.ParseYear(out)
		if err != nil {
			t.Fatalf("re-encoded year rejected: %v\n%s", err, out)
		}
		if !reflect.DeepEqual(y, y2) {
			t.Fatalf("round trip changed the year:\n%+v\n%+v", y, y2)
		}
	})
}

// EncodeYear lays a file out with a space after each separator, and
// only there: the shipped files come back byte for byte, and sources
// holding JSON's own separators or escapes come back as they were.
func TestEncodeYearKeepsStrings(t *testing.T) {
	files, err := filepath.Glob("../../calendars/cn/*.json")
	if err != nil || len(files) == 0 {
		t.Fatalf("shipped calendars: %v, %v", files, err)
	}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		y, err := calendar.ParseYear(data)
		if err != nil {
			t.Fatal(err)
		}
		if enc, err := calendar.EncodeYear(y); err != nil || string(enc) != string(data) {
			t.Errorf("%s re-encoded differs (%v):\n%s", f, err, enc)
		}
		for _, source := range []string{`: www.example.cn`, `a":"b`, `a","b`, `back\slash\"`, `two  spaces`} {
			y.Sources = []string{source}
			enc, err := calendar.EncodeYear(y)
			if err != nil {
				t.Fatal(err)
			}
			back, err := calendar.ParseYear(enc)
			if err != nil || len(back.Sources) != 1 || back.Sources[0] != source {
				t.Errorf("source %q came back as %q (%v)", source, back.Sources, err)
			}
		}
	}
}
