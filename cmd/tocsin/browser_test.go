package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	"github.com/tocsin-dev/tocsin/internal/tocsin"
)

// The browser tests drive Debian's Chromium, headless, against a real
// "tocsin demo" (simulators on, so dispatches complete) the way a person
// would use it. Without Chromium they skip, except in CI (CI=true), where
// a missing browser is a failure: .ci/run installs it.

// findChromium returns the browser to drive, or skips (fails in CI).
func findChromium(t *testing.T) string {
	t.Helper()
	for _, p := range []string{os.Getenv("TOCSIN_CHROMIUM"), "/usr/bin/chromium", "chromium"} {
		if p == "" {
			continue
		}
		if path, err := exec.LookPath(p); err == nil {
			return path
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("Chromium is not installed; .ci/run installs it (apt-get install chromium)")
	}
	t.Skip("Chromium is not installed; the browser tests need /usr/bin/chromium")
	return ""
}

// startBrowser starts one headless Chromium for the test, with a fresh
// profile, and returns its context.
func startBrowser(t *testing.T) context.Context {
	t.Helper()
	exe := findChromium(t)
	profile, err := os.MkdirTemp("", "tocsin-chromium-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		// Chromium's helpers can write for a moment after it exits.
		for range 50 {
			if os.RemoveAll(profile) == nil {
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
	})
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(exe),
		chromedp.UserDataDir(profile),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("lang", "zh-CN"),
		chromedp.Flag("accept-lang", "zh-CN,zh"),
		chromedp.WindowSize(1280, 1000),
	}
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	t.Cleanup(cancelAlloc)
	ctx, cancel := chromedp.NewContext(alloc)
	t.Cleanup(cancel)
	if err := chromedp.Do(ctx); err != nil { // start it, without a timeout
		t.Fatalf("start Chromium: %v", err)
	}
	return ctx
}

// tab is one person's browser window, with cookies of its own.
type tab struct {
	t       *testing.T
	name    string
	ctx     context.Context
	base    string
	dialogs atomic.Int32 // alert, confirm or prompt dialogs that opened
}

// csp collects Content-Security-Policy violations on every page, so a
// page that needs inline script or style fails the test.
const cspWatch = `window.__csp = [];
document.addEventListener("securitypolicyviolation", function (e) { window.__csp.push(e.violatedDirective + " " + e.blockedURI); });`

func newTab(t *testing.T, browser context.Context, base, name string) *tab {
	t.Helper()
	tb := &tab{t: t, name: name, base: base}
	ctx, cancel := chromedp.NewContext(browser, chromedp.WithNewBrowserContext())
	t.Cleanup(cancel)
	tb.ctx = ctx
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("open a tab: %v", err)
	}
	if _, err := chromedp.Call(ctx, page.AddScriptToEvaluateOnNewDocument, page.AddScriptToEvaluateOnNewDocumentParams{Source: cspWatch}); err != nil {
		t.Fatal(err)
	}
	// A dialog blocks the page; count it and close it, so an XSS that got
	// through fails the test instead of hanging it.
	go func() {
		for ev, err := range chromedp.Events(ctx, page.JavascriptDialogOpening) {
			if err != nil {
				return
			}
			tb.dialogs.Add(1)
			t.Logf("%s: a %s dialog opened: %q", name, ev.Type, ev.Message)
			_, _ = chromedp.Call(ctx, page.HandleJavaScriptDialog, page.HandleJavaScriptDialogParams{Accept: false})
		}
	}()
	t.Cleanup(tb.screenshotIfFailed)
	return tb
}

// use makes the tab report to t, and save a screenshot if t fails.
func (tb *tab) use(t *testing.T) {
	tb.t = t
	t.Cleanup(tb.screenshotIfFailed)
}

// screenshotIfFailed saves what the tab shows when its test failed.
func (tb *tab) screenshotIfFailed() {
	if tb.t.Failed() {
		tb.screenshot("failed")
	}
}

// screenshot saves what the tab shows, the whole page, in
// $TOCSIN_SCREENSHOTS or else the system's temporary folder (which, unlike
// t.TempDir, outlives the test so the picture can be looked at), and
// returns the file's name ("" if it could not be taken).
func (tb *tab) screenshot(what string) string {
	t, name := tb.t, tb.name
	dir := os.Getenv("TOCSIN_SCREENSHOTS")
	if dir == "" {
		dir = filepath.Join(os.TempDir(), "tocsin-screenshots")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Logf("screenshot: %v", err)
		return ""
	}
	ctx, cancel := context.WithTimeout(tb.ctx, 10*time.Second)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Logf("screenshot: %v", err)
		return ""
	}
	file := filepath.Join(dir, fmt.Sprintf("%s-%s-%s-%d.png", strings.ReplaceAll(t.Name(), "/", "_"), name, what, time.Now().UnixNano()))
	if err := os.WriteFile(file, png, 0o644); err != nil {
		t.Logf("screenshot: %v", err)
		return ""
	}
	url, _ := chromedp.Run(ctx, chromedp.Location())
	t.Logf("screenshot of %s saved to %s", url, file)
	return file
}

// do runs browser actions with a time limit.
func (tb *tab) do(actions ...chromedp.Action[chromedp.Void]) {
	tb.t.Helper()
	ctx, cancel := context.WithTimeout(tb.ctx, 60*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		tb.t.Fatalf("browser: %v", err)
	}
}

// eval evaluates a JavaScript expression on the page.
func eval[T any](tb *tab, expr string) T {
	tb.t.Helper()
	ctx, cancel := context.WithTimeout(tb.ctx, 30*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		tb.t.Fatalf("evaluate %s: %v", expr, err)
	}
	return v
}

// waitFor waits until a JavaScript expression is true on the page.
func (tb *tab) waitFor(what, expr string, timeout time.Duration) {
	tb.t.Helper()
	ctx, cancel := context.WithTimeout(tb.ctx, timeout+5*time.Second)
	defer cancel()
	if _, err := chromedp.Run(ctx, chromedp.Poll[bool](expr, chromedp.WithPollingTimeout(timeout), chromedp.WithPollingInterval(100*time.Millisecond))); err != nil {
		tb.t.Fatalf("waiting for %s (%s): %v", what, expr, err)
	}
}

func (tb *tab) open(path string) {
	tb.t.Helper()
	tb.do(chromedp.Navigate(tb.base + path))
	tb.checkCSP()
}

// checkCSP fails the test if the page broke its Content-Security-Policy.
func (tb *tab) checkCSP() {
	tb.t.Helper()
	if v := eval[[]string](tb, `window.__csp || []`); len(v) > 0 {
		tb.t.Errorf("Content-Security-Policy violations: %v", v)
	}
}

func (tb *tab) login(user string) {
	tb.t.Helper()
	tb.open("/login")
	tb.do(
		chromedp.SendKeys(chromedp.ID("username"), user),
		chromedp.SendKeys(chromedp.ID("password"), DemoPassword),
		chromedp.Click(chromedp.CSS("form[action='/login'] button[type=submit]")),
		chromedp.WaitVisible(chromedp.CSS("header nav")),
	)
}

// choose sets a select's value as a person picking an option does, so the
// page's change handlers run.
func (tb *tab) choose(id, value string) {
	tb.t.Helper()
	js := fmt.Sprintf(`(function () { const s = document.getElementById(%q); s.value = %q; s.dispatchEvent(new Event("change", {bubbles: true})); return s.value; })()`, id, value)
	if got := eval[string](tb, js); got != value {
		tb.t.Fatalf("#%s has no option %q", id, value)
	}
}

// setDate types a date into a date input (keyboard entry of dates depends
// on the browser's locale; the events are the same).
func (tb *tab) setValue(id, value string) {
	tb.t.Helper()
	js := fmt.Sprintf(`(function () { const s = document.getElementById(%q); s.value = %q; s.dispatchEvent(new Event("input", {bubbles: true})); s.dispatchEvent(new Event("change", {bubbles: true})); return s.value; })()`, id, value)
	if got := eval[string](tb, js); got != value {
		tb.t.Fatalf("#%s = %q after setting %q", id, got, value)
	}
}

func (tb *tab) text(sel string) string {
	tb.t.Helper()
	return eval[string](tb, fmt.Sprintf(`(document.querySelector(%q) || {textContent: ""}).textContent`, sel))
}

// currentID is the broadcast id of the detail page the tab shows.
func (tb *tab) currentID() string {
	tb.t.Helper()
	loc := eval[string](tb, `location.pathname`)
	id, ok := strings.CutPrefix(loc, "/broadcasts/")
	if !ok || id == "" || strings.Contains(id, "/") {
		tb.t.Fatalf("not on a broadcast's page: %s", loc)
	}
	return id
}

func TestBrowser(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a demo server and Chromium")
	}
	findChromium(t)
	dir := t.TempDir()
	// The demo clock starts on Friday 2026-09-18, so the earliest send date
	// is 2026-10-09 and an approved filing waits for its send time.
	s := startServer(t, dir, "demo", "--now", "2026-09-18T10:00:00+08:00")
	tokens := demoTokens(t, dir)
	browser := startBrowser(t)

	met := newTab(t, browser, s.base, "gd-met")
	cab := newTab(t, browser, s.base, "gd-cab")
	met.login("gd-met")
	cab.login("gd-cab")
	if lang := eval[string](met, `document.documentElement.lang`); lang != "zh-CN" {
		t.Errorf("a Chinese browser got lang=%q, want zh-CN", lang)
	}

	var ordinary string
	t.Run("department files an ordinary broadcast", func(t *testing.T) {
		met.use(t)
		met.open("/broadcasts/new")
		// The earliest date comes from the API, as the filing form asks it.
		api := call(t, "GET", s.base+"/api/v1/calendar/earliest", "", "")
		earliest, _ := api.body["earliest_send_date"].(string)
		if earliest != "2026-10-09" {
			t.Fatalf("API earliest = %v", api.body)
		}
		met.waitFor("the earliest date from the API", `document.getElementById("earliest").dataset.loaded === "true"`, 10*time.Second)
		if got := met.text("#earliest"); !strings.Contains(got, earliest) {
			t.Errorf("the form shows %q, want the earliest date %s", got, earliest)
		}

		// The segment count follows the typing.
		met.do(chromedp.SendKeys(chromedp.ID("title"), "国庆出行提醒"))
		met.do(chromedp.SendKeys(chromedp.ID("content"), "Stay safe"))
		if seg, enc := eval[string](met, `document.getElementById("sms-meter").dataset.segments`), eval[string](met, `document.getElementById("sms-meter").dataset.encoding`); seg != "1" || enc != "GSM-7" {
			t.Errorf("after typing ASCII the meter says %s segment(s) %s, want 1 GSM-7", seg, enc)
		}
		long := "【广东省气象局】国庆假期将至，预计全省多地有雷阵雨，出行请关注天气预报和交通信息，注意防范强对流天气，远离危险水域，假期愉快。"
		met.do(chromedp.SendKeys(chromedp.ID("content"), long))
		text := "Stay safe" + long
		want := tocsin.MeasureSMS(text)
		met.waitFor("the segment count to update", fmt.Sprintf(`document.getElementById("sms-meter").dataset.segments === "%d"`, want.Segments), 5*time.Second)
		if want.Segments != 2 || !strings.Contains(met.text("#sms-meter"), "2") {
			t.Errorf("meter = %q, want 2 segments (%+v)", met.text("#sms-meter"), want)
		}
		if got := met.text("#preview-text"); got != text {
			t.Errorf("phone preview = %q, want the typed text", got)
		}
		// The script's port of MeasureSMS agrees with the server on every case.
		for _, s := range []string{"", "hello", strings.Repeat("a", 160), strings.Repeat("a", 161), "{[]}€^~|\\",
			strings.Repeat("€", 81), "你好", strings.Repeat("汉", 70), strings.Repeat("汉", 71), "😀 emoji", "Ça coûte 5€", "tab\there"} {
			m := tocsin.MeasureSMS(s)
			js, _ := json.Marshal(s)
			got := eval[map[string]any](met, fmt.Sprintf(`window.tocsinMeasureSMS(%s)`, js))
			if got["encoding"] != string(m.Encoding) || int(got["characters"].(float64)) != m.Characters || int(got["segments"].(float64)) != m.Segments {
				t.Errorf("MeasureSMS(%q): script %v, server %+v", s, got, m)
			}
		}

		// Scope: Guangdong is preselected for a provincial department; pick
		// Guangzhou, then Tianhe from the counties the API lists.
		if got := eval[string](met, `document.getElementById("province").value`); got != "440000" {
			t.Errorf("province = %q, want Guangdong preselected", got)
		}
		met.choose("prefecture", "440100")
		met.waitFor("Guangzhou's counties", `document.getElementById("county").dataset.loaded === "440100"`, 10*time.Second)
		met.choose("county", "440106")

		met.setValue("send_date", "2026-10-08")
		met.waitFor("a too-early warning", `document.getElementById("date-check").classList.contains("too-early")`, 5*time.Second)
		met.setValue("send_date", earliest)
		met.waitFor("the date to pass", `document.getElementById("date-check").classList.contains("date-ok")`, 5*time.Second)
		met.setValue("send_time", "09:00")
		met.do(chromedp.Click(chromedp.ID("file-submit")), chromedp.WaitVisible(chromedp.ID("broadcast-status")))
		ordinary = met.currentID()
		if st := eval[string](met, `document.getElementById("broadcast-status").dataset.status`); st != "pending_review" {
			t.Fatalf("filed broadcast is %s, want pending_review", st)
		}
		if got := met.text("#facts-h + .facts"); !strings.Contains(got, "天河区") {
			t.Errorf("the scope is not shown by name: %q", got)
		}
		met.checkCSP()
	})

	t.Run("regulator approves it", func(t *testing.T) {
		if ordinary == "" {
			t.Skip("nothing was filed")
		}
		cab.use(t)
		cab.open("/review")
		if got := cab.text("#review-queue"); !strings.Contains(got, "国庆出行提醒") {
			t.Fatalf("the review queue lacks the filing:\n%s", got)
		}
		cab.do(chromedp.Click(chromedp.CSS(fmt.Sprintf("tr[data-broadcast=%q] a", ordinary))), chromedp.WaitVisible(chromedp.ID("approve")))
		if got := cab.text("#sms-preview"); !strings.Contains(got, "12379440") || !strings.Contains(got, "UCS-2") {
			t.Errorf("the SMS preview lacks the sender code or encoding: %q", got)
		}
		cab.do(chromedp.Click(chromedp.ID("approve")), chromedp.WaitVisible(chromedp.CSS("p.notice")))
		if st := eval[string](cab, `document.getElementById("broadcast-status").dataset.status`); st != "approved" {
			t.Fatalf("after approval the status is %s", st)
		}
		time.Sleep(time.Second) // the send time is weeks away on the demo clock: it stays approved
		cab.do(chromedp.Reload())
		if st := eval[string](cab, `document.getElementById("broadcast-status").dataset.status`); st != "approved" {
			t.Fatalf("a second later the status is %s, want still approved", st)
		}
		cab.checkCSP()
	})

	t.Run("the form will not send without a chosen scope", func(t *testing.T) {
		met.use(t)
		met.open("/broadcasts/new")
		met.do(
			chromedp.SendKeys(chromedp.ID("title"), "未选范围"),
			chromedp.SendKeys(chromedp.ID("content"), "【广东省气象局】测试。"),
			chromedp.Click(chromedp.ID("emergency")),
			chromedp.SendKeys(chromedp.ID("event"), "typhoon"),
		)
		if got := eval[string](met, `document.getElementById("prefecture").value`); got != "" {
			t.Errorf("the prefecture starts at %q, want no choice", got)
		}
		if eval[bool](met, `document.getElementById("filing-form").checkValidity()`) || !eval[bool](met, `document.getElementById("prefecture").validity.valueMissing`) {
			t.Error("the form would submit without a scope")
		}
		// The whole province is a choice to make, not a default.
		met.choose("prefecture", "440000")
		if !eval[bool](met, `document.getElementById("filing-form").checkValidity()`) {
			t.Error("the form refuses the whole province chosen explicitly")
		}
	})

	var emergency, liveColour string
	t.Run("an emergency reaches every provider and completes live", func(t *testing.T) {
		met.use(t)
		met.open("/broadcasts/new")
		if eval[bool](met, `getComputedStyle(document.getElementById("emergency-fields")).display !== "none"`) {
			t.Error("the emergency fields show before the switch is on")
		}
		met.do(chromedp.Click(chromedp.ID("emergency")))
		met.waitFor("the emergency fields", `getComputedStyle(document.getElementById("emergency-fields")).display !== "none"`, 5*time.Second)
		met.do(
			chromedp.SendKeys(chromedp.ID("title"), "台风“海燕”红色预警"),
			chromedp.SendKeys(chromedp.ID("content"), "【广东省气象局】台风“海燕”将于今夜登陆，请留在室内，远离海边。"),
			chromedp.SendKeys(chromedp.ID("event"), "typhoon"),
		)
		met.choose("emergency_type", "natural_disaster")
		met.choose("level", "red")
		// Several cities, so the simulators take a few seconds and the page
		// shows the dispatch moving.
		cities := []string{"440100", "440300", "440400", "440600", "441900", "442000"}
		for _, c := range cities {
			met.choose("prefecture", c)
			met.do(chromedp.Click(chromedp.ID("scope-add")))
		}
		if n := eval[int](met, `document.querySelectorAll("#scope-list input[name=scope]").length`); n != len(cities) {
			t.Fatalf("scope list has %d regions, want %d", n, len(cities))
		}
		// Submitting shows what will go out before anything does: LIVE, the
		// level and type, the scope by name, the providers and their
		// number, the exact text with its segments.
		before := countBroadcasts(t, s.base, tokens["gd-met"])
		met.do(chromedp.Click(chromedp.ID("file-submit")), chromedp.WaitVisible(chromedp.ID("confirm")))
		met.checkCSP()
		if mode := eval[string](met, `document.getElementById("confirm").dataset.mode`); mode != "live" || !strings.Contains(met.text("#confirm-mode"), "实发") {
			t.Errorf("the confirmation says %q (%s), want LIVE", met.text("#confirm-mode"), mode)
		}
		if got := met.text("#confirm-level"); !strings.Contains(got, "红色") || !strings.Contains(got, "自然灾害") {
			t.Errorf("the confirmation's level and type = %q", got)
		}
		for _, city := range []string{"广州市", "深圳市", "珠海市", "佛山市", "东莞市", "中山市"} {
			if !strings.Contains(met.text("#confirm-scope"), city) {
				t.Errorf("the confirmation's scope lacks %s: %q", city, met.text("#confirm-scope"))
			}
		}
		if n, got := eval[string](met, `document.getElementById("confirm-providers").dataset.count`), met.text("#confirm-providers"); n != "2" ||
			!strings.Contains(got, "中国移动") || !strings.Contains(got, "中国联通") || !strings.Contains(got, "2 家运营商") {
			t.Errorf("the confirmation names %s provider(s): %q", n, got)
		}
		if got := met.text("#confirm-text"); got != "【广东省气象局】台风“海燕”将于今夜登陆，请留在室内，远离海边。" {
			t.Errorf("the confirmation's text = %q", got)
		}
		if got := eval[string](met, `document.getElementById("confirm-sms").dataset.segments`); got != "1" {
			t.Errorf("the confirmation counts %s segment(s)", got)
		}
		met.screenshot("confirm-live")
		if n := countBroadcasts(t, s.base, tokens["gd-met"]); n != before {
			t.Fatalf("%d broadcasts before the confirm, %d after the form: it went out unconfirmed", before, n)
		}
		liveColour = eval[string](met, `getComputedStyle(document.getElementById("confirm-mode")).backgroundColor`)
		met.do(chromedp.Click(chromedp.ID("confirm-send")), chromedp.WaitVisible(chromedp.ID("progress")))
		id := met.currentID()
		emergency = id
		if n := eval[int](met, `document.querySelectorAll("#progress [data-provider]").length`); n != 2 {
			t.Fatalf("%d providers shown, want China Mobile and China Unicom", n)
		}
		// Only the event stream sets data-status on a provider's row and
		// data-live="done" on the section.
		met.waitFor("every provider to finish, live", `document.getElementById("progress").dataset.live === "done" &&
			[...document.querySelectorAll("#progress [data-provider]")].every(r => r.dataset.status === "delivered")`, 60*time.Second)
		if st := eval[string](met, `document.getElementById("broadcast-status").dataset.status`); st != "completed" {
			t.Errorf("the broadcast shows %s, want completed", st)
		}
		if !eval[bool](met, `[...document.querySelectorAll("#progress progress")].every(p => p.max > 1 && p.value === p.max)`) {
			t.Error("the progress bars are not full")
		}
		got := call(t, "GET", s.base+"/api/v1/broadcasts/"+id, tokens["gd-met"], "")
		if got.body["status"] != "completed" {
			t.Errorf("the API says %v", got.body["status"])
		}
		cab.use(t)
		cab.open("/emergencies")
		if st := eval[string](cab, fmt.Sprintf(`document.querySelector('[data-broadcast=%q] [data-field=broadcast-status]').className`, id)); !strings.Contains(st, "status-completed") {
			t.Errorf("the regulator's board shows %q", st)
		}
		met.checkCSP()
	})

	t.Run("an exercise's confirmation does not look like a live one", func(t *testing.T) {
		met.use(t)
		met.open("/broadcasts/new")
		met.do(
			chromedp.Click(chromedp.ID("emergency")),
			chromedp.SendKeys(chromedp.ID("title"), "台风演练"),
			chromedp.SendKeys(chromedp.ID("content"), "【广东省气象局】【演练】台风防御演练信息，请勿惊慌。"),
			chromedp.SendKeys(chromedp.ID("event"), "typhoon"),
			chromedp.Click(chromedp.ID("exercise")),
		)
		met.choose("prefecture", "440100")
		met.do(chromedp.Click(chromedp.ID("file-submit")), chromedp.WaitVisible(chromedp.ID("confirm")))
		if mode := eval[string](met, `document.getElementById("confirm").dataset.mode`); mode != "exercise" || !strings.Contains(met.text("#confirm-mode"), "演练") || strings.Contains(met.text("#confirm-mode"), "实发") {
			t.Errorf("the exercise's confirmation says %q (%s)", met.text("#confirm-mode"), mode)
		}
		if c := eval[string](met, `getComputedStyle(document.getElementById("confirm-mode")).backgroundColor`); liveColour == "" || c == liveColour {
			t.Errorf("EXERCISE is %s and LIVE %s: they must differ", c, liveColour)
		}
		met.screenshot("confirm-exercise")
		// Back to the form, with what was typed; nothing was filed.
		met.do(chromedp.Click(chromedp.ID("confirm-edit")), chromedp.WaitVisible(chromedp.ID("filing-form")))
		if got := eval[string](met, `document.getElementById("title").value`); got != "台风演练" {
			t.Errorf("back to edit, the title is %q", got)
		}
		if !eval[bool](met, `document.getElementById("exercise").checked`) {
			t.Error("back to edit lost the exercise")
		}
		met.do(chromedp.Click(chromedp.ID("file-submit")), chromedp.WaitVisible(chromedp.ID("confirm")))
		met.do(chromedp.Click(chromedp.ID("confirm-send")), chromedp.WaitVisible(chromedp.ID("broadcast-status")))
		if got := eval[string](met, `document.querySelector(".page-head [data-mode]").dataset.mode`); got != "exercise" {
			t.Errorf("the exercise's page is marked %q", got)
		}
		id := met.currentID()
		cab.use(t)
		cab.open("/emergencies")
		if got := eval[string](cab, fmt.Sprintf(`document.querySelector('[data-broadcast=%q] [data-mode]').dataset.mode`, id)); got != "exercise" {
			t.Errorf("the board marks the exercise %q", got)
		}
		if emergency != "" {
			if got := eval[string](cab, fmt.Sprintf(`document.querySelector('[data-broadcast=%q] [data-mode]').dataset.mode`, emergency)); got != "live" {
				t.Errorf("the board marks the live emergency %q", got)
			}
		}
	})

	t.Run("a correction links both ways and the review shows the diff", func(t *testing.T) {
		if ordinary == "" {
			t.Skip("nothing was filed")
		}
		met.use(t)
		cab.use(t)
		met.open("/broadcasts/" + ordinary)
		met.do(chromedp.Click(chromedp.ID("correct")), chromedp.WaitVisible(chromedp.ID("correction-mark")))
		if got := eval[string](met, `document.getElementById("content").value`); !strings.Contains(got, "国庆假期将至") {
			t.Fatalf("the correction form is not prefilled: %q", got)
		}
		met.do(chromedp.SetValue(chromedp.ID("content"), "【广东省气象局】国庆假期将至，预计全省多地有大到暴雨，出行请关注天气预报。"))
		met.do(chromedp.SendKeys(chromedp.ID("headline"), "国庆假期天气提醒"))
		met.do(chromedp.Click(chromedp.ID("file-submit")), chromedp.WaitVisible(chromedp.ID("corrects")))
		correction := met.currentID()
		if !eval[bool](met, fmt.Sprintf(`!!document.querySelector('#corrects a[href="/broadcasts/%s"]')`, ordinary)) {
			t.Errorf("the correction does not link to %s: %q", ordinary, met.text("#corrects"))
		}
		met.open("/broadcasts/" + ordinary)
		if !eval[bool](met, fmt.Sprintf(`!!document.querySelector('#corrected-by a[href="/broadcasts/%s"]')`, correction)) {
			t.Errorf("the original does not link to its correction: %q", met.text("#corrections"))
		}
		if !strings.Contains(met.text("#held"), correction) {
			t.Errorf("the original does not say it is held: %q", met.text("#corrections"))
		}
		cab.open("/broadcasts/" + correction)
		cab.waitFor("the comparison", `!!document.getElementById("compare")`, 5*time.Second)
		ins := eval[string](cab, `[...document.querySelectorAll("#compare td ins")].map(e => e.textContent).join("|")`)
		del := eval[string](cab, `[...document.querySelectorAll("#compare td del")].map(e => e.textContent).join("|")`)
		if !strings.Contains(ins, "大到暴") || !strings.Contains(del, "雷阵") {
			t.Errorf("the diff marks added %q and removed %q", ins, del)
		}
		if got := eval[string](cab, `[...document.querySelectorAll("#compare tr.changed td.diff-new")].map(e => e.textContent).join("|")`); !strings.Contains(got, "国庆假期天气提醒") {
			t.Errorf("the changed fields of the correction read %q, want its new headline", got)
		}
		if n := eval[int](cab, `document.querySelectorAll("#compare tr.changed").length`); n != 2 {
			t.Errorf("%d fields marked changed, want the headline and the content", n)
		}
		cab.screenshot("review-diff")
		cab.do(chromedp.Click(chromedp.ID("approve")), chromedp.WaitVisible(chromedp.CSS("p.notice")))
		met.open("/broadcasts/" + ordinary)
		if st := eval[string](met, `document.getElementById("broadcast-status").dataset.status`); st != "withdrawn" || !strings.Contains(met.text("#superseded"), correction) {
			t.Errorf("after the correction's approval the original is %s: %q", st, met.text("#corrections"))
		}
	})

	t.Run("a second post-hoc report does not erase the first", func(t *testing.T) {
		if emergency == "" {
			t.Skip("no emergency was sent")
		}
		met.use(t)
		const first, second = "气象台 21:00 发布台风红色预警，须立即提醒沿海群众。", "补充：台风于 23:40 在珠海登陆。"
		met.open("/broadcasts/" + emergency)
		met.do(chromedp.SetValue(chromedp.ID("report"), first), chromedp.Click(chromedp.ID("posthoc-submit")), chromedp.WaitVisible(chromedp.ID("posthoc-versions")))
		if !strings.Contains(met.text("#posthoc-form"), "补充") {
			t.Errorf("the form does not say a second report is an amendment: %q", met.text("#posthoc-form"))
		}
		met.do(chromedp.SetValue(chromedp.ID("report"), second), chromedp.Click(chromedp.ID("posthoc-submit")),
			chromedp.WaitVisible(chromedp.CSS(`#posthoc-versions li[data-version="2"]`)))
		if got := met.text("#posthoc-versions"); !strings.Contains(got, first) || !strings.Contains(got, second) || !strings.Contains(got, "gd-met") {
			t.Errorf("the versions read %q", got)
		}
	})

	t.Run("a cancel without a reason shows the error", func(t *testing.T) {
		id := fileByAPI(t, s.base, tokens["gd-met"], `{"title":"寒潮提醒","content":"【广东省气象局】寒潮将至，请注意保暖。","scope":["440300"],"send_at":"2026-10-12T10:00:00+08:00"}`)
		cab.use(t)
		cab.open("/broadcasts/" + id)
		if !eval[bool](cab, `document.getElementById("stop-reason").required`) {
			t.Error("the cancel form does not require a reason")
		}
		// Blanks pass the browser's check; the domain refuses them.
		cab.do(chromedp.SendKeys(chromedp.ID("stop-reason"), "   "), chromedp.Click(chromedp.ID("stop-submit")), chromedp.WaitVisible(chromedp.ID("form-error")))
		if got := cab.text("#form-error"); !strings.Contains(got, "请填写取消理由") {
			t.Errorf("the error reads %q", got)
		}
		if st := eval[string](cab, `document.getElementById("broadcast-status").dataset.status`); st != "pending_review" {
			t.Errorf("after a blank cancel the broadcast is %s", st)
		}
	})

	t.Run("the lists fit a 390 px screen", func(t *testing.T) {
		met.use(t)
		cab.use(t)
		for _, tb := range []*tab{met, cab} {
			tb.do(chromedp.EmulateViewport(390, 844))
		}
		defer func() {
			for _, tb := range []*tab{met, cab} {
				tb.do(chromedp.EmulateViewport(1280, 1000))
			}
		}()
		for _, v := range []struct {
			tb   *tab
			path string
		}{{met, "/broadcasts"}, {cab, "/broadcasts"}, {cab, "/review"}, {cab, "/post-hoc"}} {
			v.tb.open(v.path)
			if n := eval[int](v.tb, `document.querySelectorAll("table.grid tbody tr").length`); n == 0 {
				t.Errorf("%s as %s lists nothing", v.path, v.tb.name)
			}
			if w := eval[int](v.tb, `document.documentElement.scrollWidth`); w > 390 {
				v.tb.screenshot("too-wide")
				t.Errorf("%s as %s is %d px wide on a 390 px screen", v.path, v.tb.name, w)
			}
		}
		cab.open("/review")
		cab.screenshot("review-390")
	})

	t.Run("regulator rejects with a reason the department reads", func(t *testing.T) {
		id := fileByAPI(t, s.base, tokens["gd-met"], `{"title":"商品促销","content":"【广东省气象局】本周末全场八折。","scope":["440100"],"send_at":"2026-10-12T10:00:00+08:00"}`)
		cab.use(t)
		met.use(t)
		cab.open("/broadcasts/" + id)
		const reason = "这是商业促销，不属于公益性短信息（第三十七条第六项）。"
		cab.choose("reason_code", "not_public_welfare")
		cab.do(chromedp.SendKeys(chromedp.ID("reason"), reason), chromedp.Click(chromedp.ID("reject")), chromedp.WaitVisible(chromedp.ID("rejection")))
		met.open("/broadcasts")
		if got := met.text(fmt.Sprintf("tr[data-broadcast=%q]", id)); !strings.Contains(got, reason) {
			t.Errorf("the department's list does not show the reason: %q", got)
		}
		met.open("/broadcasts/" + id)
		if got := met.text("#rejection"); !strings.Contains(got, reason) || !strings.Contains(got, "不属于公益性短信息") {
			t.Errorf("the department's page shows %q, want the reason and its code", got)
		}
	})

	t.Run("language switch", func(t *testing.T) {
		met.use(t)
		met.open("/broadcasts")
		met.do(chromedp.Click(chromedp.CSS("button[data-lang-switch=en]")), chromedp.WaitVisible(chromedp.CSS("button[data-lang-switch=zh-CN]")))
		if lang := eval[string](met, `document.documentElement.lang`); lang != "en" {
			t.Errorf("after switching, lang = %q", lang)
		}
		if nav := met.text("header nav"); !strings.Contains(nav, "My broadcasts") || !strings.Contains(nav, "New filing") {
			t.Errorf("English navigation = %q", nav)
		}
		if h := met.text("h1"); h != "My broadcasts" {
			t.Errorf("English heading = %q", h)
		}
		met.open("/broadcasts/new") // the choice sticks
		if !strings.Contains(met.text("#earliest"), "Earliest permitted send date") {
			t.Errorf("the filing form is not in English: %q", met.text("#earliest"))
		}
		met.do(chromedp.Click(chromedp.CSS("button[data-lang-switch=zh-CN]")), chromedp.WaitVisible(chromedp.CSS("button[data-lang-switch=en]")))
		if lang, nav := eval[string](met, `document.documentElement.lang`), met.text("header nav"); lang != "zh-CN" || !strings.Contains(nav, "我的报备") {
			t.Errorf("after switching back: lang %q, nav %q", lang, nav)
		}
		if got := eval[string](met, `location.pathname`); got != "/broadcasts/new" {
			t.Errorf("the switch went to %s, want back to the page it was on", got)
		}
	})

	t.Run("XSS in the content renders inert", func(t *testing.T) {
		met.use(t)
		const payload = `<script>alert("xss")</script>"><img src=x onerror=alert(1)><b>bold</b>`
		met.open("/broadcasts/new")
		met.do(
			chromedp.SendKeys(chromedp.ID("title"), `"><img src=x onerror=alert(2)>`),
			chromedp.SendKeys(chromedp.ID("content"), payload),
		)
		met.choose("prefecture", "440100")
		met.setValue("send_date", "2026-10-09")
		met.setValue("send_time", "09:00")
		if got := met.text("#preview-text"); got != payload {
			t.Errorf("live preview = %q", got)
		}
		met.do(chromedp.Click(chromedp.ID("file-submit")), chromedp.WaitVisible(chromedp.ID("broadcast-status")))
		if got := met.text("#preview-text"); got != payload {
			t.Errorf("the SMS preview shows %q, want the typed text as text", got)
		}
		if got := met.text("#broadcast-title"); got != `"><img src=x onerror=alert(2)>` {
			t.Errorf("title = %q", got)
		}
		if n := eval[int](met, `document.querySelectorAll("main img, main b, main script").length`); n != 0 {
			t.Errorf("%d elements came from the typed text", n)
		}
		met.open("/broadcasts")
		time.Sleep(300 * time.Millisecond)
		if n := met.dialogs.Load(); n != 0 {
			t.Errorf("%d dialogs opened", n)
		}
		met.checkCSP()
	})

	t.Run("a department cannot open the review queue", func(t *testing.T) {
		met.use(t)
		ctx, cancel := context.WithTimeout(met.ctx, 30*time.Second)
		defer cancel()
		resp, err := chromedp.Run(ctx, chromedp.NavigateResponse(s.base+"/review"))
		if err != nil {
			t.Fatal(err)
		}
		if resp.Status != http.StatusForbidden {
			t.Errorf("GET /review as a department = %d, want 403", resp.Status)
		}
		if got := met.text("main"); !strings.Contains(got, "此页面仅供电信管理机构使用") {
			t.Errorf("the 403 page says %q", got)
		}
	})
}

// countBroadcasts is how many broadcasts the token's organisation sees.
func countBroadcasts(t *testing.T, base, token string) int {
	t.Helper()
	got := call(t, "GET", base+"/api/v1/broadcasts?limit=200", token, "")
	list, ok := got.body["broadcasts"].([]any)
	if got.status != http.StatusOK || !ok {
		t.Fatalf("listing: %d %v", got.status, got.body)
	}
	return len(list)
}

// fileByAPI files a broadcast over the API and returns its id.
func fileByAPI(t *testing.T, base, token, body string) string {
	t.Helper()
	filed := call(t, "POST", base+"/api/v1/broadcasts", token, body)
	if filed.status != http.StatusCreated {
		t.Fatalf("filing: %d %v", filed.status, filed.body)
	}
	return filed.body["id"].(string)
}
