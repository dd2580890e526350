package calendar_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/tocsin-dev/tocsin/internal/calendar"
)

func TestImport(t *testing.T) {
	// 2026 against the shipped 2026: nothing changes.
	c := load(t)
	y, changes, err := calendar.Import(readNotice(t, 2026), c)
	if err != nil || y.Year != 2026 {
		t.Fatalf("Import(2026) = %v, %v", y, err)
	}
	if len(changes) != 0 {
		t.Errorf("re-importing 2026 changes %d days:\n%s", len(changes), calendar.FormatChanges(changes))
	}

	// 2026 against a calendar with only the law's minimum for 2026: the
	// extra days off and the make-up days show, nothing else.
	over, err := calendar.ParseYear([]byte(override2026))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Add(over); err != nil {
		t.Fatal(err)
	}
	_, changes, err = calendar.Import(readNotice(t, 2026), c)
	if err != nil {
		t.Fatal(err)
	}
	table := calendar.FormatChanges(changes)
	for _, want := range []string{
		"2026-01-02 Fri  workday -> holiday (元旦, New Year's Day)\n",
		"2026-01-03 Sat  weekend -> holiday (元旦, New Year's Day)\n",
		"2026-01-04 Sun  weekend -> make-up working day (元旦, New Year's Day)\n",
		"2026-02-15 Sun  weekend -> holiday (春节, Spring Festival)\n",
		"2026-10-10 Sat  weekend -> make-up working day (国庆节, National Day)\n",
	} {
		if !strings.Contains(table, want) {
			t.Errorf("table lacks %q:\n%s", want, table)
		}
	}
	// Days the law already made holidays of 春节 do not change.
	if strings.Contains(table, "2026-02-16") || !strings.HasSuffix(table, "\n26 days change\n") {
		t.Errorf("table:\n%s", table)
	}
	// Importing changes nothing by itself.
	if d, _ := c.Day(day(t, "2026-01-02")); !d.Working {
		t.Errorf("Import changed the calendar: 2026-01-02 = %+v", d)
	}

	// A year not loaded: against plain weekdays; 2023's New Year reaches
	// into 2022, which is not loaded either, so only 2023 dates show.
	empty, err := calendar.New()
	if err != nil {
		t.Fatal(err)
	}
	_, changes, err = calendar.Import(readNotice(t, 2023), empty)
	if err != nil {
		t.Fatal(err)
	}
	if len(changes) == 0 || changes[0].BeforeLoaded || changes[0].Date.Year() != 2023 {
		t.Fatalf("first change = %+v", changes[0])
	}
	if got := changes[0].String(); got != "2023-01-01 Sun  weekend (no calendar) -> holiday (元旦, New Year's Day)" {
		t.Errorf("first line = %q", got)
	}
	if _, changes2, err := calendar.Import(readNotice(t, 2023), nil); err != nil || len(changes2) != len(changes) {
		t.Errorf("Import(nil current) = %d changes, %v; want %d", len(changes2), err, len(changes))
	}

	// Refusals come through typed.
	_, _, err = calendar.Import(strings.Replace(readNotice(t, 2026), "5月9日(周六)上班", "5月8日(周五)上班", 1), c)
	var ne *calendar.NoticeError
	if !errors.As(err, &ne) || !strings.Contains(err.Error(), "2026-05-08") {
		t.Errorf("Import(make-up Friday) = %v", err)
	}
}
