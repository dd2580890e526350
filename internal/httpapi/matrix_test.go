package httpapi_test

import (
	"fmt"
	"net/http"
	"testing"

	"github.com/tocsin-dev/tocsin/internal/httpapi"
	"github.com/tocsin-dev/tocsin/internal/testkit"
	"github.com/tocsin-dev/tocsin/internal/tocsin"
)

// filingBody is a matrix Target as the JSON the API files.
func filingBody(target testkit.Target) map[string]any {
	f := target.Filing()
	body := map[string]any{"title": f.Title, "content": f.Content, "scope": f.Scope}
	if f.SendAt != nil {
		body["send_at"] = f.SendAt.Format("2006-01-02T15:04:05Z07:00")
	}
	if e := f.Emergency; e != nil {
		body["emergency"] = map[string]any{"type": e.Type, "event": e.Event, "level": e.Level}
	}
	return body
}

// matrixRequest is what a row asks of the API, and the status it gets
// when allowed. id is the row's target broadcast, token a credential id
// of gd-met's for revoking; n makes the row's new ids unique.
func matrixRequest(row testkit.MatrixRow, id, token string, n int) (request, int) {
	on := func(action string, body any) request {
		return request{Method: http.MethodPost, Path: broadcasts + "/" + id + "/" + action, Body: body}
	}
	reason := map[string]any{"reason": "矩阵测试的理由"}
	switch row.Act {
	case testkit.ActFile:
		return request{Method: http.MethodPost, Path: broadcasts, Body: filingBody(row.Target)}, http.StatusCreated
	case testkit.ActRead:
		return request{Path: broadcasts + "/" + id}, http.StatusOK
	case testkit.ActApprove:
		return on("approve", map[string]any{}), http.StatusOK
	case testkit.ActReject:
		return on("reject", map[string]any{"reason_code": "other", "reason": "矩阵测试的理由"}), http.StatusOK
	case testkit.ActWithdraw:
		return on("withdraw", reason), http.StatusOK
	case testkit.ActCancel:
		return on("cancel", reason), http.StatusOK
	case testkit.ActPostHoc:
		return on("post-hoc", map[string]any{"report": "台风已登陆，短信已送达。"}), http.StatusOK
	case testkit.ActReviewPostHoc:
		return on("post-hoc/review", map[string]any{"verdict": "accepted"}), http.StatusOK
	case testkit.ActRegisterProvider:
		return request{Method: http.MethodPost, Path: "/api/v1/providers",
			Body: map[string]any{"id": fmt.Sprintf("matrix-%d", n), "name": "Matrix Mobile", "regions": []string{"440000"}}}, http.StatusCreated
	case testkit.ActListProviders:
		return request{Path: "/api/v1/providers"}, http.StatusOK
	case testkit.ActExportRecords:
		return request{Path: "/api/v1/records?from=2026-09-01&to=2026-12-31&format=jsonl"}, http.StatusOK
	case testkit.ActLoadCalendar:
		return request{Method: http.MethodPut, Path: "/api/v1/calendars/2027?dry_run=true", Body: testkit.Notice2027,
			Header: map[string]string{"Content-Type": "text/plain; charset=utf-8"}}, http.StatusOK
	case testkit.ActIssueToken:
		return request{Method: http.MethodPost, Path: "/api/v1/tokens", Body: map[string]any{"org": "gd-met"}}, http.StatusCreated
	case testkit.ActRevokeToken:
		return request{Method: http.MethodDelete, Path: "/api/v1/tokens/" + token}, http.StatusNoContent
	}
	panic("matrixRequest: no request for " + string(row.Act))
}

// onBroadcast reports whether an act is done to a target broadcast.
func onBroadcast(act testkit.Act) bool {
	switch act {
	case testkit.ActRead, testkit.ActApprove, testkit.ActReject, testkit.ActWithdraw, testkit.ActCancel,
		testkit.ActPostHoc, testkit.ActReviewPostHoc:
		return true
	}
	return false
}

// The role × action × jurisdiction matrix of DESIGN.md (testkit.Matrix)
// against the live API: each cell's status and code, and a refused act
// changes nothing. The web forms run the same rows (webui's
// TestMatrixThroughTheWebForms); stale and forged claims are
// TestStaleClaims and TestForgedClaimsAreIgnored, revoked tokens
// TestServiceTokensAreIssuedListedAndRevoked, dirty and oversized input
// TestDirtyInput and TestRequestBodies.
func TestMatrixThroughTheAPI(t *testing.T) {
	api := newWiredAPI(t)
	for n, row := range testkit.Matrix() {
		t.Run(row.Name, func(t *testing.T) {
			var target *tocsin.Broadcast
			if onBroadcast(row.Act) {
				target = testkit.MustTarget(t, api.Service, row.Target)
			}
			var id, token string
			if target != nil {
				id = target.ID
			}
			if row.Act == testkit.ActRevokeToken {
				_, token = testkit.MustTokenID(t, api.Service, api.Keys, "gd-met", tokenTTL)
			}
			req, okStatus := matrixRequest(row, id, token, n)
			req.Org = row.Actor
			res := api.do(t, req)
			if row.Refused == "" {
				if res.Status != okStatus {
					t.Fatalf("%s by %s = %s, want %d", row.Act, row.Actor, res, okStatus)
				}
				return
			}
			wantError(t, res, httpapi.StatusOf(row.Refused), row.Refused)
			if target != nil {
				after := api.getBroadcast(t, "admin", target.ID)
				if after.Status != target.Status || len(after.History) != len(target.History) {
					t.Errorf("refused %s moved %s from %s to %s (%d events, were %d)", row.Act, target.ID,
						target.Status, after.Status, len(after.History), len(target.History))
				}
			}
		})
	}
}

// A provider's receipt for a broadcast never dispatched to it is refused,
// and what the API shows is unchanged: the forgeries over NATS themselves
// are natsbus's TestReceiptIDsCannotCrossProviders and
// TestReceiptsOnlyForOwnDispatchesAndSmall.
func TestForeignReceiptIsInvisibleInTheAPI(t *testing.T) {
	api := newTestAPI(t)
	gx := api.file(t, "gx-health", emergency("450100")) // cmcc and ctcc cover Guangxi; cucc does not
	before := api.getBroadcast(t, "gx-cab", gx.ID)
	err := api.Service.ApplyReceipt(t.Context(), "cucc", tocsin.Receipt{BroadcastID: gx.ID, Status: "delivered",
		Recipients: 1000, Sent: 1000, Delivered: 1000})
	if !tocsin.IsCode(err, tocsin.CodeNotFound) {
		t.Fatalf("cucc's receipt for a Guangxi broadcast: %v, want not_found", err)
	}
	after := api.getBroadcast(t, "gx-cab", gx.ID)
	if got, want := providerIDs(after), providerIDs(before); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("providers after the forged receipt = %v, want %v", got, want)
	}
	if after.Status != before.Status {
		t.Errorf("status after the forged receipt = %s, want %s", after.Status, before.Status)
	}
	for i, p := range after.Providers {
		if p.Status != before.Providers[i].Status || p.Delivered != before.Providers[i].Delivered {
			t.Errorf("%s's progress moved: %+v, was %+v", p.Provider, p, before.Providers[i])
		}
	}
}
