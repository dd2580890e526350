package testkit

import (
	"context"
	"testing"
	"time"

	"github.com/tocsin-dev/tocsin/internal/tocsin"
)

// Act is one thing a caller asks of Tocsin in the attack matrix.
type Act string

// The acts of the matrix. The first ones act on a broadcast (a Target);
// the rest on the directory and the coordinator.
const (
	ActFile          Act = "file" // files the Target as the row's actor
	ActRead          Act = "read"
	ActApprove       Act = "approve"
	ActReject        Act = "reject"
	ActWithdraw      Act = "withdraw"
	ActCancel        Act = "cancel"
	ActPostHoc       Act = "post-hoc"
	ActReviewPostHoc Act = "post-hoc/review"

	ActRegisterProvider Act = "register provider"
	ActListProviders    Act = "list providers"
	ActExportRecords    Act = "export records"
	ActLoadCalendar     Act = "load calendar"
	ActIssueToken       Act = "issue token"
	ActRevokeToken      Act = "revoke token"
)

// State is how far a Target has gone before the row acts on it.
type State string

// The states a Target is brought to, each by those allowed to.
const (
	Pending     State = "pending_review" // an ordinary filing, not yet reviewed
	Approved    State = "approved"       // ... approved by MIIT
	Dispatching State = "dispatching"    // an emergency, released at once
	Reported    State = "report_filed"   // ... whose post-hoc report is filed
)

// Target is the broadcast a matrix row acts on: filed by Filer for Scope,
// an emergency or not, brought to State by the service on behalf of those
// allowed (MustTarget). For ActFile it is the filing the row's actor makes.
type Target struct {
	Filer     string
	Scope     []string
	Emergency bool
	State     State
}

// MatrixRow is one cell of DESIGN.md's role × action × jurisdiction table:
// Actor (a demo organisation id) does Act to Target, and is refused with
// Refused, or allowed when Refused is "".
type MatrixRow struct {
	Name    string
	Actor   string
	Act     Act
	Target  Target
	Refused tocsin.Code
}

// Targets used by the matrix. Guangdong is 440000 (Guangzhou 440100),
// Guangxi 450000 (Nanning 450100).
var (
	gdOrdinary    = Target{Filer: "gd-met", Scope: []string{"440100"}, State: Pending}
	gdApproved    = Target{Filer: "gd-met", Scope: []string{"440100"}, State: Approved}
	gdEmergency   = Target{Filer: "gd-met", Scope: []string{"440100"}, Emergency: true, State: Dispatching}
	gdReported    = Target{Filer: "gd-met", Scope: []string{"440100"}, Emergency: true, State: Reported}
	gxOrdinary    = Target{Filer: "gx-health", Scope: []string{"450100"}, State: Pending}
	crossOrdinary = Target{Filer: "mem", Scope: []string{"440000", "450000"}, State: Pending}
	crossEmerg    = Target{Filer: "mem", Scope: []string{"440000", "450000"}, Emergency: true, State: Dispatching}
	memInGuangxi  = Target{Filer: "mem", Scope: []string{"450100"}, State: Pending}
)

// Matrix is DESIGN.md's Actors table and its jurisdiction rule as data:
// departments national or provincial file in their jurisdiction, a
// prefecture may not; MIIT reviews and cancels anything, a provincial
// administration only scopes inside its province, a scope spanning
// provinces only MIIT; the filer alone withdraws and reports; the admin
// manages providers, calendars and tokens but decides no broadcast.
func Matrix() []MatrixRow {
	const ok, forbidden = tocsin.Code(""), tocsin.CodeForbidden
	f := func(t Target) Target { t.State = ""; return t }
	ordinary := func(filer string, scope ...string) Target { return Target{Filer: filer, Scope: scope} }
	emergency := func(filer string, scope ...string) Target {
		return Target{Filer: filer, Scope: scope, Emergency: true}
	}
	return []MatrixRow{
		// Filing (Article 17): provincial level or above, in jurisdiction.
		{"provincial department files ordinary in its province", "gd-met", ActFile, ordinary("gd-met", "440100"), ok},
		{"provincial department files emergency in its province", "gd-met", ActFile, emergency("gd-met", "440100"), ok},
		{"provincial department files its whole province", "gd-met", ActFile, ordinary("gd-met", "440000"), ok},
		{"provincial department files ordinary in another province", "gd-met", ActFile, ordinary("gd-met", "450100"), forbidden},
		{"provincial department files emergency in another province", "gd-met", ActFile, emergency("gd-met", "450100"), forbidden},
		{"provincial department files across provinces", "gd-met", ActFile, ordinary("gd-met", "440100", "450100"), forbidden},
		{"provincial department files emergency across provinces", "gd-met", ActFile, emergency("gd-met", "440100", "450100"), forbidden},
		{"other provincial department files in its province", "gx-health", ActFile, ordinary("gx-health", "450100"), ok},
		{"other provincial department files in Guangdong", "gx-health", ActFile, emergency("gx-health", "440100"), forbidden},
		{"national department files across provinces", "mem", ActFile, f(crossOrdinary), ok},
		{"national department files emergency across provinces", "mem", ActFile, f(crossEmerg), ok},
		{"prefecture department files ordinary", "gz-em", ActFile, ordinary("gz-em", "440100"), forbidden},
		{"prefecture department files emergency", "gz-em", ActFile, emergency("gz-em", "440100"), forbidden},
		{"MIIT files", "miit", ActFile, ordinary("miit", "440100"), forbidden},
		{"provincial regulator files", "gd-cab", ActFile, emergency("gd-cab", "440100"), forbidden},
		{"admin files", "admin", ActFile, ordinary("admin", "440100"), forbidden},

		// Reading a broadcast.
		{"filer reads", "gd-met", ActRead, gdOrdinary, ok},
		{"another province's department reads", "gx-health", ActRead, gdOrdinary, forbidden},
		{"another department of the province reads", "gz-em", ActRead, gdOrdinary, forbidden},
		{"matching regulator reads", "gd-cab", ActRead, gdOrdinary, ok},
		{"another province's regulator reads", "gx-cab", ActRead, gdOrdinary, forbidden},
		{"MIIT reads", "miit", ActRead, gxOrdinary, ok},
		{"admin reads", "admin", ActRead, gdOrdinary, ok},

		// Review (approve / reject): MIIT, or the matching province.
		{"MIIT approves", "miit", ActApprove, gdOrdinary, ok},
		{"matching provincial regulator approves", "gd-cab", ActApprove, gdOrdinary, ok},
		{"another province's regulator approves", "gx-cab", ActApprove, gdOrdinary, forbidden},
		{"filing department approves", "gd-met", ActApprove, gdOrdinary, forbidden},
		{"national department approves", "mem", ActApprove, gdOrdinary, forbidden},
		{"admin approves", "admin", ActApprove, gdOrdinary, forbidden},
		{"MIIT approves across provinces", "miit", ActApprove, crossOrdinary, ok},
		{"provincial regulator approves across provinces", "gd-cab", ActApprove, crossOrdinary, forbidden},
		{"other provincial regulator approves across provinces", "gx-cab", ActApprove, crossOrdinary, forbidden},
		{"provincial regulator approves a national department's filing in its province", "gx-cab", ActApprove, memInGuangxi, ok},
		{"MIIT rejects", "miit", ActReject, gdOrdinary, ok},
		{"matching provincial regulator rejects", "gd-cab", ActReject, gdOrdinary, ok},
		{"another province's regulator rejects", "gx-cab", ActReject, gdOrdinary, forbidden},
		{"filing department rejects", "gd-met", ActReject, gdOrdinary, forbidden},
		{"admin rejects", "admin", ActReject, gdOrdinary, forbidden},
		{"provincial regulator rejects across provinces", "gd-cab", ActReject, crossOrdinary, forbidden},
		{"MIIT rejects across provinces", "miit", ActReject, crossOrdinary, ok},

		// Cancel (Article 28): the supervising regulator.
		{"MIIT cancels an approved broadcast", "miit", ActCancel, gdApproved, ok},
		{"matching provincial regulator cancels an approved broadcast", "gd-cab", ActCancel, gdApproved, ok},
		{"matching provincial regulator cancels a dispatching emergency", "gd-cab", ActCancel, gdEmergency, ok},
		{"another province's regulator cancels", "gx-cab", ActCancel, gdEmergency, forbidden},
		{"filing department cancels", "gd-met", ActCancel, gdEmergency, forbidden},
		{"admin cancels", "admin", ActCancel, gdApproved, forbidden},
		{"provincial regulator cancels across provinces", "gx-cab", ActCancel, crossEmerg, forbidden},
		{"MIIT cancels across provinces", "miit", ActCancel, crossEmerg, ok},

		// Withdraw: the filing department, before release.
		{"filer withdraws a pending filing", "gd-met", ActWithdraw, gdOrdinary, ok},
		{"filer withdraws an approved filing", "gd-met", ActWithdraw, gdApproved, ok},
		{"another province's department withdraws", "gx-health", ActWithdraw, gdOrdinary, forbidden},
		{"national department withdraws another's filing", "mem", ActWithdraw, gdOrdinary, forbidden},
		{"regulator withdraws", "gd-cab", ActWithdraw, gdOrdinary, forbidden},
		{"admin withdraws", "admin", ActWithdraw, gdOrdinary, forbidden},

		// Post-hoc reports: the filer files, the supervising regulator reviews.
		{"filer files the post-hoc report", "gd-met", ActPostHoc, gdEmergency, ok},
		{"another department files the post-hoc report", "gx-health", ActPostHoc, gdEmergency, forbidden},
		{"national department files another's post-hoc report", "mem", ActPostHoc, gdEmergency, forbidden},
		{"regulator files the post-hoc report", "gd-cab", ActPostHoc, gdEmergency, forbidden},
		{"matching provincial regulator reviews the report", "gd-cab", ActReviewPostHoc, gdReported, ok},
		{"MIIT reviews the report", "miit", ActReviewPostHoc, gdReported, ok},
		{"another province's regulator reviews the report", "gx-cab", ActReviewPostHoc, gdReported, forbidden},
		{"filer reviews its own report", "gd-met", ActReviewPostHoc, gdReported, forbidden},
		{"admin reviews the report", "admin", ActReviewPostHoc, gdReported, forbidden},

		// The directory and the coordinator: the admin manages.
		{"admin registers a provider", "admin", ActRegisterProvider, Target{}, ok},
		{"MIIT registers a provider", "miit", ActRegisterProvider, Target{}, forbidden},
		{"department registers a provider", "gd-met", ActRegisterProvider, Target{}, forbidden},
		{"admin lists providers", "admin", ActListProviders, Target{}, ok},
		{"regulator lists providers", "gd-cab", ActListProviders, Target{}, ok},
		{"department lists providers", "gd-met", ActListProviders, Target{}, forbidden},
		{"admin exports records", "admin", ActExportRecords, Target{}, ok},
		{"MIIT exports records", "miit", ActExportRecords, Target{}, ok},
		{"provincial regulator exports records", "gd-cab", ActExportRecords, Target{}, ok},
		{"department exports records", "gd-met", ActExportRecords, Target{}, forbidden},
		{"admin loads a calendar", "admin", ActLoadCalendar, Target{}, ok},
		{"MIIT loads a calendar", "miit", ActLoadCalendar, Target{}, forbidden},
		{"department loads a calendar", "gd-met", ActLoadCalendar, Target{}, forbidden},
		{"admin issues a token", "admin", ActIssueToken, Target{}, ok},
		{"MIIT issues a token", "miit", ActIssueToken, Target{}, forbidden},
		{"department issues itself a token", "gd-met", ActIssueToken, Target{}, forbidden},
		{"admin revokes a token", "admin", ActRevokeToken, Target{}, ok},
		{"MIIT revokes a token", "miit", ActRevokeToken, Target{}, forbidden},
		{"department revokes its own token", "gd-met", ActRevokeToken, Target{}, forbidden},
	}
}

// MatrixSendAt is when the matrix's ordinary filings are sent: well after
// the earliest permitted date of a filing made on 2026-09-18 (2026-10-09).
var MatrixSendAt = time.Date(2026, 11, 2, 9, 0, 0, 0, tocsin.Shanghai)

// Filing is t as the service files it.
func (t Target) Filing() tocsin.Filing {
	f := tocsin.Filing{Title: "矩阵测试", Content: "【测试】请关注天气预报，合理安排出行。", Scope: t.Scope}
	if t.Emergency {
		f.Emergency = &tocsin.Emergency{Type: tocsin.NaturalDisaster, Event: "typhoon", Level: tocsin.Red}
	} else {
		at := MatrixSendAt
		f.SendAt = &at
	}
	return f
}

// MustTarget files t through svc as its filer and brings it to t.State on
// behalf of those allowed (MIIT approves; the filer reports), and returns
// the broadcast.
func MustTarget(tb testing.TB, svc *tocsin.Service, t Target) *tocsin.Broadcast {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), setupTimeout)
	defer cancel()
	b, _, err := svc.File(ctx, Actor(tb, t.Filer), t.Filing(), "")
	if err != nil {
		tb.Fatalf("file %+v: %v", t, err)
	}
	switch t.State {
	case Approved:
		b, err = svc.Approve(ctx, Actor(tb, "miit"), b.ID)
	case Reported:
		b, err = svc.FilePostHoc(ctx, Actor(tb, t.Filer), b.ID, "台风已登陆，短信已送达。")
	}
	if err != nil {
		tb.Fatalf("bring %s to %s: %v", b.ID, t.State, err)
	}
	return b
}
