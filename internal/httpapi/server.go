// Package httpapi serves Tocsin's JSON API under /api/v1: filing, review and
// the other transitions of a broadcast, the working-day calendar, the
// directory, health and metrics. Handlers parse, call the domain service and
// render; errors are rendered in one place with stable codes.
package httpapi

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/tocsin-dev/tocsin/internal/cap"
	"github.com/tocsin-dev/tocsin/internal/metrics"
	"github.com/tocsin-dev/tocsin/internal/tocsin"
)

// MaxBodyBytes caps request bodies; a filing is at most a few kilobytes.
const MaxBodyBytes = 1 << 20

// TokenVerifier checks a bearer token's signature, audience and expiry
// and returns the credential it presents (auth.Verifier); the service
// then looks that up. Its errors all mean 401.
type TokenVerifier interface {
	VerifyToken(token string) (tocsin.Credential, error)
}

// TokenSigner signs the JWT of a service token the admin issues
// (auth.Keys).
type TokenSigner interface {
	IssueKind(kind tocsin.CredentialKind, id string, a tocsin.Actor, now time.Time, ttl time.Duration) (string, error)
}

// Server holds the API's dependencies.
type Server struct {
	Service  *tocsin.Service
	Verifier TokenVerifier
	Regions  RegionDirectory
	Days     DayLister
	// Providers registers providers; nil until dispatch is wired.
	Providers ProviderRegistry
	// Calendars loads working-day calendars at run time; nil disables it.
	Calendars CalendarBook
	// Purger applies the retention policy on demand.
	Purger  Purger
	Log     *slog.Logger
	Metrics *metrics.Metrics // nil records nothing and serves no /metrics
	// Ready reports whether the coordinator can do its job, shown on
	// /readyz.
	Ready func(ctx context.Context) Readiness
	// Passwords hashes a new account's password.
	Passwords func(password string) (string, error)
	// PublicURL is the base of every absolute link the API writes (CAP
	// and Atom): scheme, host and any path prefix, as the public reaches
	// Tocsin (--public-url). Empty means the address the connection came
	// in on; a request's Host header is never used.
	PublicURL string
	// Tokens signs the service tokens POST /tokens issues; nil disables
	// issuing (listing and revoking still work).
	Tokens TokenSigner
	// Now is the real clock tokens are issued and expire by (the demo's
	// service clock may be elsewhere); default time.Now.
	Now func() time.Time
	// Localize words an error's message for a request's Accept-Language
	// header (webui.ErrorText.Message): ok with the message and its
	// language when the caller asked for one it speaks. The code and the
	// details never change; nil, or not ok, answers in English.
	Localize func(acceptLanguage string, err error) (message, lang string, ok bool)
}

// RegionDirectory names regions for responses and pickers.
type RegionDirectory interface {
	Name(code string) string
}

// handlerFunc is a handler that returns its error for one place to render.
type handlerFunc func(w http.ResponseWriter, r *http.Request) error

func (s *Server) handle(h handlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if err := h(w, r); err != nil {
			s.writeError(w, r, err)
		}
	}
}

// Routes mounts the API. The caller mounts it under /api/v1 and the probes
// at the root.
func (s *Server) Routes() chi.Router {
	r := chi.NewRouter()
	r.Use(limitBody)
	r.Get("/openapi.json", serveOpenAPI)
	r.Get("/calendar/earliest", s.handle(s.earliest))
	r.Get("/calendar/days", s.handle(s.calendarDays))
	r.Get("/regions", s.handle(s.listRegions))
	r.Get("/broadcasts/{id}/cap", s.handle(s.broadcastCAP)) // public alerts need no token
	r.Group(func(r chi.Router) {
		r.Use(s.authenticate)
		r.Mount("/broadcasts", s.broadcastRoutes())
		r.Mount("/organisations", s.organisationRoutes())
		r.Mount("/providers", s.providerRoutes())
		r.Mount("/calendars", s.calendarRoutes())
		r.Mount("/records", s.recordRoutes())
		r.Mount("/tokens", s.tokenRoutes())
		r.Mount("/inbox", s.inboxRoutes())
	})
	r.NotFound(s.handle(func(w http.ResponseWriter, r *http.Request) error {
		return tocsin.Errorf(tocsin.CodeNotFound, "no API route %s %s", r.Method, r.URL.Path)
	}))
	r.MethodNotAllowed(s.handle(func(w http.ResponseWriter, r *http.Request) error {
		return &tocsin.Error{Code: tocsin.CodeInvalid, Message: "method " + r.Method + " is not allowed on " + r.URL.Path}
	}))
	return r
}

// Handler returns the complete HTTP handler: probes, metrics and the API,
// wrapped in request ids and access logs. Other surfaces (the web UI) are
// mounted by the caller on the returned router.
func (s *Server) Handler() chi.Router {
	r := chi.NewRouter()
	r.Use(s.requestID, s.accessLog, s.recoverer)
	r.Get("/healthz", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	r.Get("/readyz", s.readyz)
	if s.Metrics != nil {
		r.Method(http.MethodGet, "/metrics", s.Metrics.Handler())
	}
	r.Get(cap.FeedPath, s.handle(s.alertFeed))
	r.Mount("/api/v1", s.Routes())
	return r
}

// Readiness is what /readyz answers: any reason makes Tocsin unready
// (503 "degraded"); warnings name what will stop it soon, without
// stopping it now.
type Readiness struct {
	Reasons  []string
	Warnings []Warning
	// Details are shown beside them (outbox backlog, NATS URL, ...).
	Details map[string]any
}

// Warning is trouble ahead, such as a missing calendar year.
type Warning struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	// Year and FirstRefused, for a missing calendar: the year, and the
	// first filing date that will be refused for want of it.
	Year         int    `json:"year,omitempty"`
	FirstRefused string `json:"first_refused,omitempty"`
}

func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	var ready Readiness
	if s.Ready != nil {
		ready = s.Ready(r.Context())
	}
	body := map[string]any{}
	for k, v := range ready.Details {
		body[k] = v
	}
	body["status"], body["reasons"], body["warnings"] = "ready", []string{}, []Warning{}
	if ready.Reasons != nil {
		body["reasons"] = ready.Reasons
	}
	if ready.Warnings != nil {
		body["warnings"] = ready.Warnings
	}
	if len(ready.Reasons) > 0 {
		body["status"] = "degraded"
		writeJSON(w, http.StatusServiceUnavailable, body)
		return
	}
	writeJSON(w, http.StatusOK, body)
}

// Context keys are unexported types so no other package can collide.
type (
	requestIDKey struct{}
	actorKey     struct{}
)

// RequestID returns the id of the request ctx belongs to.
func RequestID(ctx context.Context) string {
	id, _ := ctx.Value(requestIDKey{}).(string)
	return id
}

// ActorFrom returns the authenticated caller of the request ctx belongs to.
func ActorFrom(ctx context.Context) (tocsin.Actor, bool) {
	a, ok := ctx.Value(actorKey{}).(tocsin.Actor)
	return a, ok
}

// WithActor returns ctx carrying a; the web UI's session middleware uses it
// so both surfaces share one notion of the caller.
func WithActor(ctx context.Context, a tocsin.Actor) context.Context {
	return context.WithValue(ctx, actorKey{}, a)
}

func (s *Server) requestID(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := r.Header.Get("X-Request-Id")
		if id == "" || len(id) > 64 {
			var b [8]byte
			_, _ = rand.Read(b[:])
			id = hex.EncodeToString(b[:])
		}
		w.Header().Set("X-Request-Id", id)
		ctx := context.WithValue(r.Context(), requestIDKey{}, id)
		ctx = tocsin.WithSource(ctx, r.RemoteAddr) // for the audit trail
		next.ServeHTTP(w, r.WithContext(ctx))
	})
}

// statusRecorder remembers the status a handler wrote. Unwrap lets
// http.ResponseController reach the real writer (for flushing streams).
type statusRecorder struct {
	http.ResponseWriter
	status int
	bytes  int
}

func (w *statusRecorder) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusRecorder) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	n, err := w.ResponseWriter.Write(p)
	w.bytes += n
	return n, err
}

func (w *statusRecorder) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func (s *Server) accessLog(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec := &statusRecorder{ResponseWriter: w}
		next.ServeHTTP(rec, r)
		if rec.status == 0 {
			rec.status = http.StatusOK
		}
		elapsed := time.Since(start)
		s.Metrics.ObserveRequest(r.Method, rec.status, elapsed)
		level := slog.LevelInfo
		if r.URL.Path == "/healthz" || r.URL.Path == "/readyz" || r.URL.Path == "/metrics" {
			level = slog.LevelDebug
		}
		attrs := []slog.Attr{
			slog.String("method", r.Method), slog.String("path", r.URL.Path),
			slog.Int("status", rec.status), slog.Int("bytes", rec.bytes),
			slog.Duration("duration", elapsed), slog.String("request_id", RequestID(r.Context())),
		}
		if a, ok := ActorFrom(r.Context()); ok {
			attrs = append(attrs, slog.String("actor", a.String()))
		}
		s.Log.LogAttrs(r.Context(), level, "http", attrs...)
	})
}

func (s *Server) recoverer(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				s.Log.ErrorContext(r.Context(), "handler panicked", slog.Any("panic", v),
					slog.String("request_id", RequestID(r.Context())))
				s.writeError(w, r, &tocsin.Error{Code: tocsin.CodeInternal, Message: "internal error"})
			}
		}()
		next.ServeHTTP(w, r)
	})
}

func limitBody(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ContentLength > MaxBodyBytes {
			writeJSON(w, http.StatusRequestEntityTooLarge, map[string]any{"error": map[string]any{
				"code": tocsin.CodeTooLarge, "message": "request body is larger than 1048576 bytes"}})
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, MaxBodyBytes)
		next.ServeHTTP(w, r)
	})
}

// authenticate requires a valid bearer token whose credential the store
// still holds, and puts the actor it acts as in the request context: the
// token names an organisation and a credential; role, level and
// jurisdiction are the stored organisation's, read on every request (a
// bbolt read transaction, a few microseconds: no cache to invalidate).
func (s *Server) authenticate(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		token, ok := bearerToken(r.Header.Get("Authorization"))
		if !ok {
			s.writeError(w, r, tocsin.Errorf(tocsin.CodeUnauthorized, "an Authorization: Bearer <JWT> header is required"))
			return
		}
		a, err := s.tokenActor(r.Context(), token)
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		next.ServeHTTP(w, r.WithContext(WithActor(r.Context(), a)))
	})
}

// tokenActor verifies a bearer token and returns the actor its stored
// credential and organisation make it; every failure is CodeUnauthorized
// (or a store error).
func (s *Server) tokenActor(ctx context.Context, token string) (tocsin.Actor, error) {
	presented, err := s.Verifier.VerifyToken(token)
	if err != nil {
		return tocsin.Actor{}, &tocsin.Error{Code: tocsin.CodeUnauthorized, Message: err.Error()}
	}
	return s.Service.Authenticate(ctx, presented)
}

// bearerToken returns the token of an Authorization header using the
// Bearer scheme, whose name is case-insensitive (RFC 9110, section 11.1).
func bearerToken(h string) (string, bool) {
	const scheme = "Bearer "
	if len(h) < len(scheme) || !strings.EqualFold(h[:len(scheme)], scheme) {
		return "", false
	}
	token := strings.TrimSpace(h[len(scheme):])
	return token, token != ""
}

// actor returns the request's authenticated caller; routes behind
// authenticate always have one.
func actor(r *http.Request) tocsin.Actor {
	a, _ := ActorFrom(r.Context())
	return a
}
