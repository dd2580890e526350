package httpapi_test

import (
	"context"
	"testing"
	"time"

	"github.com/tocsin-dev/tocsin/internal/calendar"
	"github.com/tocsin-dev/tocsin/internal/httpapi"
	"github.com/tocsin-dev/tocsin/internal/natsbus"
	"github.com/tocsin-dev/tocsin/internal/testkit"
	"github.com/tocsin-dev/tocsin/internal/tocsin"
)

// registryAPI is cmd/tocsin's adapter of the same name.
type registryAPI struct{ *natsbus.Registry }

func (r registryAPI) Register(ctx context.Context, p tocsin.Provider) (any, error) {
	return r.Registration(ctx, p)
}

// LastSeen knows no provider: none connects in these tests.
func (registryAPI) LastSeen(string) (time.Time, bool) { return time.Time{}, false }

// purger is the coordinator's Purger with the default retention.
type purger struct{ svc *tocsin.Service }

func (p purger) Purge(ctx context.Context, dryRun bool) (string, []tocsin.Purged, error) {
	purged, err := p.svc.Purge(ctx, tocsin.DefaultRetention, dryRun)
	return tocsin.DefaultRetention.String(), purged, err
}

// newWiredAPI is newTestAPI with every optional part wired as cmd/tocsin
// wires it: provider registration on an embedded NATS server, a calendar
// book of its own in a temporary folder, and retention purges.
func newWiredAPI(t *testing.T) *testAPI {
	t.Helper()
	return newTestAPI(t, func(s *httpapi.Server) {
		n := testkit.MustNATS(t, testkit.Logger(t))
		s.Providers = registryAPI{&natsbus.Registry{Service: s.Service, Bus: n.Bus, Embedded: n.Embedded, URL: n.Embedded.ClientURL()}}
		cal, err := calendar.Load("")
		if err != nil {
			t.Fatal(err)
		}
		s.Service.Calendar, s.Days = cal, cal
		s.Calendars = httpapi.BookCalendars{Book: &calendar.Book{Calendar: cal, Dir: t.TempDir(), Service: s.Service}}
		s.Purger = purger{s.Service}
	})
}
