package calendar

import (
	"time"

	"github.com/tocsin-dev/tocsin/internal/tocsin"
)

// DayReasons is Days in the domain's terms, for the API's day listing: each
// date as a tocsin.CalendarDay, and any error (a year with no loaded
// calendar, a range that ends before it starts) as a *tocsin.Error with
// code CodeCalendarMissing.
func (c *Calendar) DayReasons(from, to time.Time) ([]tocsin.CalendarDay, error) {
	days, err := c.Days(from, to)
	if err != nil {
		return nil, &tocsin.Error{Code: tocsin.CodeCalendarMissing, Message: err.Error(), Err: err}
	}
	out := make([]tocsin.CalendarDay, len(days))
	for i, d := range days {
		out[i] = tocsin.CalendarDay{Date: d.Date.Format(tocsin.DateLayout), Working: d.Working, Reason: string(d.Reason), Holiday: d.Holiday}
	}
	return out, nil
}
