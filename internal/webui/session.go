package webui

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/tocsin-dev/tocsin/internal/auth"
	"github.com/tocsin-dev/tocsin/internal/httpapi"
	"github.com/tocsin-dev/tocsin/internal/tocsin"
)

// SessionCookie names the cookie that carries a session's JWT (audience
// auth.WebAudience, kind session, "sid" the stored session's id).
const SessionCookie = "tocsin_session"

// session is the signed-in person: the stored session their cookie names,
// the actor it acts as (read from the store on this request) and their
// organisation's record.
type session struct {
	ID    string // the stored session's id, ended by logout
	Actor tocsin.Actor
	Org   *tocsin.Organisation
}

type sessionKey struct{}

// sessionFrom returns the request's session, or nil outside requireSession.
func sessionFrom(ctx context.Context) *session {
	s, _ := ctx.Value(sessionKey{}).(*session)
	return s
}

// readSession verifies the session cookie, checks that its session is
// still stored and reads its organisation: role, level and jurisdiction
// are the organisation's now, not what the cookie said at login.
func (s *Server) readSession(r *http.Request) (*session, bool) {
	c, err := r.Cookie(SessionCookie)
	if err != nil || c.Value == "" {
		return nil, false
	}
	presented, err := s.Verifier.VerifyToken(c.Value)
	if err != nil {
		return nil, false
	}
	a, err := s.Service.Authenticate(r.Context(), presented)
	if err != nil {
		return nil, false
	}
	org, err := s.Service.Organisation(r.Context(), a.Org)
	if err != nil {
		return nil, false
	}
	return &session{ID: presented.ID, Actor: a, Org: org}, true
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

// login checks the username and password (argon2id), and on success
// stores a session and sets its cookie. Every failure reads the same, so
// the page does not tell which usernames exist. Failures slow down their
// source, not the username: see loginLimiter.
func (s *Server) login(w http.ResponseWriter, r *http.Request) error {
	username := strings.TrimSpace(r.PostFormValue("username"))
	password := r.PostFormValue("password")
	next := localPath(r.PostFormValue("next"), "/")
	p := loginPage{page: s.pageFor(r, "login"), Username: username, Next: next, Demo: s.Demo}
	now := s.Now()
	addr := s.clientAddr(r)
	// The attempt is counted before any hashing, so concurrent guesses
	// cannot all pass a check made before any of them failed.
	attempt, wait := s.logins.reserve(now, addr, username)
	if attempt == nil {
		s.Log.WarnContext(r.Context(), "login refused: too many failures", slog.String("username", username), slog.String("addr", addr))
		return &tocsin.Error{Code: tocsin.CodeRateLimited, Message: "too many failed logins",
			Details: map[string]any{"retry_after": int(wait.Seconds()) + 1}}
	}
	a, err := s.checkPassword(r.Context(), username, password)
	if errors.Is(err, auth.ErrBusy) {
		attempt.refund()
		s.Log.WarnContext(r.Context(), "login refused: password checks saturated", slog.String("addr", addr))
		return &tocsin.Error{Code: tocsin.CodeRateLimited, Message: "the server is busy checking passwords; try again shortly",
			Details: map[string]any{"retry_after": 1, "reason": "busy"}}
	}
	if err != nil {
		if !tocsin.IsCode(err, tocsin.CodeUnauthorized) {
			attempt.refund()
			return err
		}
		p.Error = p.L.S("login.failed")
		return s.render(w, r, http.StatusUnauthorized, "login", &p)
	}
	attempt.succeeded()
	id, err := tocsin.NewCredentialID()
	if err != nil {
		return err
	}
	err = s.Service.StartSession(r.Context(), tocsin.Credential{ID: id, Org: a.Org, Subject: a.Subject,
		IssuedAt: now, ExpiresAt: now.Add(s.SessionTTL)})
	if err != nil {
		return err
	}
	token, err := s.Keys.IssueKind(tocsin.CredentialSession, id, a, now, s.SessionTTL)
	if err != nil {
		return err
	}
	http.SetCookie(w, &http.Cookie{
		Name: SessionCookie, Value: token, Path: "/", MaxAge: int(s.SessionTTL.Seconds()),
		HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil,
	})
	s.Log.InfoContext(r.Context(), "web login", slog.String("actor", a.String()))
	http.Redirect(w, r, next, http.StatusSeeOther)
	return nil
}

// errLoginFailed is every wrong username, password or organisation.
var errLoginFailed = tocsin.Errorf(tocsin.CodeUnauthorized, "wrong username or password")

// checkPassword returns the actor a correct username and password sign in
// as. An unknown username is checked against a dummy hash under the same
// bound, so it costs the same time as a known one. It fails with
// errLoginFailed, auth.ErrBusy or a store error.
func (s *Server) checkPassword(ctx context.Context, username, password string) (tocsin.Actor, error) {
	if username == "" || password == "" || len(username) > maxUsername || len(password) > maxPassword {
		return tocsin.Actor{}, errLoginFailed
	}
	acct, org, err := s.Service.Account(ctx, username)
	hash := ""
	switch {
	case err == nil:
		hash = acct.PasswordHash
	case !tocsin.IsCode(err, tocsin.CodeNotFound):
		return tocsin.Actor{}, err
	}
	ok, err := s.Passwords.Check(ctx, hash, password)
	if errors.Is(err, auth.ErrBusy) || ctx.Err() != nil {
		return tocsin.Actor{}, errors.Join(err, ctx.Err())
	}
	if err != nil || !ok {
		return tocsin.Actor{}, errLoginFailed
	}
	if !org.Role.Valid() || org.Disabled {
		return tocsin.Actor{}, errLoginFailed // providers speak NATS; they have no pages
	}
	return tocsin.Actor{Subject: acct.Username, Role: org.Role, Org: org.ID, Level: org.Level, Jurisdiction: org.Jurisdiction}, nil
}

type logoutPage struct{ page }

func (s *Server) logoutPage(w http.ResponseWriter, r *http.Request) error {
	p := logoutPage{page: s.pageFor(r, "")}
	if sess, ok := s.readSession(r); ok {
		p.Session, p.OrgName = sess, orgName(sess.Org, p.Lang)
	}
	return s.render(w, r, http.StatusOK, "logout", &p)
}

// logout ends the stored session, so its cookie is worthless even if it
// was copied, and clears the cookie.
func (s *Server) logout(w http.ResponseWriter, r *http.Request) error {
	if sess, ok := s.readSession(r); ok {
		if err := s.Service.EndSession(r.Context(), sess.ID); err != nil {
			return err
		}
	}
	clearSession(w, r)
	http.Redirect(w, r, "/login", http.StatusSeeOther)
	return nil
}
