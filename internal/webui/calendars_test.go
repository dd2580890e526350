package webui_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/tocsin-dev/tocsin/internal/testkit"
	"github.com/tocsin-dev/tocsin/internal/tocsin"
)

// From 1 November while next year's calendar is missing, everyone who
// files or reviews sees when ordinary filings start being refused; the
// operator loads the notice after a day-by-day preview, and the banner
// goes.
func TestCalendarGapBannerAndLoadingPage(t *testing.T) {
	ui := newTestUI(t, false)
	ui.ServiceClock.Set(time.Date(2026, 12, 1, 10, 0, 0, 0, tocsin.Shanghai))
	for _, tt := range []struct{ user, path, lang, want string }{
		{"gd-met", "/broadcasts/new", "zh-CN", "2027 年工作日历尚未加载：自 2026-12-18 起"},
		{"gd-met", "/broadcasts/new", "en", "The 2027 working-day calendar is not loaded: ordinary filings from 2026-12-18 will be refused"},
		{"gd-cab", "/review", "zh-CN", "自 2026-12-18 起，普通报备将被拒绝"},
		{"miit", "/post-hoc", "en", "from 2026-12-18 will be refused"},
	} {
		b := ui.loggedIn(t, tt.user)
		b.lang = tt.lang
		p := b.get(tt.path)
		if p.Status != http.StatusOK || !strings.Contains(p.Body, `id="calendar-gap"`) || !strings.Contains(p.Body, tt.want) {
			t.Errorf("%s %s (%s): %d, want the banner saying %q", tt.user, tt.path, tt.lang, p.Status, tt.want)
		}
	}
	if p := ui.loggedIn(t, "gd-met").get("/calendars"); p.Status != http.StatusForbidden {
		t.Errorf("a department opened the calendar page: %d", p.Status)
	}

	admin := ui.loggedIn(t, "admin")
	admin.lang = "en"
	bad := strings.Replace(testkit.Notice2027, "1月31日（周日）", "2月1日（周一）", 1)
	p := admin.post("/calendars", url.Values{"step": {"preview"}, "notice": {bad}})
	if p.Status != http.StatusUnprocessableEntity || !strings.Contains(p.Body, "2027-02-01 is a Monday") {
		t.Errorf("a make-up day on a Monday: %d\n%s", p.Status, p.Body)
	}
	p = admin.post("/calendars", url.Values{"step": {"preview"}, "notice": {testkit.Notice2027}})
	if p.Status != http.StatusOK || !strings.Contains(p.Body, `id="calendar-preview"`) ||
		!strings.Contains(p.Body, "2027-02-05 Fri") || !strings.Contains(p.Body, "Spring Festival") {
		t.Fatalf("preview: %d\n%s", p.Status, p.Body)
	}
	if _, err := ui.Service.Calendar.EarliestSendDate(time.Date(2026, 12, 18, 0, 0, 0, 0, tocsin.Shanghai)); err == nil {
		t.Fatal("the preview loaded 2027")
	}
	p = admin.post("/calendars", url.Values{"step": {"load"}, "notice": {testkit.Notice2027}})
	if p.Status != http.StatusSeeOther {
		t.Fatalf("load: %d\n%s", p.Status, p.Body)
	}
	d, err := ui.Service.Calendar.EarliestSendDate(time.Date(2026, 12, 18, 0, 0, 0, 0, tocsin.Shanghai))
	if err != nil || d.Format(tocsin.DateLayout) != "2027-01-04" {
		t.Errorf("earliest for 2026-12-18 after loading: %v %v, want 2027-01-04", d, err)
	}
	p = admin.get("/calendars?loaded=2027")
	if !strings.Contains(p.Body, "The 2027 calendar is loaded") || strings.Contains(p.Body, `id="calendar-gap"`) {
		t.Errorf("after loading: the confirmation, and no banner, expected\n%s", p.Body)
	}
}
