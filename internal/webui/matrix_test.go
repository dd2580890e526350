package webui_test

import (
	"net/http"
	"net/url"
	"testing"

	"github.com/tocsin-dev/tocsin/internal/httpapi"
	"github.com/tocsin-dev/tocsin/internal/testkit"
	"github.com/tocsin-dev/tocsin/internal/tocsin"
)

// matrixForm is the web form a matrix row posts (or the page it gets),
// and the status it gets when allowed; false for acts the web has no
// form for.
func matrixForm(row testkit.MatrixRow, id string) (method, path string, form url.Values, okStatus int, ok bool) {
	on := "/broadcasts/" + id + "/"
	switch row.Act {
	case testkit.ActFile:
		f := row.Target.Filing()
		form = url.Values{"title": {f.Title}, "content": {f.Content}, "scope": f.Scope}
		if e := f.Emergency; e != nil {
			form.Set("emergency", "on")
			form.Set("emergency_type", string(e.Type))
			form.Set("event", e.Event)
			form.Set("level", string(e.Level))
			// Past the confirmation step, as the confirm button posts it.
			form.Set("confirm", "1")
		} else {
			form.Set("send_date", f.SendAt.Format(tocsin.DateLayout))
			form.Set("send_time", f.SendAt.Format("15:04"))
		}
		return http.MethodPost, "/broadcasts", form, http.StatusSeeOther, true
	case testkit.ActRead:
		return http.MethodGet, "/broadcasts/" + id, nil, http.StatusOK, true
	case testkit.ActApprove:
		return http.MethodPost, on + "approve", url.Values{}, http.StatusSeeOther, true
	case testkit.ActReject:
		return http.MethodPost, on + "reject", url.Values{"reason_code": {"other"}, "reason": {"矩阵测试的理由"}}, http.StatusSeeOther, true
	case testkit.ActWithdraw:
		return http.MethodPost, on + "withdraw", url.Values{"reason": {"矩阵测试的理由"}}, http.StatusSeeOther, true
	case testkit.ActCancel:
		return http.MethodPost, on + "cancel", url.Values{"reason": {"矩阵测试的理由"}}, http.StatusSeeOther, true
	case testkit.ActPostHoc:
		return http.MethodPost, on + "post-hoc", url.Values{"report": {"台风已登陆，短信已送达。"}}, http.StatusSeeOther, true
	case testkit.ActReviewPostHoc:
		return http.MethodPost, on + "post-hoc/review", url.Values{"verdict": {"accepted"}}, http.StatusSeeOther, true
	}
	return "", "", nil, 0, false
}

// The rows of the API's matrix (testkit.Matrix) that have a web form,
// posted with a session cookie as a same-origin browser posts them: the
// allowed ones redirect, the refused ones answer the API's status, and
// change nothing. Revoked sessions are TestSessionsEnd, the login race
// TestConcurrentWrongPasswordsAreCheckedAtMostTheLimit.
func TestMatrixThroughTheWebForms(t *testing.T) {
	ui := newTestUI(t, false)
	browsers := map[string]*browser{}
	ran := 0
	for _, row := range testkit.Matrix() {
		if _, _, _, _, ok := matrixForm(row, ""); !ok {
			continue
		}
		ran++
		t.Run(row.Name, func(t *testing.T) {
			b := browsers[row.Actor]
			if b == nil {
				b = ui.loggedIn(t, row.Actor)
				browsers[row.Actor] = b
			}
			b.t = t
			var target *tocsin.Broadcast
			id := ""
			if row.Act != testkit.ActFile {
				target = testkit.MustTarget(t, ui.Service, row.Target)
				id = target.ID
			}
			method, path, form, okStatus, _ := matrixForm(row, id)
			var p page
			if method == http.MethodGet {
				p = b.get(path)
			} else {
				p = b.post(path, form)
			}
			want := okStatus
			if row.Refused != "" {
				want = httpapi.StatusOf(row.Refused)
			}
			if p.Status != want {
				t.Fatalf("%s %s as %s = %d, want %d\n%.600s", method, path, row.Actor, p.Status, want, p.Body)
			}
			if target != nil && row.Refused != "" {
				after, err := ui.Service.Get(t.Context(), testkit.Actor(t, "admin"), target.ID)
				if err != nil {
					t.Fatal(err)
				}
				if after.Status != target.Status || len(after.History) != len(target.History) {
					t.Errorf("refused %s moved %s from %s to %s", row.Act, target.ID, target.Status, after.Status)
				}
			}
		})
	}
	if ran < 40 {
		t.Fatalf("only %d rows of the matrix have a web form", ran)
	}
}
