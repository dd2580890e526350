package webui

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"github.com/tocsin-dev/tocsin/internal/httpapi"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/tocsin-dev/tocsin/internal/region"
	"github.com/tocsin-dev/tocsin/internal/tocsin"
)

// regionView is a region code with its full Chinese name.
type regionView struct{ Code, Name string }

func (s *Server) regionViews(codes []string) []regionView {
	out := make([]regionView, len(codes))
	for i, c := range codes {
		out[i] = regionView{Code: c, Name: s.Regions.FullName(c)}
		if out[i].Name == "" {
			out[i].Name = c
		}
	}
	return out
}

// orgNames returns every organisation's name in the language, by id.
func (s *Server) orgNames(ctx context.Context, lang string) (map[string]string, error) {
	orgs, err := s.Service.OrganisationNames(ctx)
	if err != nil {
		return nil, err
	}
	out := make(map[string]string, len(orgs))
	for id, o := range orgs {
		out[id] = orgName(&o, lang)
	}
	return out, nil
}

func nameOr(names map[string]string, id, fallback string) string {
	if n := names[id]; n != "" {
		return n
	}
	if fallback != "" {
		return fallback
	}
	return id
}

// row is a broadcast in a listing.
type row struct {
	B          *tocsin.Broadcast
	Department string
	Scope      []regionView
	Progress   progressView
	Overdue    bool // the post-hoc report is late
	CanAct     bool // the viewer's jurisdiction covers it (may review it while pending)
	DaysLeft   int  // working days until its send time,
	HasDays    bool // if the calendar covers it
}

// progressView sums a broadcast's dispatch over its providers.
type progressView struct {
	Providers, Finished           int
	Recipients, Delivered, Failed int
}

func summarize(b *tocsin.Broadcast) progressView {
	var p progressView
	for _, pp := range b.Providers {
		p.Providers++
		if pp.Status.Final() {
			p.Finished++
		}
		p.Recipients += pp.Recipients
		p.Delivered += pp.Delivered
		p.Failed += pp.Failed
	}
	return p
}

func (s *Server) rows(ctx context.Context, lang string, a tocsin.Actor, bs []*tocsin.Broadcast) ([]row, error) {
	names, err := s.orgNames(ctx, lang)
	if err != nil {
		return nil, err
	}
	now := s.serviceNow()
	out := make([]row, len(bs))
	for i, b := range bs {
		out[i] = row{
			B: b, Department: nameOr(names, b.Department, b.Agency), Scope: s.regionViews(b.Scope),
			Progress: summarize(b), Overdue: b.PostHoc.Overdue(now), CanAct: s.Service.CanSupervise(a, b.Scope),
		}
		if b.Status == tocsin.StatusPendingReview || b.Status == tocsin.StatusApproved {
			n, err := s.Service.Calendar.WorkingDaysBetween(now, b.SendAt)
			out[i].DaysLeft, out[i].HasDays = n, err == nil
		}
	}
	return out, nil
}

type listPage struct {
	page
	Rows     []row
	Status   string
	Statuses []tocsin.Status
	Next     string
	CanFile  bool
}

// listPage shows the broadcasts the person may see, newest first: a
// department its own, a regulator those touching its jurisdiction.
func (s *Server) listPage(w http.ResponseWriter, r *http.Request) error {
	sess := sessionFrom(r.Context())
	p := listPage{page: s.pageFor(r, "broadcasts"), Statuses: tocsin.Statuses, CanFile: tocsin.CanFile(sess.Actor)}
	q := tocsin.Query{Cursor: r.URL.Query().Get("cursor"), Limit: 50}
	if st := tocsin.Status(r.URL.Query().Get("status")); st.Valid() {
		q.Status, p.Status = []tocsin.Status{st}, string(st)
	}
	pg, err := s.Service.List(r.Context(), sess.Actor, q)
	if err != nil {
		return err
	}
	if p.Rows, err = s.rows(r.Context(), p.Lang, sess.Actor, pg.Broadcasts); err != nil {
		return err
	}
	if pg.NextCursor != "" {
		v := url.Values{"cursor": {pg.NextCursor}}
		if p.Status != "" {
			v.Set("status", p.Status)
		}
		p.Next = "/broadcasts?" + v.Encode()
	}
	return s.render(w, r, http.StatusOK, "broadcasts", &p)
}

// filingForm is the filing form's fields as typed.
type filingForm struct {
	Title, Content               string
	Province, Prefecture, County string
	Scope                        []string
	SendDate, SendTime           string
	UntilDate, UntilTime         string
	Emergency                    bool
	EmergencyType, Event, Level  string
	Justification                string
	Exercise                     bool
	Key                          string // Idempotency-Key: a resubmitted form files once
}

type filingPageData struct {
	page
	F              filingForm
	SMS            tocsin.SMSInfo
	MaxSegments    int
	Earliest       string
	Today          string
	Provinces      []region.Division
	Prefectures    []region.Division
	Counties       []region.Division
	Chips          []regionView
	EmergencyTypes []tocsin.EmergencyType
	Levels         []tocsin.WarningLevel
	Field          string // the field the error is about
}

func (s *Server) filingPage(w http.ResponseWriter, r *http.Request) error {
	a := sessionFrom(r.Context()).Actor
	if !tocsin.CanFile(a) {
		return &tocsin.Error{Code: tocsin.CodeForbidden, Message: "only departments at provincial level or above may file (Article 17)",
			Details: map[string]any{"reason": "filer_level"}}
	}
	f := filingForm{Key: newKey(), SendTime: "09:00"}
	return s.renderNew(w, r, http.StatusOK, f, nil)
}

func newKey() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// renderNew shows the filing form with f's values and, after a refusal,
// the reason.
func (s *Server) renderNew(w http.ResponseWriter, r *http.Request, status int, f filingForm, ferr error) error {
	a := sessionFrom(r.Context()).Actor
	p := filingPageData{
		page: s.pageFor(r, "new"), F: f, SMS: tocsin.MeasureSMS(f.Content), MaxSegments: tocsin.MaxSegments,
		EmergencyTypes: tocsin.EmergencyTypes, Levels: tocsin.WarningLevels, Chips: s.regionViews(f.Scope),
	}
	now := s.serviceNow()
	p.Today = now.Format(tocsin.DateLayout)
	if d, err := s.Service.EarliestSendDate(now); err == nil {
		p.Earliest = d.Format(tocsin.DateLayout)
	}
	if a.IsNational() {
		p.Provinces = s.Regions.Provinces()
	} else if d, ok := s.Regions.Lookup(s.Regions.Province(a.Jurisdiction)); ok {
		p.Provinces = []region.Division{d}
		if p.F.Province == "" {
			p.F.Province = d.Code
		}
	}
	if p.F.Province != "" {
		p.Prefectures = s.Regions.Children(p.F.Province)
	}
	if p.F.Prefecture != "" {
		p.Counties = s.Regions.Children(p.F.Prefecture)
	}
	if ferr != nil {
		p.Error, p.Detail = describe(p.L, ferr)
		if v, ok := tocsin.ErrorDetails(ferr)["field"].(string); ok {
			p.Field = v
		}
	}
	return s.render(w, r, status, "new", &p)
}

func parseFilingForm(r *http.Request) (filingForm, error) {
	if err := r.ParseForm(); err != nil {
		return filingForm{}, err
	}
	v := r.PostForm
	f := filingForm{
		Title: v.Get("title"), Content: v.Get("content"),
		Province: v.Get("province"), Prefecture: v.Get("prefecture"), County: v.Get("county"),
		SendDate: v.Get("send_date"), SendTime: v.Get("send_time"),
		UntilDate: v.Get("until_date"), UntilTime: v.Get("until_time"),
		Emergency: v.Get("emergency") != "", EmergencyType: v.Get("emergency_type"),
		Event: v.Get("event"), Level: v.Get("level"), Justification: v.Get("justification"),
		Exercise: v.Get("exercise") != "", Key: v.Get("key"),
	}
	for _, c := range v["scope"] {
		if c = strings.TrimSpace(c); c != "" && !slices.Contains(f.Scope, c) {
			f.Scope = append(f.Scope, c)
		}
	}
	if len(f.Key) > 64 {
		f.Key = ""
	}
	return f, nil
}

// filing turns the form into what the service files. The scope is the
// regions added to the list, or else the most specific one selected.
func (f filingForm) filing() (tocsin.Filing, error) {
	out := tocsin.Filing{Title: f.Title, Content: strings.ReplaceAll(f.Content, "\r\n", "\n"), Exercise: f.Exercise}
	out.Scope = f.Scope
	if len(out.Scope) == 0 {
		for _, c := range []string{f.County, f.Prefecture, f.Province} {
			if c != "" {
				out.Scope = []string{c}
				break
			}
		}
	}
	var err error
	sendTime := f.SendTime
	if f.Emergency && strings.TrimSpace(f.SendDate) == "" {
		sendTime = "" // the form's default time alone does not delay an emergency
	}
	if out.SendAt, err = localTime("send_at", f.SendDate, sendTime); err != nil {
		return out, err
	}
	if out.SendUntil, err = localTime("send_until", f.UntilDate, f.UntilTime); err != nil {
		return out, err
	}
	if f.Emergency {
		out.Emergency = &tocsin.Emergency{
			Type: tocsin.EmergencyType(f.EmergencyType), Event: f.Event,
			Level: tocsin.WarningLevel(f.Level), Justification: f.Justification,
		}
	}
	return out, nil
}

// localTime reads a date and a time typed in Beijing time; both empty is
// no time at all.
func localTime(field, date, clock string) (*time.Time, error) {
	date, clock = strings.TrimSpace(date), strings.TrimSpace(clock)
	if date == "" && clock == "" {
		return nil, nil
	}
	if len(clock) == len("15:04:05") {
		clock = clock[:5]
	}
	t, err := time.ParseInLocation("2006-01-02 15:04", date+" "+clock, tocsin.Shanghai)
	if err != nil {
		return nil, tocsin.Errorf(tocsin.CodeValidation, "%s needs a date (YYYY-MM-DD) and a time (HH:MM)", field).With("field", field)
	}
	return &t, nil
}

// file files the form's broadcast and shows it; a refusal shows the form
// again with what was typed and the reason.
func (s *Server) file(w http.ResponseWriter, r *http.Request) error {
	a := sessionFrom(r.Context()).Actor
	if a.Role != tocsin.RoleDepartment {
		return &tocsin.Error{Code: tocsin.CodeForbidden, Message: "only government departments file broadcasts",
			Details: map[string]any{"reason": "department_only"}}
	}
	f, err := parseFilingForm(r)
	if err != nil {
		return err
	}
	filing, err := f.filing()
	if err == nil {
		var b *tocsin.Broadcast
		b, _, err = s.Service.File(r.Context(), a, filing, f.Key)
		if err == nil {
			http.Redirect(w, r, "/broadcasts/"+url.PathEscape(b.ID)+"?done=filed", http.StatusSeeOther)
			return nil
		}
	}
	switch code := tocsin.ErrorCode(err); {
	case code == tocsin.CodeInternal || code == tocsin.CodeUnavailable:
		return err
	case code == tocsin.CodeIdempotencyReuse:
		f.Key = newKey() // the form changed after a refusal: a new filing
	}
	return s.renderNew(w, r, httpapi.StatusOf(tocsin.ErrorCode(err)), f, err)
}

// detailPage is one broadcast with everything that happened to it and the
// forms the viewer may use.
type detailPage struct {
	page
	B          *tocsin.Broadcast
	Department string
	Scope      []regionView
	Providers  []providerRow
	History    []historyRow
	Summary    progressView
	DaysLeft   int
	HasDays    bool
	Overdue    bool
	Live       bool // progress streams while dispatching
	Reviewer   string
	Closer     string

	// Actions is what the viewer may do (the domain's Service.Actions);
	// the Can fields spell it out for the templates.
	Actions                                       tocsin.ActionSet
	CanApprove, CanReject, CanCancel, CanWithdraw bool
	CanResend, CanReport, CanReviewReport         bool
	CanCorrect                                    bool
	ReasonCodes                                   []tocsin.ReasonCode
	Form                                          actionForm
}

// actionForm keeps what was typed into one of the detail page's forms
// when the service refused it.
type actionForm struct {
	Action                string
	ReasonCode, Reason    string
	Report, Verdict, Note string
}

type providerRow struct {
	tocsin.ProviderProgress
	Label   string // the provider's name in the language
	Regions []regionView
	Value   int // progress bar position, out of Max
	Max     int
	Counts  string
}

func (s *Server) providerRows(l localizer, names map[string]string, b *tocsin.Broadcast) []providerRow {
	var out []providerRow
	for _, pp := range b.Providers {
		v, m := bar(pp)
		out = append(out, providerRow{
			ProviderProgress: pp, Label: nameOr(names, pp.Provider, pp.Name), Regions: s.regionViews(pp.Regions),
			Value: v, Max: m, Counts: countsText(l, pp),
		})
	}
	return out
}

type historyRow struct {
	tocsin.Event
	Who  string
	Text string // the note, in the language where the domain's words are known
}

// noteText says what a history entry did, in the language, from its
// kind and parameters (tocsin.Event.Params); what people typed (reasons)
// is shown as typed. An entry without parameters (recorded before they
// were kept) shows its English note.
func noteText(l localizer, names map[string]string, e tocsin.Event) string {
	if len(e.Params) == 0 {
		return e.Note
	}
	str := func(key string) string { return e.String(key) }
	switch e.Action {
	case "released":
		if n, ok := e.Int(tocsin.ParamProviders); ok {
			return l.S("note.released", n)
		}
	case "completed":
		if e.Params[tocsin.ParamNoProvider] == true {
			return l.S("note.no_provider")
		}
		n, ok1 := e.Int(tocsin.ParamDelivered)
		m, ok2 := e.Int(tocsin.ParamFailed)
		if ok1 && ok2 {
			return l.S("note.completed", n, m)
		}
	case "late":
		return l.S("note.late", nameOr(names, str(tocsin.ParamProvider), ""), str(tocsin.ParamWithin))
	case "resent":
		return nameOr(names, str(tocsin.ParamProvider), "")
	case "rejected":
		return l.S("reason.line", l.Code("reason", str(tocsin.ParamReasonCode)), str(tocsin.ParamReason))
	case "withdrawn", "cancelled":
		return str(tocsin.ParamReason)
	case "post_hoc_reviewed":
		return l.Code("verdict", str(tocsin.ParamVerdict))
	case "post_hoc_due_set":
		return l.S("note.due_set", str(tocsin.ParamDue))
	case "post_hoc_filed", "post_hoc_amended":
		if n, ok := e.Int(tocsin.ParamVersion); ok && n > 1 {
			return l.S("note.amended", n)
		}
		return ""
	case "dispatch_failed":
		return nameOr(names, str(tocsin.ParamProvider), "") + ": " + str(tocsin.ParamReason)
	case "correction_filed":
		if e.To == tocsin.StatusApproved {
			return l.S("note.correction_held", str(tocsin.ParamCorrection))
		}
		return l.S("note.correction_filed", str(tocsin.ParamCorrection))
	case "superseded":
		return l.S("note.superseded", str(tocsin.ParamCorrection))
	case "expired":
		if n, ok := e.Int(tocsin.ParamStopped); ok {
			return l.S("note.expired", n)
		}
	}
	return e.Note
}

func (s *Server) detailPage(w http.ResponseWriter, r *http.Request) error {
	b, err := s.Service.Get(r.Context(), sessionFrom(r.Context()).Actor, chi.URLParam(r, "id"))
	if err != nil {
		return err
	}
	p, err := s.detail(r, b)
	if err != nil {
		return err
	}
	if done := r.URL.Query().Get("done"); done != "" && p.L.Has("done."+done) {
		p.Notice = p.L.S("done." + done)
	}
	return s.render(w, r, http.StatusOK, "detail", p)
}

func (s *Server) detail(r *http.Request, b *tocsin.Broadcast) (*detailPage, error) {
	a := sessionFrom(r.Context()).Actor
	p := &detailPage{page: s.pageFor(r, "broadcasts"), B: b, Scope: s.regionViews(b.Scope), ReasonCodes: tocsin.ReasonCodes}
	names, err := s.orgNames(r.Context(), p.Lang)
	if err != nil {
		return nil, err
	}
	p.Department = nameOr(names, b.Department, b.Agency)
	if b.Review != nil {
		p.Reviewer = nameOr(names, b.Review.Regulator, "")
	}
	if b.Closure != nil {
		p.Closer = nameOr(names, b.Closure.Org, "")
	}
	p.Providers = s.providerRows(p.L, names, b)
	for _, e := range b.History {
		p.History = append(p.History, historyRow{Event: e, Who: nameOr(names, e.Org, ""), Text: noteText(p.L, names, e)})
	}
	now := s.serviceNow()
	p.Summary = summarize(b)
	p.Overdue = b.PostHoc.Overdue(now)
	p.Live = b.Status == tocsin.StatusDispatching || b.Status == tocsin.StatusApproved
	if b.Status == tocsin.StatusPendingReview || b.Status == tocsin.StatusApproved {
		n, err := s.Service.Calendar.WorkingDaysBetween(now, b.SendAt)
		p.DaysLeft, p.HasDays = n, err == nil
	}
	p.Actions = s.Service.Actions(a, b)
	p.CanApprove = p.Actions.Has(tocsin.ActionApprove)
	p.CanReject = p.Actions.Has(tocsin.ActionReject)
	p.CanCancel = p.Actions.Has(tocsin.ActionCancel)
	p.CanWithdraw = p.Actions.Has(tocsin.ActionWithdraw)
	p.CanResend = p.Actions.Has(tocsin.ActionResend)
	p.CanCorrect = p.Actions.Has(tocsin.ActionCorrect)
	p.CanReport = p.Actions.Has(tocsin.ActionPostHoc)
	p.CanReviewReport = p.Actions.Has(tocsin.ActionReviewPostHoc)
	return p, nil
}

// bar places a provider's progress: messages handled out of recipients,
// or, before the provider has counted them, by its status alone.
func bar(pp tocsin.ProviderProgress) (value, max int) {
	if pp.Recipients > 0 {
		return min(pp.Delivered+pp.Failed, pp.Recipients), pp.Recipients
	}
	if pp.Status.Final() {
		return 1, 1
	}
	return 0, 1
}

// act runs one transition posted from the detail page. On success it goes
// back to the page with a notice; a refusal shows the page with the
// reason and the form as typed.
func (s *Server) act(w http.ResponseWriter, r *http.Request, form actionForm,
	do func(ctx context.Context, a tocsin.Actor, id string) (*tocsin.Broadcast, error)) error {
	a := sessionFrom(r.Context()).Actor
	id := chi.URLParam(r, "id")
	_, err := do(r.Context(), a, id)
	if err == nil {
		http.Redirect(w, r, "/broadcasts/"+url.PathEscape(id)+"?done="+form.Action, http.StatusSeeOther)
		return nil
	}
	switch tocsin.ErrorCode(err) {
	case tocsin.CodeInternal, tocsin.CodeUnavailable, tocsin.CodeNotFound, tocsin.CodeForbidden:
		return err
	}
	b, gerr := s.Service.Get(r.Context(), a, id)
	if gerr != nil {
		return gerr
	}
	p, derr := s.detail(r, b)
	if derr != nil {
		return derr
	}
	p.Form = form
	p.Error, p.Detail = describe(p.L, err)
	return s.render(w, r, httpapi.StatusOf(tocsin.ErrorCode(err)), "detail", p)
}

func (s *Server) approve(w http.ResponseWriter, r *http.Request) error {
	return s.act(w, r, actionForm{Action: "approved"}, s.Service.Approve)
}

func (s *Server) reject(w http.ResponseWriter, r *http.Request) error {
	f := actionForm{Action: "rejected", ReasonCode: r.PostFormValue("reason_code"), Reason: r.PostFormValue("reason")}
	return s.act(w, r, f, func(ctx context.Context, a tocsin.Actor, id string) (*tocsin.Broadcast, error) {
		return s.Service.Reject(ctx, a, id, tocsin.ReasonCode(f.ReasonCode), f.Reason)
	})
}

func (s *Server) withdraw(w http.ResponseWriter, r *http.Request) error {
	f := actionForm{Action: "withdrawn", Reason: r.PostFormValue("reason")}
	return s.act(w, r, f, func(ctx context.Context, a tocsin.Actor, id string) (*tocsin.Broadcast, error) {
		return s.Service.Withdraw(ctx, a, id, f.Reason)
	})
}

func (s *Server) cancel(w http.ResponseWriter, r *http.Request) error {
	f := actionForm{Action: "cancelled", Reason: r.PostFormValue("reason")}
	return s.act(w, r, f, func(ctx context.Context, a tocsin.Actor, id string) (*tocsin.Broadcast, error) {
		if strings.TrimSpace(f.Reason) == "" {
			return nil, tocsin.Errorf(tocsin.CodeReasonRequired, "say why the broadcast is cancelled").With("field", "cancel_reason")
		}
		return s.Service.Cancel(ctx, a, id, f.Reason)
	})
}

func (s *Server) resend(w http.ResponseWriter, r *http.Request) error {
	provider := r.PostFormValue("provider")
	return s.act(w, r, actionForm{Action: "resent"}, func(ctx context.Context, a tocsin.Actor, id string) (*tocsin.Broadcast, error) {
		return s.Service.Resend(ctx, a, id, provider)
	})
}

func (s *Server) filePostHoc(w http.ResponseWriter, r *http.Request) error {
	f := actionForm{Action: "post_hoc_filed", Report: r.PostFormValue("report")}
	return s.act(w, r, f, func(ctx context.Context, a tocsin.Actor, id string) (*tocsin.Broadcast, error) {
		return s.Service.FilePostHoc(ctx, a, id, f.Report)
	})
}

func (s *Server) reviewPostHoc(w http.ResponseWriter, r *http.Request) error {
	f := actionForm{Action: "post_hoc_reviewed", Verdict: r.PostFormValue("verdict"), Note: r.PostFormValue("note")}
	return s.act(w, r, f, func(ctx context.Context, a tocsin.Actor, id string) (*tocsin.Broadcast, error) {
		return s.Service.ReviewPostHoc(ctx, a, id, tocsin.PostHocVerdict(f.Verdict), f.Note)
	})
}
