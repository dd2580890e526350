package httpapi

import (
	"net/http"
	"time"

	"github.com/tocsin-dev/tocsin/internal/tocsin"
)

// DayLister lists days with the reason each is or is not a working day
// (*calendar.Calendar is one). A date in a year with no loaded calendar is
// an error with code CodeCalendarMissing.
type DayLister interface {
	DayReasons(from, to time.Time) ([]tocsin.CalendarDay, error)
}

func parseDate(field, v string) (time.Time, error) {
	d, err := time.ParseInLocation(tocsin.DateLayout, v, tocsin.Shanghai)
	if err != nil {
		return d, tocsin.Errorf(tocsin.CodeValidation, "%s must be a date YYYY-MM-DD, not %q", field, v).With("field", field)
	}
	return d, nil
}

// earliest answers GET /calendar/earliest?filed=YYYY-MM-DD; without filed
// it answers for today in Asia/Shanghai.
func (s *Server) earliest(w http.ResponseWriter, r *http.Request) error {
	filed := tocsin.DateOf(s.Service.Clock.Now())
	if v := r.URL.Query().Get("filed"); v != "" {
		var err error
		if filed, err = parseDate("filed", v); err != nil {
			return err
		}
	}
	d, err := s.Service.EarliestSendDate(filed)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"filed":              filed.Format(tocsin.DateLayout),
		"earliest_send_date": d.Format(tocsin.DateLayout),
		"working_days":       10,
	})
	return nil
}

// MaxCalendarDays bounds one GET /calendar/days answer.
const MaxCalendarDays = 400

func (s *Server) calendarDays(w http.ResponseWriter, r *http.Request) error {
	from, err := parseDate("from", r.URL.Query().Get("from"))
	if err != nil {
		return err
	}
	to, err := parseDate("to", r.URL.Query().Get("to"))
	if err != nil {
		return err
	}
	if to.Before(from) || to.Sub(from) > MaxCalendarDays*24*time.Hour {
		return tocsin.Errorf(tocsin.CodeValidation, "to must be on or after from, at most %d days later", MaxCalendarDays)
	}
	if s.Days == nil {
		return tocsin.Errorf(tocsin.CodeNotFound, "calendar listing is not available")
	}
	days, err := s.Days.DayReasons(from, to)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"days": days})
	return nil
}
