package httpapi

import (
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/tocsin-dev/tocsin/internal/tocsin"
)

func (s *Server) broadcastRoutes() chi.Router {
	r := chi.NewRouter()
	r.Post("/", s.handle(s.fileBroadcast))
	r.Get("/", s.handle(s.listBroadcasts))
	r.Route("/{id}", func(r chi.Router) {
		r.Get("/", s.handle(s.getBroadcast))
		r.Post("/approve", s.handle(s.approve))
		r.Post("/reject", s.handle(s.reject))
		r.Post("/withdraw", s.handle(s.withdraw))
		r.Post("/cancel", s.handle(s.cancel))
		r.Post("/resend", s.handle(s.resend))
		r.Post("/update", s.handle(s.fileUpdate))
		r.Post("/post-hoc", s.handle(s.filePostHoc))
		r.Post("/post-hoc/review", s.handle(s.reviewPostHoc))
	})
	return r
}

// RegionView is a scope code with its Chinese name.
type RegionView struct {
	Code string `json:"code"`
	Name string `json:"name"`
}

// BroadcastView is a broadcast as the API shows it: the stored record plus
// names a reader needs.
type BroadcastView struct {
	*tocsin.Broadcast
	Regions        []RegionView `json:"regions"`
	PostHocOverdue bool         `json:"post_hoc_overdue,omitempty"`
	// PublicHeadline is what public documents carry as the headline: the
	// headline, or one derived from the content; never the title.
	PublicHeadline string `json:"public_headline"`
	// AllowedActions is what the reader may do with the broadcast now
	// (tocsin.Service.Actions).
	AllowedActions tocsin.ActionSet `json:"allowed_actions"`
	// Timeline is the broadcast's audit trail; only the detail carries it.
	Timeline []tocsin.AuditEntry `json:"timeline,omitempty"`
}

func (s *Server) view(a tocsin.Actor, b *tocsin.Broadcast) BroadcastView {
	v := BroadcastView{Broadcast: b, Regions: make([]RegionView, len(b.Scope)),
		PublicHeadline: b.PublicHeadline(), AllowedActions: s.Service.Actions(a, b)}
	for i, code := range b.Scope {
		v.Regions[i] = RegionView{Code: code, Name: s.Regions.Name(code)}
	}
	if b.Providers == nil {
		b.Providers = []tocsin.ProviderProgress{}
	}
	v.PostHocOverdue = b.PostHoc.Overdue(s.Service.Clock.Now())
	return v
}

// MaxIdempotencyKey bounds the Idempotency-Key header.
const MaxIdempotencyKey = 255

func (s *Server) fileBroadcast(w http.ResponseWriter, r *http.Request) error {
	return s.fileWith(w, r, "")
}

// fileWith files a broadcast, or with references a correction of that
// broadcast.
func (s *Server) fileWith(w http.ResponseWriter, r *http.Request, references string) error {
	received := time.Now() // the filing's durability is timed from here to its commit
	key := strings.TrimSpace(r.Header.Get("Idempotency-Key"))
	if len(key) > MaxIdempotencyKey {
		return tocsin.Errorf(tocsin.CodeInvalid, "Idempotency-Key is longer than %d characters", MaxIdempotencyKey)
	}
	f, err := s.readFiling(r, &key, references != "") // JSON, or a CAP alert (cap.go)
	if err != nil {
		return err
	}
	var b *tocsin.Broadcast
	var replayed bool
	if references == "" {
		b, replayed, err = s.Service.File(r.Context(), actor(r), f, key)
	} else {
		b, replayed, err = s.Service.FileUpdate(r.Context(), actor(r), references, f, key)
	}
	if err != nil {
		s.Metrics.Refused(tocsin.ErrorCode(err))
		return err
	}
	if replayed {
		w.Header().Set("Idempotent-Replayed", "true")
	} else {
		// File returns once its transaction is committed, and bbolt
		// commits with an fsync: the filing is durable now.
		s.Metrics.ObserveFilingDurable(b.IsEmergency(), time.Since(received))
		s.Metrics.Filed(b.IsEmergency())
	}
	w.Header().Set("Location", "/api/v1/broadcasts/"+b.ID)
	writeJSON(w, http.StatusCreated, s.view(actor(r), b))
	return nil
}

func (s *Server) listBroadcasts(w http.ResponseWriter, r *http.Request) error {
	q := tocsin.Query{Cursor: r.URL.Query().Get("cursor")}
	params := r.URL.Query()
	if v := params.Get("status"); v != "" {
		for _, st := range strings.Split(v, ",") {
			status := tocsin.Status(strings.TrimSpace(st))
			if !status.Valid() {
				return tocsin.Errorf(tocsin.CodeValidation, "unknown status %q", st).With("field", "status")
			}
			q.Status = append(q.Status, status)
		}
	}
	if v := params.Get("department"); v != "" {
		q.Department = v
	}
	if v := params.Get("emergency"); v != "" {
		e, err := strconv.ParseBool(v)
		if err != nil {
			return tocsin.Errorf(tocsin.CodeValidation, "emergency must be true or false").With("field", "emergency")
		}
		q.Emergency = &e
	}
	if v := params.Get("post_hoc"); v != "" {
		q.PostHoc = tocsin.PostHocFilter(v)
		if !q.PostHoc.Valid() {
			return tocsin.Errorf(tocsin.CodeValidation, "post_hoc must be report_due, report_filed, reviewed, overdue or not_emergency").With("field", "post_hoc")
		}
	}
	if v := params.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return tocsin.Errorf(tocsin.CodeValidation, "limit must be a positive whole number").With("field", "limit")
		}
		q.Limit = n
	}
	page, err := s.Service.List(r.Context(), actor(r), q)
	if err != nil {
		return err
	}
	out := struct {
		Broadcasts []BroadcastView `json:"broadcasts"`
		NextCursor string          `json:"next_cursor,omitempty"`
	}{Broadcasts: make([]BroadcastView, len(page.Broadcasts)), NextCursor: page.NextCursor}
	for i, b := range page.Broadcasts {
		out.Broadcasts[i] = s.view(actor(r), b)
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (s *Server) getBroadcast(w http.ResponseWriter, r *http.Request) error {
	b, err := s.Service.Get(r.Context(), actor(r), chi.URLParam(r, "id"))
	if err != nil {
		return err
	}
	v := s.view(actor(r), b)
	if v.Timeline, err = s.Service.Timeline(r.Context(), actor(r), b.ID); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, v)
	return nil
}

// respond renders the broadcast a transition returned.
func (s *Server) respond(w http.ResponseWriter, r *http.Request, b *tocsin.Broadcast, err error) error {
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, s.view(actor(r), b))
	return nil
}

func (s *Server) approve(w http.ResponseWriter, r *http.Request) error {
	var body struct{}
	if err := decodeJSON(r, &body, true); err != nil {
		return err
	}
	b, err := s.Service.Approve(r.Context(), actor(r), chi.URLParam(r, "id"))
	return s.respond(w, r, b, err)
}

func (s *Server) reject(w http.ResponseWriter, r *http.Request) error {
	var body struct {
		ReasonCode tocsin.ReasonCode `json:"reason_code"`
		Reason     string            `json:"reason"`
	}
	if err := decodeJSON(r, &body, true); err != nil {
		return err
	}
	b, err := s.Service.Reject(r.Context(), actor(r), chi.URLParam(r, "id"), body.ReasonCode, body.Reason)
	return s.respond(w, r, b, err)
}

type reasonBody struct {
	Reason string `json:"reason"`
}

func (s *Server) withdraw(w http.ResponseWriter, r *http.Request) error {
	var body reasonBody
	if err := decodeJSON(r, &body, true); err != nil {
		return err
	}
	b, err := s.Service.Withdraw(r.Context(), actor(r), chi.URLParam(r, "id"), body.Reason)
	return s.respond(w, r, b, err)
}

func (s *Server) cancel(w http.ResponseWriter, r *http.Request) error {
	var body reasonBody
	if err := decodeJSON(r, &body, true); err != nil {
		return err
	}
	b, err := s.Service.Cancel(r.Context(), actor(r), chi.URLParam(r, "id"), body.Reason)
	return s.respond(w, r, b, err)
}

func (s *Server) filePostHoc(w http.ResponseWriter, r *http.Request) error {
	var body struct {
		Report string `json:"report"`
	}
	if err := decodeJSON(r, &body, false); err != nil {
		return err
	}
	b, err := s.Service.FilePostHoc(r.Context(), actor(r), chi.URLParam(r, "id"), body.Report)
	return s.respond(w, r, b, err)
}

func (s *Server) reviewPostHoc(w http.ResponseWriter, r *http.Request) error {
	var body struct {
		Verdict tocsin.PostHocVerdict `json:"verdict"`
		Note    string                `json:"note"`
	}
	if err := decodeJSON(r, &body, false); err != nil {
		return err
	}
	b, err := s.Service.ReviewPostHoc(r.Context(), actor(r), chi.URLParam(r, "id"), body.Verdict, body.Note)
	return s.respond(w, r, b, err)
}

// fileUpdate files a correction of broadcast {id}: a filing like any other
// (JSON or CAP), referencing the original.
func (s *Server) fileUpdate(w http.ResponseWriter, r *http.Request) error {
	return s.fileWith(w, r, chi.URLParam(r, "id"))
}
