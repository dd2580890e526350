package tocsin_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/tocsin-dev/tocsin/internal/tocsin"
)

// What clerks and regulators meet (issue 11): emergencies are immediate,
// send windows close, corrections hold their original, post-hoc reports
// keep every version, stopping needs a reason, and the domain says what
// each actor may do.

func TestEmergencyIsImmediate(t *testing.T) {
	for _, tt := range []struct {
		name   string
		sendAt *time.Time
		code   tocsin.Code
	}{
		{"omitted", nil, ""},
		{"now", ptr(filedAt), ""},
		{"within the clock skew", ptr(filedAt.Add(tocsin.SendAtSlack)), ""},
		{"just past the skew", ptr(filedAt.Add(tocsin.SendAtSlack + time.Second)), tocsin.CodeNotImmediate},
		{"tomorrow", ptr(filedAt.Add(24 * time.Hour)), tocsin.CodeNotImmediate},
		{"days ahead", ptr(onTime), tocsin.CodeNotImmediate},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e := mustService(t, filedAt)
			f := emergency("Typhoon", "440100")
			f.SendAt = tt.sendAt
			b, _, err := e.svc.File(context.Background(), actor(t, "gd-met"), f, "")
			if tt.code != "" {
				wantCode(t, err, tt.code)
				if field := tocsin.ErrorDetails(err)["field"]; field != "send_at" {
					t.Errorf("field = %v, want send_at", field)
				}
				if n := len(e.outbox(t)); n != 0 {
					t.Errorf("a refused emergency queued %d dispatches", n)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			// It goes out now, and says so: never a send time ahead of
			// a broadcast already dispatching.
			if b.Status != tocsin.StatusDispatching || !b.SendAt.Equal(filedAt) {
				t.Errorf("status, send_at = %s, %v; want dispatching at %v", b.Status, b.SendAt, filedAt)
			}
		})
	}
	// The rule names the field a CAP sender wrote.
	err := tocsin.CheckImmediate("onset", filedAt.Add(time.Hour), filedAt)
	wantCode(t, err, tocsin.CodeNotImmediate)
	if tocsin.ErrorDetails(err)["field"] != "onset" {
		t.Errorf("details = %v", tocsin.ErrorDetails(err))
	}
}

func TestSendUntilExpires(t *testing.T) {
	e := mustService(t, filedAt)
	ctx := context.Background()
	f := emergency("Typhoon", "440100")
	f.SendUntil = ptr(filedAt.Add(2 * time.Hour))
	em := e.mustFile(t, "gd-met", f)
	open := emergency("Open-ended", "440100")
	openB := e.mustFile(t, "gd-met", open)
	// cmcc finished before the window closed; cucc is still sending.
	if err := e.svc.ApplyReceipt(ctx, "cmcc", tocsin.Receipt{BroadcastID: em.ID, Status: "delivered", Recipients: 5, Sent: 5, Delivered: 5}); err != nil {
		t.Fatal(err)
	}
	if err := e.svc.ApplyReceipt(ctx, "cucc", tocsin.Receipt{BroadcastID: em.ID, Status: "sending", Recipients: 5, Sent: 2}); err != nil {
		t.Fatal(err)
	}
	// An approved broadcast whose whole window passed while nothing ran.
	o := ordinary("Window", "440100")
	o.SendUntil = ptr(onTime.Add(time.Hour))
	late := e.mustFile(t, "gd-met", o)
	e.mustApprove(t, "gd-cab", late.ID)

	if n, err := e.svc.ExpireDue(ctx); err != nil || n != 0 {
		t.Fatalf("before send_until: expired %d, %v", n, err)
	}
	before := len(e.outbox(t))
	e.clock.Set(filedAt.Add(2 * time.Hour))
	if n, err := e.svc.ExpireDue(ctx); err != nil || n != 1 {
		t.Fatalf("at send_until: expired %d, %v; want 1", n, err)
	}
	got := e.get(t, em.ID)
	if got.Status != tocsin.StatusExpired || !got.Status.Final() {
		t.Fatalf("status = %s, want expired", got.Status)
	}
	stops := e.outbox(t)[before:]
	if len(stops) != 1 || stops[0].Provider != "cucc" || stops[0].Dispatch.Type != tocsin.DispatchStop || stops[0].Dispatch.References != em.ID {
		t.Fatalf("stops = %+v, want one stop to cucc referencing %s", stops, em.ID)
	}
	for _, p := range got.Providers {
		want := map[string]tocsin.DeliveryStatus{"cmcc": tocsin.DeliveryDelivered, "cucc": tocsin.DeliveryStopped}[p.Provider]
		if p.Status != want {
			t.Errorf("provider %s is %s, want %s", p.Provider, p.Status, want)
		}
	}
	last := got.History[len(got.History)-1]
	if n, _ := last.Int(tocsin.ParamStopped); last.Action != "expired" || last.From != tocsin.StatusDispatching || n != 1 {
		t.Errorf("last event = %+v, want expired from dispatching with 1 stopped", last)
	}
	if b := e.get(t, openB.ID); b.Status != tocsin.StatusDispatching {
		t.Errorf("a broadcast without send_until is %s", b.Status)
	}
	// Once expired, nothing more happens to it.
	if n, err := e.svc.ExpireDue(ctx); err != nil || n != 0 {
		t.Errorf("again: expired %d, %v", n, err)
	}

	// The approved one: its window closes unreleased; it is never
	// released, and expires without a dispatch.
	e.clock.Set(onTime.Add(time.Hour))
	before = len(e.outbox(t))
	if n, err := e.svc.ReleaseDue(ctx); err != nil || n != 0 {
		t.Errorf("released %d (%v) after its window closed", n, err)
	}
	if n, err := e.svc.ExpireDue(ctx); err != nil || n != 1 {
		t.Fatalf("expired %d, %v; want the approved one", n, err)
	}
	if b := e.get(t, late.ID); b.Status != tocsin.StatusExpired || b.ReleasedAt != nil {
		t.Errorf("approved past its window: %s released %v", b.Status, b.ReleasedAt)
	}
	if n := len(e.outbox(t)) - before; n != 0 {
		t.Errorf("expiring an unreleased broadcast queued %d messages", n)
	}
}

func TestCorrectionSupersedesUnreleasedOriginal(t *testing.T) {
	e := mustService(t, filedAt)
	ctx := context.Background()
	gdMet := actor(t, "gd-met")
	original := e.mustFile(t, "gd-met", ordinary("Holiday", "440100"))
	e.mustApprove(t, "gd-cab", original.ID)

	fix := ordinary("Holiday, corrected", "440100")
	fix.Content = "【广东省气象局】国庆假期出行请关注天气预报（更正）。"
	fix.SendAt = ptr(onTime.Add(time.Hour)) // after the original's send time
	correction, _, err := e.svc.FileUpdate(ctx, gdMet, original.ID, fix, "")
	if err != nil {
		t.Fatal(err)
	}
	if correction.References != original.ID || correction.Status != tocsin.StatusPendingReview {
		t.Fatalf("correction = %s references %q", correction.Status, correction.References)
	}
	held := e.get(t, original.ID)
	if !slices.Equal(held.CorrectedBy, []string{correction.ID}) || held.HeldBy != correction.ID || held.Status != tocsin.StatusApproved {
		t.Fatalf("original: corrected_by %v, held_by %q, %s", held.CorrectedBy, held.HeldBy, held.Status)
	}
	// The original's send time comes before the correction is reviewed:
	// the uncorrected text does not go out.
	e.clock.Set(onTime.Add(time.Minute))
	if n, err := e.svc.ReleaseDue(ctx); err != nil || n != 0 {
		t.Fatalf("released %d (%v) while its correction was pending", n, err)
	}
	if next, ok, _ := e.svc.NextRelease(ctx); ok {
		t.Errorf("a held original is still scheduled (next %v)", next)
	}
	if n := len(e.outbox(t)); n != 0 {
		t.Fatalf("%d dispatches queued for a held original", n)
	}

	e.mustApprove(t, "gd-cab", correction.ID)
	got := e.get(t, original.ID)
	if got.Status != tocsin.StatusWithdrawn || got.Closure == nil || got.HeldBy != "" || got.ReleasedAt != nil {
		t.Fatalf("original after the correction's approval: %s %+v held %q", got.Status, got.Closure, got.HeldBy)
	}
	last := got.History[len(got.History)-1]
	if last.Action != "superseded" || last.String(tocsin.ParamCorrection) != correction.ID {
		t.Errorf("last event = %+v", last)
	}
	timeline, err := e.svc.Timeline(ctx, actor(t, "gd-cab"), original.ID)
	if err != nil || !slices.ContainsFunc(timeline, func(a tocsin.AuditEntry) bool {
		return a.Action == "superseded" && a.After == string(tocsin.StatusWithdrawn)
	}) {
		t.Errorf("the withdrawal is not audited: %v %+v", err, timeline)
	}
	// The correction itself goes out at its time, as an update.
	e.clock.Set(onTime.Add(time.Hour))
	if n, err := e.svc.ReleaseDue(ctx); err != nil || n != 1 {
		t.Fatalf("released %d, %v; want the correction", n, err)
	}
	for _, m := range e.outbox(t) {
		if m.Dispatch.BroadcastID != correction.ID || m.Dispatch.Type != tocsin.DispatchUpdate {
			t.Errorf("dispatch %+v; only the correction goes out", m.Dispatch)
		}
	}
}

func TestRejectedCorrectionKeepsOriginalHeld(t *testing.T) {
	e := mustService(t, filedAt)
	ctx := context.Background()
	original := e.mustFile(t, "gd-met", ordinary("Holiday", "440100"))
	e.mustApprove(t, "gd-cab", original.ID)
	correction, _, err := e.svc.FileUpdate(ctx, actor(t, "gd-met"), original.ID, ordinary("Fix", "440100"), "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.Reject(ctx, actor(t, "gd-cab"), correction.ID, tocsin.ReasonContent, "unclear"); err != nil {
		t.Fatal(err)
	}
	e.clock.Set(onTime.Add(time.Minute))
	if n, err := e.svc.ReleaseDue(ctx); err != nil || n != 0 {
		t.Fatalf("released %d (%v): a filed correction keeps the original from going out", n, err)
	}
	// The department ends it, with a reason.
	if _, err := e.svc.Withdraw(ctx, actor(t, "gd-met"), original.ID, "superseded by a new filing"); err != nil {
		t.Fatal(err)
	}
}

func TestEmergencyCorrectionSupersedesAtOnce(t *testing.T) {
	e := mustService(t, filedAt)
	ctx := context.Background()
	original := e.mustFile(t, "gd-met", ordinary("Holiday", "440100"))
	e.mustApprove(t, "gd-cab", original.ID)
	correction, _, err := e.svc.FileUpdate(ctx, actor(t, "gd-met"), original.ID, emergency("Now a warning", "440100"), "")
	if err != nil || correction.Status != tocsin.StatusDispatching {
		t.Fatalf("emergency correction: %v, %v", correction, err)
	}
	if got := e.get(t, original.ID); got.Status != tocsin.StatusWithdrawn || !slices.Equal(got.CorrectedBy, []string{correction.ID}) {
		t.Errorf("original %s, corrected_by %v", got.Status, got.CorrectedBy)
	}
}

func TestPostHocAmendmentsKeepEveryVersion(t *testing.T) {
	e := mustService(t, filedAt)
	ctx := context.Background()
	b := e.mustFile(t, "gd-met", emergency("Typhoon", "440100"))
	if _, err := e.svc.FilePostHoc(ctx, actor(t, "gd-met"), b.ID, "first report"); err != nil {
		t.Fatal(err)
	}
	e.clock.Set(filedAt.Add(time.Hour))
	got, err := e.svc.FilePostHoc(ctx, actor(t, "gd-met"), b.ID, "second report, with rain figures")
	if err != nil {
		t.Fatal(err)
	}
	p := got.PostHoc
	if len(p.Versions) != 2 || p.Versions[0].Report != "first report" || !p.Versions[0].FiledAt.Equal(filedAt) ||
		p.Versions[1].Report != "second report, with rain figures" || p.Report != p.Versions[1].Report {
		t.Fatalf("versions = %+v, report %q", p.Versions, p.Report)
	}
	last := got.History[len(got.History)-1]
	if n, _ := last.Int(tocsin.ParamVersion); last.Action != "post_hoc_amended" || n != 2 {
		t.Errorf("last event = %+v", last)
	}
}

func TestCancelNeedsReason(t *testing.T) {
	e := mustService(t, filedAt)
	ctx := context.Background()
	b := e.mustFile(t, "gd-met", emergency("Typhoon", "440100"))
	for _, blank := range []string{"", " \t\n"} {
		_, err := e.svc.Cancel(ctx, actor(t, "gd-cab"), b.ID, blank)
		wantCode(t, err, tocsin.CodeReasonRequired)
	}
	if got := e.get(t, b.ID); got.Status != tocsin.StatusDispatching || len(e.outbox(t)) != 2 {
		t.Errorf("a refused cancellation changed %s or queued stops", got.Status)
	}
}

func TestActions(t *testing.T) {
	e := mustService(t, filedAt)
	ctx := context.Background()
	pending := e.mustFile(t, "gd-met", ordinary("pending", "440100"))
	approved := e.mustApprove(t, "gd-cab", e.mustFile(t, "gd-met", ordinary("approved", "440100")).ID)
	em := e.mustFile(t, "gd-met", emergency("em", "440100"))
	reported := e.mustFile(t, "gd-met", emergency("reported", "440100"))
	if _, err := e.svc.FilePostHoc(ctx, actor(t, "gd-met"), reported.ID, "report"); err != nil {
		t.Fatal(err)
	}
	reported = e.get(t, reported.ID)
	A := func(as ...tocsin.Action) tocsin.ActionSet { return append(tocsin.ActionSet{}, as...) }
	for _, tt := range []struct {
		name string
		org  string
		b    *tocsin.Broadcast
		want tocsin.ActionSet
	}{
		{"regulator, pending", "gd-cab", pending, A(tocsin.ActionApprove, tocsin.ActionReject, tocsin.ActionCancel)},
		{"other province, pending", "gx-cab", pending, A()},
		{"MIIT, pending", "miit", pending, A(tocsin.ActionApprove, tocsin.ActionReject, tocsin.ActionCancel)},
		{"department, pending", "gd-met", pending, A(tocsin.ActionWithdraw)},
		{"other department, pending", "gx-health", pending, A()},
		{"department, approved", "gd-met", approved, A(tocsin.ActionWithdraw, tocsin.ActionCorrect)},
		{"regulator, approved", "gd-cab", approved, A(tocsin.ActionCancel)},
		{"department, emergency", "gd-met", em, A(tocsin.ActionCorrect, tocsin.ActionPostHoc)},
		{"regulator, emergency", "gd-cab", em, A(tocsin.ActionCancel, tocsin.ActionResend)},
		{"regulator, reported", "gd-cab", reported, A(tocsin.ActionCancel, tocsin.ActionResend, tocsin.ActionReviewPostHoc)},
		{"department, reported (amend)", "gd-met", reported, A(tocsin.ActionCorrect, tocsin.ActionPostHoc)},
		{"admin", "admin", pending, A()},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := e.svc.Actions(actor(t, tt.org), tt.b); !slices.Equal(got, tt.want) {
				t.Errorf("Actions = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestPublicHeadline(t *testing.T) {
	for _, tt := range []struct {
		name, headline, content, want string
	}{
		{"written", "台风红色预警", "【广东省气象局】台风来了。请留在室内。", "台风红色预警"},
		{"first sentence", "", "【广东省气象局】台风来了。请留在室内。", "台风来了。"},
		{"first line", "", "Typhoon tonight\nStay indoors.", "Typhoon tonight"},
		{"English sentence", "", "Typhoon tonight. Stay indoors.", "Typhoon tonight."},
		{"decimal point", "", "Rain 3.5 mm expected! Stay in.", "Rain 3.5 mm expected!"},
		{"long", "", "一二三四五六七八九十一二三四五六七八九十一二三四五六七八九十一二三四五六七八九十一二三", "一二三四五六七八九十一二三四五六七八九十一二三四五六七八九十一二三四五六七八九…"},
		{"only a signature", "", "【广东省气象局】", "【广东省气象局】"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			b := &tocsin.Broadcast{Title: "internal desk title", Headline: tt.headline, Content: tt.content}
			if got := b.PublicHeadline(); got != tt.want {
				t.Errorf("PublicHeadline = %q, want %q", got, tt.want)
			}
		})
	}
}
