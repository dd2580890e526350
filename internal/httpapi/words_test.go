package httpapi_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/tocsin-dev/tocsin/internal/httpapi"
	"github.com/tocsin-dev/tocsin/internal/tocsin"
	"github.com/tocsin-dev/tocsin/internal/webui"
)

// TestErrorMessagesInTheCallersLanguage checks that an API error's message
// is Chinese when the caller asks for zh-CN (from the web's catalogs, as
// serve wires it), English otherwise, and that the code never changes.
func TestErrorMessagesInTheCallersLanguage(t *testing.T) {
	words, err := webui.LoadErrorText(nil)
	if err != nil {
		t.Fatal(err)
	}
	api := newTestAPI(t, func(s *httpapi.Server) { s.Localize = words.Message })
	zh := map[string]string{"Accept-Language": "zh-CN,zh;q=0.9,en;q=0.5"}
	badTime := map[string]any{"title": "t", "content": "c", "scope": []string{"440100"}, "send_at": "2026-12-01 09:00"}

	for _, c := range []struct {
		name     string
		req      request
		status   int
		code     tocsin.Code
		contains []string
		lang     string
	}{
		{"a malformed time in Chinese", request{Path: "/api/v1/broadcasts", Org: "gd-met", Body: badTime, Header: zh},
			http.StatusBadRequest, tocsin.CodeInvalid, []string{"时间格式不正确", httpapi.TimeExample}, "zh-CN"},
		{"a malformed time in English", request{Path: "/api/v1/broadcasts", Org: "gd-met", Body: badTime},
			http.StatusBadRequest, tocsin.CodeInvalid, []string{"RFC 3339", httpapi.TimeExample}, ""},
		{"too late in Chinese", request{Path: "/api/v1/broadcasts", Org: "gd-met", Header: zh, Body: ordinary("2026-10-08T09:00:00+08:00", "440100")},
			http.StatusUnprocessableEntity, tocsin.CodeTooLate, []string{"10 个工作日", "2026-10-09"}, "zh-CN"},
		{"a future emergency in Chinese", request{Path: "/api/v1/broadcasts", Org: "gd-met", Header: zh,
			Body: func() map[string]any { e := emergency("440100"); e["send_at"] = "2026-09-19T10:00:00+08:00"; return e }()},
			http.StatusUnprocessableEntity, tocsin.CodeNotImmediate, []string{"紧急信息须立即发送"}, "zh-CN"},
		{"no such broadcast in Chinese", request{Method: http.MethodGet, Path: "/api/v1/broadcasts/BC999999", Org: "gd-met", Header: zh},
			http.StatusNotFound, tocsin.CodeNotFound, []string{"找不到"}, "zh-CN"},
		{"no token in Chinese", request{Method: http.MethodGet, Path: "/api/v1/broadcasts", Header: zh},
			http.StatusUnauthorized, tocsin.CodeUnauthorized, []string{"请先登录"}, "zh-CN"},
		{"English preferred", request{Method: http.MethodGet, Path: "/api/v1/broadcasts/BC999999", Org: "gd-met",
			Header: map[string]string{"Accept-Language": "en-GB, zh;q=0.3"}},
			http.StatusNotFound, tocsin.CodeNotFound, []string{"BC999999"}, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			res := api.do(t, c.req)
			e := wantError(t, res, c.status, c.code)
			for _, want := range c.contains {
				if !strings.Contains(e.Message, want) {
					t.Errorf("message %q lacks %q", e.Message, want)
				}
			}
			if strings.Contains(e.Message, "2006-01-02") {
				t.Errorf("message %q shows Go's layout", e.Message)
			}
			if got := res.Header.Get("Content-Language"); got != c.lang {
				t.Errorf("Content-Language = %q, want %q", got, c.lang)
			}
		})
	}

	// A withdrawal without a reason: the code is stable, the words Chinese.
	b := api.file(t, "gd-met", ordinary("2026-10-09T09:00:00+08:00", "440100"))
	res := api.do(t, request{Path: "/api/v1/broadcasts/" + b.ID + "/withdraw", Org: "gd-met", Body: map[string]any{"reason": " "}, Header: zh})
	if e := wantError(t, res, http.StatusUnprocessableEntity, tocsin.CodeReasonRequired); e.Message != "请填写理由。" {
		t.Errorf("a blank withdrawal's message = %q", e.Message)
	}
}

// TestEveryErrorCodeHasAChineseMessage checks the catalogs word every code
// the API may answer with.
func TestEveryErrorCodeHasAChineseMessage(t *testing.T) {
	words, err := webui.LoadErrorText(nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, code := range []tocsin.Code{tocsin.CodeInvalid, tocsin.CodeUnauthorized, tocsin.CodeForbidden, tocsin.CodeNotFound,
		tocsin.CodeConflict, tocsin.CodeTooLarge, tocsin.CodeUnsupportedMedia, tocsin.CodeValidation, tocsin.CodeTooLate,
		tocsin.CodeUnknownRegion, tocsin.CodeReasonRequired, tocsin.CodeNotImmediate, tocsin.CodeCalendarMissing,
		tocsin.CodeIdempotencyReuse, tocsin.CodeRateLimited, tocsin.CodeUnavailable, tocsin.CodeInternal} {
		msg, lang, ok := words.Message("zh-CN", tocsin.Errorf(code, "english words"))
		if !ok || lang != "zh-CN" || msg == "" || strings.HasPrefix(msg, "error.") || strings.Contains(msg, "english words") {
			t.Errorf("%s in Chinese: %q %q %v", code, msg, lang, ok)
		}
	}
}
