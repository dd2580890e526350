package webui_test

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/tocsin-dev/tocsin/internal/auth"
	"github.com/tocsin-dev/tocsin/internal/calendar"
	"github.com/tocsin-dev/tocsin/internal/demo"
	"github.com/tocsin-dev/tocsin/internal/region"
	"github.com/tocsin-dev/tocsin/internal/testkit"
	"github.com/tocsin-dev/tocsin/internal/tocsin"
	"github.com/tocsin-dev/tocsin/internal/webui"
)

// testNow is Friday 2026-09-18 10:00 in Asia/Shanghai; the earliest send
// date of a filing made then is 2026-10-09.
var testNow = time.Date(2026, 9, 18, 10, 0, 0, 0, tocsin.Shanghai)

const password = demo.Password

// testUI is the web UI over real HTTP, from a real store, calendar and
// keys, with the demo directory and a web login for each organisation.
type testUI struct {
	URL     string
	Service *tocsin.Service
	Clock   *testkit.Clock // the login limiter's: the real time at the start, moved only by the test
	// ServiceClock is the service's: working days and the calendar gap.
	ServiceClock *testkit.Clock
	server       *httptest.Server
}

// newTestUI serves the web UI; opts change its configuration first.
func newTestUI(t *testing.T, tlsServer bool, opts ...func(*webui.Config)) *testUI {
	t.Helper()
	log := testkit.Logger(t)
	keys, err := auth.GenerateKeys()
	if err != nil {
		t.Fatal(err)
	}
	serviceClock := testkit.NewClock(testNow)
	svc := testkit.MustService(t, testkit.MustStore(t, log), serviceClock)
	testkit.MustSeed(t, svc, testkit.Directory|testkit.Logins)
	// A calendar of its own: the calendar page loads years into it.
	cal, err := calendar.Load("")
	if err != nil {
		t.Fatal(err)
	}
	svc.Calendar = cal
	clock := testkit.NewClock(time.Now())
	cfg := webui.Config{
		Service: svc, Regions: region.Default(), Keys: keys, Verifier: keys.WebVerifier(time.Now),
		Now: clock.Now, Log: log, PollInterval: 20 * time.Millisecond,
		Calendars: &calendar.Book{Calendar: cal, Dir: t.TempDir(), Service: svc},
	}
	for _, opt := range opts {
		opt(&cfg)
	}
	ui, err := webui.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	var srv *httptest.Server
	if tlsServer {
		srv = httptest.NewTLSServer(ui.Routes())
	} else {
		srv = httptest.NewServer(ui.Routes())
	}
	t.Cleanup(srv.Close)
	return &testUI{URL: srv.URL, Service: svc, Clock: clock, ServiceClock: serviceClock, server: srv}
}

// browser is an HTTP client with cookies that does not follow redirects,
// and sends what a same-origin browser form post sends.
type browser struct {
	t      *testing.T
	ui     *testUI
	client *http.Client
	lang   string
}

func (ui *testUI) browser(t *testing.T) *browser {
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	c := *ui.server.Client() // a copy: each browser has its own cookies
	c.Jar = jar
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &browser{t: t, ui: ui, client: &c}
}

type page struct {
	Status int
	Header http.Header
	Body   string
}

func (b *browser) do(req *http.Request) page {
	b.t.Helper()
	if b.lang != "" {
		req.Header.Set("Accept-Language", b.lang)
	}
	resp, err := b.client.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		b.t.Fatal(err)
	}
	return page{Status: resp.StatusCode, Header: resp.Header, Body: string(body)}
}

func (b *browser) get(path string) page {
	b.t.Helper()
	req, err := http.NewRequest(http.MethodGet, b.ui.URL+path, nil)
	if err != nil {
		b.t.Fatal(err)
	}
	return b.do(req)
}

// post sends a form as a same-origin browser does.
func (b *browser) post(path string, form url.Values, headers ...string) page {
	b.t.Helper()
	req, err := http.NewRequest(http.MethodPost, b.ui.URL+path, strings.NewReader(form.Encode()))
	if err != nil {
		b.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	req.Header.Set("Origin", b.ui.URL)
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	return b.do(req)
}

func (b *browser) login(user string) {
	b.t.Helper()
	p := b.post("/login", url.Values{"username": {user}, "password": {password}})
	if p.Status != http.StatusSeeOther {
		b.t.Fatalf("login as %s: %d\n%s", user, p.Status, p.Body)
	}
}

func (ui *testUI) loggedIn(t *testing.T, user string) *browser {
	b := ui.browser(t)
	b.login(user)
	return b
}

// fileOrdinary files a pending broadcast as gd-met through the service.
func (ui *testUI) fileOrdinary(t *testing.T, title, content string) *tocsin.Broadcast {
	t.Helper()
	sendAt := time.Date(2026, 10, 9, 9, 0, 0, 0, tocsin.Shanghai)
	b, _, err := ui.Service.File(context.Background(), testkit.Actor(t, "gd-met"),
		tocsin.Filing{Title: title, Content: content, Scope: []string{"440100"}, SendAt: &sendAt}, "")
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// fileEmergency files a red natural-disaster emergency for Guangzhou as
// gd-met through the service: it is dispatching at once.
func (ui *testUI) fileEmergency(t *testing.T, title, content, event string) *tocsin.Broadcast {
	t.Helper()
	b, _, err := ui.Service.File(context.Background(), testkit.Actor(t, "gd-met"), tocsin.Filing{
		Title: title, Content: content, Scope: []string{"440100"},
		Emergency: &tocsin.Emergency{Type: tocsin.NaturalDisaster, Event: event, Level: tocsin.Red},
	}, "")
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func sessionCookie(t *testing.T, p page) *http.Cookie {
	t.Helper()
	for _, c := range (&http.Response{Header: p.Header}).Cookies() {
		if c.Name == webui.SessionCookie {
			return c
		}
	}
	return nil
}

func TestLoginSetsAStrictHttpOnlyCookieAndLogoutClearsIt(t *testing.T) {
	ui := newTestUI(t, false)
	b := ui.browser(t)

	if p := b.get("/review"); p.Status != http.StatusSeeOther || !strings.HasPrefix(p.Header.Get("Location"), "/login?next=%2Freview") {
		t.Fatalf("signed-out GET /review = %d %s, want a redirect to the login page", p.Status, p.Header.Get("Location"))
	}
	if p := b.get("/login"); p.Status != http.StatusOK || !strings.Contains(p.Body, `name="username"`) || !strings.Contains(p.Body, `name="password"`) {
		t.Fatalf("GET /login = %d\n%s", p.Status, p.Body)
	}

	bad := b.post("/login", url.Values{"username": {"gd-cab"}, "password": {"wrong"}})
	unknown := b.post("/login", url.Values{"username": {"nobody"}, "password": {"wrong"}})
	for _, p := range []page{bad, unknown} {
		if p.Status != http.StatusUnauthorized || sessionCookie(t, p) != nil {
			t.Fatalf("failed login = %d, cookie %v", p.Status, sessionCookie(t, p))
		}
	}
	if msg := "用户名或密码不正确"; !strings.Contains(bad.Body, msg) || !strings.Contains(unknown.Body, msg) {
		t.Errorf("failed logins do not both say %q", msg)
	}

	ok := b.post("/login", url.Values{"username": {"gd-cab"}, "password": {password}, "next": {"/post-hoc"}})
	c := sessionCookie(t, ok)
	if ok.Status != http.StatusSeeOther || c == nil {
		t.Fatalf("login = %d, cookie %v", ok.Status, c)
	}
	if ok.Header.Get("Location") != "/post-hoc" {
		t.Errorf("login went to %q, want the next page /post-hoc", ok.Header.Get("Location"))
	}
	if !c.HttpOnly || c.SameSite != http.SameSiteStrictMode || c.Secure || c.Path != "/" || c.MaxAge <= 0 {
		t.Errorf("session cookie = %+v, want HttpOnly, SameSite=Strict, Path=/, not Secure over plain HTTP", c)
	}
	if p := b.get("/"); p.Status != http.StatusSeeOther || p.Header.Get("Location") != "/review" {
		t.Errorf("regulator's / = %d %s, want /review", p.Status, p.Header.Get("Location"))
	}
	if p := b.get("/review"); p.Status != http.StatusOK {
		t.Errorf("GET /review after login = %d", p.Status)
	}

	out := b.post("/logout", nil)
	if c := sessionCookie(t, out); out.Status != http.StatusSeeOther || c == nil || c.MaxAge >= 0 || c.Value != "" {
		t.Fatalf("logout = %d, cookie %+v, want the cookie cleared", out.Status, c)
	}
	if p := b.get("/review"); p.Status != http.StatusSeeOther {
		t.Errorf("GET /review after logout = %d, want a redirect to login", p.Status)
	}

	if p := ui.loggedIn(t, "gd-met").get("/"); p.Header.Get("Location") != "/broadcasts" {
		t.Errorf("department's / goes to %q, want /broadcasts", p.Header.Get("Location"))
	}
	if p := b.post("/login", url.Values{"username": {"cmcc"}, "password": {password}}); p.Status != http.StatusUnauthorized {
		t.Errorf("a provider's login = %d, want 401: providers have no pages", p.Status)
	}
	if p := b.post("/login", url.Values{"username": {"gd-met"}, "password": {password}, "next": {"//evil.example/x"}}); p.Header.Get("Location") != "/" {
		t.Errorf("login with an off-site next went to %q, want /", p.Header.Get("Location"))
	}
}

func TestSessionCookieIsSecureOverTLS(t *testing.T) {
	ui := newTestUI(t, true)
	p := ui.browser(t).post("/login", url.Values{"username": {"gd-met"}, "password": {password}})
	if c := sessionCookie(t, p); c == nil || !c.Secure || !c.HttpOnly || c.SameSite != http.SameSiteStrictMode {
		t.Fatalf("session cookie over TLS = %+v, want Secure too", c)
	}
}

func TestFailedLoginsAreLimited(t *testing.T) {
	ui := newTestUI(t, false)
	b := ui.browser(t)
	for i := range 5 {
		if p := b.post("/login", url.Values{"username": {"gd-met"}, "password": {"guess"}}); p.Status != http.StatusUnauthorized {
			t.Fatalf("failure %d = %d", i+1, p.Status)
		}
	}
	p := b.post("/login", url.Values{"username": {"gd-met"}, "password": {password}})
	if p.Status != http.StatusTooManyRequests || sessionCookie(t, p) != nil || p.Header.Get("Retry-After") == "" {
		t.Fatalf("login after 5 failures = %d (Retry-After %q), want 429 even with the right password", p.Status, p.Header.Get("Retry-After"))
	}
	// Only the username at this address is slowed: a colleague behind the
	// same NAT signs in (see TestLoginLimitsTheSourceNotTheUsername).
	if p := ui.browser(t).post("/login", url.Values{"username": {"gd-cab"}, "password": {password}}); p.Status != http.StatusSeeOther {
		t.Fatalf("another username from the same address = %d, want success", p.Status)
	}
	ui.Clock.Add(5*time.Minute + time.Second)
	if p := b.post("/login", url.Values{"username": {"gd-met"}, "password": {password}}); p.Status != http.StatusSeeOther {
		t.Fatalf("login after the window = %d, want success", p.Status)
	}
}

func TestCrossOriginPostsAreRefused(t *testing.T) {
	ui := newTestUI(t, false)
	bc := ui.fileOrdinary(t, "防溺水提醒", "【广东省气象局】请远离危险水域。")
	cab := ui.loggedIn(t, "gd-cab")
	tests := []struct {
		name    string
		headers []string
	}{
		{"Sec-Fetch-Site cross-site", []string{"Sec-Fetch-Site", "cross-site", "Origin", "https://evil.example"}},
		{"foreign Origin", []string{"Sec-Fetch-Site", "", "Origin", "https://evil.example"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := cab.post("/broadcasts/"+bc.ID+"/approve", nil, tt.headers...)
			if p.Status != http.StatusForbidden {
				t.Fatalf("cross-origin approve = %d, want 403", p.Status)
			}
			if !strings.Contains(p.Body, "已拒绝来自其他网站的请求") {
				t.Errorf("403 page does not explain the refusal:\n%s", p.Body)
			}
			p = ui.browser(t).post("/login", url.Values{"username": {"gd-cab"}, "password": {password}}, tt.headers...)
			if p.Status != http.StatusForbidden || sessionCookie(t, p) != nil {
				t.Fatalf("cross-origin login = %d", p.Status)
			}
		})
	}
	got, err := ui.Service.Get(context.Background(), testkit.Actor(t, "gd-cab"), bc.ID)
	if err != nil || got.Status != tocsin.StatusPendingReview {
		t.Fatalf("after refused posts the broadcast is %v (%v), want still pending", got.Status, err)
	}
	if p := cab.post("/broadcasts/"+bc.ID+"/approve", nil); p.Status != http.StatusSeeOther {
		t.Fatalf("same-origin approve = %d\n%s", p.Status, p.Body)
	}
}

var (
	inlineScript  = regexp.MustCompile(`(?i)<script(?:\s[^>]*)?>`)
	inlineHandler = regexp.MustCompile(`(?i)\son[a-z]+\s*=`)
	inlineStyle   = regexp.MustCompile(`(?i)(\sstyle\s*=|<style)`)
)

// checkPage fails if a page lacks the security headers or carries inline
// script, style or event handlers, which the CSP would block.
func checkPage(t *testing.T, path string, p page) {
	t.Helper()
	want := map[string]string{
		"Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
		"X-Content-Type-Options":  "nosniff",
		"X-Frame-Options":         "DENY",
		"Referrer-Policy":         "same-origin",
	}
	for k, v := range want {
		if got := p.Header.Get(k); got != v {
			t.Errorf("%s: %s = %q, want %q", path, k, got, v)
		}
	}
	for _, m := range inlineScript.FindAllString(p.Body, -1) {
		if !strings.Contains(m, "src=") {
			t.Errorf("%s: inline script %q", path, m)
		}
	}
	if m := inlineHandler.FindString(p.Body); m != "" {
		t.Errorf("%s: inline event handler %q", path, m)
	}
	if m := inlineStyle.FindString(p.Body); m != "" {
		t.Errorf("%s: inline style %q", path, m)
	}
}

// TestEveryPageInBothLanguages renders every page for a department and a
// regulator in Chinese and English: each renders (a missing message fails
// the render), says which language it is in, and carries the security
// headers and no inline script or style.
func TestEveryPageInBothLanguages(t *testing.T) {
	ui := newTestUI(t, false)
	ordinary := ui.fileOrdinary(t, "防溺水提醒", "【广东省气象局】请远离危险水域。")
	rejected := ui.fileOrdinary(t, "秋季防火", "【广东省气象局】秋季干燥，注意防火。")
	if _, err := ui.Service.Reject(context.Background(), testkit.Actor(t, "gd-cab"), rejected.ID, tocsin.ReasonContent, "内容需注明发布单位。"); err != nil {
		t.Fatal(err)
	}
	emergency, _, err := ui.Service.File(context.Background(), testkit.Actor(t, "gd-met"), tocsin.Filing{
		Title: "台风红色预警", Content: "【广东省气象局】台风将于今夜登陆，请留在室内。", Scope: []string{"440100"},
		Emergency: &tocsin.Emergency{Type: tocsin.NaturalDisaster, Event: "typhoon", Level: tocsin.Red},
	}, "")
	if err != nil {
		t.Fatal(err)
	}
	pages := map[string][]string{
		"gd-met": {"/broadcasts", "/broadcasts?status=rejected", "/broadcasts/new", "/broadcasts/" + ordinary.ID,
			"/broadcasts/" + rejected.ID, "/broadcasts/" + emergency.ID, "/logout"},
		"gd-cab": {"/review", "/broadcasts", "/broadcasts/" + ordinary.ID, "/broadcasts/" + rejected.ID,
			"/broadcasts/" + emergency.ID, "/emergencies", "/post-hoc", "/providers"},
		"": {"/login"},
	}
	words := map[string]map[string]string{
		webui.LangZH: {"gd-met": "我的报备", "gd-cab": "待审队列", "": "登录"},
		webui.LangEN: {"gd-met": "My broadcasts", "gd-cab": "Review queue", "": "Sign in"},
	}
	for _, lang := range []string{webui.LangZH, webui.LangEN} {
		for user, paths := range pages {
			t.Run(lang+"/"+user, func(t *testing.T) {
				b := ui.browser(t)
				b.lang = map[string]string{webui.LangZH: "zh-CN,zh;q=0.9", webui.LangEN: "en-GB,en;q=0.9,zh;q=0.5"}[lang]
				if user != "" {
					b.login(user)
				}
				for _, path := range paths {
					p := b.get(path)
					if p.Status != http.StatusOK {
						t.Errorf("GET %s = %d\n%s", path, p.Status, p.Body)
						continue
					}
					if !strings.Contains(p.Body, `<html lang="`+lang+`">`) {
						t.Errorf("GET %s is not marked lang=%s", path, lang)
					}
					if w := words[lang][user]; !strings.Contains(p.Body, w) {
						t.Errorf("GET %s in %s does not say %q", path, lang, w)
					}
					checkPage(t, path, p)
				}
			})
		}
	}
}

func TestLanguageCookieWinsOverAcceptLanguage(t *testing.T) {
	ui := newTestUI(t, false)
	b := ui.browser(t)
	b.lang = "en"
	if p := b.get("/login"); !strings.Contains(p.Body, `lang="en"`) || !strings.Contains(p.Body, "Sign in") {
		t.Fatal("Accept-Language: en did not give English")
	}
	p := b.post("/lang", url.Values{"lang": {"zh-CN"}, "next": {"/login?x=1"}})
	if p.Status != http.StatusSeeOther || p.Header.Get("Location") != "/login?x=1" {
		t.Fatalf("POST /lang = %d %s", p.Status, p.Header.Get("Location"))
	}
	if p := b.get("/login"); !strings.Contains(p.Body, `lang="zh-CN"`) || !strings.Contains(p.Body, "用户名") {
		t.Fatal("the lang cookie did not win over Accept-Language")
	}
	if p := b.post("/lang", url.Values{"lang": {"en"}, "next": {"https://evil.example/"}}); p.Header.Get("Location") != "/" {
		t.Errorf("an off-site next went to %q", p.Header.Get("Location"))
	}
	if p := b.post("/lang", url.Values{"lang": {"fr"}}); p.Status != http.StatusUnprocessableEntity {
		t.Errorf("unknown language = %d, want 422", p.Status)
	}
}

func TestRegulatorPagesAreForbiddenToDepartments(t *testing.T) {
	ui := newTestUI(t, false)
	met := ui.loggedIn(t, "gd-met")
	for _, path := range []string{"/review", "/emergencies", "/emergencies/events", "/post-hoc", "/providers"} {
		p := met.get(path)
		if p.Status != http.StatusForbidden || !strings.Contains(p.Body, "此页面仅供电信管理机构使用") {
			t.Errorf("department GET %s = %d, want the 403 page", path, p.Status)
		}
		checkPage(t, path, p)
	}
	cab := ui.loggedIn(t, "gd-cab")
	if p := cab.get("/broadcasts/new"); p.Status != http.StatusForbidden {
		t.Errorf("regulator GET /broadcasts/new = %d, want 403", p.Status)
	}
	if p := cab.post("/broadcasts", url.Values{"title": {"x"}}); p.Status != http.StatusForbidden {
		t.Errorf("regulator POST /broadcasts = %d, want 403", p.Status)
	}
	if p := ui.loggedIn(t, "gz-em").get("/broadcasts/new"); p.Status != http.StatusForbidden || !strings.Contains(p.Body, "第十七条") {
		t.Errorf("prefecture department's filing form = %d, want 403 citing Article 17", p.Status)
	}
	// A department sees only its own broadcasts, a regulator only its province's.
	bc := ui.fileOrdinary(t, "防溺水提醒", "请远离危险水域。")
	if p := ui.loggedIn(t, "gx-cab").get("/broadcasts/" + bc.ID); p.Status != http.StatusForbidden {
		t.Errorf("Guangxi regulator opening a Guangdong broadcast = %d, want 403", p.Status)
	}
}

func TestUserTextIsEscaped(t *testing.T) {
	ui := newTestUI(t, false)
	const payload = `<script>alert(1)</script>"><img src=x onerror=alert(2)>`
	bc := ui.fileOrdinary(t, `"><img src=x onerror=alert(3)>`, payload)
	if _, err := ui.Service.Reject(context.Background(), testkit.Actor(t, "gd-cab"), bc.ID, tocsin.ReasonContent, `</textarea><script>alert(4)</script>`); err != nil {
		t.Fatal(err)
	}
	for _, user := range []string{"gd-met", "gd-cab"} {
		b := ui.loggedIn(t, user)
		for _, path := range []string{"/broadcasts/" + bc.ID, "/broadcasts"} {
			p := b.get(path)
			for _, raw := range []string{"<script>alert", "<img src=x", "</textarea><script>"} {
				if strings.Contains(p.Body, raw) {
					t.Errorf("%s GET %s contains %q unescaped", user, path, raw)
				}
			}
			if m := regexp.MustCompile(`<[a-z][^>]*\sonerror=`).FindString(p.Body); m != "" {
				t.Errorf("%s GET %s has an element with an onerror attribute: %q", user, path, m)
			}
			if !strings.Contains(p.Body, "&lt;script&gt;alert(") {
				t.Errorf("%s GET %s does not show the typed text escaped", user, path)
			}
		}
	}
}

func TestFilingWithoutJavaScript(t *testing.T) {
	ui := newTestUI(t, false)
	met := ui.loggedIn(t, "gd-met")
	form := met.get("/broadcasts/new")
	if !strings.Contains(form.Body, "2026-10-09") {
		t.Fatalf("the filing form does not show the earliest send date 2026-10-09")
	}
	key := regexp.MustCompile(`name="key" value="([0-9a-f]+)"`).FindStringSubmatch(form.Body)
	if key == nil {
		t.Fatal("the filing form has no idempotency key")
	}
	fields := url.Values{
		"key": {key[1]}, "title": {"国庆出行提醒"}, "content": {"【广东省气象局】国庆假期出行请关注天气预报。"},
		"province": {"440000"}, "prefecture": {"440100"}, "send_date": {"2026-10-08"}, "send_time": {"09:00"},
	}
	p := met.post("/broadcasts", fields)
	if p.Status != http.StatusUnprocessableEntity || !strings.Contains(p.Body, "2026-10-09") {
		t.Fatalf("a too-early filing = %d, want 422 naming 2026-10-09\n%s", p.Status, p.Body)
	}
	for _, typed := range []string{"国庆出行提醒", "国庆假期出行请关注天气预报", `value="2026-10-08"`, `<option value="440100" selected>`} {
		if !strings.Contains(p.Body, typed) {
			t.Errorf("the form shown again lost %q", typed)
		}
	}
	fields.Set("send_date", "2026-10-09")
	p = met.post("/broadcasts", fields)
	if p.Status != http.StatusSeeOther || !strings.HasPrefix(p.Header.Get("Location"), "/broadcasts/") {
		t.Fatalf("filing = %d %s\n%s", p.Status, p.Header.Get("Location"), p.Body)
	}
	loc := p.Header.Get("Location")
	again := met.post("/broadcasts", fields) // a double click
	if again.Header.Get("Location") != loc {
		t.Errorf("resubmitting the same form filed again: %s then %s", loc, again.Header.Get("Location"))
	}
	if detail := met.get(loc); !strings.Contains(detail.Body, "报备已提交") || !strings.Contains(detail.Body, "广东省 广州市") {
		t.Errorf("the detail after filing lacks the notice or the scope's name")
	}

	// An emergency over several regions, with the emergency fields.
	emergency := url.Values{
		"key": {"e-1"}, "title": {"暴雨橙色预警"}, "content": {"【广东省气象局】今夜有暴雨，请注意防范。"},
		"province": {"440000"}, "scope": {"440100", "440300"}, "emergency": {"1"},
		"send_time":      {"09:00"}, // the form's default, with no date: send now
		"emergency_type": {"natural_disaster"}, "event": {"rainstorm"}, "level": {"orange"},
	}
	// The first post only shows what will go out: live, where, through
	// which providers, the exact text. Nothing is filed yet.
	p = met.post("/broadcasts", emergency)
	if p.Status != http.StatusOK || !strings.Contains(p.Body, `id="confirm"`) {
		t.Fatalf("emergency filing = %d, want the confirmation\n%s", p.Status, p.Body)
	}
	for _, want := range []string{`data-mode="live"`, "实发", "广东省 广州市", "广东省 深圳市", `data-count="2"`,
		"中国移动", "中国联通", "今夜有暴雨，请注意防范。", "共 1 条短信", `name="confirm" value="1"`} {
		if !strings.Contains(p.Body, want) {
			t.Errorf("the confirmation lacks %q", want)
		}
	}
	if pg, err := ui.Service.List(context.Background(), testkit.Actor(t, "gd-met"), tocsin.Query{}); err != nil || len(pg.Broadcasts) != 1 {
		t.Fatalf("before the confirm %d broadcasts are filed (%v), want only the ordinary one", len(pg.Broadcasts), err)
	}
	emergency.Set("confirm", "1")
	p = met.post("/broadcasts", emergency)
	if p.Status != http.StatusSeeOther {
		t.Fatalf("confirmed emergency filing = %d\n%s", p.Status, p.Body)
	}
	id := strings.TrimPrefix(strings.Split(p.Header.Get("Location"), "?")[0], "/broadcasts/")
	b, err := ui.Service.Get(context.Background(), testkit.Actor(t, "gd-met"), id)
	if err != nil || b.Status != tocsin.StatusDispatching || len(b.Scope) != 2 || b.Emergency == nil || b.Emergency.Level != tocsin.Orange {
		t.Fatalf("emergency = %+v (%v)", b, err)
	}
	emergency.Set("key", "e-2")
	emergency.Del("event")
	if p := met.post("/broadcasts", emergency); p.Status != http.StatusUnprocessableEntity || !strings.Contains(p.Body, "请填写事件") {
		t.Errorf("emergency without an event = %d, want 422 asking for it", p.Status)
	}
}

func TestReviewWithoutJavaScript(t *testing.T) {
	ui := newTestUI(t, false)
	first := ui.fileOrdinary(t, "防溺水提醒", "【广东省气象局】请远离危险水域。")
	second := ui.fileOrdinary(t, "秋季防火", "【广东省气象局】注意防火。")
	cab := ui.loggedIn(t, "gd-cab")

	queue := cab.get("/review")
	if !strings.Contains(queue.Body, first.ID) || !strings.Contains(queue.Body, "剩 10 个工作日") {
		t.Fatalf("review queue lacks the filing or its working days:\n%s", queue.Body)
	}
	if p := cab.post("/broadcasts/"+first.ID+"/approve", nil); p.Status != http.StatusSeeOther || !strings.HasSuffix(p.Header.Get("Location"), "?done=approved") {
		t.Fatalf("approve = %d %s", p.Status, p.Header.Get("Location"))
	}
	if b, _ := ui.Service.Get(context.Background(), testkit.Actor(t, "gd-cab"), first.ID); b.Status != tocsin.StatusApproved {
		t.Fatalf("after approval the broadcast is %s", b.Status)
	}
	if p := cab.post("/broadcasts/"+first.ID+"/approve", nil); p.Status != http.StatusConflict || !strings.Contains(p.Body, "当前状态不允许") {
		t.Errorf("approving twice = %d, want 409 with the reason", p.Status)
	}

	p := cab.post("/broadcasts/"+second.ID+"/reject", url.Values{"reason_code": {"content"}, "reason": {""}})
	if p.Status != http.StatusUnprocessableEntity || !strings.Contains(p.Body, "请填写驳回说明") {
		t.Fatalf("reject without a reason = %d\n%s", p.Status, p.Body)
	}
	p = cab.post("/broadcasts/"+second.ID+"/reject", url.Values{"reason_code": {"not_public_welfare"}, "reason": {"这是商业推广，不属于公益短信。"}})
	if p.Status != http.StatusSeeOther {
		t.Fatalf("reject = %d\n%s", p.Status, p.Body)
	}
	met := ui.loggedIn(t, "gd-met")
	for _, path := range []string{"/broadcasts/" + second.ID, "/broadcasts"} {
		body := met.get(path).Body
		if !strings.Contains(body, "这是商业推广，不属于公益短信。") || !strings.Contains(body, "不属于公益性短信息") {
			t.Errorf("the department's %s does not show the rejection reason", path)
		}
	}
	if p := met.post("/broadcasts/"+first.ID+"/withdraw", url.Values{"reason": {"改期"}}); p.Status != http.StatusSeeOther {
		t.Errorf("withdraw = %d", p.Status)
	}
}

// event is one Server-Sent Event.
type event struct{ name, data string }

func readEvents(t *testing.T, r io.Reader, out chan<- event) {
	sc := bufio.NewScanner(r)
	var e event
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "":
			if e.name != "" {
				out <- e
			}
			e = event{}
		case strings.HasPrefix(line, "event: "):
			e.name = strings.TrimPrefix(line, "event: ")
		case strings.HasPrefix(line, "data: "):
			e.data = strings.TrimPrefix(line, "data: ")
		}
	}
	close(out)
}

func TestProgressStreamsUntilCompleted(t *testing.T) {
	ui := newTestUI(t, false)
	b := ui.fileEmergency(t, "台风红色预警", "台风将于今夜登陆。", "typhoon")
	met := ui.loggedIn(t, "gd-met")
	if detail := met.get("/broadcasts/" + b.ID); !strings.Contains(detail.Body, `data-events="/broadcasts/`+b.ID+`/events"`) {
		t.Fatal("the detail of a dispatching broadcast does not stream its progress")
	}
	req, _ := http.NewRequest(http.MethodGet, ui.URL+"/broadcasts/"+b.ID+"/events", nil)
	resp, err := met.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/event-stream") {
		t.Fatalf("Content-Type = %q", ct)
	}
	events := make(chan event, 16)
	go readEvents(t, resp.Body, events)
	next := func() event {
		t.Helper()
		select {
		case e, ok := <-events:
			if !ok {
				t.Fatal("the stream ended early")
			}
			return e
		case <-time.After(10 * time.Second):
			t.Fatal("no event")
		}
		return event{}
	}
	if e := next(); e.name != "progress" || !strings.Contains(e.data, `"status":"dispatching"`) || !strings.Contains(e.data, `"status":"queued"`) {
		t.Fatalf("first event = %+v", e)
	}
	ctx := context.Background()
	for _, p := range []string{"cmcc", "cucc"} {
		if err := ui.Service.ApplyReceipt(ctx, p, tocsin.Receipt{BroadcastID: b.ID, Status: "sending", Recipients: 100, Sent: 40, Delivered: 40}); err != nil {
			t.Fatal(err)
		}
	}
	if e := next(); e.name != "progress" || !strings.Contains(e.data, `"status":"sending"`) {
		t.Fatalf("after a receipt = %+v", e)
	}
	for _, p := range []string{"cmcc", "cucc"} {
		if err := ui.Service.ApplyReceipt(ctx, p, tocsin.Receipt{BroadcastID: b.ID, Status: "delivered", Recipients: 100, Sent: 100, Delivered: 99, Failed: 1}); err != nil {
			t.Fatal(err)
		}
	}
	var last event
	for e := range events { // the stream ends by itself once completed
		if e.name == "progress" {
			last = e
		}
		if e.name == "done" {
			if !strings.Contains(last.data, `"status":"completed"`) || !strings.Contains(last.data, `"value":100`) {
				t.Errorf("the last progress before done = %s", last.data)
			}
			return
		}
	}
	t.Fatal("the stream ended without a done event")
}

func TestPostHocReportAndReviewWithoutJavaScript(t *testing.T) {
	ui := newTestUI(t, false)
	b := ui.fileEmergency(t, "暴雨红色预警", "今夜有特大暴雨。", "rainstorm")
	cab := ui.loggedIn(t, "gd-cab")
	if p := cab.get("/post-hoc"); !strings.Contains(p.Body, `id="posthoc-due"`) || !strings.Contains(p.Body, b.ID) {
		t.Fatalf("the post-hoc queue does not list the report owed:\n%s", p.Body)
	}
	met := ui.loggedIn(t, "gd-met")
	if p := met.post("/broadcasts/"+b.ID+"/post-hoc", url.Values{"report": {""}}); p.Status != http.StatusUnprocessableEntity {
		t.Fatalf("an empty report = %d, want 422", p.Status)
	}
	const report = "气象台于 22:00 发布暴雨红色预警，需立即提醒公众。"
	if p := met.post("/broadcasts/"+b.ID+"/post-hoc", url.Values{"report": {report}}); p.Status != http.StatusSeeOther {
		t.Fatalf("filing the report = %d\n%s", p.Status, p.Body)
	}
	if p := cab.get("/post-hoc"); !strings.Contains(p.Body, `id="posthoc-filed"`) || !strings.Contains(p.Body, b.ID) {
		t.Fatal("the filed report is not in the regulator's queue")
	}
	if p := cab.get("/broadcasts/" + b.ID); !strings.Contains(p.Body, report) || !strings.Contains(p.Body, `action="/broadcasts/`+b.ID+`/post-hoc/review"`) {
		t.Fatal("the regulator's page lacks the report or the review form")
	}
	if p := cab.post("/broadcasts/"+b.ID+"/post-hoc/review", url.Values{"verdict": {"not_emergency"}}); p.Status != http.StatusUnprocessableEntity || !strings.Contains(p.Body, "须填写意见") {
		t.Fatalf("flagging without a note = %d, want 422 asking for one", p.Status)
	}
	if p := cab.post("/broadcasts/"+b.ID+"/post-hoc/review", url.Values{"verdict": {"not_emergency"}, "note": {"降雨未达预警标准。"}}); p.Status != http.StatusSeeOther {
		t.Fatalf("review = %d", p.Status)
	}
	if p := met.get("/broadcasts/" + b.ID); !strings.Contains(p.Body, "认定不属于紧急信息") || !strings.Contains(p.Body, "降雨未达预警标准。") {
		t.Error("the department does not see the verdict and note")
	}
}

func TestNotFoundAndStatic(t *testing.T) {
	ui := newTestUI(t, false)
	b := ui.loggedIn(t, "gd-met")
	if p := b.get("/broadcasts/BC999999"); p.Status != http.StatusNotFound || !strings.Contains(p.Body, "找不到") {
		t.Errorf("an unknown broadcast = %d", p.Status)
	}
	if p := b.get("/no/such/page"); p.Status != http.StatusNotFound {
		t.Errorf("an unknown page = %d", p.Status)
	}
	login := ui.browser(t).get("/login")
	css := regexp.MustCompile(`href="(/static/app\.css\?v=[0-9a-f]+)"`).FindStringSubmatch(login.Body)
	if css == nil {
		t.Fatal("the layout does not link a versioned stylesheet")
	}
	p := b.get(css[1])
	if p.Status != http.StatusOK || !strings.HasPrefix(p.Header.Get("Content-Type"), "text/css") ||
		!strings.Contains(p.Header.Get("Cache-Control"), "immutable") || p.Header.Get("X-Content-Type-Options") != "nosniff" {
		t.Errorf("GET %s = %d %v", css[1], p.Status, p.Header)
	}
}
