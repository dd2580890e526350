package webui

import (
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/tocsin-dev/tocsin/internal/calendar"
	"github.com/tocsin-dev/tocsin/internal/tocsin"
)

// calendarsPage is the operator's page for the working-day calendars: the
// years loaded, and the State Council's notice pasted, previewed day by
// day, and loaded only on confirmation.
type calendarsPage struct {
	page
	Years   []calendarYearRow
	Text    string // the notice as pasted
	Preview *calendarPreview
}

type calendarYearRow struct {
	Year     int
	Notice   string
	Number   string
	Loaded   bool // at run time, rather than shipped
	LoadedAt time.Time
	LoadedBy string
}

type calendarPreview struct {
	Year    int
	Changes []calendarChangeRow
}

type calendarChangeRow struct {
	Date          string
	Before, After string
}

func (s *Server) calendarsPage(w http.ResponseWriter, r *http.Request) error {
	p, err := s.calendarsPageFor(r)
	if err != nil {
		return err
	}
	if y := r.URL.Query().Get("loaded"); y != "" {
		p.Notice = p.L.S("calendars.loaded", y)
	}
	return s.render(w, r, http.StatusOK, "calendars", p)
}

func (s *Server) calendarsPageFor(r *http.Request) (*calendarsPage, error) {
	if s.Calendars == nil {
		return nil, tocsin.Errorf(tocsin.CodeNotFound, "calendars cannot be loaded on this server")
	}
	p := &calendarsPage{page: s.pageFor(r, "calendars")}
	years, err := s.Calendars.Years(r.Context())
	if err != nil {
		return nil, err
	}
	for _, y := range years {
		row := calendarYearRow{Year: y.Year, Notice: y.Notice, Loaded: y.Origin == "loaded"}
		if y.Source != nil {
			row.Number = y.Source.Number
		}
		if y.LoadedAt != nil {
			row.LoadedAt, row.LoadedBy = y.LoadedAt.At, y.LoadedAt.By
		}
		p.Years = append(p.Years, row)
	}
	return p, nil
}

// loadCalendar previews the pasted notice (step "preview") or loads it
// (step "load", the confirmation of a preview).
func (s *Server) loadCalendar(w http.ResponseWriter, r *http.Request) error {
	p, err := s.calendarsPageFor(r)
	if err != nil {
		return err
	}
	p.Text = strings.TrimSpace(r.PostFormValue("notice"))
	load := r.PostFormValue("step") == "load"
	a := sessionFrom(r.Context()).Actor
	year := 0
	parsed, err := calendar.ParseNotice(p.Text)
	if err == nil {
		year = parsed.Year
		var loaded *calendar.Loaded
		loaded, err = s.Calendars.Load(r.Context(), a, year, []byte(p.Text), true, !load)
		if err == nil && load {
			http.Redirect(w, r, "/calendars?loaded="+strconv.Itoa(year), http.StatusSeeOther)
			return nil
		}
		if err == nil {
			p.Preview = &calendarPreview{Year: year}
			for _, c := range loaded.Changes {
				p.Preview.Changes = append(p.Preview.Changes, calendarChangeRow{
					Date:   c.Date.Format("2006-01-02 ") + p.L.weekday(c.Date),
					Before: p.L.dayText(c.Before, c.BeforeLoaded), After: p.L.dayText(c.After, true),
				})
			}
		}
	}
	status := http.StatusOK
	if err != nil {
		p.Error, p.Detail = describe(p.L, err)
		if p.Detail == "" {
			p.Detail = err.Error()
		}
		status = http.StatusUnprocessableEntity
	}
	return s.render(w, r, status, "calendars", p)
}

// dayText is a date's kind, and the holiday it belongs to, in the
// language; unloaded says the year had no calendar before.
func (l localizer) dayText(d calendar.Day, loaded bool) string {
	text := l.S("day." + string(d.Reason))
	if d.Holiday != "" {
		name := d.Holiday
		if l.Lang != LangZH {
			if en, ok := calendar.EnglishName(d.Holiday); ok {
				name = en
			}
		}
		text += " · " + name
	}
	if !loaded {
		text += " (" + l.S("calendars.not_loaded") + ")"
	}
	return text
}

func (l localizer) weekday(t time.Time) string {
	return l.S("weekday." + strings.ToLower(t.In(tocsin.Shanghai).Weekday().String()[:3]))
}
