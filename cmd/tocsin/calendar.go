package main

import (
	"fmt"
	"io"
	"time"

	"github.com/tocsin-dev/tocsin/internal/calendar"
	"github.com/tocsin-dev/tocsin/internal/tocsin"
)

func runCalendar(args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := newFlagSet("calendar", stderr)
	dir := fs.String("calendars", envOr(getenv, "TOCSIN_CALENDARS", ""), "directory of extra calendar files (YYYY.json)")
	fs.Usage = func() {
		fmt.Fprint(stderr, "Usage:\n  tocsin calendar earliest YYYY-MM-DD\n  tocsin calendar days FROM TO\n\nFlags:\n")
		fs.PrintDefaults()
	}
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(pos) == 0 {
		fs.Usage()
		return usageError("calendar needs a subcommand: earliest or days")
	}
	cal, err := calendar.Load(*dir)
	if err != nil {
		return err
	}
	switch pos[0] {
	case "earliest":
		if len(pos) != 2 {
			return usageError("usage: tocsin calendar earliest YYYY-MM-DD")
		}
		filed, err := parseDay(pos[1])
		if err != nil {
			return err
		}
		d, err := cal.EarliestSendDate(filed)
		if err != nil {
			return err
		}
		fmt.Fprintln(stdout, d.Format(tocsin.DateLayout))
		return nil
	case "days":
		if len(pos) != 3 {
			return usageError("usage: tocsin calendar days FROM TO")
		}
		from, err := parseDay(pos[1])
		if err != nil {
			return err
		}
		to, err := parseDay(pos[2])
		if err != nil {
			return err
		}
		if to.Before(from) {
			return usageError("TO (%s) is before FROM (%s)", pos[2], pos[1])
		}
		days, err := cal.Days(from, to)
		if err != nil {
			return err
		}
		for _, d := range days {
			fmt.Fprintln(stdout, d.String())
		}
		return nil
	}
	return usageError("unknown calendar subcommand %q (want earliest or days)", pos[0])
}

func parseDay(s string) (time.Time, error) {
	d, err := time.ParseInLocation(tocsin.DateLayout, s, tocsin.Shanghai)
	if err != nil {
		return d, usageError("%q is not a date in the form YYYY-MM-DD", s)
	}
	return d, nil
}
