package webui_test

import (
	"context"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/tocsin-dev/tocsin/internal/testkit"
	"github.com/tocsin-dev/tocsin/internal/tocsin"
)

// count is how many broadcasts org sees.
func (ui *testUI) count(t *testing.T, org string) int {
	t.Helper()
	p, err := ui.Service.List(context.Background(), testkit.Actor(t, org), tocsin.Query{})
	if err != nil {
		t.Fatal(err)
	}
	return len(p.Broadcasts)
}

func TestAFormWithoutAChosenScopeIsRefused(t *testing.T) {
	ui := newTestUI(t, false)
	met := ui.loggedIn(t, "gd-met")
	form := met.get("/broadcasts/new")
	// The province is the department's own, but the prefecture list starts
	// at "choose", is required, and offers the whole province explicitly.
	for _, want := range []string{`<option value="">请选择发送范围…</option>`, `<option value="440000">全省</option>`} {
		if !strings.Contains(form.Body, want) {
			t.Errorf("the filing form lacks %s", want)
		}
	}
	if !regexp.MustCompile(`<select id="prefecture"[^>]* required`).MatchString(form.Body) {
		t.Error("the prefecture choice is not required")
	}
	fields := url.Values{
		"key": {"k-1"}, "title": {"暴雨红色预警"}, "content": {"【广东省气象局】今夜有特大暴雨。"},
		"province": {"440000"}, "prefecture": {""}, "emergency": {"1"}, "confirm": {"1"},
		"emergency_type": {"natural_disaster"}, "event": {"rainstorm"}, "level": {"red"},
	}
	p := met.post("/broadcasts", fields)
	if p.Status != http.StatusUnprocessableEntity || !strings.Contains(p.Body, "请选择发送范围") {
		t.Fatalf("an emergency with the province alone = %d, want 422 asking for a scope", p.Status)
	}
	if n := ui.count(t, "gd-met"); n != 0 {
		t.Fatalf("%d broadcasts filed", n)
	}
	// The whole province, chosen: the confirmation says so, as an exercise.
	fields.Set("prefecture", "440000")
	fields.Set("exercise", "1")
	fields.Del("confirm")
	p = met.post("/broadcasts", fields)
	if p.Status != http.StatusOK || !strings.Contains(p.Body, `data-mode="exercise"`) || !strings.Contains(p.Body, "演练 · EXERCISE") ||
		!strings.Contains(p.Body, "<span>广东省</span> <code>440000</code>") || strings.Contains(p.Body, "confirm-live") {
		t.Fatalf("the exercise's confirmation = %d\n%s", p.Status, p.Body)
	}
	// Back to edit keeps what was typed, and files nothing.
	fields.Set("edit", "1")
	p = met.post("/broadcasts", fields)
	if p.Status != http.StatusOK || !strings.Contains(p.Body, `id="filing-form"`) || !strings.Contains(p.Body, "今夜有特大暴雨") {
		t.Fatalf("back to edit = %d", p.Status)
	}
	fields.Del("edit")
	fields.Set("confirm", "1")
	first := met.post("/broadcasts", fields)
	again := met.post("/broadcasts", fields) // a double click on confirm
	if first.Status != http.StatusSeeOther || again.Header.Get("Location") != first.Header.Get("Location") {
		t.Fatalf("confirm = %d %s, again %s", first.Status, first.Header.Get("Location"), again.Header.Get("Location"))
	}
	if n := ui.count(t, "gd-met"); n != 1 {
		t.Fatalf("%d broadcasts filed, want 1", n)
	}
	detail := met.get(first.Header.Get("Location"))
	if !strings.Contains(detail.Body, `class="badge mode mode-exercise"`) || strings.Contains(detail.Body, "mode-live") {
		t.Error("the exercise's detail page does not mark it as an exercise only")
	}
}

func TestCorrectionInTheWeb(t *testing.T) {
	ui := newTestUI(t, false)
	ctx := context.Background()
	original := ui.fileOrdinary(t, "防溺水提醒", "【广东省气象局】暑期请远离危险水域。")
	if _, err := ui.Service.Approve(ctx, testkit.Actor(t, "gd-cab"), original.ID); err != nil {
		t.Fatal(err)
	}
	met := ui.loggedIn(t, "gd-met")
	if p := met.get("/broadcasts/" + original.ID); !strings.Contains(p.Body, `href="/broadcasts/`+original.ID+`/correct"`) {
		t.Fatal("an approved broadcast's page offers no correction")
	}
	form := met.get("/broadcasts/" + original.ID + "/correct")
	for _, want := range []string{`id="correction-mark"`, `action="/broadcasts/` + original.ID + `/update"`, "暑期请远离危险水域",
		`name="scope" value="440100"`, `value="2026-10-09"`} {
		if !strings.Contains(form.Body, want) {
			t.Errorf("the correction form lacks %s", want)
		}
	}
	key := regexp.MustCompile(`name="key" value="([0-9a-f]+)"`).FindStringSubmatch(form.Body)
	p := met.post("/broadcasts/"+original.ID+"/update", url.Values{
		"key": {key[1]}, "title": {"防溺水提醒"}, "content": {"【广东省气象局】暑期请远离江河湖泊等危险水域。"},
		"province": {"440000"}, "scope": {"440100", "440300"}, "send_date": {"2026-10-09"}, "send_time": {"09:00"},
	})
	if p.Status != http.StatusSeeOther {
		t.Fatalf("filing the correction = %d\n%s", p.Status, p.Body)
	}
	loc := strings.Split(p.Header.Get("Location"), "?")[0]
	correction := strings.TrimPrefix(loc, "/broadcasts/")
	if c := met.get(loc); !strings.Contains(c.Body, `id="corrects"`) || !strings.Contains(c.Body, `href="/broadcasts/`+original.ID+`"`) {
		t.Error("the correction does not link to what it corrects")
	}
	o := met.get("/broadcasts/" + original.ID)
	if !strings.Contains(o.Body, `id="corrected-by"`) || !strings.Contains(o.Body, `href="/broadcasts/`+correction+`"`) || !strings.Contains(o.Body, `id="held"`) {
		t.Error("the original does not list its correction or say it is held")
	}
	cab := ui.loggedIn(t, "gd-cab")
	review := cab.get(loc)
	for _, want := range []string{`id="compare"`, "<ins>江河湖泊等</ins>", "<ins>、广东省 深圳市</ins>", `id="approve"`} {
		if !strings.Contains(review.Body, want) {
			t.Errorf("the regulator's review of the correction lacks %s", want)
		}
	}
	if p := cab.post(loc+"/approve", nil); p.Status != http.StatusSeeOther {
		t.Fatalf("approving the correction = %d", p.Status)
	}
	if o := met.get("/broadcasts/" + original.ID); !strings.Contains(o.Body, `id="superseded"`) || !strings.Contains(o.Body, `data-status="withdrawn"`) {
		t.Error("the original does not show it was superseded")
	}
}

func TestWithdrawAndCancelAskForAReasonInThePagesLanguage(t *testing.T) {
	ui := newTestUI(t, false)
	b := ui.fileOrdinary(t, "秋季防火", "【广东省气象局】注意防火。")
	met := ui.loggedIn(t, "gd-met")
	if p := met.get("/broadcasts/" + b.ID); !regexp.MustCompile(`<textarea id="stop-reason" name="reason"[^>]* required`).MatchString(p.Body) {
		t.Error("the withdraw form does not require a reason")
	}
	if p := met.post("/broadcasts/"+b.ID+"/withdraw", url.Values{"reason": {"  "}}); p.Status != http.StatusUnprocessableEntity || !strings.Contains(p.Body, "请填写撤回理由") {
		t.Errorf("a blank withdrawal = %d, want 422 asking for its reason in Chinese", p.Status)
	}
	met.lang = "en"
	if p := met.post("/broadcasts/"+b.ID+"/withdraw", url.Values{"reason": {""}}); p.Status != http.StatusUnprocessableEntity || !strings.Contains(p.Body, "Say why the broadcast is withdrawn") {
		t.Errorf("a blank withdrawal in English = %d", p.Status)
	}
	cab := ui.loggedIn(t, "gd-cab")
	if p := cab.post("/broadcasts/"+b.ID+"/cancel", url.Values{"reason": {""}}); p.Status != http.StatusUnprocessableEntity || !strings.Contains(p.Body, "请填写取消理由") {
		t.Errorf("a blank cancellation = %d, want 422 asking for its reason", p.Status)
	}
}

func TestSecondPostHocReportIsAnAmendment(t *testing.T) {
	ui := newTestUI(t, false)
	b := ui.fileEmergency(t, "暴雨红色预警", "今夜有特大暴雨。", "rainstorm")
	met := ui.loggedIn(t, "gd-met")
	for _, report := range []string{"第一份报告：气象台 22:00 发布红色预警。", "补充：降雨量已达 250 毫米。"} {
		if p := met.post("/broadcasts/"+b.ID+"/post-hoc", url.Values{"report": {report}}); p.Status != http.StatusSeeOther {
			t.Fatalf("report = %d", p.Status)
		}
	}
	p := met.get("/broadcasts/" + b.ID)
	for _, want := range []string{`id="posthoc-versions"`, "第一份报告：气象台 22:00 发布红色预警。", "补充：降雨量已达 250 毫米。",
		"第 2 版（补充）", `id="posthoc-amend-hint"`, "提交补充报告"} {
		if !strings.Contains(p.Body, want) {
			t.Errorf("the detail page lacks %q", want)
		}
	}
}

func TestProvincialRegulatorSeesItsProvincesProviders(t *testing.T) {
	ui := newTestUI(t, false)
	p := ui.loggedIn(t, "gx-cab").get("/providers")
	if !strings.Contains(p.Body, "cmcc") || !strings.Contains(p.Body, "ctcc") || strings.Contains(p.Body, "cucc") {
		t.Errorf("Guangxi's provider list should be China Mobile and China Telecom only:\n%s", p.Body)
	}
	if p := ui.loggedIn(t, "miit").get("/providers"); !strings.Contains(p.Body, "cucc") || !strings.Contains(p.Body, "电信管理机构") {
		t.Error("MIIT's provider list lacks China Unicom or its badge is not 电信管理机构")
	}
}
