package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/tocsin-dev/tocsin/internal/auth"
	"github.com/tocsin-dev/tocsin/internal/boltstore"
	"github.com/tocsin-dev/tocsin/internal/calendar"
	"github.com/tocsin-dev/tocsin/internal/httpapi"
	"github.com/tocsin-dev/tocsin/internal/region"
	"github.com/tocsin-dev/tocsin/internal/tocsin"
)

// serveConfig is everything serve and demo are told, with defaults in code,
// environment over defaults and flags over both.
type serveConfig struct {
	Data        string
	HTTP        string
	Calendars   string
	JWTKey      string
	Seed        string
	PostHocDays int
	LogLevel    slog.Level
	LogJSON     bool

	// Demo only.
	Demo         bool
	Now          time.Time
	NoSimulators bool
}

func parseServeConfig(args []string, getenv func(string) string, stderr io.Writer, demo bool) (serveConfig, error) {
	name := "serve"
	if demo {
		name = "demo"
	}
	fs := newFlagSet(name, stderr)
	cfg := serveConfig{Demo: demo}
	fs.StringVar(&cfg.Data, "data", envOr(getenv, "TOCSIN_DATA", "./data"), "data folder: store, NATS files, keys")
	fs.StringVar(&cfg.HTTP, "http", envOr(getenv, "TOCSIN_HTTP", "127.0.0.1:8080"), "HTTP listen address")
	fs.StringVar(&cfg.Calendars, "calendars", envOr(getenv, "TOCSIN_CALENDARS", ""), "directory of extra calendar files (YYYY.json)")
	fs.StringVar(&cfg.JWTKey, "jwt-key", envOr(getenv, "TOCSIN_JWT_KEY", ""), "Ed25519 signing key (PKCS#8 PEM); default DATA/keys/jwt.pem, created on first start")
	fs.IntVar(&cfg.PostHocDays, "post-hoc-days", tocsin.DefaultPostHocWorkingDays, "working days after release an emergency's post-hoc report is due")
	logLevel := fs.String("log-level", envOr(getenv, "TOCSIN_LOG_LEVEL", "info"), "debug, info, warn or error")
	fs.BoolVar(&cfg.LogJSON, "log-json", getenv("TOCSIN_LOG_JSON") != "", "log as JSON lines")
	var now string
	if demo {
		fs.StringVar(&now, "now", "", "start the demo clock at this RFC 3339 time")
		fs.BoolVar(&cfg.NoSimulators, "no-simulators", false, "run without the in-process provider simulators")
	} else {
		fs.StringVar(&cfg.Seed, "seed", envOr(getenv, "TOCSIN_SEED", ""), "JSON file of organisations and providers to create or update at start")
	}
	pos, err := parseFlags(fs, args)
	if err != nil {
		return cfg, err
	}
	if len(pos) > 0 {
		return cfg, usageError("%s takes no arguments, got %q", name, pos)
	}
	if err := cfg.LogLevel.UnmarshalText([]byte(*logLevel)); err != nil {
		return cfg, usageError("--log-level: %v", err)
	}
	if now != "" {
		if cfg.Now, err = time.Parse(time.RFC3339, now); err != nil {
			return cfg, usageError("--now must be an RFC 3339 time such as 2026-12-01T09:00:00+08:00: %v", err)
		}
	}
	if cfg.PostHocDays < 1 {
		return cfg, usageError("--post-hoc-days must be at least 1")
	}
	return cfg, nil
}

func runServe(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer, demo bool) error {
	cfg, err := parseServeConfig(args, getenv, stderr, demo)
	if err != nil {
		return err
	}
	opts := &slog.HandlerOptions{Level: cfg.LogLevel}
	var handler slog.Handler = slog.NewTextHandler(stderr, opts)
	if cfg.LogJSON {
		handler = slog.NewJSONHandler(stderr, opts)
	}
	log := slog.New(handler)

	c, err := startCoordinator(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer c.close()
	if demo {
		if err := c.seedDemo(ctx, stdout); err != nil {
			return err
		}
	} else if cfg.Seed != "" {
		if err := c.seedFile(ctx, cfg.Seed); err != nil {
			return err
		}
	}
	fmt.Fprintf(stdout, "tocsin: listening on http://%s\n", c.httpAddr)
	return c.serve(ctx)
}

// coordinator is one running Tocsin: the pieces serve wires together.
type coordinator struct {
	cfg      serveConfig
	log      *slog.Logger
	clock    tocsin.Clock
	keys     *auth.Keys
	regions  *region.Divisions
	store    *boltstore.DB
	service  *tocsin.Service
	api      *httpapi.Server
	listener net.Listener
	httpAddr string
}

func startCoordinator(ctx context.Context, cfg serveConfig, log *slog.Logger) (*coordinator, error) {
	if err := os.MkdirAll(cfg.Data, 0o700); err != nil {
		return nil, fmt.Errorf("data folder: %w", err)
	}
	keys, err := loadKeys(cfg.Data, cfg.JWTKey)
	if err != nil {
		return nil, err
	}
	cal, err := calendar.Load(cfg.Calendars)
	if err != nil {
		return nil, fmt.Errorf("calendars: %w", err)
	}
	log.Info("calendars loaded", slog.Any("years", cal.Years()))
	var clock tocsin.Clock = tocsin.SystemClock{}
	if !cfg.Now.IsZero() {
		clock = tocsin.StartingAt(cfg.Now)
		log.Info("demo clock set", slog.Time("now", cfg.Now))
	}
	regions := region.Default()
	store, err := boltstore.Open(filepath.Join(cfg.Data, "tocsin.db"), regions, log)
	if err != nil {
		return nil, err
	}
	c := &coordinator{cfg: cfg, log: log, clock: clock, keys: keys, regions: regions, store: store}
	c.service = &tocsin.Service{
		Store: store, Calendar: cal, Regions: regions, Clock: clock,
		PostHocWorkingDays: cfg.PostHocDays,
	}
	c.api = &httpapi.Server{
		Service:   c.service,
		Verifier:  keys.Verifier(time.Now), // tokens expire in real time, whatever the demo clock says
		Regions:   regions,
		Days:      calendarDays{cal},
		Log:       log,
		Metrics:   httpapi.NewMetrics(),
		Ready:     c.ready,
		Passwords: auth.HashPassword,
	}
	c.listener, err = net.Listen("tcp", cfg.HTTP)
	if err != nil {
		store.Close()
		return nil, fmt.Errorf("listen on %s: %w", cfg.HTTP, err)
	}
	c.httpAddr = c.listener.Addr().String()
	return c, nil
}

func (c *coordinator) ready(ctx context.Context) (map[string]any, error) {
	details := map[string]any{}
	err := c.store.View(ctx, func(tx tocsin.ReadTx) error {
		n, err := tx.OutboxLen()
		details["outbox_backlog"] = n
		return err
	})
	return details, err
}

// serve answers HTTP until ctx ends, then drains in-flight requests.
func (c *coordinator) serve(ctx context.Context) error {
	srv := &http.Server{
		Handler:           c.api.Handler(),
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(c.log.Handler(), slog.LevelWarn),
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(c.listener) }()
	c.log.Info("serving", slog.String("http", c.httpAddr), slog.String("data", c.cfg.Data))
	select {
	case err := <-errc:
		return fmt.Errorf("http: %w", err)
	case <-ctx.Done():
	}
	c.log.Info("shutting down")
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("http shutdown: %w", err)
	}
	return nil
}

func (c *coordinator) close() {
	if err := c.store.Close(); err != nil {
		c.log.Error("closing store", slog.Any("error", err))
	}
}

// calendarDays adapts the calendar to the API's day listing.
type calendarDays struct{ cal *calendar.Calendar }

func (d calendarDays) DayReasons(from, to time.Time) ([]httpapi.DayView, error) {
	days, err := d.cal.Days(from, to)
	if err != nil {
		return nil, &tocsin.Error{Code: tocsin.CodeCalendarMissing, Message: err.Error(), Err: err}
	}
	out := make([]httpapi.DayView, len(days))
	for i, day := range days {
		out[i] = httpapi.DayView{Date: day.Date.Format(tocsin.DateLayout), Working: day.Working, Reason: string(day.Reason), Holiday: day.Holiday}
	}
	return out, nil
}

// splitList splits a comma-separated flag value.
func splitList(s string) []string {
	var out []string
	for _, part := range strings.Split(s, ",") {
		if part = strings.TrimSpace(part); part != "" {
			out = append(out, part)
		}
	}
	return out
}
