package httpapi

import (
	"context"
	"io"
	"mime"
	"net/http"
	"strconv"

	"github.com/go-chi/chi/v5"

	"github.com/tocsin-dev/tocsin/internal/tocsin"
)

// CalendarBook loads working-day calendars into the running coordinator.
type CalendarBook interface {
	// Load parses body (a notice's text when notice, else a calendar JSON
	// file), checks it and, unless dryRun, makes it year's calendar at
	// once; it returns what changed, ready to encode.
	Load(ctx context.Context, a tocsin.Actor, year int, body []byte, notice, dryRun bool) (any, error)
	// Years lists the loaded years, ready to encode.
	Years(ctx context.Context) (any, error)
}

// maxCalendarBody bounds a notice or calendar file: the real ones are a
// few KiB.
const maxCalendarBody = 256 << 10

func (s *Server) calendarRoutes() chi.Router {
	r := chi.NewRouter()
	r.Get("/", s.handle(s.listCalendars))
	r.Put("/{year}", s.handle(s.putCalendar))
	return r
}

func (s *Server) listCalendars(w http.ResponseWriter, r *http.Request) error {
	if s.Calendars == nil {
		return tocsin.Errorf(tocsin.CodeNotFound, "calendars cannot be listed on this server")
	}
	years, err := s.Calendars.Years(r.Context())
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"calendars": years})
	return nil
}

// putCalendar loads a year: the State Council's notice as text/plain, or a
// calendar file as application/json. ?dry_run=true shows what would
// change and loads nothing.
func (s *Server) putCalendar(w http.ResponseWriter, r *http.Request) error {
	if s.Calendars == nil {
		return tocsin.Errorf(tocsin.CodeNotFound, "calendars cannot be loaded on this server")
	}
	if err := tocsin.AuthorizeCalendarLoad(actor(r)); err != nil {
		return err
	}
	year, err := strconv.Atoi(chi.URLParam(r, "year"))
	if err != nil || year < 1949 || year > 9999 {
		return tocsin.Errorf(tocsin.CodeInvalid, "the year in the path must be four digits, such as 2027").With("field", "year")
	}
	media, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	var notice bool
	switch media {
	case "text/plain":
		notice = true
	case "application/json":
	default:
		return tocsin.Errorf(tocsin.CodeUnsupportedMedia, "send the notice as text/plain or a calendar file as application/json")
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxCalendarBody))
	if err != nil {
		return tocsin.Errorf(tocsin.CodeTooLarge, "a notice or calendar file may be at most %d KiB", maxCalendarBody>>10)
	}
	dryRun := r.URL.Query().Get("dry_run") == "true"
	out, err := s.Calendars.Load(r.Context(), actor(r), year, body, notice, dryRun)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}
