package webui_test

import (
	"context"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tocsin-dev/tocsin/internal/auth"
	"github.com/tocsin-dev/tocsin/internal/demo"
	"github.com/tocsin-dev/tocsin/internal/tocsin"
	"github.com/tocsin-dev/tocsin/internal/webui"
)

// withGate gives the UI a password gate of its own, to measure.
func withGate(t *testing.T, slots int, wait time.Duration) (*auth.PasswordGate, func(*webui.Config)) {
	t.Helper()
	g, err := auth.NewPasswordGate(slots, wait)
	if err != nil {
		t.Fatal(err)
	}
	return g, func(c *webui.Config) { c.Passwords = g }
}

// behindProxy trusts the test's loopback client as a reverse proxy, so
// X-Forwarded-For names the client.
func behindProxy(c *webui.Config) {
	c.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")}
}

// postLogin signs in as a browser behind a proxy that reports client
// (none if ""), from any goroutine, and returns the status.
func (ui *testUI) postLogin(user, pass, client string) (int, error) {
	form := url.Values{"username": {user}, "password": {pass}}
	req, err := http.NewRequest(http.MethodPost, ui.URL+"/login", strings.NewReader(form.Encode()))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	if client != "" {
		req.Header.Set("X-Forwarded-For", client)
	}
	c := *ui.server.Client()
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	resp, err := c.Do(req)
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	return resp.StatusCode, nil
}

// concurrently runs n logins at once and counts the statuses.
func (ui *testUI) concurrently(t *testing.T, n int, login func(i int) (user, pass, client string)) map[int]int {
	t.Helper()
	var (
		wg     sync.WaitGroup
		mu     sync.Mutex
		counts = map[int]int{}
		start  = make(chan struct{})
	)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			user, pass, client := login(i)
			<-start
			status, err := ui.postLogin(user, pass, client)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				t.Errorf("login %d: %v", i, err)
			}
			counts[status]++
		}()
	}
	close(start)
	wg.Wait()
	return counts
}

func TestConcurrentWrongPasswordsAreCheckedAtMostTheLimit(t *testing.T) {
	gate, opt := withGate(t, 2, 30*time.Second)
	ui := newTestUI(t, false, opt)
	counts := ui.concurrently(t, 30, func(int) (string, string, string) { return "miit", "guess", "" })
	t.Logf("30 concurrent wrong passwords: %v; %d hashes run", counts, gate.Runs())
	if counts[http.StatusUnauthorized] > 5 || counts[http.StatusUnauthorized]+counts[http.StatusTooManyRequests] != 30 {
		t.Errorf("statuses %v, want at most 5 × 401 and the rest 429", counts)
	}
	if gate.Runs() > 5 {
		t.Errorf("%d passwords were hashed, want at most 5", gate.Runs())
	}
}

func TestPasswordHashingIsBoundedAndUnknownUsernamesCostAHash(t *testing.T) {
	gate, opt := withGate(t, 2, 30*time.Second)
	ui := newTestUI(t, false, opt, behindProxy)
	const n = 16
	counts := ui.concurrently(t, n, func(i int) (string, string, string) {
		user := "gd-met"
		if i%2 == 1 {
			user = "nobody" // an unknown username
		}
		return user, "guess", netip.AddrFrom4([4]byte{198, 51, 100, byte(i + 1)}).String()
	})
	t.Logf("%d concurrent logins through %d slots: %v; peak %d concurrent hashes, %d run", n, gate.Slots(), counts, gate.Peak(), gate.Runs())
	if counts[http.StatusUnauthorized] != n {
		t.Errorf("statuses %v, want %d × 401", counts, n)
	}
	if gate.Peak() > gate.Slots() {
		t.Errorf("peak %d concurrent hashes, want at most %d", gate.Peak(), gate.Slots())
	}
	if gate.Runs() != n {
		t.Errorf("%d hashes for %d logins, half of them unknown usernames: want one each, so no username is cheaper", gate.Runs(), n)
	}
}

func TestSaturatedHashingAnswers429AndDoesNotCountAgainstTheUser(t *testing.T) {
	gate, opt := withGate(t, 1, time.Millisecond)
	ui := newTestUI(t, false, opt, behindProxy)
	counts := ui.concurrently(t, 8, func(int) (string, string, string) { return "gd-met", "guess", "203.0.113.7" })
	t.Logf("8 logins through 1 slot with a 1ms queue: %v; peak %d", counts, gate.Peak())
	if counts[http.StatusTooManyRequests] == 0 || gate.Peak() != 1 {
		t.Errorf("statuses %v, peak %d: want some 429 (busy) and never more than one hash at once", counts, gate.Peak())
	}
	// The refused ones were never checked, so they cost the user nothing:
	// gd-met, whose wrong guesses were at most the ones checked, still signs in.
	if counts[http.StatusUnauthorized] < 5 {
		if status, err := ui.postLogin("gd-met", password, "203.0.113.7"); err != nil || status != http.StatusSeeOther {
			t.Errorf("right password after busy refusals = %d %v, want 303", status, err)
		}
	}
}

func TestLoginLimitsTheSourceNotTheUsername(t *testing.T) {
	ui := newTestUI(t, false, behindProxy)
	const office, home = "203.0.113.7", "198.51.100.9"
	login := func(user, pass, client string) int {
		t.Helper()
		status, err := ui.postLogin(user, pass, client)
		if err != nil {
			t.Fatal(err)
		}
		return status
	}
	for i := range 5 {
		if s := login("gd-met", "typo", office); s != http.StatusUnauthorized {
			t.Fatalf("typo %d = %d, want 401", i+1, s)
		}
	}
	steps := []struct {
		name          string
		user, client  string
		pass          string
		want          int
		advanceBefore time.Duration
	}{
		{"the same username at the office is slowed", "gd-met", office, password, http.StatusTooManyRequests, 0},
		{"a colleague at the office signs in", "gx-health", office, password, http.StatusSeeOther, 0},
		{"the same username elsewhere signs in", "gd-met", home, password, http.StatusSeeOther, 0},
		{"a spoofed hop left of the office's proxy changes nothing", "gd-met", "192.0.2.1, " + office, password, http.StatusTooManyRequests, 0},
		{"after the first lockout, one more try", "gd-met", office, "typo", http.StatusUnauthorized, time.Minute + time.Second},
		{"which doubles the lockout", "gd-met", office, password, http.StatusTooManyRequests, time.Minute + time.Second},
		{"and then it passes", "gd-met", office, password, http.StatusSeeOther, time.Minute},
	}
	for _, st := range steps {
		ui.Clock.Add(st.advanceBefore)
		if got := login(st.user, st.pass, st.client); got != st.want {
			t.Errorf("%s: %d, want %d", st.name, got, st.want)
		}
	}
}

func TestForwardedForIsIgnoredWithoutTrustedProxies(t *testing.T) {
	ui := newTestUI(t, false)
	for range 5 {
		if s, _ := ui.postLogin("gd-met", "typo", "203.0.113.1"); s != http.StatusUnauthorized {
			t.Fatalf("typo = %d", s)
		}
	}
	if s, _ := ui.postLogin("gd-met", password, "203.0.113.2"); s != http.StatusTooManyRequests {
		t.Errorf("a different X-Forwarded-For from an untrusted peer = %d, want 429: the header is the client's to invent", s)
	}
}

func TestOneAddressIsLimitedAcrossUsernames(t *testing.T) {
	ui := newTestUI(t, false, behindProxy, func(c *webui.Config) { c.LoginAddressFailures = 6 })
	for i := range 6 {
		if s, _ := ui.postLogin("user"+string(rune('a'+i)), "guess", "203.0.113.9"); s != http.StatusUnauthorized {
			t.Fatalf("guess %d = %d", i+1, s)
		}
	}
	if s, _ := ui.postLogin("miit", password, "203.0.113.9"); s != http.StatusTooManyRequests {
		t.Errorf("after spraying usernames, the address = %d, want 429", s)
	}
	if s, _ := ui.postLogin("miit", password, "203.0.113.10"); s != http.StatusSeeOther {
		t.Errorf("another address = %d, want 303", s)
	}
}

// cookieOf returns the session cookie a browser holds.
func (b *browser) cookieOf() *http.Cookie {
	u, _ := url.Parse(b.ui.URL)
	for _, c := range b.client.Jar.Cookies(u) {
		if c.Name == webui.SessionCookie {
			return c
		}
	}
	return nil
}

// withCookie is a fresh browser holding a copy of c, as a thief would.
func (ui *testUI) withCookie(t *testing.T, c *http.Cookie) *browser {
	b := ui.browser(t)
	u, _ := url.Parse(ui.URL)
	b.client.Jar.SetCookies(u, []*http.Cookie{{Name: c.Name, Value: c.Value, Path: "/"}})
	return b
}

func TestSessionsEnd(t *testing.T) {
	newHash, err := auth.HashPassword("a-new-password")
	if err != nil {
		t.Fatal(err)
	}
	org := func(id string) tocsin.Organisation {
		o, _ := demo.Organisation(id)
		return o
	}
	tests := []struct {
		name   string
		user   string
		change func(ctx context.Context, svc *tocsin.Service, b *browser) error
	}{
		{"logout", "gd-met", func(_ context.Context, _ *tocsin.Service, b *browser) error {
			if p := b.post("/logout", nil); p.Status != http.StatusSeeOther {
				t.Errorf("logout = %d", p.Status)
			}
			return nil
		}},
		{"password changed", "gd-met", func(ctx context.Context, svc *tocsin.Service, _ *browser) error {
			return svc.PutOrganisation(ctx, org("gd-met"), &tocsin.Account{Username: "gd-met", Org: "gd-met", PasswordHash: newHash})
		}},
		{"regulator demoted", "gd-cab", func(ctx context.Context, svc *tocsin.Service, _ *browser) error {
			o := org("gd-cab")
			o.Role, o.SenderCode = tocsin.RoleDepartment, "12300440"
			return svc.PutOrganisation(ctx, o, nil)
		}},
		{"department moved", "gd-met", func(ctx context.Context, svc *tocsin.Service, _ *browser) error {
			o := org("gd-met")
			o.Jurisdiction = "450000"
			return svc.PutOrganisation(ctx, o, nil)
		}},
		{"organisation disabled", "gd-met", func(ctx context.Context, svc *tocsin.Service, _ *browser) error {
			o := org("gd-met")
			o.Disabled = true
			return svc.PutOrganisation(ctx, o, nil)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ui := newTestUI(t, false)
			b := ui.loggedIn(t, tt.user)
			other := ui.loggedIn(t, "miit") // someone else's session, to outlive the change
			stolen := ui.withCookie(t, b.cookieOf())
			if p := stolen.get("/broadcasts"); p.Status != http.StatusOK {
				t.Fatalf("copied cookie before the change = %d, want 200", p.Status)
			}
			if err := tt.change(context.Background(), ui.Service, b); err != nil {
				t.Fatal(err)
			}
			if p := stolen.get("/broadcasts"); p.Status != http.StatusSeeOther || !strings.HasPrefix(p.Header.Get("Location"), "/login") {
				t.Errorf("copied cookie after %s = %d %s, want a redirect to the login page", tt.name, p.Status, p.Header.Get("Location"))
			}
			if p := other.get("/review"); p.Status != http.StatusOK {
				t.Errorf("miit's own session after %s = %d, want 200", tt.name, p.Status)
			}
		})
	}
}

func TestUnchangedOrganisationKeepsItsSessions(t *testing.T) {
	ui := newTestUI(t, false)
	b := ui.loggedIn(t, "gd-met")
	o, _ := demo.Organisation("gd-met")
	o.Name = "Guangdong Meteorological Service (renamed)"
	if err := ui.Service.PutOrganisation(context.Background(), o, nil); err != nil {
		t.Fatal(err)
	}
	if p := b.get("/broadcasts"); p.Status != http.StatusOK {
		t.Errorf("after a rename (no change of authority) = %d, want 200", p.Status)
	}
}
