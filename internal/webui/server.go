// Package webui serves Tocsin's web pages: the regulator's review queue,
// broadcast details with approve and reject, the emergency board and the
// post-hoc queue, and the department's filing form and broadcast list, in
// Chinese (zh-CN, the default) and English.
//
// Pages are rendered on the server from the templates in package web,
// parsed once by New. Every action is a plain form post that works
// without JavaScript; the small script in web/static adds the live parts
// (SMS segment count, earliest send date, region picker, progress over
// Server-Sent Events). A session is an HttpOnly, SameSite=Strict cookie
// holding a JWT the API does not accept (audience auth.WebAudience).
// Cross-site posts are refused by http.CrossOriginProtection, and every
// response carries a Content-Security-Policy that allows no inline script
// or style.
//
// A session is a stored record (tocsin.Credential) that the cookie's JWT
// names by id and that logout, a password change or a change to the
// organisation ends; every request reads the organisation's role, level
// and jurisdiction from the store.
package webui

import (
	"errors"
	"io/fs"
	"log/slog"
	"net/http"
	"net/netip"
	"net/url"
	"sync"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/tocsin-dev/tocsin/internal/auth"
	"github.com/tocsin-dev/tocsin/internal/calendar"
	"github.com/tocsin-dev/tocsin/internal/region"
	"github.com/tocsin-dev/tocsin/internal/tocsin"
	"github.com/tocsin-dev/tocsin/web"
)

// TokenIssuer mints the JWT a session cookie carries (auth.Keys).
type TokenIssuer interface {
	IssueKind(kind tocsin.CredentialKind, id string, a tocsin.Actor, now time.Time, ttl time.Duration) (string, error)
}

// TokenVerifier checks a session's JWT (auth.Keys.WebVerifier) and returns
// the session it presents. Any error means the cookie is not valid.
type TokenVerifier interface {
	VerifyToken(token string) (tocsin.Credential, error)
}

// Config holds the web UI's dependencies and settings. Zero settings take
// the defaults in code.
type Config struct {
	Service  *tocsin.Service
	Regions  *region.Divisions
	Keys     TokenIssuer
	Verifier TokenVerifier
	// LastSeen tells when a provider was last seen pulling or reporting
	// (the NATS dispatcher's view); nil uses only the stored time.
	LastSeen func(provider string) (time.Time, bool)
	// Now is the real clock, for session expiry and login limits. The
	// service's clock (which the demo may set) decides working days.
	Now func() time.Time
	Log *slog.Logger

	// SessionTTL is how long a login lasts; default 12 hours.
	SessionTTL time.Duration
	// LoginFailures failed logins for one username from one client
	// address, or LoginAddressFailures from one address for any
	// usernames, lock that source for LoginLockout, doubled with every
	// further failure up to LoginMaxLockout; defaults 5, 20, 1 minute and
	// 1 hour. See loginLimiter.
	LoginFailures        int
	LoginAddressFailures int
	LoginLockout         time.Duration
	LoginMaxLockout      time.Duration
	// TrustedProxies are the reverse proxies whose X-Forwarded-For names
	// the client; empty trusts none.
	TrustedProxies []netip.Prefix
	// Passwords checks passwords under a bound on concurrent hashing;
	// nil makes one sized from memory (auth.HashSlots).
	Passwords *auth.PasswordGate
	// PollInterval is how often a progress stream reads the broadcast;
	// default 500ms.
	PollInterval time.Duration
	// Calendars loads working-day calendars (the admin's calendar page);
	// nil hides the page.
	Calendars *calendar.Book
	// Demo shows the demo logins on the login page.
	Demo bool
	// Files replaces the embedded web files (tests); nil uses web.FS().
	Files fs.FS
	// PublicURL is the base the public reaches Tocsin at (--public-url);
	// its origin is trusted for form posts as well as the request's own,
	// for a proxy in front that rewrites Host. The web writes no absolute
	// links: every link on its pages is relative.
	PublicURL string
}

// Server serves the web UI.
type Server struct {
	Config
	views  *views
	logins *loginLimiter
	static http.Handler

	// streamsDone ends every open event stream (CloseStreams): a graceful
	// shutdown waits for handlers, and a stream would otherwise hold it
	// until its own end.
	streamsDone  chan struct{}
	closeStreams sync.Once
}

// CloseStreams ends every open event stream now and refuses new ones. The
// HTTP server calls it when shutdown begins.
func (s *Server) CloseStreams() { s.closeStreams.Do(func() { close(s.streamsDone) }) }

// New checks cfg, parses every template and catalog, and returns a server.
// A broken template or a catalog missing a message is an error here, at
// start, never in front of a user.
func New(cfg Config) (*Server, error) {
	if cfg.Service == nil || cfg.Regions == nil || cfg.Keys == nil || cfg.Verifier == nil {
		return nil, errors.New("webui: Service, Regions, Keys and Verifier are required")
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.SessionTTL <= 0 {
		cfg.SessionTTL = 12 * time.Hour
	}
	if cfg.LoginFailures <= 0 {
		cfg.LoginFailures = 5
	}
	if cfg.LoginAddressFailures <= 0 {
		cfg.LoginAddressFailures = 4 * cfg.LoginFailures
	}
	if cfg.LoginLockout <= 0 {
		cfg.LoginLockout = time.Minute
	}
	if cfg.LoginMaxLockout < cfg.LoginLockout {
		cfg.LoginMaxLockout = max(time.Hour, cfg.LoginLockout)
	}
	if cfg.Passwords == nil {
		var err error
		if cfg.Passwords, err = auth.NewPasswordGate(0, 0); err != nil {
			return nil, err
		}
	}
	if cfg.PollInterval <= 0 {
		cfg.PollInterval = 500 * time.Millisecond
	}
	if cfg.Files == nil {
		cfg.Files = web.FS()
	}
	v, err := loadViews(cfg.Files, cfg.Regions)
	if err != nil {
		return nil, err
	}
	static, err := fs.Sub(cfg.Files, "static")
	if err != nil {
		return nil, err
	}
	s := &Server{
		Config: cfg,
		views:  v,
		logins: newLoginLimiter(cfg.LoginFailures, cfg.LoginAddressFailures, cfg.LoginLockout, cfg.LoginMaxLockout),
		static: http.StripPrefix("/static/", http.FileServerFS(static)),

		streamsDone: make(chan struct{}),
	}
	return s, nil
}

// Routes returns the web UI's router, to be mounted at "/".
func (s *Server) Routes() chi.Router {
	r := chi.NewRouter()
	r.Use(secureHeaders, s.negotiateLanguage)

	// Every unsafe method on every route passes the cross-origin check
	// (Sec-Fetch-Site, else Origin against Host); safe methods pass.
	cop := http.NewCrossOriginProtection()
	cop.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.renderError(w, r, &tocsin.Error{Code: tocsin.CodeForbidden, Message: "cross-origin request refused",
			Details: map[string]any{"reason": "cross_origin"}})
	}))
	if s.PublicURL != "" {
		if u, err := url.Parse(s.PublicURL); err == nil && u.Scheme != "" && u.Host != "" {
			if err := cop.AddTrustedOrigin(u.Scheme + "://" + u.Host); err != nil {
				s.Log.Warn("public URL is not a trusted origin", slog.String("url", s.PublicURL), slog.Any("error", err))
			}
		}
	}
	r.Use(cop.Handler)
	r.Use(limitForm)

	r.Get("/static/*", s.serveStatic)
	r.Get("/login", s.handle(s.loginPage))
	r.Post("/login", s.handle(s.login))
	r.Get("/logout", s.handle(s.logoutPage))
	r.Post("/logout", s.handle(s.logout))
	r.Post("/lang", s.handle(s.switchLanguage))

	r.Group(func(r chi.Router) {
		r.Use(s.requireSession)
		r.Get("/", s.handle(s.home))
		r.Route("/inbox", s.inboxRoutes)
		r.Get("/broadcasts", s.handle(s.listPage))
		r.Post("/broadcasts", s.handle(s.file))
		r.With(s.requireRole(tocsin.RoleDepartment)).Get("/broadcasts/new", s.handle(s.filingPage))
		r.Route("/broadcasts/{id}", func(r chi.Router) {
			r.Get("/", s.handle(s.detailPage))
			r.Get("/events", s.handle(s.broadcastEvents))
			r.Post("/approve", s.handle(s.approve))
			r.Post("/reject", s.handle(s.reject))
			r.Post("/withdraw", s.handle(s.withdraw))
			r.Post("/cancel", s.handle(s.cancel))
			r.Get("/correct", s.handle(s.correctionPage))
			r.Post("/update", s.handle(s.file))
			r.Post("/resend", s.handle(s.resend))
			r.Post("/post-hoc", s.handle(s.filePostHoc))
			r.Post("/post-hoc/review", s.handle(s.reviewPostHoc))
		})
		r.Group(func(r chi.Router) {
			r.Use(s.requireRole(tocsin.RoleRegulator, tocsin.RoleAdmin))
			r.Get("/review", s.handle(s.reviewPage))
			r.Get("/emergencies", s.handle(s.emergenciesPage))
			r.Get("/emergencies/events", s.handle(s.boardEvents))
			r.Get("/post-hoc", s.handle(s.postHocPage))
			r.Get("/providers", s.handle(s.providersPage))
		})
		r.Group(func(r chi.Router) {
			r.Use(s.requireRole(tocsin.RoleAdmin))
			r.Get("/calendars", s.handle(s.calendarsPage))
			r.Post("/calendars", s.handle(s.loadCalendar))
		})
	})
	r.NotFound(s.handle(func(w http.ResponseWriter, r *http.Request) error {
		return tocsin.Errorf(tocsin.CodeNotFound, "no page at %s", r.URL.Path)
	}))
	r.MethodNotAllowed(s.handle(func(w http.ResponseWriter, r *http.Request) error {
		return &tocsin.Error{Code: tocsin.CodeInvalid, Message: "method " + r.Method + " is not allowed here",
			Details: map[string]any{"reason": "method"}}
	}))
	return r
}

// handlerFunc is a page handler that returns its error for one place to
// render.
type handlerFunc func(w http.ResponseWriter, r *http.Request) error

func (s *Server) handle(h handlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if err := h(w, r); err != nil {
			s.renderError(w, r, err)
		}
	}
}

// ContentSecurityPolicy allows only this origin's script, style and
// connections; no inline script, style or event handler runs.
const ContentSecurityPolicy = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"

func secureHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", ContentSecurityPolicy)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "same-origin")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Cross-Origin-Opener-Policy", "same-origin")
		h.Set("Permissions-Policy", "camera=(), microphone=(), geolocation=()")
		next.ServeHTTP(w, r)
	})
}

// maxFormBytes bounds a form post; the largest is a post-hoc report.
const maxFormBytes = 256 << 10

func limitForm(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost {
			r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
		}
		next.ServeHTTP(w, r)
	})
}

func (s *Server) serveStatic(w http.ResponseWriter, r *http.Request) {
	// Pages link assets with ?v=<content hash>, so a versioned URL never
	// changes content and may be cached for long.
	if r.URL.Query().Get("v") != "" {
		w.Header().Set("Cache-Control", "public, max-age=31536000, immutable")
	} else {
		w.Header().Set("Cache-Control", "no-cache")
	}
	s.static.ServeHTTP(w, r)
}

// home sends each role to its first page.
func (s *Server) home(w http.ResponseWriter, r *http.Request) error {
	to := "/broadcasts"
	if sessionFrom(r.Context()).Actor.Role == tocsin.RoleRegulator {
		to = "/review"
	}
	http.Redirect(w, r, to, http.StatusSeeOther)
	return nil
}

// now is the service's clock in Asia/Shanghai: working days and due dates
// follow it (the demo can set it).
func (s *Server) serviceNow() time.Time { return s.Service.Clock.Now().In(tocsin.Shanghai) }
