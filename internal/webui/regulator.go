package webui

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/tocsin-dev/tocsin/internal/tocsin"
)

// maxQueue bounds how many broadcasts one queue page gathers.
const maxQueue = 2000

// all lists every broadcast matching q that a may see, up to maxQueue.
func (s *Server) all(ctx context.Context, a tocsin.Actor, q tocsin.Query) ([]*tocsin.Broadcast, error) {
	var out []*tocsin.Broadcast
	q.Limit = tocsin.MaxPageSize
	for {
		p, err := s.Service.List(ctx, a, q)
		if err != nil {
			return nil, err
		}
		out = append(out, p.Broadcasts...)
		if p.NextCursor == "" || len(out) >= maxQueue {
			return out, nil
		}
		q.Cursor = p.NextCursor
	}
}

type reviewPage struct {
	page
	Rows []row
}

// reviewPage is the regulator's queue: every filing waiting for review,
// the one to be sent soonest first, with the working days left.
func (s *Server) reviewPage(w http.ResponseWriter, r *http.Request) error {
	a := sessionFrom(r.Context()).Actor
	bs, err := s.all(r.Context(), a, tocsin.Query{Status: []tocsin.Status{tocsin.StatusPendingReview}})
	if err != nil {
		return err
	}
	slices.SortStableFunc(bs, func(x, y *tocsin.Broadcast) int { return x.SendAt.Compare(y.SendAt) })
	p := reviewPage{page: s.pageFor(r, "review")}
	if p.Rows, err = s.rows(r.Context(), p.Lang, a, bs); err != nil {
		return err
	}
	return s.render(w, r, http.StatusOK, "review", &p)
}

// boardWindow is how long a finished emergency stays on the board.
const boardWindow = 24 * time.Hour

// board lists the emergencies being dispatched and those finished within
// boardWindow, newest first.
func (s *Server) board(ctx context.Context, a tocsin.Actor) ([]*tocsin.Broadcast, error) {
	yes := true
	bs, err := s.all(ctx, a, tocsin.Query{Emergency: &yes,
		Status: []tocsin.Status{tocsin.StatusDispatching, tocsin.StatusCompleted, tocsin.StatusCancelled, tocsin.StatusExpired}})
	if err != nil {
		return nil, err
	}
	cutoff := s.serviceNow().Add(-boardWindow)
	return slices.DeleteFunc(bs, func(b *tocsin.Broadcast) bool {
		switch {
		case b.Status == tocsin.StatusDispatching:
			return false
		case b.CompletedAt != nil:
			return b.CompletedAt.Before(cutoff)
		case b.Closure != nil:
			return b.Closure.At.Before(cutoff)
		}
		if end, ok := b.EndedAt(); ok && b.Status == tocsin.StatusExpired {
			return end.Before(cutoff)
		}
		return true
	}), nil
}

type boardRow struct {
	row
	Providers []providerRow
	Summary   string
}

type emergenciesPage struct {
	page
	Rows []boardRow
}

// emergenciesPage is the board of emergencies going out, with each
// provider's progress live.
func (s *Server) emergenciesPage(w http.ResponseWriter, r *http.Request) error {
	a := sessionFrom(r.Context()).Actor
	bs, err := s.board(r.Context(), a)
	if err != nil {
		return err
	}
	p := emergenciesPage{page: s.pageFor(r, "emergencies")}
	rows, err := s.rows(r.Context(), p.Lang, a, bs)
	if err != nil {
		return err
	}
	names, err := s.orgNames(r.Context(), p.Lang)
	if err != nil {
		return err
	}
	for _, rw := range rows {
		br := boardRow{row: rw, Summary: summaryText(p.L, rw.Progress)}
		br.Providers = s.providerRows(p.L, names, rw.B)
		p.Rows = append(p.Rows, br)
	}
	return s.render(w, r, http.StatusOK, "emergencies", &p)
}

type postHocPage struct {
	page
	Filed []row
	Due   []row
}

// postHocPage is the regulator's post-hoc queue: reports to review, and
// reports still owed, the overdue ones first.
func (s *Server) postHocPage(w http.ResponseWriter, r *http.Request) error {
	a := sessionFrom(r.Context()).Actor
	yes := true
	filed, err := s.all(r.Context(), a, tocsin.Query{Emergency: &yes, PostHoc: tocsin.PostHocFilterFiled})
	if err != nil {
		return err
	}
	due, err := s.all(r.Context(), a, tocsin.Query{Emergency: &yes, PostHoc: tocsin.PostHocFilterDue})
	if err != nil {
		return err
	}
	slices.SortStableFunc(due, func(x, y *tocsin.Broadcast) int { return strings.Compare(x.PostHoc.DueDate, y.PostHoc.DueDate) })
	p := postHocPage{page: s.pageFor(r, "posthoc")}
	if p.Filed, err = s.rows(r.Context(), p.Lang, a, filed); err != nil {
		return err
	}
	if p.Due, err = s.rows(r.Context(), p.Lang, a, due); err != nil {
		return err
	}
	slices.SortStableFunc(p.Due, func(x, y row) int {
		switch {
		case x.Overdue == y.Overdue:
			return 0
		case x.Overdue:
			return -1
		}
		return 1
	})
	return s.render(w, r, http.StatusOK, "posthoc", &p)
}

type providerInfo struct {
	ID, Name string
	Regions  []regionView
	LastSeen time.Time
	Ago      string
	Online   bool
}

type providersPage struct {
	page
	Providers []providerInfo
}

// onlineWithin is how recently a provider must have been seen to show as
// connected.
const onlineWithin = time.Minute

// providersPage lists the providers, what they cover and when each was
// last seen pulling or reporting.
func (s *Server) providersPage(w http.ResponseWriter, r *http.Request) error {
	a := sessionFrom(r.Context()).Actor
	providers, err := s.Service.Providers(r.Context(), a)
	if err != nil {
		return err
	}
	if a.Role == tocsin.RoleRegulator && !a.IsNational() {
		// A provincial administration's list is the providers that
		// cover its province.
		reach, err := s.Service.Coverage(r.Context(), []string{a.Jurisdiction})
		if err != nil {
			return err
		}
		providers = slices.DeleteFunc(providers, func(p *tocsin.Provider) bool {
			return !slices.ContainsFunc(reach, func(rc tocsin.Reach) bool { return rc.Provider == p.ID })
		})
	}
	p := providersPage{page: s.pageFor(r, "providers")}
	names, err := s.orgNames(r.Context(), p.Lang)
	if err != nil {
		return err
	}
	for _, pr := range providers {
		info := providerInfo{ID: pr.ID, Name: nameOr(names, pr.ID, pr.Name), Regions: s.regionViews(pr.Regions)}
		// The dispatcher's time is real time; the stored one follows the
		// service clock, which the demo may have moved.
		now := s.serviceNow()
		if pr.LastSeen != nil {
			info.LastSeen = *pr.LastSeen
		}
		if s.LastSeen != nil {
			if t, ok := s.LastSeen(pr.ID); ok {
				info.LastSeen, now = t, s.Now()
			}
		}
		if info.LastSeen.IsZero() {
			info.Ago = p.L.S("time.never")
		} else {
			info.Ago = p.L.agoAt(now, info.LastSeen)
			info.Online = now.Sub(info.LastSeen) < onlineWithin
		}
		p.Providers = append(p.Providers, info)
	}
	return s.render(w, r, http.StatusOK, "providers", &p)
}
