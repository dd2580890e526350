package httpapi

import (
	"context"
	"time"

	"github.com/tocsin-dev/tocsin/internal/calendar"
	"github.com/tocsin-dev/tocsin/internal/tocsin"
)

var _ CalendarBook = BookCalendars{}

// BookCalendars is the CalendarBook of a calendar.Book: its loads and
// years as the API shows them (openapi.json), with the JSON
// names of the calendar files.
type BookCalendars struct{ Book *calendar.Book }

// calendarChangeView is one line of a load's day-by-day table.
type calendarChangeView struct {
	Date   string `json:"date"`
	Before string `json:"before"`
	After  string `json:"after"`
	Line   string `json:"line"`
}

func (a BookCalendars) Load(ctx context.Context, actor tocsin.Actor, year int, body []byte, notice, dryRun bool) (any, error) {
	loaded, err := a.Book.Load(ctx, actor, year, body, notice, dryRun)
	if err != nil {
		return nil, err
	}
	changes := make([]calendarChangeView, len(loaded.Changes))
	for i, ch := range loaded.Changes {
		changes[i] = calendarChangeView{Date: ch.Date.Format(tocsin.DateLayout), Before: calendarDayText(ch.Before),
			After: calendarDayText(ch.After), Line: ch.String()}
	}
	return map[string]any{
		"year": loaded.Year.Year, "dry_run": loaded.DryRun, "loaded": !loaded.DryRun,
		"calendar": loaded.Year, "changes": changes,
	}, nil
}

func calendarDayText(d calendar.Day) string {
	if d.Holiday != "" {
		return string(d.Reason) + " " + d.Holiday
	}
	return string(d.Reason)
}

func (a BookCalendars) Years(ctx context.Context) (any, error) {
	years, err := a.Book.Years(ctx)
	if err != nil {
		return nil, err
	}
	type view struct {
		Year     int              `json:"year"`
		Notice   string           `json:"notice"`
		Source   *calendar.Source `json:"source,omitempty"`
		Origin   string           `json:"origin"`
		LoadedAt *time.Time       `json:"loaded_at,omitempty"`
		LoadedBy string           `json:"loaded_by,omitempty"`
	}
	out := make([]view, len(years))
	for i, y := range years {
		out[i] = view{Year: y.Year, Notice: y.Notice, Source: y.Source, Origin: y.Origin}
		if e := y.LoadedAt; e != nil {
			at := e.At.In(tocsin.Shanghai)
			out[i].LoadedAt, out[i].LoadedBy = &at, e.Org+"/"+e.By
		}
	}
	return out, nil
}
