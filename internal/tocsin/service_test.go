package tocsin_test

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tocsin-dev/tocsin/internal/boltstore"
	"github.com/tocsin-dev/tocsin/internal/testkit"
	"github.com/tocsin-dev/tocsin/internal/tocsin"
)

// sh returns a wall-clock time in Asia/Shanghai.
func sh(y int, m time.Month, d, hour, min int) time.Time {
	return time.Date(y, m, d, hour, min, 0, 0, tocsin.Shanghai)
}

func ptr[T any](v T) *T { return &v }

var (
	// filedAt is a Friday; with the 2026 National Day holiday and its
	// make-up days the 10th working day after it is 2026-10-09.
	filedAt  = sh(2026, time.September, 18, 10, 0)
	earliest = "2026-10-09"
	onTime   = sh(2026, time.October, 9, 9, 0)
)

// subjects are who, in an organisation of the demo directory, the tests
// act as, where not the organisation itself.
var subjects = map[string]string{"admin": "operator", "gd-met": "duty-officer"}

func actor(t testing.TB, org string) tocsin.Actor {
	t.Helper()
	a := testkit.Actor(t, org)
	if s, ok := subjects[org]; ok {
		a.Subject = s
	}
	return a
}

// env is a Service over a real bbolt store in a temporary folder.
type env struct {
	svc       *tocsin.Service
	store     *boltstore.DB
	clock     *testkit.Clock
	published atomic.Int64
}

// mustService builds a Service seeded with the demo directory, its clock
// reading now.
func mustService(tb testing.TB, now time.Time) *env {
	tb.Helper()
	e := &env{store: testkit.MustStore(tb, nil), clock: testkit.NewClock(now)}
	e.svc = testkit.MustService(tb, e.store, e.clock)
	e.svc.Published = func() { e.published.Add(1) }
	testkit.MustSeed(tb, e.svc, testkit.Directory)
	return e
}

// ordinary is a non-emergency filing that is on time when filed at filedAt.
func ordinary(title string, scope ...string) tocsin.Filing {
	return tocsin.Filing{
		Title:   title,
		Content: "【广东省气象局】国庆假期出行请关注天气预报。",
		Scope:   scope,
		SendAt:  ptr(onTime),
	}
}

func emergency(title string, scope ...string) tocsin.Filing {
	return tocsin.Filing{
		Title:   title,
		Content: "【广东省气象局】台风红色预警：请立即停止户外活动，注意防范。",
		Scope:   scope,
		Emergency: &tocsin.Emergency{
			Type: tocsin.NaturalDisaster, Event: "typhoon", Level: tocsin.Red,
			Justification: "Typhoon landfall expected within 12 hours",
		},
	}
}

func (e *env) mustFile(tb testing.TB, org string, f tocsin.Filing) *tocsin.Broadcast {
	tb.Helper()
	b, _, err := e.svc.File(context.Background(), actor(tb, org), f, "")
	if err != nil {
		tb.Fatalf("%s files %q: %v", org, f.Title, err)
	}
	return b
}

func (e *env) mustApprove(tb testing.TB, org, id string) *tocsin.Broadcast {
	tb.Helper()
	b, err := e.svc.Approve(context.Background(), actor(tb, org), id)
	if err != nil {
		tb.Fatalf("%s approves %s: %v", org, id, err)
	}
	return b
}

func (e *env) get(tb testing.TB, id string) *tocsin.Broadcast {
	tb.Helper()
	b, err := e.svc.Get(context.Background(), actor(tb, "admin"), id)
	if err != nil {
		tb.Fatalf("get %s: %v", id, err)
	}
	return b
}

// queued is an outbox message with its dispatch decoded, for tests to read.
type queued struct {
	tocsin.OutboxMessage
	Dispatch tocsin.Dispatch
}

func (e *env) outbox(tb testing.TB) []queued {
	tb.Helper()
	var msgs []tocsin.OutboxMessage
	err := e.store.View(context.Background(), func(tx tocsin.ReadTx) error {
		var err error
		msgs, err = tx.Outbox(1000)
		return err
	})
	if err != nil {
		tb.Fatalf("outbox: %v", err)
	}
	out := make([]queued, len(msgs))
	for i, m := range msgs {
		d, err := m.Dispatch()
		if err != nil {
			tb.Fatal(err)
		}
		if d.BroadcastID != m.BroadcastID || d.Type != m.Type {
			tb.Fatalf("outbox message %s is for %s %s, its dispatch for %s %s", m.MsgID, m.BroadcastID, m.Type, d.BroadcastID, d.Type)
		}
		out[i] = queued{m, d}
	}
	return out
}

func wantCode(tb testing.TB, err error, code tocsin.Code) {
	tb.Helper()
	if got := tocsin.ErrorCode(err); got != code {
		tb.Fatalf("error code = %q (%v), want %q", got, err, code)
	}
}

func providerIDs(ps []tocsin.ProviderProgress) []string {
	var out []string
	for _, p := range ps {
		out = append(out, p.Provider)
	}
	return out
}

func TestFileOnTime(t *testing.T) {
	e := mustService(t, filedAt)
	b := e.mustFile(t, "gd-met", ordinary("National Day travel", "440100"))

	if b.Status != tocsin.StatusPendingReview {
		t.Errorf("status = %q, want pending_review", b.Status)
	}
	if b.EarliestSendDate != earliest {
		t.Errorf("earliest_send_date = %q, want %q", b.EarliestSendDate, earliest)
	}
	if !b.FiledAt.Equal(filedAt) || b.FiledAt.Location() != tocsin.Shanghai {
		t.Errorf("filed_at = %v, want %v in Asia/Shanghai", b.FiledAt, filedAt)
	}
	if !b.SendAt.Equal(onTime) {
		t.Errorf("send_at = %v, want %v", b.SendAt, onTime)
	}
	if b.Department != "gd-met" || b.SenderCode != "12379440" || b.Agency != "广东省气象局" || b.FiledBy != "duty-officer" {
		t.Errorf("filer fields = %q %q %q %q", b.Department, b.SenderCode, b.Agency, b.FiledBy)
	}
	if b.SMS.Encoding != tocsin.UCS2 || b.SMS.Segments != 1 {
		t.Errorf("sms = %+v", b.SMS)
	}
	if len(b.Providers) != 0 || b.ReleasedAt != nil || b.PostHoc != nil {
		t.Errorf("a pending filing has providers %v, released %v, post-hoc %v", b.Providers, b.ReleasedAt, b.PostHoc)
	}
	if len(b.History) != 1 || b.History[0].Action != "filed" || b.History[0].To != tocsin.StatusPendingReview {
		t.Errorf("history = %+v", b.History)
	}
	if n := len(e.outbox(t)); n != 0 {
		t.Errorf("outbox has %d messages after an ordinary filing", n)
	}
	// Stored, not just returned.
	if got := e.get(t, b.ID); got.Status != tocsin.StatusPendingReview || got.Title != "National Day travel" {
		t.Errorf("stored broadcast = %q %q", got.Status, got.Title)
	}
}

func TestFileRefused(t *testing.T) {
	tooLate := ordinary("too late", "440100")
	tooLate.SendAt = ptr(sh(2026, time.October, 8, 23, 59))
	noLevel := emergency("no level", "440100")
	noLevel.Emergency.Level = ""
	badType := emergency("bad type", "440100")
	badType.Emergency.Type = "alien_invasion"
	noEvent := emergency("no event", "440100")
	noEvent.Emergency.Event = "  "
	noSendAt := ordinary("no send_at", "440100")
	noSendAt.SendAt = nil
	pastSendAt := ordinary("in the past", "440100")
	pastSendAt.SendAt = ptr(filedAt.Add(-time.Hour))
	badUntil := ordinary("until before at", "440100")
	badUntil.SendUntil = ptr(onTime.Add(-time.Minute))
	tooLong := ordinary("eleven segments", "440100")
	tooLong.Content = strings.Repeat("风", 67*10+1)
	blank := ordinary("blank", "440100")
	blank.Content = " \n "
	emergencyPast := emergency("emergency in the past", "440100")
	emergencyPast.SendAt = ptr(filedAt.Add(-time.Hour))

	tests := []struct {
		name    string
		org     string
		filing  tocsin.Filing
		code    tocsin.Code
		details map[string]any
	}{
		{"too late", "gd-met", tooLate, tocsin.CodeTooLate, map[string]any{"earliest_send_date": earliest, "filed": "2026-09-18"}},
		{"prefecture department", "gz-em", ordinary("Guangzhou", "440100"), tocsin.CodeForbidden, nil},
		{"prefecture department emergency", "gz-em", emergency("Guangzhou", "440100"), tocsin.CodeForbidden, nil},
		{"regulator files", "gd-cab", ordinary("regulator", "440100"), tocsin.CodeForbidden, nil},
		{"provincial dept outside province", "gd-met", ordinary("Nanning", "450100"), tocsin.CodeForbidden, map[string]any{"region": "450100"}},
		{"provincial dept partly outside", "gd-met", ordinary("both", "440100", "450100"), tocsin.CodeForbidden, map[string]any{"region": "450100"}},
		{"unknown region", "gd-met", ordinary("nowhere", "449999"), tocsin.CodeUnknownRegion, map[string]any{"region": "449999"}},
		{"malformed region", "mem", ordinary("nowhere", "44"), tocsin.CodeUnknownRegion, map[string]any{"region": "44"}},
		{"no scope", "mem", ordinary("nowhere"), tocsin.CodeValidation, map[string]any{"field": "scope"}},
		{"emergency without level", "gd-met", noLevel, tocsin.CodeValidation, map[string]any{"field": "emergency.level"}},
		{"emergency with bad type", "gd-met", badType, tocsin.CodeValidation, map[string]any{"field": "emergency.type"}},
		{"emergency without event", "gd-met", noEvent, tocsin.CodeValidation, map[string]any{"field": "emergency.event"}},
		{"emergency send_at in the past", "gd-met", emergencyPast, tocsin.CodeValidation, map[string]any{"field": "send_at"}},
		{"no send_at", "gd-met", noSendAt, tocsin.CodeValidation, map[string]any{"field": "send_at"}},
		{"send_at in the past", "gd-met", pastSendAt, tocsin.CodeValidation, map[string]any{"field": "send_at"}},
		{"send_until before send_at", "gd-met", badUntil, tocsin.CodeValidation, map[string]any{"field": "send_until"}},
		{"too many segments", "gd-met", tooLong, tocsin.CodeValidation, map[string]any{"field": "content", "segments": 11}},
		{"blank content", "gd-met", blank, tocsin.CodeValidation, map[string]any{"field": "content"}},
	}
	e := mustService(t, filedAt)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, _, err := e.svc.File(context.Background(), actor(t, tt.org), tt.filing, "")
			if b != nil {
				t.Errorf("File returned a broadcast with error %v", err)
			}
			wantCode(t, err, tt.code)
			details := tocsin.ErrorDetails(err)
			for k, v := range tt.details {
				if details[k] != v {
					t.Errorf("details[%q] = %v, want %v (all: %v)", k, details[k], v, details)
				}
			}
			if tocsin.ErrorMessage(err) == "internal error" {
				t.Errorf("message is not caller-safe: %v", err)
			}
		})
	}
	t.Run("too late names the date", func(t *testing.T) {
		_, _, err := e.svc.File(context.Background(), actor(t, "gd-met"), tooLate, "")
		if msg := tocsin.ErrorMessage(err); !strings.Contains(msg, earliest) {
			t.Errorf("message %q does not name %s", msg, earliest)
		}
	})
	t.Run("nothing stored", func(t *testing.T) {
		page, err := e.svc.List(context.Background(), actor(t, "admin"), tocsin.Query{})
		if err != nil {
			t.Fatal(err)
		}
		if len(page.Broadcasts) != 0 || len(e.outbox(t)) != 0 {
			t.Errorf("refused filings left %d broadcasts and %d outbox messages", len(page.Broadcasts), len(e.outbox(t)))
		}
	})
}

func TestFileOnEarliestDayBoundary(t *testing.T) {
	e := mustService(t, filedAt)
	f := ordinary("first minute of the earliest day", "440100")
	f.SendAt = ptr(sh(2026, time.October, 9, 0, 0))
	if b := e.mustFile(t, "gd-met", f); b.Status != tocsin.StatusPendingReview {
		t.Errorf("status = %q", b.Status)
	}
	// A send time given in UTC is judged by its Shanghai date: 2026-10-08
	// 16:00Z is 2026-10-09 00:00 in Shanghai.
	f.SendAt = ptr(time.Date(2026, time.October, 8, 16, 0, 0, 0, time.UTC))
	f.Title = "utc"
	e.mustFile(t, "gd-met", f)
	f.SendAt = ptr(time.Date(2026, time.October, 8, 15, 59, 0, 0, time.UTC))
	f.Title = "utc, one minute early"
	_, _, err := e.svc.File(context.Background(), actor(t, "gd-met"), f, "")
	wantCode(t, err, tocsin.CodeTooLate)
}

func TestFileEmergencyDispatchesAtOnce(t *testing.T) {
	e := mustService(t, filedAt)
	b := e.mustFile(t, "gd-met", emergency("Typhoon red warning", "440100"))

	if b.Status != tocsin.StatusDispatching {
		t.Fatalf("status = %q, want dispatching", b.Status)
	}
	if b.EarliestSendDate != "" {
		t.Errorf("an emergency has earliest_send_date %q", b.EarliestSendDate)
	}
	if !b.SendAt.Equal(filedAt) || b.ReleasedAt == nil || !b.ReleasedAt.Equal(filedAt) {
		t.Errorf("send_at %v, released_at %v; want both %v", b.SendAt, b.ReleasedAt, filedAt)
	}
	if got := providerIDs(b.Providers); !slices.Equal(got, []string{"cmcc", "cucc"}) {
		t.Fatalf("providers = %v, want cmcc and cucc (ctcc covers only Guangxi)", got)
	}
	for _, p := range b.Providers {
		if p.Status != tocsin.DeliveryQueued || !slices.Equal(p.Regions, []string{"440100"}) || !p.QueuedAt.Equal(filedAt) {
			t.Errorf("progress %s = %+v", p.Provider, p)
		}
	}
	if b.PostHoc == nil || b.PostHoc.Status != tocsin.PostHocDue || b.PostHoc.DueDate != "2026-09-24" {
		t.Errorf("post-hoc = %+v, want report_due by 2026-09-24 (5 working days)", b.PostHoc)
	}
	if e.published.Load() == 0 {
		t.Error("the outbox publisher was not woken")
	}

	msgs := e.outbox(t)
	if len(msgs) != 2 {
		t.Fatalf("outbox has %d messages, want 2", len(msgs))
	}
	for i, want := range []string{"cmcc", "cucc"} {
		m := msgs[i]
		d := m.Dispatch
		switch {
		case m.Provider != want:
			t.Errorf("message %d goes to %s, want %s", i, m.Provider, want)
		case !isMsgID(m.MsgID, b.ID+".broadcast."+want):
			t.Errorf("msg id = %q", m.MsgID)
		case m.Seq == 0:
			t.Errorf("message %d has no seq", i)
		case d.BroadcastID != b.ID || d.Type != tocsin.DispatchBroadcast || d.References != "":
			t.Errorf("dispatch ids = %q %q %q", d.BroadcastID, d.Type, d.References)
		case d.Charge != "free":
			t.Errorf("charge = %q, want free", d.Charge)
		case d.SenderCode != "12379440" || d.Agency != "广东省气象局": // the official Chinese name
			t.Errorf("sender = %q %q", d.SenderCode, d.Agency)
		case !slices.Equal(d.Regions, []string{"440100"}):
			t.Errorf("regions = %v", d.Regions)
		case d.Content != b.Content || !d.SendAt.Equal(b.SendAt):
			t.Errorf("content/send_at = %q %v", d.Content, d.SendAt)
		case d.Emergency == nil || *d.Emergency != (tocsin.DispatchEmergency{Type: string(tocsin.NaturalDisaster), Event: "typhoon", Level: string(tocsin.Red)}):
			t.Errorf("emergency = %+v", d.Emergency)
		}
	}
	if msgs[0].Seq >= msgs[1].Seq {
		t.Errorf("outbox seqs not increasing: %d, %d", msgs[0].Seq, msgs[1].Seq)
	}
}

func TestFileEmergencyAcrossProvinces(t *testing.T) {
	e := mustService(t, filedAt)
	f := emergency("Pearl River flood", "440000", "450100")
	f.Exercise = true
	b := e.mustFile(t, "mem", f)
	want := map[string][]string{"cmcc": {"440000", "450100"}, "ctcc": {"450100"}, "cucc": {"440000"}}
	if len(b.Providers) != len(want) {
		t.Fatalf("providers = %v", providerIDs(b.Providers))
	}
	for _, p := range b.Providers {
		if !slices.Equal(p.Regions, want[p.Provider]) {
			t.Errorf("%s covers %v, want %v", p.Provider, p.Regions, want[p.Provider])
		}
	}
	for _, m := range e.outbox(t) {
		if !slices.Equal(m.Dispatch.Regions, want[m.Provider]) || !m.Dispatch.Exercise || m.Dispatch.SenderCode != "12379" {
			t.Errorf("dispatch to %s = %+v", m.Provider, m.Dispatch)
		}
	}
}

func TestFileEmergencyWithoutCoveringProvider(t *testing.T) {
	e := mustService(t, filedAt)
	b := e.mustFile(t, "mem", emergency("Beijing", "110000"))
	if b.Status != tocsin.StatusCompleted || len(b.Providers) != 0 || len(e.outbox(t)) != 0 {
		t.Errorf("status %q, providers %v, outbox %d; want completed with nothing sent", b.Status, b.Providers, len(e.outbox(t)))
	}
}

func TestApproveJurisdiction(t *testing.T) {
	tests := []struct {
		name     string
		filer    string
		scope    []string
		reviewer string
		code     tocsin.Code // "" for success
	}{
		{"other province's regulator", "gd-met", []string{"440100"}, "gx-cab", tocsin.CodeForbidden},
		{"department may not approve", "gd-met", []string{"440100"}, "gd-met", tocsin.CodeForbidden},
		{"admin may not approve", "gd-met", []string{"440100"}, "admin", tocsin.CodeForbidden},
		{"own province's regulator", "gd-met", []string{"440100"}, "gd-cab", ""},
		{"ministry anywhere", "gd-met", []string{"440100"}, "miit", ""},
		{"national dept, one province, provincial regulator", "mem", []string{"450100"}, "gx-cab", ""},
		{"multi-province, first province's regulator", "mem", []string{"440000", "450000"}, "gd-cab", tocsin.CodeForbidden},
		{"multi-province, second province's regulator", "mem", []string{"440000", "450000"}, "gx-cab", tocsin.CodeForbidden},
		{"multi-province, ministry", "mem", []string{"440000", "450000"}, "miit", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := mustService(t, filedAt)
			b := e.mustFile(t, tt.filer, ordinary(tt.name, tt.scope...))
			got, err := e.svc.Approve(context.Background(), actor(t, tt.reviewer), b.ID)
			if tt.code != "" {
				wantCode(t, err, tt.code)
				if s := e.get(t, b.ID).Status; s != tocsin.StatusPendingReview {
					t.Errorf("refused approval left status %q", s)
				}
				return
			}
			if err != nil {
				t.Fatalf("approve: %v", err)
			}
			if got.Status != tocsin.StatusApproved || got.Review == nil || got.Review.Decision != tocsin.DecisionApproved || got.Review.Regulator != tt.reviewer {
				t.Errorf("after approval: status %q review %+v", got.Status, got.Review)
			}
			if len(got.Providers) != 0 || len(e.outbox(t)) != 0 {
				t.Errorf("approval before the send time dispatched: %v", got.Providers)
			}
			_, err = e.svc.Approve(context.Background(), actor(t, tt.reviewer), b.ID)
			wantCode(t, err, tocsin.CodeConflict)
		})
	}
}

func TestReject(t *testing.T) {
	e := mustService(t, filedAt)
	ctx := context.Background()
	b := e.mustFile(t, "gd-met", ordinary("Discount on umbrellas", "440000"))
	gdCab := actor(t, "gd-cab")

	refusals := []struct {
		name   string
		org    string
		code   tocsin.ReasonCode
		reason string
		want   tocsin.Code
	}{
		{"no reason code", "gd-cab", "", "advertising", tocsin.CodeReasonRequired},
		{"no reason", "gd-cab", tocsin.ReasonNotPublicWelfare, "", tocsin.CodeReasonRequired},
		{"blank reason", "gd-cab", tocsin.ReasonNotPublicWelfare, " \t ", tocsin.CodeReasonRequired},
		{"unknown reason code", "gd-cab", "because", "advertising", tocsin.CodeValidation},
		{"reason too long", "gd-cab", tocsin.ReasonOther, strings.Repeat("x", tocsin.MaxReasonChars+1), tocsin.CodeValidation},
		{"other province", "gx-cab", tocsin.ReasonNotPublicWelfare, "advertising", tocsin.CodeForbidden},
	}
	for _, tt := range refusals {
		t.Run(tt.name, func(t *testing.T) {
			_, err := e.svc.Reject(ctx, actor(t, tt.org), b.ID, tt.code, tt.reason)
			wantCode(t, err, tt.want)
		})
	}
	if s := e.get(t, b.ID).Status; s != tocsin.StatusPendingReview {
		t.Fatalf("refused rejections left status %q", s)
	}

	const reason = "Commercial promotion, not a public-welfare message (Article 37(6))"
	got, err := e.svc.Reject(ctx, gdCab, b.ID, tocsin.ReasonNotPublicWelfare, "  "+reason+"\n")
	if err != nil {
		t.Fatalf("reject: %v", err)
	}
	if got.Status != tocsin.StatusRejected {
		t.Errorf("status = %q", got.Status)
	}

	// The department reads the reason back.
	seen, err := e.svc.Get(ctx, actor(t, "gd-met"), b.ID)
	if err != nil {
		t.Fatalf("department reads its rejected filing: %v", err)
	}
	r := seen.Review
	if r == nil || r.Decision != tocsin.DecisionRejected || r.Reason != reason || r.ReasonCode != tocsin.ReasonNotPublicWelfare || r.Regulator != "gd-cab" || !r.At.Equal(filedAt) {
		t.Errorf("review = %+v", r)
	}
	if last := seen.History[len(seen.History)-1]; last.Action != "rejected" || last.From != tocsin.StatusPendingReview || last.To != tocsin.StatusRejected {
		t.Errorf("last history entry = %+v", last)
	}

	// Others may not read it.
	for _, org := range []string{"gx-health", "mem", "gx-cab"} {
		_, err := e.svc.Get(ctx, actor(t, org), b.ID)
		wantCode(t, err, tocsin.CodeForbidden)
	}
	_, err = e.svc.Approve(ctx, gdCab, b.ID)
	wantCode(t, err, tocsin.CodeConflict)
	_, err = e.svc.Reject(ctx, gdCab, b.ID, tocsin.ReasonOther, "again")
	wantCode(t, err, tocsin.CodeConflict)
}

func TestWithdraw(t *testing.T) {
	e := mustService(t, filedAt)
	ctx := context.Background()
	pending := e.mustFile(t, "gd-met", ordinary("pending", "440100"))
	approved := e.mustFile(t, "gd-met", ordinary("approved", "440100"))
	e.mustApprove(t, "gd-cab", approved.ID)
	dispatching := e.mustFile(t, "gd-met", emergency("dispatching", "440100"))

	for _, org := range []string{"mem", "gx-health", "gd-cab", "miit"} {
		_, err := e.svc.Withdraw(ctx, actor(t, org), pending.ID, "not mine")
		wantCode(t, err, tocsin.CodeForbidden)
	}

	b, err := e.svc.Withdraw(ctx, actor(t, "gd-met"), approved.ID, " forecast changed ")
	if err != nil {
		t.Fatalf("withdraw after approval: %v", err)
	}
	if b.Status != tocsin.StatusWithdrawn || b.Closure == nil || b.Closure.Reason != "forecast changed" || b.Closure.Org != "gd-met" {
		t.Errorf("after withdrawal: %q %+v", b.Status, b.Closure)
	}
	if _, ok, _ := e.svc.NextRelease(ctx); ok {
		t.Error("a withdrawn broadcast is still scheduled")
	}

	// A withdrawal says why (DESIGN, Reasons): blank is refused.
	for _, blank := range []string{"", "  \n "} {
		_, err = e.svc.Withdraw(ctx, actor(t, "gd-met"), pending.ID, blank)
		wantCode(t, err, tocsin.CodeReasonRequired)
	}
	if b, err := e.svc.Withdraw(ctx, actor(t, "gd-met"), pending.ID, "filed twice"); err != nil || b.Status != tocsin.StatusWithdrawn {
		t.Errorf("withdraw pending: %v, %v", b, err)
	}
	_, err = e.svc.Withdraw(ctx, actor(t, "gd-met"), pending.ID, "again")
	wantCode(t, err, tocsin.CodeConflict)
	_, err = e.svc.Withdraw(ctx, actor(t, "gd-met"), dispatching.ID, "too late")
	wantCode(t, err, tocsin.CodeConflict)
	_, err = e.svc.Withdraw(ctx, actor(t, "gd-met"), "BC999999", "no such")
	wantCode(t, err, tocsin.CodeNotFound)
}

func TestCancelDispatchingSendsStops(t *testing.T) {
	e := mustService(t, filedAt)
	ctx := context.Background()
	b := e.mustFile(t, "gd-met", emergency("Typhoon", "440100"))
	e.clock.Set(filedAt.Add(time.Minute))
	if err := e.svc.ApplyReceipt(ctx, "cucc", tocsin.Receipt{BroadcastID: b.ID, Status: string(tocsin.DeliveryDelivered), Recipients: 10, Sent: 10, Delivered: 9, Failed: 1}); err != nil {
		t.Fatalf("receipt: %v", err)
	}
	if err := e.svc.ApplyReceipt(ctx, "cmcc", tocsin.Receipt{BroadcastID: b.ID, Status: string(tocsin.DeliverySending), Recipients: 100}); err != nil {
		t.Fatalf("receipt: %v", err)
	}
	before := len(e.outbox(t))

	_, err := e.svc.Cancel(ctx, actor(t, "gx-cab"), b.ID, "wrong province")
	wantCode(t, err, tocsin.CodeForbidden)
	_, err = e.svc.Cancel(ctx, actor(t, "gd-met"), b.ID, "departments withdraw, regulators cancel")
	wantCode(t, err, tocsin.CodeForbidden)

	e.clock.Set(filedAt.Add(2 * time.Minute))
	published := e.published.Load()
	got, err := e.svc.Cancel(ctx, actor(t, "gd-cab"), b.ID, "false alarm")
	if err != nil {
		t.Fatalf("cancel: %v", err)
	}
	if got.Status != tocsin.StatusCancelled || got.Closure == nil || got.Closure.Action != tocsin.StatusCancelled || got.Closure.Reason != "false alarm" {
		t.Errorf("after cancel: %q %+v", got.Status, got.Closure)
	}
	for _, p := range got.Providers {
		want := map[string]tocsin.DeliveryStatus{"cmcc": tocsin.DeliveryStopped, "cucc": tocsin.DeliveryDelivered}[p.Provider]
		if p.Status != want {
			t.Errorf("%s is %q, want %q", p.Provider, p.Status, want)
		}
	}
	if e.published.Load() == published {
		t.Error("the outbox publisher was not woken for the stops")
	}

	msgs := e.outbox(t)
	stops := msgs[before:]
	if len(stops) != 1 {
		t.Fatalf("cancel enqueued %d messages, want 1 stop (cucc had finished)", len(stops))
	}
	s := stops[0]
	if s.Provider != "cmcc" || !isMsgID(s.MsgID, b.ID+".stop.cmcc") || s.Dispatch.Type != tocsin.DispatchStop ||
		s.Dispatch.References != b.ID || s.Dispatch.BroadcastID != b.ID || s.Dispatch.Charge != "free" ||
		s.Dispatch.SenderCode != "12379440" || !slices.Equal(s.Dispatch.Regions, []string{"440100"}) {
		t.Errorf("stop = %+v", s)
	}

	_, err = e.svc.Cancel(ctx, actor(t, "gd-cab"), b.ID, "again")
	wantCode(t, err, tocsin.CodeConflict)
	// A late receipt does not revive a stopped provider.
	if err := e.svc.ApplyReceipt(ctx, "cmcc", tocsin.Receipt{BroadcastID: b.ID, Status: string(tocsin.DeliveryDelivered), Recipients: 100, Sent: 100, Delivered: 100}); err != nil {
		t.Fatalf("late receipt: %v", err)
	}
	if got := e.get(t, b.ID); got.Status != tocsin.StatusCancelled || got.Providers[0].Status != tocsin.DeliveryStopped {
		t.Errorf("after late receipt: %q, cmcc %q", got.Status, got.Providers[0].Status)
	}
}

func TestCancelBeforeDispatchSendsNothing(t *testing.T) {
	e := mustService(t, filedAt)
	b := e.mustFile(t, "mem", ordinary("two provinces", "440000", "450000"))
	e.mustApprove(t, "miit", b.ID)
	_, err := e.svc.Cancel(context.Background(), actor(t, "gd-cab"), b.ID, "multi-province: ministry only")
	wantCode(t, err, tocsin.CodeForbidden)
	got, err := e.svc.Cancel(context.Background(), actor(t, "miit"), b.ID, "superseded")
	if err != nil || got.Status != tocsin.StatusCancelled {
		t.Fatalf("cancel approved: %v %v", got, err)
	}
	if n := len(e.outbox(t)); n != 0 {
		t.Errorf("cancelling an undispatched broadcast enqueued %d messages", n)
	}
	if _, ok, _ := e.svc.NextRelease(context.Background()); ok {
		t.Error("a cancelled broadcast is still scheduled")
	}
}

func TestReceiptsComplete(t *testing.T) {
	e := mustService(t, filedAt)
	ctx := context.Background()
	b := e.mustFile(t, "gd-met", emergency("Typhoon", "440000"))
	steps := []struct {
		provider string
		r        tocsin.Receipt
		want     tocsin.Status
	}{
		{"cmcc", tocsin.Receipt{Status: string(tocsin.DeliveryReceived)}, tocsin.StatusDispatching},
		{"cmcc", tocsin.Receipt{Status: string(tocsin.DeliveryDelivered), Recipients: 5, Sent: 5, Delivered: 5}, tocsin.StatusDispatching},
		{"cmcc", tocsin.Receipt{Status: string(tocsin.DeliverySending)}, tocsin.StatusDispatching}, // stale, ignored
		{"cucc", tocsin.Receipt{Status: string(tocsin.DeliveryFailed), Detail: "gateway down"}, tocsin.StatusCompleted},
	}
	for i, s := range steps {
		s.r.BroadcastID = b.ID
		if err := e.svc.ApplyReceipt(ctx, s.provider, s.r); err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
		if got := e.get(t, b.ID).Status; got != s.want {
			t.Fatalf("step %d: status %q, want %q", i, got, s.want)
		}
	}
	got := e.get(t, b.ID)
	if p := got.Providers[0]; p.Status != tocsin.DeliveryDelivered || p.Delivered != 5 {
		t.Errorf("cmcc = %+v", p)
	}
	err := e.svc.ApplyReceipt(ctx, "ctcc", tocsin.Receipt{BroadcastID: b.ID, Status: string(tocsin.DeliveryReceived)})
	wantCode(t, err, tocsin.CodeNotFound)
	err = e.svc.ApplyReceipt(ctx, "cmcc", tocsin.Receipt{BroadcastID: b.ID, Status: "queued"})
	wantCode(t, err, tocsin.CodeValidation)
}

// One batch, as the receipt consumer applies them: the same steps in
// order, the refused ones answered alone, everything in one commit.
func TestApplyReceiptsInOneBatch(t *testing.T) {
	e := mustService(t, filedAt)
	ctx := context.Background()
	b := e.mustFile(t, "gd-met", emergency("Typhoon", "440000"))
	other := e.mustFile(t, "gd-met", emergency("Flood", "440000"))
	r := func(provider, id string, status tocsin.DeliveryStatus, delivered int) tocsin.ProviderReceipt {
		return tocsin.ProviderReceipt{Provider: provider, Receipt: tocsin.Receipt{BroadcastID: id, Status: string(status), Delivered: delivered, Sent: delivered, Recipients: delivered}}
	}
	batch := []tocsin.ProviderReceipt{
		r("cmcc", b.ID, tocsin.DeliveryReceived, 0),
		r("ctcc", b.ID, tocsin.DeliveryReceived, 0), // not dispatched to ctcc
		r("cmcc", b.ID, tocsin.DeliveryDelivered, 5),
		r("cmcc", "BC999999", tocsin.DeliveryReceived, 0), // no such broadcast
		r("cmcc", b.ID, tocsin.DeliverySending, 0),        // stale, ignored
		r("cucc", b.ID, "queued", 0),                      // not a receipt status
		r("cucc", b.ID, tocsin.DeliveryFailed, 0),
		r("cucc", other.ID, tocsin.DeliveryReceived, 0),
	}
	applied, err := e.svc.ApplyReceipts(ctx, batch)
	if err != nil {
		t.Fatal(err)
	}
	wantErr := []tocsin.Code{"", tocsin.CodeNotFound, "", tocsin.CodeNotFound, "", tocsin.CodeValidation, "", ""}
	for i, a := range applied {
		if got := tocsin.ErrorCode(a.Err); got != wantErr[i] {
			t.Errorf("receipt %d: error %v, want code %q", i, a.Err, wantErr[i])
		}
	}
	if applied[0].FirstAfter == 0 || applied[2].FirstAfter != 0 || applied[7].FirstAfter == 0 {
		t.Errorf("FirstAfter = %v, %v, %v; want it on each provider's first receipt only", applied[0].FirstAfter, applied[2].FirstAfter, applied[7].FirstAfter)
	}
	got := e.get(t, b.ID)
	if got.Status != tocsin.StatusCompleted {
		t.Errorf("status %q, want completed", got.Status)
	}
	if p := got.Providers[0]; p.Status != tocsin.DeliveryDelivered || p.Delivered != 5 {
		t.Errorf("cmcc = %+v", p)
	}
	if p := e.get(t, other.ID).Providers[1]; p.Provider != "cucc" || p.Status != tocsin.DeliveryReceived {
		t.Errorf("cucc on %s = %+v", other.ID, p)
	}
}

// A provider may spell the id otherwise (BC1 for BC000001): receipts of
// one batch for the same broadcast all count, however each spells it.
func TestApplyReceiptsWhateverTheIDSpelling(t *testing.T) {
	e := mustService(t, filedAt)
	b := e.mustFile(t, "gd-met", emergency("Typhoon", "440000"))
	digits := strings.TrimLeft(strings.TrimPrefix(b.ID, "BC"), "0")
	short, long := "BC"+digits, "BC000"+strings.TrimPrefix(b.ID, "BC")
	batch := []tocsin.ProviderReceipt{
		{Provider: "cmcc", Receipt: tocsin.Receipt{BroadcastID: short, Status: string(tocsin.DeliveryReceived)}},
		{Provider: "cucc", Receipt: tocsin.Receipt{BroadcastID: b.ID, Status: string(tocsin.DeliveryReceived)}},
		{Provider: "cmcc", Receipt: tocsin.Receipt{BroadcastID: long, Status: string(tocsin.DeliverySending)}},
	}
	applied, err := e.svc.ApplyReceipts(context.Background(), batch)
	if err != nil {
		t.Fatal(err)
	}
	for i, a := range applied {
		if a.Err != nil {
			t.Errorf("receipt %d (%s): %v", i, batch[i].Receipt.BroadcastID, a.Err)
		}
	}
	got := e.get(t, b.ID)
	for _, want := range []struct {
		provider string
		status   tocsin.DeliveryStatus
	}{{"cmcc", tocsin.DeliverySending}, {"cucc", tocsin.DeliveryReceived}} {
		i := slices.IndexFunc(got.Providers, func(p tocsin.ProviderProgress) bool { return p.Provider == want.provider })
		if i < 0 || got.Providers[i].Status != want.status {
			t.Errorf("%s: %+v, want %s", want.provider, got.Providers, want.status)
		}
	}
}

func TestRenewMsgIDKeepsTheDispatch(t *testing.T) {
	e := mustService(t, filedAt)
	ctx := context.Background()
	e.mustFile(t, "gd-met", emergency("Typhoon", "440000"))
	before := e.outbox(t)
	renewed, err := e.svc.RenewMsgID(ctx, before[0].OutboxMessage)
	if err != nil {
		t.Fatal(err)
	}
	after := e.outbox(t)
	if len(after) != len(before) {
		t.Fatalf("outbox has %d messages after renewal, want %d", len(after), len(before))
	}
	last := after[len(after)-1]
	if last.MsgID == before[0].MsgID || !strings.HasPrefix(last.MsgID, before[0].MsgID) || last.MsgID != renewed.MsgID ||
		last.Dispatch.BroadcastID != before[0].Dispatch.BroadcastID || last.Provider != before[0].Provider {
		t.Errorf("renewed %+v from %+v", last, before[0])
	}
	if after[0].Seq == before[0].Seq {
		t.Error("the old message is still queued")
	}
	// The record changed, so the trail says how, last.
	entries := testkit.Timeline(t, e.svc.Store, before[0].Dispatch.BroadcastID)
	if got := entries[len(entries)-1]; got.Action != tocsin.AuditDispatchRenewed || got.StateHash == "" ||
		!strings.Contains(got.Note, renewed.MsgID) {
		t.Errorf("last entry %+v, want the renewal with the record's state", got)
	}
}

func TestApproveAfterSendTimeReleasesAtOnce(t *testing.T) {
	e := mustService(t, filedAt)
	b := e.mustFile(t, "gd-met", ordinary("late review", "440100"))
	late := onTime.Add(time.Hour)
	e.clock.Set(late)
	got := e.mustApprove(t, "gd-cab", b.ID)
	if got.Status != tocsin.StatusDispatching || got.ReleasedAt == nil || !got.ReleasedAt.Equal(late) {
		t.Fatalf("status %q released %v, want dispatching at %v", got.Status, got.ReleasedAt, late)
	}
	if ids := providerIDs(got.Providers); !slices.Equal(ids, []string{"cmcc", "cucc"}) {
		t.Errorf("providers = %v", ids)
	}
	if got.PostHoc != nil {
		t.Errorf("an ordinary broadcast owes a post-hoc report: %+v", got.PostHoc)
	}
	msgs := e.outbox(t)
	if len(msgs) != 2 || msgs[0].Dispatch.Emergency != nil || msgs[0].Dispatch.Charge != "free" {
		t.Errorf("outbox = %+v", msgs)
	}
	if n, err := e.svc.ReleaseDue(context.Background()); err != nil || n != 0 {
		t.Errorf("ReleaseDue after immediate release = %d, %v", n, err)
	}
}

// A broadcast whose release fails (its record will not decode, say)
// holds up none of those due after it: they are released, and the error
// names the one that failed, which is asked again next round.
func TestReleaseDuePassesOverOneThatFails(t *testing.T) {
	e := mustService(t, filedAt)
	first := e.mustFile(t, "gd-met", ordinary("First", "440100"))
	second := e.mustFile(t, "gd-met", ordinary("Second", "440100"))
	e.mustApprove(t, "gd-cab", first.ID)
	e.mustApprove(t, "gd-cab", second.ID)
	e.clock.Set(onTime.Add(time.Minute))
	// A failure that is the store's ends the round: the rest would fail
	// alike, each a write of its own.
	e.svc.Store = testkit.FailingBroadcast(e.store, first.ID, tocsin.Errorf(tocsin.CodeUnavailable, "the disk is full"))
	if n, err := e.svc.ReleaseDue(context.Background()); n != 0 || !tocsin.IsCode(err, tocsin.CodeUnavailable) {
		t.Fatalf("ReleaseDue with the store unwritable = %d, %v; want none and unavailable", n, err)
	}
	if got := e.get(t, second.ID); got.Status != tocsin.StatusApproved {
		t.Errorf("the second is %s after a round the store ended, want approved", got.Status)
	}
	broken := errors.New("the record will not decode")
	e.svc.Store = testkit.FailingBroadcast(e.store, first.ID, broken)

	n, err := e.svc.ReleaseDue(context.Background())
	if n != 1 || !errors.Is(err, broken) || !strings.Contains(err.Error(), first.ID) {
		t.Fatalf("ReleaseDue = %d, %v; want the second released and the first named", n, err)
	}
	if got := e.get(t, second.ID); got.Status != tocsin.StatusDispatching {
		t.Errorf("the second is %s, want dispatching", got.Status)
	}
	e.svc.Store = e.store // mended
	if n, err := e.svc.ReleaseDue(context.Background()); n != 1 || err != nil {
		t.Errorf("ReleaseDue once mended = %d, %v; want the first released", n, err)
	}
}

func TestApproveAfterSendWindowClosed(t *testing.T) {
	e := mustService(t, filedAt)
	f := ordinary("window", "440100")
	f.SendUntil = ptr(onTime.Add(2 * time.Hour))
	b := e.mustFile(t, "gd-met", f)
	e.clock.Set(onTime.Add(3 * time.Hour))
	_, err := e.svc.Approve(context.Background(), actor(t, "gd-cab"), b.ID)
	wantCode(t, err, tocsin.CodeConflict)
}

func TestReleaseDue(t *testing.T) {
	e := mustService(t, filedAt)
	ctx := context.Background()
	later := sh(2026, time.October, 12, 9, 0)

	first := e.mustFile(t, "gd-met", ordinary("first", "440100"))
	second := e.mustFile(t, "gx-health", func() tocsin.Filing {
		f := ordinary("second", "450100")
		f.SendAt = ptr(later)
		return f
	}())
	pending := e.mustFile(t, "gd-met", ordinary("never approved", "440100"))
	withdrawn := e.mustFile(t, "gd-met", ordinary("withdrawn", "440100"))
	e.mustApprove(t, "gd-cab", first.ID)
	e.mustApprove(t, "gx-cab", second.ID)
	e.mustApprove(t, "gd-cab", withdrawn.ID)
	if _, err := e.svc.Withdraw(ctx, actor(t, "gd-met"), withdrawn.ID, "not needed"); err != nil {
		t.Fatal(err)
	}

	next, ok, err := e.svc.NextRelease(ctx)
	if err != nil || !ok || !next.Equal(onTime) {
		t.Fatalf("NextRelease = %v %v %v, want %v", next, ok, err, onTime)
	}

	steps := []struct {
		at       time.Time
		released int
		next     time.Time // zero: none
	}{
		{filedAt, 0, onTime},
		{onTime.Add(-time.Nanosecond), 0, onTime},
		{onTime, 1, later}, // at the send time, not only after it
		{onTime, 0, later}, // never twice
		{later.Add(-time.Second), 0, later},
		{later.Add(time.Hour), 1, time.Time{}},
		{later.Add(time.Hour), 0, time.Time{}},
	}
	for i, s := range steps {
		e.clock.Set(s.at)
		n, err := e.svc.ReleaseDue(ctx)
		if err != nil || n != s.released {
			t.Fatalf("step %d at %v: ReleaseDue = %d, %v; want %d", i, s.at, n, err, s.released)
		}
		next, ok, err := e.svc.NextRelease(ctx)
		if err != nil || ok != !s.next.IsZero() || (ok && !next.Equal(s.next)) {
			t.Fatalf("step %d: NextRelease = %v %v %v, want %v", i, next, ok, err, s.next)
		}
	}

	wantStatus := map[string]tocsin.Status{
		first.ID: tocsin.StatusDispatching, second.ID: tocsin.StatusDispatching,
		pending.ID: tocsin.StatusPendingReview, withdrawn.ID: tocsin.StatusWithdrawn,
	}
	for id, want := range wantStatus {
		if got := e.get(t, id).Status; got != want {
			t.Errorf("%s is %q, want %q", id, got, want)
		}
	}
	if got := e.get(t, first.ID).ReleasedAt; got == nil || !got.Equal(onTime) {
		t.Errorf("first released at %v, want %v", got, onTime)
	}
	if b := e.get(t, second.ID); !slices.Equal(providerIDs(b.Providers), []string{"cmcc", "ctcc"}) {
		t.Errorf("second went to %v, want cmcc and ctcc", providerIDs(b.Providers))
	}
	var perBroadcast = map[string]int{}
	for _, m := range e.outbox(t) {
		perBroadcast[m.Dispatch.BroadcastID]++
	}
	if perBroadcast[first.ID] != 2 || perBroadcast[second.ID] != 2 || len(perBroadcast) != 2 {
		t.Errorf("dispatches per broadcast = %v", perBroadcast)
	}
}

func TestReleaseDueConcurrentCallersReleaseOnce(t *testing.T) {
	e := mustService(t, filedAt)
	ctx := context.Background()
	const n = 5
	for i := range n {
		b := e.mustFile(t, "gd-met", ordinary(fmt.Sprint("b", i), "440100"))
		e.mustApprove(t, "gd-cab", b.ID)
	}
	e.clock.Set(onTime)
	var total atomic.Int64
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			k, err := e.svc.ReleaseDue(ctx)
			if err != nil {
				t.Errorf("ReleaseDue: %v", err)
			}
			total.Add(int64(k))
		})
	}
	wg.Wait()
	if total.Load() != n {
		t.Errorf("concurrent ReleaseDue released %d in total, want %d", total.Load(), n)
	}
	if got := len(e.outbox(t)); got != 2*n {
		t.Errorf("outbox has %d messages, want %d", got, 2*n)
	}
}

func TestIdempotencyKey(t *testing.T) {
	e := mustService(t, filedAt)
	ctx := context.Background()
	gdMet := actor(t, "gd-met")
	f := emergency("Typhoon", "440100")

	first, replayed, err := e.svc.File(ctx, gdMet, f, "key-1")
	if err != nil || replayed {
		t.Fatalf("first filing: replayed=%v err=%v", replayed, err)
	}
	outbox := len(e.outbox(t))

	e.clock.Set(filedAt.Add(time.Minute))
	again, replayed, err := e.svc.File(ctx, gdMet, emergency("Typhoon", "440100"), "key-1")
	if err != nil || !replayed || again.ID != first.ID {
		t.Fatalf("retry: id %v replayed=%v err=%v; want %s replayed", again, replayed, err, first.ID)
	}
	if len(e.outbox(t)) != outbox {
		t.Error("a replayed emergency was dispatched again")
	}

	different := emergency("Typhoon (corrected)", "440100")
	_, _, err = e.svc.File(ctx, gdMet, different, "key-1")
	wantCode(t, err, tocsin.CodeIdempotencyReuse)
	if got := tocsin.ErrorDetails(err)["broadcast_id"]; got != first.ID {
		t.Errorf("details broadcast_id = %v, want %s", got, first.ID)
	}

	// Keys belong to one department: another may use the same key.
	other, replayed, err := e.svc.File(ctx, actor(t, "gx-health"), emergency("Typhoon", "450100"), "key-1")
	if err != nil || replayed || other.ID == first.ID {
		t.Errorf("other department's key-1: %v replayed=%v err=%v", other, replayed, err)
	}
	// Without a key, the same filing is a new broadcast.
	fresh, replayed, err := e.svc.File(ctx, gdMet, emergency("Typhoon", "440100"), "")
	if err != nil || replayed || fresh.ID == first.ID {
		t.Errorf("keyless refiling: %v replayed=%v err=%v", fresh, replayed, err)
	}
	page, err := e.svc.List(ctx, gdMet, tocsin.Query{})
	if err != nil || len(page.Broadcasts) != 2 {
		t.Errorf("gd-met has %d broadcasts (%v), want 2", len(page.Broadcasts), err)
	}
}

func TestIdempotencyKeyConcurrentRetries(t *testing.T) {
	e := mustService(t, filedAt)
	ctx := context.Background()
	var wg sync.WaitGroup
	ids := make([]string, 20)
	for i := range ids {
		wg.Go(func() {
			b, _, err := e.svc.File(ctx, actor(t, "gd-met"), ordinary("once", "440100"), "same-key")
			if err != nil {
				t.Errorf("File: %v", err)
				return
			}
			ids[i] = b.ID
		})
	}
	wg.Wait()
	for _, id := range ids {
		if id != ids[0] {
			t.Fatalf("concurrent retries created different broadcasts: %v", ids)
		}
	}
	page, err := e.svc.List(ctx, actor(t, "admin"), tocsin.Query{})
	if err != nil || len(page.Broadcasts) != 1 {
		t.Errorf("%d broadcasts stored (%v), want 1", len(page.Broadcasts), err)
	}
}

func TestConcurrentFilings(t *testing.T) {
	e := mustService(t, filedAt)
	ctx := context.Background()
	const n = 50
	var wg sync.WaitGroup
	ids := make([]string, n)
	for i := range n {
		wg.Go(func() {
			b, _, err := e.svc.File(ctx, actor(t, "gd-met"), emergency(fmt.Sprint("warning ", i), "440100"), fmt.Sprint("k", i))
			if err != nil {
				t.Errorf("File %d: %v", i, err)
				return
			}
			ids[i] = b.ID
		})
	}
	wg.Wait()
	slices.Sort(ids)
	if len(slices.Compact(ids)) != n {
		t.Errorf("IDs are not unique: %v", ids)
	}
	if got := len(e.outbox(t)); got != 2*n {
		t.Errorf("outbox has %d messages, want %d", got, 2*n)
	}
}

func TestListScoping(t *testing.T) {
	e := mustService(t, filedAt)
	ctx := context.Background()
	g1 := e.mustFile(t, "gd-met", ordinary("g1", "440100"))
	x1 := e.mustFile(t, "gx-health", ordinary("x1", "450100"))
	m1 := e.mustFile(t, "mem", ordinary("m1", "440000", "450000"))
	g2 := e.mustFile(t, "gd-met", emergency("g2", "440300"))
	m2 := e.mustFile(t, "mem", ordinary("m2", "110000"))
	all := []string{m2.ID, g2.ID, m1.ID, x1.ID, g1.ID} // newest first

	tests := []struct {
		org   string
		query tocsin.Query
		want  []string
	}{
		{"gd-met", tocsin.Query{}, []string{g2.ID, g1.ID}},
		{"gd-met", tocsin.Query{Department: "mem"}, []string{g2.ID, g1.ID}}, // cannot widen its view
		{"gx-health", tocsin.Query{}, []string{x1.ID}},
		{"mem", tocsin.Query{}, []string{m2.ID, m1.ID}},
		{"gz-em", tocsin.Query{}, nil},
		{"gd-cab", tocsin.Query{}, []string{g2.ID, m1.ID, g1.ID}},
		{"gd-cab", tocsin.Query{Province: "110000"}, []string{g2.ID, m1.ID, g1.ID}}, // cannot widen either
		{"gx-cab", tocsin.Query{}, []string{m1.ID, x1.ID}},
		{"miit", tocsin.Query{}, all},
		{"admin", tocsin.Query{}, all},
		{"miit", tocsin.Query{Status: []tocsin.Status{tocsin.StatusDispatching}}, []string{g2.ID}},
		{"miit", tocsin.Query{Status: []tocsin.Status{tocsin.StatusPendingReview}}, []string{m2.ID, m1.ID, x1.ID, g1.ID}},
		{"miit", tocsin.Query{Emergency: ptr(true)}, []string{g2.ID}},
		{"gd-cab", tocsin.Query{Emergency: ptr(false)}, []string{m1.ID, g1.ID}},
		{"miit", tocsin.Query{Department: "mem"}, []string{m2.ID, m1.ID}},
		{"miit", tocsin.Query{Province: "450000"}, []string{m1.ID, x1.ID}},
		{"gd-met", tocsin.Query{Status: []tocsin.Status{tocsin.StatusPendingReview, tocsin.StatusDispatching}}, []string{g2.ID, g1.ID}},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%s %+v", tt.org, tt.query), func(t *testing.T) {
			page, err := e.svc.List(ctx, actor(t, tt.org), tt.query)
			if err != nil {
				t.Fatal(err)
			}
			if got := ids(page.Broadcasts); !slices.Equal(got, tt.want) {
				t.Errorf("got %v, want %v", got, tt.want)
			}
			if page.NextCursor != "" {
				t.Errorf("next cursor %q on a short listing", page.NextCursor)
			}
			for _, b := range page.Broadcasts { // everything listed is readable
				if _, err := e.svc.Get(ctx, actor(t, tt.org), b.ID); err != nil {
					t.Errorf("listed %s but Get says %v", b.ID, err)
				}
			}
		})
	}

	_, err := e.svc.List(ctx, tocsin.Actor{Role: tocsin.RoleProvider, Org: "cmcc"}, tocsin.Query{})
	wantCode(t, err, tocsin.CodeForbidden)
}

func ids(bs []*tocsin.Broadcast) []string {
	var out []string
	for _, b := range bs {
		out = append(out, b.ID)
	}
	return out
}

func TestListPagination(t *testing.T) {
	e := mustService(t, filedAt)
	ctx := context.Background()
	var gd, everyone []string
	for i := range 7 {
		org, scope := "gd-met", "440100"
		if i%3 == 1 {
			org, scope = "gx-health", "450100"
		}
		b := e.mustFile(t, org, ordinary(fmt.Sprint("b", i), scope))
		everyone = append([]string{b.ID}, everyone...)
		if org == "gd-met" {
			gd = append([]string{b.ID}, gd...)
		}
	}
	tests := []struct {
		org   string
		limit int
		want  []string
	}{
		{"miit", 1, everyone},
		{"miit", 2, everyone},
		{"miit", 3, everyone},
		{"miit", 7, everyone},
		{"miit", 100, everyone},
		{"gd-cab", 2, gd},
		{"gd-met", 1, gd},
		{"gd-met", 4, gd},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%s limit %d", tt.org, tt.limit), func(t *testing.T) {
			var got []string
			cursor := ""
			for pages := 0; ; pages++ {
				if pages > len(tt.want) {
					t.Fatalf("pagination does not end: %v", got)
				}
				page, err := e.svc.List(ctx, actor(t, tt.org), tocsin.Query{Limit: tt.limit, Cursor: cursor})
				if err != nil {
					t.Fatal(err)
				}
				if len(page.Broadcasts) > tt.limit {
					t.Fatalf("page of %d over limit %d", len(page.Broadcasts), tt.limit)
				}
				got = append(got, ids(page.Broadcasts)...)
				if cursor = page.NextCursor; cursor == "" {
					break
				}
				if len(page.Broadcasts) != tt.limit {
					t.Errorf("short page (%d) with a next cursor", len(page.Broadcasts))
				}
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("walked %v, want %v", got, tt.want)
			}
		})
	}
	t.Run("malformed cursor", func(t *testing.T) {
		_, err := e.svc.List(ctx, actor(t, "miit"), tocsin.Query{Cursor: "garbage"})
		wantCode(t, err, tocsin.CodeInvalid)
	})
	t.Run("limit capped", func(t *testing.T) {
		page, err := e.svc.List(ctx, actor(t, "miit"), tocsin.Query{Limit: 1 << 30})
		if err != nil || len(page.Broadcasts) != 7 {
			t.Errorf("huge limit: %d, %v", len(page.Broadcasts), err)
		}
	})
}

func TestPostHoc(t *testing.T) {
	e := mustService(t, filedAt)
	ctx := context.Background()
	b := e.mustFile(t, "gd-met", emergency("Typhoon", "440100"))
	ordinaryB := e.mustFile(t, "gd-met", ordinary("ordinary", "440100"))
	gdMet, gdCab := actor(t, "gd-met"), actor(t, "gd-cab")

	if b.PostHoc.Overdue(sh(2026, time.September, 24, 23, 59)) {
		t.Error("overdue on its due date")
	}
	if !b.PostHoc.Overdue(sh(2026, time.September, 25, 0, 0)) {
		t.Error("not overdue the day after its due date")
	}

	// Review before any report.
	_, err := e.svc.ReviewPostHoc(ctx, gdCab, b.ID, tocsin.PostHocAccepted, "")
	wantCode(t, err, tocsin.CodeConflict)

	fileRefusals := []struct {
		name   string
		org    string
		id     string
		report string
		code   tocsin.Code
	}{
		{"other department", "gx-health", b.ID, "report", tocsin.CodeForbidden},
		{"regulator", "gd-cab", b.ID, "report", tocsin.CodeForbidden},
		{"blank report", "gd-met", b.ID, "  ", tocsin.CodeValidation},
		{"ordinary broadcast", "gd-met", ordinaryB.ID, "report", tocsin.CodeConflict},
	}
	for _, tt := range fileRefusals {
		t.Run("file: "+tt.name, func(t *testing.T) {
			_, err := e.svc.FilePostHoc(ctx, actor(t, tt.org), tt.id, tt.report)
			wantCode(t, err, tt.code)
		})
	}

	e.clock.Set(sh(2026, time.September, 21, 9, 0))
	got, err := e.svc.FilePostHoc(ctx, gdMet, b.ID, "Typhoon Haikui made landfall at 15:00; warning issued at 10:00.")
	if err != nil {
		t.Fatalf("file post-hoc: %v", err)
	}
	if p := got.PostHoc; p.Status != tocsin.PostHocFiled || p.FiledBy != "duty-officer" || p.FiledAt == nil || p.Report == "" {
		t.Errorf("after filing: %+v", p)
	}
	if got.PostHoc.Overdue(sh(2026, time.December, 1, 0, 0)) {
		t.Error("a filed report is overdue")
	}

	reviewRefusals := []struct {
		name    string
		org     string
		verdict tocsin.PostHocVerdict
		note    string
		code    tocsin.Code
	}{
		{"not emergency without note", "gd-cab", tocsin.PostHocNotEmergency, "", tocsin.CodeReasonRequired},
		{"not emergency with blank note", "gd-cab", tocsin.PostHocNotEmergency, "   ", tocsin.CodeReasonRequired},
		{"unknown verdict", "gd-cab", "maybe", "", tocsin.CodeValidation},
		{"other province", "gx-cab", tocsin.PostHocAccepted, "", tocsin.CodeForbidden},
		{"department", "gd-met", tocsin.PostHocAccepted, "", tocsin.CodeForbidden},
	}
	for _, tt := range reviewRefusals {
		t.Run("review: "+tt.name, func(t *testing.T) {
			_, err := e.svc.ReviewPostHoc(ctx, actor(t, tt.org), b.ID, tt.verdict, tt.note)
			wantCode(t, err, tt.code)
		})
	}

	got, err = e.svc.ReviewPostHoc(ctx, gdCab, b.ID, tocsin.PostHocNotEmergency, " routine forecast, not an early warning ")
	if err != nil {
		t.Fatalf("review: %v", err)
	}
	p := got.PostHoc
	if p.Status != tocsin.PostHocReviewed || p.Verdict != tocsin.PostHocNotEmergency || p.Note != "routine forecast, not an early warning" || p.ReviewedBy != "gd-cab" || p.ReviewedAt == nil {
		t.Errorf("after review: %+v", p)
	}
	// The flag stays on the department's record.
	seen, err := e.svc.Get(ctx, gdMet, b.ID)
	if err != nil || seen.PostHoc.Verdict != tocsin.PostHocNotEmergency {
		t.Errorf("department sees %+v, %v", seen.PostHoc, err)
	}
	_, err = e.svc.FilePostHoc(ctx, gdMet, b.ID, "amended")
	wantCode(t, err, tocsin.CodeConflict)
	_, err = e.svc.ReviewPostHoc(ctx, gdCab, b.ID, tocsin.PostHocAccepted, "")
	wantCode(t, err, tocsin.CodeConflict)
}

func TestCalendarMissing(t *testing.T) {
	// 2026-12-28 is a Monday: the 10th working day after it is in 2027,
	// for which no calendar is loaded.
	now := sh(2026, time.December, 28, 10, 0)
	e := mustService(t, now)
	ctx := context.Background()

	f := ordinary("New Year", "440100")
	f.SendAt = ptr(sh(2027, time.January, 20, 9, 0))
	_, _, err := e.svc.File(ctx, actor(t, "gd-met"), f, "")
	wantCode(t, err, tocsin.CodeCalendarMissing)
	if got := tocsin.ErrorDetails(err)["year"]; got != 2027 {
		t.Errorf("details year = %v, want 2027", got)
	}
	if msg := tocsin.ErrorMessage(err); !strings.Contains(msg, "2027") {
		t.Errorf("message %q does not name 2027", msg)
	}

	_, err = e.svc.EarliestSendDate(now)
	wantCode(t, err, tocsin.CodeCalendarMissing)
	if d, err := e.svc.EarliestSendDate(sh(2026, time.December, 10, 12, 0)); err != nil || d.Format(tocsin.DateLayout) != "2026-12-24" {
		t.Errorf("earliest for 2026-12-10 = %v, %v", d, err)
	}

	// An emergency never waits on a calendar; its post-hoc due date stays
	// open rather than guessed.
	b := e.mustFile(t, "gd-met", emergency("Cold wave", "440100"))
	if b.Status != tocsin.StatusDispatching || b.PostHoc == nil || b.PostHoc.Status != tocsin.PostHocDue || b.PostHoc.DueDate != "" {
		t.Errorf("emergency at year end: %q %+v", b.Status, b.PostHoc)
	}
	if b.PostHoc.Overdue(sh(2027, time.June, 1, 0, 0)) {
		t.Error("a report without a due date is overdue")
	}
}

func TestGetUnknown(t *testing.T) {
	e := mustService(t, filedAt)
	for _, id := range []string{"BC000042", "nope", ""} {
		_, err := e.svc.Get(context.Background(), actor(t, "miit"), id)
		wantCode(t, err, tocsin.CodeNotFound)
	}
}

func TestDirectoryValidation(t *testing.T) {
	e := mustService(t, filedAt)
	ctx := context.Background()
	orgs := []struct {
		name string
		org  tocsin.Organisation
		code tocsin.Code
	}{
		{"bad id", tocsin.Organisation{ID: "Bad ID", Name: "x", Role: tocsin.RoleDepartment, Level: tocsin.LevelNational, Jurisdiction: tocsin.National, SenderCode: "123"}, tocsin.CodeValidation},
		{"department without sender code", tocsin.Organisation{ID: "nosend", Name: "x", Role: tocsin.RoleDepartment, Level: tocsin.LevelNational, Jurisdiction: tocsin.National}, tocsin.CodeValidation},
		{"provincial with prefecture jurisdiction", tocsin.Organisation{ID: "pp", Name: "x", Role: tocsin.RoleRegulator, Level: tocsin.LevelProvincial, Jurisdiction: "440100"}, tocsin.CodeValidation},
		{"national with region", tocsin.Organisation{ID: "nn", Name: "x", Role: tocsin.RoleRegulator, Level: tocsin.LevelNational, Jurisdiction: "440000"}, tocsin.CodeValidation},
		{"unknown jurisdiction", tocsin.Organisation{ID: "uu", Name: "x", Role: tocsin.RoleRegulator, Level: tocsin.LevelProvincial, Jurisdiction: "990000"}, tocsin.CodeUnknownRegion},
	}
	for _, tt := range orgs {
		t.Run(tt.name, func(t *testing.T) {
			wantCode(t, e.svc.PutOrganisation(ctx, tt.org, nil), tt.code)
		})
	}
	wantCode(t, e.svc.PutProvider(ctx, tocsin.Provider{ID: "xx", Name: "x"}), tocsin.CodeValidation)
	wantCode(t, e.svc.PutProvider(ctx, tocsin.Provider{ID: "xx", Name: "x", Regions: []string{"123"}}), tocsin.CodeUnknownRegion)

	// Replacing a provider keeps its registration time and credentials.
	var before *tocsin.Provider
	if err := e.store.Update(ctx, func(tx tocsin.Tx) error {
		p, err := tx.Provider("cucc")
		if err != nil {
			return err
		}
		p.NATSUser, p.NATSPasswordHash = "cucc", "hash"
		before = p
		return tx.PutProvider(p)
	}); err != nil {
		t.Fatal(err)
	}
	e.clock.Set(filedAt.Add(time.Hour))
	if err := e.svc.PutProvider(ctx, tocsin.Provider{ID: "cucc", Name: "China Unicom", Regions: []string{"440000", "450000"}, CreatedAt: filedAt.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	var after *tocsin.Provider
	_ = e.store.View(ctx, func(tx tocsin.ReadTx) error {
		var err error
		after, err = tx.Provider("cucc")
		return err
	})
	if !after.CreatedAt.Equal(before.CreatedAt) || after.NATSUser != "cucc" || after.NATSPasswordHash != "hash" || len(after.Regions) != 2 {
		t.Errorf("replaced provider = %+v", after)
	}
}

// rerunStore is the real store, running every Update's fn twice: once in a
// transaction it rolls back, then for real. ports.go allows this (a group
// commit redoes a batch without a member that failed), so the Service must
// give the same results as with a single run.
type rerunStore struct{ *boltstore.DB }

var errRollback = errors.New("rolled back on purpose")

func (s rerunStore) Update(ctx context.Context, fn func(tocsin.Tx) error) error {
	err := s.DB.Update(ctx, func(tx tocsin.Tx) error {
		if err := fn(tx); err != nil {
			return err
		}
		return errRollback
	})
	if !errors.Is(err, errRollback) {
		return err
	}
	return s.DB.Update(ctx, fn)
}

func TestServiceToleratesRerunUpdates(t *testing.T) {
	e := mustService(t, filedAt)
	e.svc.Store = rerunStore{e.store}
	ctx := context.Background()

	em, replayed, err := e.svc.File(ctx, actor(t, "gd-met"), emergency("Typhoon", "440100"), "k")
	if err != nil || replayed || em.Status != tocsin.StatusDispatching || len(em.Providers) != 2 {
		t.Fatalf("emergency: %+v replayed=%v err=%v", em, replayed, err)
	}
	if len(e.outbox(t)) != 2 {
		t.Errorf("outbox has %d messages, want 2", len(e.outbox(t)))
	}
	if again, replayed, err := e.svc.File(ctx, actor(t, "gd-met"), emergency("Typhoon", "440100"), "k"); err != nil || !replayed || again.ID != em.ID {
		t.Errorf("replay: %v replayed=%v err=%v", again, replayed, err)
	}

	a := e.mustFile(t, "gd-met", ordinary("a", "440100"))
	b := e.mustFile(t, "gd-met", ordinary("b", "440100"))
	e.mustApprove(t, "gd-cab", a.ID)
	e.mustApprove(t, "gd-cab", b.ID)
	e.clock.Set(onTime)
	if n, err := e.svc.ReleaseDue(ctx); err != nil || n != 2 {
		t.Errorf("ReleaseDue = %d, %v; want 2", n, err)
	}
	if n, err := e.svc.ReleaseDue(ctx); err != nil || n != 0 {
		t.Errorf("second ReleaseDue = %d, %v; want 0", n, err)
	}
	if got := len(e.outbox(t)); got != 6 {
		t.Errorf("outbox has %d messages, want 6", got)
	}
	got, err := e.svc.Cancel(ctx, actor(t, "gd-cab"), a.ID, "stop")
	if err != nil || got.Status != tocsin.StatusCancelled || len(e.outbox(t)) != 8 {
		t.Errorf("cancel: %v %v, outbox %d", got, err, len(e.outbox(t)))
	}
	if h := e.get(t, a.ID).History; len(h) != 4 {
		t.Errorf("history has %d entries, want filed, approved, released, cancelled: %+v", len(h), h)
	}
}

func TestFlagLate(t *testing.T) {
	e := mustService(t, filedAt)
	ctx := context.Background()
	const deadline = time.Minute
	em := e.mustFile(t, "gd-met", emergency("Typhoon", "440100")) // cmcc and cucc
	e.mustFile(t, "gx-health", emergency("Outbreak", "450100"))   // cmcc and ctcc
	ordinaryB := e.mustFile(t, "gd-met", ordinary("not an emergency", "440100"))
	e.clock.Set(onTime)
	e.mustApprove(t, "gd-cab", ordinaryB.ID) // released at once, but not an emergency

	e.clock.Set(filedAt.Add(deadline)) // not yet over the deadline
	if n, err := e.svc.FlagLate(ctx, deadline); err != nil || n != 0 {
		t.Fatalf("FlagLate at the deadline = %d, %v; want 0", n, err)
	}
	if err := e.svc.ApplyReceipt(ctx, "cucc", tocsin.Receipt{BroadcastID: em.ID, Status: string(tocsin.DeliveryReceived)}); err != nil {
		t.Fatal(err)
	}

	steps := []struct {
		name string
		at   time.Time
		want int
	}{
		{"first pass flags and counts all three", filedAt.Add(deadline + time.Second), 3},
		{"second pass counts the same three", filedAt.Add(deadline + time.Minute), 3},
	}
	for _, s := range steps {
		e.clock.Set(s.at)
		if n, err := e.svc.FlagLate(ctx, deadline); err != nil || n != s.want {
			t.Fatalf("%s: FlagLate = %d, %v; want %d", s.name, n, err, s.want)
		}
	}
	b := e.get(t, em.ID)
	for _, p := range b.Providers {
		if want := p.Provider == "cmcc"; p.Late != want {
			t.Errorf("%s late = %v, want %v", p.Provider, p.Late, want)
		}
	}
	lateEntries := 0
	for _, h := range b.History {
		if h.Action == "late" {
			lateEntries++
		}
	}
	if lateEntries != 1 {
		t.Errorf("%d late history entries, want 1 (flagged once)", lateEntries)
	}
	if err := e.svc.ApplyReceipt(ctx, "cmcc", tocsin.Receipt{BroadcastID: em.ID, Status: string(tocsin.DeliveryReceived)}); err != nil {
		t.Fatal(err)
	}
	if b := e.get(t, em.ID); b.Providers[0].Late {
		t.Error("a received dispatch is still late")
	}
	if n, err := e.svc.FlagLate(ctx, deadline); err != nil || n != 2 {
		t.Errorf("after cmcc received one: FlagLate = %d, %v; want 2", n, err)
	}
}

func TestListPostHocFilters(t *testing.T) {
	e := mustService(t, filedAt)
	ctx := context.Background()
	due := e.mustFile(t, "gd-met", emergency("Typhoon", "440100"))
	filed := e.mustFile(t, "gd-met", emergency("Flood", "440100"))
	e.mustFile(t, "gd-met", ordinary("ordinary", "440100"))
	if _, err := e.svc.FilePostHoc(ctx, actor(t, "gd-met"), filed.ID, "Rain gauges passed 250 mm."); err != nil {
		t.Fatal(err)
	}
	list := func(f tocsin.PostHocFilter) []string {
		t.Helper()
		p, err := e.svc.List(ctx, actor(t, "gd-cab"), tocsin.Query{PostHoc: f})
		if err != nil {
			t.Fatal(err)
		}
		return ids(p.Broadcasts)
	}
	if got := list(tocsin.PostHocFilterDue); !slices.Equal(got, []string{due.ID}) {
		t.Errorf("report_due = %v, want [%s]", got, due.ID)
	}
	if got := list(tocsin.PostHocFilterFiled); !slices.Equal(got, []string{filed.ID}) {
		t.Errorf("report_filed = %v, want [%s]", got, filed.ID)
	}
	if got := list(tocsin.PostHocFilterOverdue); len(got) != 0 {
		t.Errorf("overdue on the day of release = %v", got)
	}
	e.clock.Set(sh(2026, time.October, 30, 9, 0)) // weeks past any due date
	if got := list(tocsin.PostHocFilterOverdue); !slices.Equal(got, []string{due.ID}) {
		t.Errorf("overdue = %v, want [%s]", got, due.ID)
	}
}

func TestFinalReceiptIsNotOverwritten(t *testing.T) {
	e := mustService(t, filedAt)
	ctx := context.Background()
	b := e.mustFile(t, "gd-met", emergency("Typhoon", "440100"))
	steps := []tocsin.Receipt{
		{BroadcastID: b.ID, Status: string(tocsin.DeliveryDelivered), Recipients: 10, Sent: 10, Delivered: 10},
		{BroadcastID: b.ID, Status: string(tocsin.DeliveryFailed), Detail: "late, reordered"},
	}
	for _, r := range steps {
		if err := e.svc.ApplyReceipt(ctx, "cmcc", r); err != nil {
			t.Fatal(err)
		}
	}
	for _, p := range e.get(t, b.ID).Providers {
		if p.Provider == "cmcc" && (p.Status != tocsin.DeliveryDelivered || p.Delivered != 10) {
			t.Fatalf("cmcc progress = %+v, want delivered 10", p)
		}
	}
}

func TestFileUpdateReferencesTheOriginal(t *testing.T) {
	e := mustService(t, filedAt)
	ctx := context.Background()
	original := e.mustFile(t, "gd-met", emergency("Typhoon", "440100"))
	before := len(e.outbox(t))

	correction := emergency("Typhoon, corrected", "440100")
	b, _, err := e.svc.FileUpdate(ctx, actor(t, "gd-met"), original.ID, correction, "")
	if err != nil {
		t.Fatal(err)
	}
	if b.References != original.ID || b.Status != tocsin.StatusDispatching {
		t.Fatalf("update = %s references %q, want dispatching referencing %s", b.Status, b.References, original.ID)
	}
	msgs := e.outbox(t)[before:]
	if len(msgs) != 2 {
		t.Fatalf("update enqueued %d dispatches, want 2", len(msgs))
	}
	for _, m := range msgs {
		if m.Dispatch.Type != tocsin.DispatchUpdate || m.Dispatch.References != original.ID || m.Dispatch.BroadcastID != b.ID {
			t.Errorf("dispatch = %+v, want an update of %s", m.Dispatch, original.ID)
		}
		if m.Seq <= e.outbox(t)[0].Seq {
			t.Errorf("update queued before its original")
		}
	}

	_, _, err = e.svc.FileUpdate(ctx, actor(t, "gx-health"), original.ID, correction, "")
	wantCode(t, err, tocsin.CodeForbidden)
	pending := e.mustFile(t, "gd-met", ordinary("pending", "440100"))
	_, _, err = e.svc.FileUpdate(ctx, actor(t, "gd-met"), pending.ID, ordinary("fix", "440100"), "")
	wantCode(t, err, tocsin.CodeConflict)
}

func TestTimelineFromTheAuditTrail(t *testing.T) {
	e := mustService(t, filedAt)
	ctx := context.Background()
	b := e.mustFile(t, "gd-met", emergency("Typhoon", "440100"))
	for _, p := range []string{"cmcc", "cucc"} {
		err := e.svc.ApplyReceipt(ctx, p, tocsin.Receipt{BroadcastID: b.ID, Status: string(tocsin.DeliveryDelivered), Recipients: 1, Sent: 1, Delivered: 1})
		if err != nil {
			t.Fatal(err)
		}
	}
	_, _, err := e.svc.File(ctx, actor(t, "gz-em"), emergency("refused", "440100"), "")
	wantCode(t, err, tocsin.CodeForbidden)

	entries, err := e.svc.Timeline(ctx, actor(t, "gd-cab"), b.ID)
	if err != nil {
		t.Fatal(err)
	}
	var actions []string
	for i, en := range entries {
		actions = append(actions, en.Action)
		if en.Hash == "" || (i > 0 && en.Prev == "") {
			t.Errorf("entry %d is not chained: %+v", i, en)
		}
		if en.StateHash == "" {
			t.Errorf("entry %s carries no state hash", en.Action)
		}
	}
	want := []string{"filed", "released", tocsin.AuditReceipt, tocsin.AuditReceipt, "completed"}
	if !slices.Equal(actions, want) {
		t.Fatalf("timeline = %v, want %v", actions, want)
	}
	if _, err := e.svc.Timeline(ctx, actor(t, "gx-health"), b.ID); err == nil {
		t.Error("another department read the timeline")
	}
	var refused []tocsin.AuditEntry
	if err := e.store.View(ctx, func(tx tocsin.ReadTx) error {
		var err error
		refused, err = tx.Timeline("gz-em")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if last := refused[len(refused)-1]; last.Action != tocsin.AuditRefused || !strings.Contains(last.Note, "Article 17") {
		t.Fatalf("refusal not in the trail: %+v", refused)
	}
}

// isMsgID reports whether id is base followed by a 64-bit hex nonce.
func isMsgID(id, base string) bool {
	nonce, ok := strings.CutPrefix(id, base+".")
	if !ok || len(nonce) != 16 {
		return false
	}
	_, err := hex.DecodeString(nonce)
	return err == nil
}
