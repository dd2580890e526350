package webui

import (
	"context"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/tocsin-dev/tocsin/internal/auth"
	"github.com/tocsin-dev/tocsin/internal/httpapi"
	"github.com/tocsin-dev/tocsin/internal/tocsin"
)

// SessionCookie names the cookie that carries a session's JWT.
const SessionCookie = "tocsin_session"

// session is the signed-in person: the actor their JWT names and their
// organisation's record.
type session struct {
	Actor tocsin.Actor
	Org   *tocsin.Organisation
}

type sessionKey struct{}

// sessionFrom returns the request's session, or nil outside requireSession.
func sessionFrom(ctx context.Context) *session {
	s, _ := ctx.Value(sessionKey{}).(*session)
	return s
}

// readSession verifies the session cookie and loads its organisation.
func (s *Server) readSession(r *http.Request) (*session, bool) {
	c, err := r.Cookie(SessionCookie)
	if err != nil || c.Value == "" {
		return nil, false
	}
	a, err := s.Verifier.Verify(c.Value)
	if err != nil {
		return nil, false
	}
	var org *tocsin.Organisation
	err = s.view(r.Context(), func(tx tocsin.ReadTx) error {
		var err error
		org, err = tx.Organisation(a.Org)
		return err
	})
	if err != nil {
		return nil, false
	}
	return &session{Actor: a, Org: org}, true
}

// requireSession lets signed-in people through and sends everyone else to
// the login page, coming back here afterwards.
func (s *Server) requireSession(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sess, ok := s.readSession(r)
		if !ok {
			if _, err := r.Cookie(SessionCookie); err == nil {
				clearSession(w, r) // expired or from another key
			}
			if r.Method != http.MethodGet || strings.HasSuffix(r.URL.Path, "/events") {
				s.renderError(w, r, tocsin.Errorf(tocsin.CodeUnauthorized, "sign in first"))
				return
			}
			http.Redirect(w, r, "/login?next="+url.QueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
			return
		}
		ctx := context.WithValue(r.Context(), sessionKey{}, sess)
		ctx = httpapi.WithActor(ctx, sess.Actor)
		next.ServeHTTP(w, r.WithContext(ctx))
	})
}

// requireRole refuses, with a 403 page, anyone whose role is not listed.
func (s *Server) requireRole(roles ...tocsin.Role) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if sess := sessionFrom(r.Context()); sess == nil || !slices.Contains(roles, sess.Actor.Role) {
				reason := "regulator_only"
				if slices.Contains(roles, tocsin.RoleDepartment) {
					reason = "department_only"
				}
				s.renderError(w, r, &tocsin.Error{Code: tocsin.CodeForbidden, Message: "this page is not for your role",
					Details: map[string]any{"reason": reason}})
				return
			}
			next.ServeHTTP(w, r)
		})
	}
}

func clearSession(w http.ResponseWriter, r *http.Request) {
	http.SetCookie(w, &http.Cookie{
		Name: SessionCookie, Value: "", Path: "/", MaxAge: -1,
		HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil,
	})
}

type loginPage struct {
	page
	Username string
	Next     string
	Demo     bool
}

func (s *Server) loginPage(w http.ResponseWriter, r *http.Request) error {
	next := localPath(r.URL.Query().Get("next"), "/")
	if _, ok := s.readSession(r); ok {
		http.Redirect(w, r, next, http.StatusSeeOther)
		return nil
	}
	p := loginPage{page: s.pageFor(r, "login"), Next: next, Demo: s.Demo}
	return s.render(w, r, http.StatusOK, "login", &p)
}

// Bounds on what a login form may carry.
const (
	maxUsername = 64
	maxPassword = 1024
)

// login checks the username and password (argon2id), and on success sets
// the session cookie. Every failure reads the same, so the page does not
// tell which usernames exist; too many failures for one username or from
// one address lock both out for a while.
func (s *Server) login(w http.ResponseWriter, r *http.Request) error {
	username := strings.TrimSpace(r.PostFormValue("username"))
	password := r.PostFormValue("password")
	next := localPath(r.PostFormValue("next"), "/")
	p := loginPage{page: s.pageFor(r, "login"), Username: username, Next: next, Demo: s.Demo}
	now := s.Now()
	keys := []string{"user:" + strings.ToLower(username), "addr:" + clientAddr(r)}
	if wait, blocked := s.logins.blocked(now, keys...); blocked {
		s.Log.WarnContext(r.Context(), "login refused: too many failures", slog.String("username", username), slog.String("addr", clientAddr(r)))
		return &tocsin.Error{Code: tocsin.CodeRateLimited, Message: "too many failed logins",
			Details: map[string]any{"retry_after": int(wait.Seconds()) + 1}}
	}
	a, ok := s.checkPassword(r.Context(), username, password)
	if !ok {
		s.logins.fail(now, keys...)
		p.Error = p.L.S("login.failed")
		return s.render(w, r, http.StatusUnauthorized, "login", &p)
	}
	token, err := s.Keys.Issue(a, now, s.SessionTTL)
	if err != nil {
		return err
	}
	s.logins.reset(keys[0])
	http.SetCookie(w, &http.Cookie{
		Name: SessionCookie, Value: token, Path: "/", MaxAge: int(s.SessionTTL.Seconds()),
		HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil,
	})
	s.Log.InfoContext(r.Context(), "web login", slog.String("actor", a.String()))
	http.Redirect(w, r, next, http.StatusSeeOther)
	return nil
}

// checkPassword returns the actor a correct username and password sign in
// as. An unknown username costs the same hashing time as a known one.
func (s *Server) checkPassword(ctx context.Context, username, password string) (tocsin.Actor, bool) {
	if username == "" || password == "" || len(username) > maxUsername || len(password) > maxPassword {
		return tocsin.Actor{}, false
	}
	var acct *tocsin.Account
	var org *tocsin.Organisation
	err := s.view(ctx, func(tx tocsin.ReadTx) error {
		var err error
		if acct, err = tx.Account(username); err != nil {
			return err
		}
		org, err = tx.Organisation(acct.Org)
		return err
	})
	if err != nil {
		_, _ = auth.VerifyPassword(s.dummyPH, password)
		return tocsin.Actor{}, false
	}
	if ok, err := auth.VerifyPassword(acct.PasswordHash, password); err != nil || !ok {
		return tocsin.Actor{}, false
	}
	if !org.Role.Valid() {
		return tocsin.Actor{}, false // providers speak NATS; they have no pages
	}
	return tocsin.Actor{Subject: acct.Username, Role: org.Role, Org: org.ID, Level: org.Level, Jurisdiction: org.Jurisdiction}, true
}

func hashForTiming() (string, error) {
	return auth.HashPassword("tocsin: a password nobody has")
}

type logoutPage struct{ page }

func (s *Server) logoutPage(w http.ResponseWriter, r *http.Request) error {
	p := logoutPage{page: s.pageFor(r, "")}
	if sess, ok := s.readSession(r); ok {
		p.Session, p.OrgName = sess, orgName(sess.Org, p.Lang)
	}
	return s.render(w, r, http.StatusOK, "logout", &p)
}

// logout clears the session cookie. The JWT inside stays valid until it
// expires, like any bearer token; the cookie is gone from this browser.
func (s *Server) logout(w http.ResponseWriter, r *http.Request) error {
	clearSession(w, r)
	http.Redirect(w, r, "/login", http.StatusSeeOther)
	return nil
}

// clientAddr is the peer's IP address. Forwarding headers are not trusted:
// behind a proxy, all clients share its address and its limit.
func clientAddr(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// limiter counts failures per key in a sliding window.
type limiter struct {
	max    int
	window time.Duration

	mu       sync.Mutex
	failures map[string][]time.Time // guarded by mu; times within the window, oldest first
}

// maxLimiterKeys bounds the limiter's memory; beyond it, keys whose
// failures have all expired are dropped.
const maxLimiterKeys = 10000

func newLimiter(max int, window time.Duration) *limiter {
	return &limiter{max: max, window: window, failures: map[string][]time.Time{}}
}

// blocked reports whether any key has reached the limit, and how long
// until it has not.
func (l *limiter) blocked(now time.Time, keys ...string) (time.Duration, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	var wait time.Duration
	for _, k := range keys {
		times := l.recent(now, k)
		if len(times) >= l.max {
			wait = max(wait, times[len(times)-l.max].Add(l.window).Sub(now))
		}
	}
	return wait, wait > 0
}

func (l *limiter) fail(now time.Time, keys ...string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.failures) >= maxLimiterKeys {
		for k := range l.failures {
			if len(l.recent(now, k)) == 0 {
				delete(l.failures, k)
			}
		}
	}
	for _, k := range keys {
		times := append(l.recent(now, k), now)
		if len(times) > l.max {
			times = times[len(times)-l.max:]
		}
		l.failures[k] = times
	}
}

func (l *limiter) reset(key string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.failures, key)
}

// recent drops key's expired failures and returns the rest. Callers hold
// mu.
func (l *limiter) recent(now time.Time, key string) []time.Time {
	times := l.failures[key]
	i := 0
	for i < len(times) && !times[i].After(now.Add(-l.window)) {
		i++
	}
	if i == len(times) {
		delete(l.failures, key)
		return nil
	}
	times = times[i:]
	l.failures[key] = times
	return times
}
