package httpapi_test

import (
	"encoding/csv"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tocsin-dev/tocsin/internal/tocsin"
)

// What clerks and regulators meet over the API (issue 11).

func TestEmergencyNotImmediate(t *testing.T) {
	api := newTestAPI(t)
	for _, tt := range []struct {
		name   string
		sendAt time.Time
		code   tocsin.Code
	}{
		{"within the skew", testNow.Add(3 * time.Minute), ""},
		{"in an hour", testNow.Add(time.Hour), tocsin.CodeNotImmediate},
		{"days ahead", testNow.AddDate(0, 0, 3), tocsin.CodeNotImmediate},
	} {
		t.Run("json "+tt.name, func(t *testing.T) {
			res := api.post(t, "gd-met", broadcasts, with(emergency("440100"), "send_at", tt.sendAt.Format(time.RFC3339)))
			if tt.code == "" {
				if b := wantBroadcast(t, res, http.StatusCreated, tocsin.StatusDispatching); !b.SendAt.Equal(testNow) {
					t.Errorf("send_at = %v, want now (%v)", b.SendAt, testNow)
				}
				return
			}
			e := wantError(t, res, http.StatusUnprocessableEntity, tt.code)
			if msg := e.Message; !strings.Contains(msg, "ordinary") {
				t.Errorf("message %q does not suggest an ordinary filing", msg)
			}
		})
	}
	tomorrow := "2026-09-19T10:00:00+08:00"
	for _, tt := range []struct {
		field string
		doc   string
	}{
		{"sent", strings.Replace(capFiling, "<sent>2026-09-18T09:58:00+08:00</sent>", "<sent>"+tomorrow+"</sent>", 1)},
		{"effective", strings.Replace(capFiling, "<certainty>Likely</certainty>", "<certainty>Likely</certainty><effective>"+tomorrow+"</effective>", 1)},
		{"onset", strings.Replace(capFiling, "<certainty>Likely</certainty>", "<certainty>Likely</certainty><effective>2026-09-18T09:59:00+08:00</effective><onset>"+tomorrow+"</onset>", 1)},
	} {
		t.Run("cap "+tt.field, func(t *testing.T) {
			doc := strings.Replace(tt.doc, "GD-2026-0918-001", "GD-future-"+tt.field, 1)
			res := api.do(t, request{Method: http.MethodPost, Path: broadcasts, Org: "gd-met", Body: doc,
				Header: map[string]string{"Content-Type": capCT}})
			e := wantError(t, res, http.StatusUnprocessableEntity, tocsin.CodeNotImmediate)
			if e.Details["field"] != tt.field {
				t.Errorf("field = %v, want %s", e.Details["field"], tt.field)
			}
		})
	}
}

func TestHeadlineIsPublicTitleIsNot(t *testing.T) {
	api := newTestAPI(t)
	const secret = "内部 DESK-ONLY 第3号"
	withHeadline := with(with(emergency("440100"), "title", secret), "headline", "台风红色预警")
	derived := with(with(emergency("440106"), "title", secret+" b"), "content", "【广东省气象局】暴雨将至。请远离低洼地带。")
	a := api.file(t, "gd-met", withHeadline)
	b := api.file(t, "gd-met", derived)
	if a.Headline != "台风红色预警" || a.PublicHeadline != "台风红色预警" || b.Headline != "" || b.PublicHeadline != "暴雨将至。" {
		t.Errorf("headline, public_headline = %q %q; %q %q", a.Headline, a.PublicHeadline, b.Headline, b.PublicHeadline)
	}
	for _, tt := range []struct {
		b    broadcast
		want string
	}{{a, "台风红色预警"}, {b, "暴雨将至。"}} {
		alert := api.getCAP(t, "", tt.b.ID)
		if len(alert.Info) != 1 || alert.Info[0].Headline != tt.want {
			t.Errorf("CAP headline of %s = %+v, want %q", tt.b.ID, alert.Info, tt.want)
		}
		if res := api.get(t, "", broadcasts+"/"+tt.b.ID+"/cap"); strings.Contains(string(res.Body), "DESK-ONLY") {
			t.Errorf("the public CAP of %s carries the internal title:\n%s", tt.b.ID, res.Body)
		}
	}
	feed := api.get(t, "", "/feeds/alerts.atom")
	if feed.Status != http.StatusOK {
		t.Fatal(feed)
	}
	if strings.Contains(string(feed.Body), "DESK-ONLY") {
		t.Errorf("the Atom feed carries the internal title:\n%s", feed.Body)
	}
	for _, want := range []string{"<title>台风红色预警</title>", "<title>暴雨将至。</title>", "<name>广东省气象局</name>"} {
		if !strings.Contains(string(feed.Body), want) {
			t.Errorf("the feed has no %s:\n%s", want, feed.Body)
		}
	}
}

func TestCorrectionLinksBothWays(t *testing.T) {
	api := newTestAPI(t)
	original := api.file(t, "gd-met", ordinary(onTime, "440100"))
	wantBroadcast(t, api.post(t, "gd-cab", broadcasts+"/"+original.ID+"/approve", nil), http.StatusOK, tocsin.StatusApproved)
	if !slices.Contains(api.getBroadcast(t, "gd-met", original.ID).AllowedActions, tocsin.ActionCorrect) {
		t.Error("the department may not correct its approved broadcast")
	}
	fix := with(ordinary(onTime, "440100"), "content", "【广东省气象局】国庆假期请关注天气预报（更正）。")
	correction := wantBroadcast(t, api.post(t, "gd-met", broadcasts+"/"+original.ID+"/update", fix), http.StatusCreated, tocsin.StatusPendingReview)
	if correction.References != original.ID {
		t.Errorf("references = %q, want %s", correction.References, original.ID)
	}
	held := api.getBroadcast(t, "gd-met", original.ID)
	if !slices.Equal(held.CorrectedBy, []string{correction.ID}) || held.HeldBy != correction.ID {
		t.Errorf("original corrected_by %v held_by %q", held.CorrectedBy, held.HeldBy)
	}
	wantBroadcast(t, api.post(t, "gd-cab", broadcasts+"/"+correction.ID+"/approve", nil), http.StatusOK, tocsin.StatusApproved)
	got := api.getBroadcast(t, "gd-cab", original.ID)
	if got.Status != tocsin.StatusWithdrawn || got.Closure == nil || !strings.Contains(got.Closure.Reason, correction.ID) {
		t.Errorf("original after approval: %s %+v", got.Status, got.Closure)
	}
	if !slices.ContainsFunc(got.Timeline, func(e tocsin.AuditEntry) bool { return e.Action == "superseded" }) {
		t.Errorf("the supersession is not in the audit trail: %+v", got.Timeline)
	}
}

func TestSecondPostHocReportIsKept(t *testing.T) {
	api := newTestAPI(t)
	b := api.file(t, "gd-met", emergency("440100"))
	path := broadcasts + "/" + b.ID + "/post-hoc"
	wantBroadcast(t, api.post(t, "gd-met", path, map[string]any{"report": "first"}), http.StatusOK, tocsin.StatusDispatching)
	got := wantBroadcast(t, api.post(t, "gd-met", path, map[string]any{"report": "second"}), http.StatusOK, tocsin.StatusDispatching)
	p := got.PostHoc
	if p == nil || len(p.Versions) != 2 || p.Versions[0].Report != "first" || p.Versions[1].Report != "second" || p.Report != "second" {
		t.Fatalf("post_hoc = %+v", p)
	}
	if p.Versions[0].FiledBy == "" || p.Versions[0].FiledAt.IsZero() {
		t.Errorf("a version without its author or time: %+v", p.Versions[0])
	}
}

func TestAllowedActions(t *testing.T) {
	api := newTestAPI(t)
	b := api.file(t, "gd-met", ordinary(onTime, "440100"))
	for org, want := range map[string][]tocsin.Action{
		"gd-met":    {tocsin.ActionWithdraw},
		"gd-cab":    {tocsin.ActionApprove, tocsin.ActionReject, tocsin.ActionCancel},
		"gx-health": nil,
	} {
		res := api.get(t, org, broadcasts+"/"+b.ID)
		if org == "gx-health" {
			wantError(t, res, http.StatusForbidden, tocsin.CodeForbidden)
			continue
		}
		if got := decode[broadcast](t, res).AllowedActions; !slices.Equal(got, want) {
			t.Errorf("%s: allowed_actions = %v, want %v", org, got, want)
		}
	}
}

func TestRecordsCarryTheReview(t *testing.T) {
	api := newTestAPI(t)
	b := api.file(t, "gd-met", with(ordinary(onTime, "440100"), "title", "假期提示（内部）"))
	wantBroadcast(t, api.post(t, "gd-cab", broadcasts+"/"+b.ID+"/reject",
		map[string]any{"reason_code": "not_public_welfare", "reason": "商业推广"}), http.StatusOK, tocsin.StatusRejected)
	res := api.get(t, "gd-cab", "/api/v1/records?from=2026-10-01&to=2026-10-31")
	if res.Status != http.StatusOK {
		t.Fatal(res)
	}
	rows, err := csv.NewReader(strings.NewReader(string(res.Body))).ReadAll()
	if err != nil || len(rows) != 2 {
		t.Fatalf("rows %v, %v", rows, err)
	}
	cell := map[string]string{}
	for i, name := range rows[0] {
		cell[name] = rows[1][i]
	}
	for k, want := range map[string]string{
		"broadcast_id": b.ID, "title": "假期提示（内部）", "review_decision": "rejected", "reviewer": "gd-cab",
		"reason_code": "not_public_welfare", "reason": "商业推广", "agency": "广东省气象局",
	} {
		if cell[k] != want {
			t.Errorf("%s = %q, want %q", k, cell[k], want)
		}
	}
}
