package calendar_test

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/tocsin-dev/tocsin/internal/calendar"
)

// Every shipped calendar passes the checks on its own.
func TestCheckShipped(t *testing.T) {
	for year := 2024; year <= 2026; year++ {
		if err := calendar.Check(yearFromFile(t, year)); err != nil {
			t.Errorf("%d: %v", year, err)
		}
	}
}

// Altered copies of the real files are refused with the rule and date.
func TestCheckAltered(t *testing.T) {
	type alter func(y *calendar.Year)
	setHoliday := func(name, from, to string) alter {
		return func(y *calendar.Year) {
			for i := range y.Holidays {
				if y.Holidays[i].Name == name {
					y.Holidays[i].From, y.Holidays[i].To = from, to
				}
			}
		}
	}
	tests := []struct {
		name  string
		year  int
		alter alter
		rule  calendar.Rule
		date  string
		want  []string
	}{
		{"make-up day on a weekday", 2026, func(y *calendar.Year) { y.Workdays[0].Date = "2026-01-05" },
			calendar.RuleMakeUpWeekend, "2026-01-05", []string{"Monday", "Saturday or Sunday"}},
		{"make-up day is a day off", 2026, func(y *calendar.Year) { y.Workdays[0].Date = "2026-01-03" },
			calendar.RuleMakeUpDayOff, "2026-01-03", []string{"both a make-up working day and a holiday"}},
		{"Spring Festival a week late", 2026, setHoliday("春节", "2026-02-22", "2026-03-02"),
			calendar.RuleStatutory, "2026-02-16", []string{"春节", "农历除夕", "not a day off"}},
		{"Spring Festival a week early (2025)", 2025, setHoliday("春节", "2025-01-21", "2025-01-28"),
			calendar.RuleStatutory, "2025-01-29", []string{"农历正月初一"}},
		{"missing statutory day: National Day cut to Oct 1-2", 2026, setHoliday("国庆节", "2026-10-01", "2026-10-02"),
			calendar.RuleStatutory, "2026-10-03", []string{"国庆节", "10月3日"}},
		{"missing statutory day: Labour Day without May 2 (from 2025)", 2025, setHoliday("劳动节", "2025-05-01", "2025-05-01"),
			calendar.RuleStatutory, "2025-05-02", []string{"劳动节", "as amended in 2024"}},
		{"Qingming off its solar term", 2026, setHoliday("清明节", "2026-04-06", "2026-04-08"),
			calendar.RuleStatutory, "2026-04-05", []string{"清明节气"}},
		{"Dragon Boat off its lunar date", 2024, setHoliday("端午节", "2024-06-11", "2024-06-11"),
			calendar.RuleStatutory, "2024-06-10", []string{"农历五月初五"}},
		{"Mid-Autumn day given to National Day", 2025, func(y *calendar.Year) {
			for i := range y.Holidays {
				if y.Holidays[i].Name == "国庆节、中秋节" {
					y.Holidays[i].Name = "国庆节"
				}
			}
			for i := range y.Workdays {
				if y.Workdays[i].For == "国庆节、中秋节" {
					y.Workdays[i].For = "国庆节"
				}
			}
		}, calendar.RuleStatutory, "2025-10-06", []string{"中秋节", "is a day off of 国庆节"}},
		{"hole in a stretch", 2026, func(y *calendar.Year) {
			for i, h := range y.Holidays {
				if h.Name == "国庆节" {
					y.Holidays[i].To = "2026-10-04"
					y.Holidays = append(y.Holidays, calendar.Holiday{Name: "国庆节", From: "2026-10-06", To: "2026-10-07"})
				}
			}
		}, calendar.RuleContiguous, "2026-10-05", []string{"Monday", "unbroken"}},
		{"make-up day inside a stretch", 2024, func(y *calendar.Year) {
			// Labour Day 2024 is 05-01..05; keep 05-01..03 and 05-05 with Saturday 05-04 worked.
			for i, h := range y.Holidays {
				if h.Name == "劳动节" {
					y.Holidays[i].To = "2024-05-03"
					y.Holidays = append(y.Holidays, calendar.Holiday{Name: "劳动节", From: "2024-05-05", To: "2024-05-05"})
				}
			}
			y.Workdays = append(y.Workdays, calendar.MakeUpDay{Date: "2024-05-04", For: "劳动节"})
		}, calendar.RuleContiguous, "2024-05-04", []string{"make-up working day"}},
		{"date far outside the year", 2026, func(y *calendar.Year) { y.Workdays[0].Date = "2025-12-20" },
			calendar.RuleDate, "2025-12-20", []string{"not in year 2026"}},
		{"invalid date", 2026, func(y *calendar.Year) { y.Holidays[0].To = "2026-01-32" },
			calendar.RuleDate, "2026-01-32", []string{"not a valid date"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			y := yearFromFile(t, tt.year)
			tt.alter(&y)
			err := calendar.Check(y)
			var ce *calendar.CheckError
			if !errors.As(err, &ce) {
				t.Fatalf("Check = %v (%T), want *CheckError", err, err)
			}
			var found *calendar.Violation
			for i, v := range ce.Violations {
				if v.Rule == tt.rule && v.Date == tt.date {
					found = &ce.Violations[i]
				}
			}
			if found == nil {
				t.Fatalf("no %s violation at %s in %v", tt.rule, tt.date, err)
			}
			for _, w := range append(tt.want, tt.date) {
				if !strings.Contains(found.String(), w) {
					t.Errorf("violation %q does not mention %q", found, w)
				}
			}
			// The loader refuses it too, naming the file.
			if _, err := calendar.New(y); !errors.As(err, &ce) {
				t.Errorf("New accepted the altered year: %v", err)
			}
		})
	}
}

// The law before and after its 2024 amendment: 2024 needs only 初一 to
// 初三 and 1 May, 2025 also 除夕 and 2 May.
func TestCheckLawByYear(t *testing.T) {
	y := yearFromFile(t, 2024)
	for i, h := range y.Holidays {
		switch h.Name {
		case "春节": // 2024: 除夕 2024-02-09, 初一 2024-02-10
			y.Holidays[i].From, y.Holidays[i].To = "2024-02-10", "2024-02-12"
		case "劳动节":
			y.Holidays[i].From, y.Holidays[i].To = "2024-05-01", "2024-05-01"
		}
	}
	y.Workdays = nil
	if err := calendar.Check(y); err != nil {
		t.Errorf("2024 with the 2013 law's minimum: %v", err)
	}
	y.Holidays[1].From = "2024-02-11"
	if err := calendar.Check(y); err == nil || !strings.Contains(err.Error(), "2024-02-10") || !strings.Contains(err.Error(), "as amended in 2013") {
		t.Errorf("2024 without 初一: %v", err)
	}
}

func TestAdd(t *testing.T) {
	c := load(t)
	y, err := calendar.ParseYear([]byte(fake2027))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.EarliestSendDate(day(t, "2026-12-25")); err == nil {
		t.Fatal("2027 already loaded")
	}
	if err := c.Add(y); err != nil {
		t.Fatal(err)
	}
	got, err := c.EarliestSendDate(day(t, "2026-12-25"))
	if err != nil || !got.Equal(day(t, "2027-01-09")) {
		t.Errorf("after Add: EarliestSendDate(2026-12-25) = %s, %v; want 2027-01-09", got, err)
	}
	if f, ok := c.File(2027); !ok || f.Notice != y.Notice {
		t.Errorf("File(2027) = %+v, %v", f, ok)
	}
	if got := fmt.Sprint(c.Years()); got != "[2024 2025 2026 2027]" {
		t.Errorf("Years() = %s", got)
	}
	// A refused year leaves the calendar as it was.
	bad := y
	bad.Holidays = append([]calendar.Holiday(nil), y.Holidays...)
	bad.Holidays[1].From = "2027-02-07"
	err = c.Add(bad)
	var ce *calendar.CheckError
	if !errors.As(err, &ce) {
		t.Fatalf("Add(bad) = %v, want *CheckError", err)
	}
	if d, _ := c.Day(day(t, "2027-02-05")); d.Reason != calendar.ReasonHoliday {
		t.Errorf("after a refused Add, 2027-02-05 = %+v", d)
	}
	// A year that contradicts its neighbour on a date they share is refused:
	// 2026's file claiming Saturday 2027-01-02, a day off in 2027's file, as
	// a make-up working day.
	f, _ := c.File(2026)
	f.Workdays = append(f.Workdays, calendar.MakeUpDay{Date: "2027-01-02", For: "元旦"})
	if err := c.Add(f); err == nil || !strings.Contains(err.Error(), "2027-01-02") {
		t.Errorf("Add(2026 claiming 2027-01-02 as a make-up day) = %v, want a conflict naming 2027-01-02", err)
	}
}

// Readers running while years are added see one calendar or the other,
// never a mixture, and the race detector sees no race.
func TestAddConcurrent(t *testing.T) {
	c := load(t)
	y, err := calendar.ParseYear([]byte(fake2027))
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for i := 0; i < 4; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				got, err := c.EarliestSendDate(day(t, "2026-12-25"))
				var m *calendar.MissingYearError
				switch {
				case errors.As(err, &m) && m.Year == 2027:
				case err == nil && got.Equal(day(t, "2027-01-09")):
				default:
					t.Errorf("EarliestSendDate during Add = %s, %v", got, err)
					return
				}
				if _, err := c.Days(day(t, "2026-01-01"), day(t, "2026-12-31")); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	for i := 0; i < 20; i++ {
		if err := c.Add(y); err != nil {
			t.Error(err)
		}
	}
	close(stop)
	wg.Wait()
}
