package webui

import (
	"context"
	"net/http"
	"net/url"

	"github.com/go-chi/chi/v5"

	"github.com/tocsin-dev/tocsin/internal/tocsin"
)

// inboxPage is the organisation's notifications, newest first.
type inboxPage struct {
	page
	Items []inboxItem
	Next  string
}

// inboxItem is one notification as the page shows it: its headline and
// the sentence that says what happened, in the page's language.
type inboxItem struct {
	N    tocsin.Notification
	What string
	Line string
}

// inboxRoutes are the inbox's pages, for every logged-in organisation.
func (s *Server) inboxRoutes(r chi.Router) {
	r.Get("/", s.handle(s.inboxView))
	r.Post("/read", s.handle(s.readAll))
	r.Post("/{id}/read", s.handle(s.readOne))
}

func (s *Server) inboxView(w http.ResponseWriter, r *http.Request) error {
	a := sessionFrom(r.Context()).Actor
	cursor := r.URL.Query().Get("cursor")
	res, err := s.Service.Inbox(r.Context(), a, tocsin.DefaultInboxPage, cursor)
	if err != nil {
		return err
	}
	p := inboxPage{page: s.pageFor(r, "inbox")}
	p.Unread = res.Unread
	if done := r.URL.Query().Get("done"); done == "read_all" {
		p.Notice = p.L.S("inbox.done.read_all")
	}
	names, err := s.orgNames(r.Context(), p.Lang)
	if err != nil {
		return err
	}
	for _, n := range res.Notifications {
		n.By = nameOr(names, n.By, "")
		p.Items = append(p.Items, inboxItem{N: n, What: p.L.Code("inbox.kind", n.Kind), Line: noticeLine(p.L, n.Notice)})
	}
	if res.NextCursor != "" {
		p.Next = "/inbox?cursor=" + url.QueryEscape(res.NextCursor)
	}
	return s.render(w, r, http.StatusOK, "inbox", &p)
}

// noticeLine says what happened, with the reasons, in l's language.
func noticeLine(l localizer, n tocsin.Notice) string {
	switch n.Kind {
	case tocsin.NoticeApproved:
		return l.S("inbox.line.approved", n.By)
	case tocsin.NoticeRejected:
		return l.S("inbox.line.rejected", n.By, l.Code("reason", n.ReasonCode), n.Reason)
	case tocsin.NoticeWithdrawn:
		return l.S("inbox.line.withdrawn", n.By, n.Reason)
	case tocsin.NoticeCancelled:
		return l.S("inbox.line.cancelled", n.By, n.Reason)
	case tocsin.NoticeDispatchFailed:
		return l.S("inbox.line.dispatch_failed", n.Provider, n.Detail)
	case tocsin.NoticeLate:
		return l.S("inbox.line.late", n.Provider)
	case tocsin.NoticePostHocDue:
		return l.S("inbox.line.post_hoc_due", n.DueDate)
	case tocsin.NoticePostHocOverdue:
		return l.S("inbox.line.post_hoc_overdue", n.DueDate)
	case tocsin.NoticePostHocReviewed:
		if n.Verdict == tocsin.PostHocNotEmergency {
			return l.S("inbox.line.post_hoc_flagged", n.By, n.Note)
		}
		return l.S("inbox.line.post_hoc_accepted", n.By)
	}
	return string(n.Kind)
}

// readOne marks a notification read and opens its broadcast.
func (s *Server) readOne(w http.ResponseWriter, r *http.Request) error {
	n, err := s.Service.MarkRead(r.Context(), sessionFrom(r.Context()).Actor, chi.URLParam(r, "id"))
	if err != nil {
		return err
	}
	http.Redirect(w, r, "/broadcasts/"+url.PathEscape(n.BroadcastID), http.StatusSeeOther)
	return nil
}

func (s *Server) readAll(w http.ResponseWriter, r *http.Request) error {
	if _, err := s.Service.MarkAllRead(r.Context(), sessionFrom(r.Context()).Actor); err != nil {
		return err
	}
	http.Redirect(w, r, "/inbox?done=read_all", http.StatusSeeOther)
	return nil
}

// unread is the header's count; a failure to read it shows none rather
// than failing the page.
func (s *Server) unread(ctx context.Context, a tocsin.Actor) int {
	n, err := s.Service.Unread(ctx, a)
	if err != nil {
		return 0
	}
	return n
}
