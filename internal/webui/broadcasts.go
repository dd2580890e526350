package webui

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/tocsin-dev/tocsin/internal/httpapi"
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
	Title, Headline, Content     string
	Province, Prefecture, County string
	Scope                        []string
	SendDate, SendTime           string
	UntilDate, UntilTime         string
	Emergency                    bool
	EmergencyType, Event, Level  string
	Justification                string
	Exercise                     bool
	Key                          string // Idempotency-Key: a resubmitted form files once
	// Corrects is the broadcast this filing corrects (the form posts to
	// /broadcasts/{id}/update), or "".
	Corrects string
}

// action is where the form posts: a new filing, or a correction.
func (f filingForm) Action() string {
	if f.Corrects != "" {
		return "/broadcasts/" + url.PathEscape(f.Corrects) + "/update"
	}
	return "/broadcasts"
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
	// Original is the broadcast a correction corrects.
	Original *tocsin.Broadcast
	// WholeProvince is the province code the prefecture list offers as
	// "the whole province", when a province is chosen.
	WholeProvince string
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
		p.WholeProvince = p.F.Province
	}
	if p.F.Prefecture != "" && p.F.Prefecture != p.F.Province {
		p.Counties = s.Regions.Children(p.F.Prefecture)
	}
	if f.Corrects != "" {
		if o, err := s.Service.Get(r.Context(), a, f.Corrects); err == nil {
			p.Original = o
		}
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
		Title: v.Get("title"), Headline: v.Get("headline"), Content: v.Get("content"),
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
// regions added to the list, or else the most specific one selected below
// the province: a province alone is no choice (the prefecture list offers
// "whole province" explicitly), so a form sent untouched has no scope and
// is refused, never sent to a whole province by default.
func (f filingForm) filing() (tocsin.Filing, error) {
	out := tocsin.Filing{Title: f.Title, Headline: f.Headline, Content: strings.ReplaceAll(f.Content, "\r\n", "\n"), Exercise: f.Exercise}
	out.Scope = f.Scope
	if len(out.Scope) == 0 {
		for _, c := range []string{f.County, f.Prefecture} {
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

// file files the form's broadcast, or with {id} a correction of that
// broadcast, and shows it; a refusal shows the form again with what was
// typed and the reason. An emergency is not filed from the form: the
// first post shows a confirmation of what will go out, where and through
// which providers, and only its explicit confirm (confirm=1) files it.
func (s *Server) file(w http.ResponseWriter, r *http.Request) error {
	a := sessionFrom(r.Context()).Actor
	if !tocsin.CanFile(a) {
		return &tocsin.Error{Code: tocsin.CodeForbidden, Message: "only departments at provincial level or above may file (Article 17)",
			Details: map[string]any{"reason": "filer_level"}}
	}
	f, err := parseFilingForm(r)
	if err != nil {
		return err
	}
	f.Corrects = chi.URLParam(r, "id")
	if r.PostForm.Get("edit") != "" { // back from the confirmation to the form
		return s.renderNew(w, r, http.StatusOK, f, nil)
	}
	filing, err := f.filing()
	if err == nil && filing.Emergency != nil && r.PostForm.Get("confirm") != "1" {
		var checked tocsin.Filing
		if checked, err = s.Service.CheckFiling(a, filing); err == nil {
			return s.renderConfirm(w, r, f, checked)
		}
	}
	if err == nil {
		var b *tocsin.Broadcast
		if f.Corrects != "" {
			b, _, err = s.Service.FileUpdate(r.Context(), a, f.Corrects, filing, f.Key)
		} else {
			b, _, err = s.Service.File(r.Context(), a, filing, f.Key)
		}
		if err == nil {
			http.Redirect(w, r, "/broadcasts/"+url.PathEscape(b.ID)+"?done=filed", http.StatusSeeOther)
			return nil
		}
	}
	switch code := tocsin.ErrorCode(err); {
	case code == tocsin.CodeInternal || code == tocsin.CodeUnavailable || code == tocsin.CodeNotFound:
		return err
	case code == tocsin.CodeIdempotencyReuse:
		f.Key = newKey() // the form changed after a refusal: a new filing
	}
	return s.renderNew(w, r, httpapi.StatusOf(tocsin.ErrorCode(err)), f, err)
}

// correctionPage is the filing form prefilled with the broadcast to
// correct, posting to /broadcasts/{id}/update.
func (s *Server) correctionPage(w http.ResponseWriter, r *http.Request) error {
	a := sessionFrom(r.Context()).Actor
	b, err := s.Service.Get(r.Context(), a, chi.URLParam(r, "id"))
	if err != nil {
		return err
	}
	if !s.Service.Actions(a, b).Has(tocsin.ActionCorrect) {
		return &tocsin.Error{Code: tocsin.CodeConflict, Message: "broadcast " + b.ID + " cannot be corrected now",
			Details: map[string]any{"reason": "correct"}}
	}
	f := filingForm{
		Key: newKey(), Corrects: b.ID, Title: b.Title, Headline: b.Headline, Content: b.Content,
		Scope: slices.Clone(b.Scope), Exercise: b.Exercise, SendTime: "09:00",
	}
	if e := b.Emergency; e != nil {
		f.Emergency, f.EmergencyType, f.Event, f.Level, f.Justification = true, string(e.Type), e.Event, string(e.Level), e.Justification
	} else if b.SendAt.After(s.serviceNow()) {
		at := b.SendAt.In(tocsin.Shanghai)
		f.SendDate, f.SendTime = at.Format(tocsin.DateLayout), at.Format("15:04")
	}
	if b.SendUntil != nil && b.SendUntil.After(s.serviceNow()) {
		u := b.SendUntil.In(tocsin.Shanghai)
		f.UntilDate, f.UntilTime = u.Format(tocsin.DateLayout), u.Format("15:04")
	}
	return s.renderNew(w, r, http.StatusOK, f, nil)
}

// confirmPage is an emergency as it will go out, before it does.
type confirmPage struct {
	page
	F          filingForm
	Filing     tocsin.Filing // as the service will file it
	SMS        tocsin.SMSInfo
	Scope      []regionView
	Reach      []reachView
	Agency     string
	SenderCode string
	Original   *tocsin.Broadcast
}

// reachView is one provider an emergency will reach.
type reachView struct {
	Name    string
	Regions []regionView
}

func (s *Server) renderConfirm(w http.ResponseWriter, r *http.Request, f filingForm, checked tocsin.Filing) error {
	sess := sessionFrom(r.Context())
	p := confirmPage{page: s.pageFor(r, "new"), F: f, Filing: checked, SMS: tocsin.MeasureSMS(checked.Content),
		Scope: s.regionViews(checked.Scope)}
	if sess.Org != nil {
		p.Agency, p.SenderCode = sess.Org.AgencyName(), sess.Org.SenderCode
	}
	reach, err := s.Service.Coverage(r.Context(), checked.Scope)
	if err != nil {
		return err
	}
	names, err := s.orgNames(r.Context(), p.Lang)
	if err != nil {
		return err
	}
	for _, rc := range reach {
		p.Reach = append(p.Reach, reachView{Name: nameOr(names, rc.Provider, rc.Name), Regions: s.regionViews(rc.Regions)})
	}
	if f.Corrects != "" {
		if o, err := s.Service.Get(r.Context(), sess.Actor, f.Corrects); err == nil {
			p.Original = o
		}
	}
	return s.render(w, r, http.StatusOK, "confirm", &p)
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

	// Corrections: what this broadcast corrects (Original, nil if the
	// viewer may not read it), the corrections filed of it, the one that
	// superseded it, and for a correction its changes from the original.
	Original     *tocsin.Broadcast
	Corrections  []*tocsin.Broadcast
	SupersededBy string
	Compare      []compareRow
	// Versions is every post-hoc report, oldest first, numbered.
	Versions []versionView
}

// versionView is one version of a post-hoc report.
type versionView struct {
	N int
	tocsin.PostHocVersion
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
		return l.S("note.late", nameOr(names, str(tocsin.ParamProvider), ""), l.duration(str(tocsin.ParamWithin)))
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
	if err := s.corrections(r.Context(), a, p); err != nil {
		return nil, err
	}
	if b.PostHoc != nil {
		for i, v := range b.PostHoc.Versions {
			p.Versions = append(p.Versions, versionView{N: i + 1, PostHocVersion: v})
		}
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

// corrections fills in the broadcasts p's broadcast corrects and is
// corrected by, and for a correction what it changes. A broadcast the
// viewer may not read (or that retention purged) shows as its id alone.
func (s *Server) corrections(ctx context.Context, a tocsin.Actor, p *detailPage) error {
	b := p.B
	readable := func(id string) (*tocsin.Broadcast, error) {
		o, err := s.Service.Get(ctx, a, id)
		switch tocsin.ErrorCode(err) {
		case "":
			return o, nil
		case tocsin.CodeNotFound, tocsin.CodeForbidden:
			return nil, nil
		}
		return nil, err
	}
	if b.References != "" {
		o, err := readable(b.References)
		if err != nil {
			return err
		}
		if p.Original = o; o != nil {
			p.Compare = s.compare(p.L, o, b)
		}
	}
	for _, id := range b.CorrectedBy {
		c, err := readable(id)
		if err != nil {
			return err
		}
		if c == nil {
			c = &tocsin.Broadcast{ID: id}
		}
		p.Corrections = append(p.Corrections, c)
	}
	for _, e := range b.History {
		if e.Action == "superseded" {
			p.SupersededBy = e.String(tocsin.ParamCorrection)
		}
	}
	return nil
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
	if key := "error.reason_required." + form.Action; tocsin.IsCode(err, tocsin.CodeReasonRequired) &&
		tocsin.ErrorDetails(err)["field"] == "reason" && p.L.Has(key) {
		p.Error, p.Detail = p.L.S(key), "" // which reason is missing: the form says it, in its language
	}
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
